# RedisAI with its core in Python, on Redis 7 (Debian bookworm's redis-server 7.0).
#
#   docker build -t redisai-python .
#   docker run -p 6379:6379 -v redisai-data:/data redisai-python
#   docker run ... redisai-python redis-server <flags> --loadmodule /opt/redisai/redisai.so THREADS_PER_QUEUE 2
#
# Build arguments, for builds behind a mirror or offline (the defaults need Docker Hub, PyTorch's index
# and PyPI; `make docker-test` shows them used, see docker/test.sh):
#   PYTHON_IMAGE     the base image of every stage (default python:3.11-slim-bookworm): CPython 3.11 with
#                    a shared libpython, e.g. a mirror's copy, or docker/local-base.sh's Debian-built one
#   TORCH_INDEX_URL  where torch==2.13.0's CPU build and its dependencies come from (default PyTorch's CPU
#                    index, https://download.pytorch.org/whl/cpu): a mirror of it, or a local index
#   PIP_INDEX_URL    everything else pip installs (default PyPI): a mirror of PyPI
#
# Every stage starts from ONE base image. The module's build compiles in absolute paths: the virtual
# environment it starts (/opt/redisai/.venv, REDISAI_PYTHON_ENV) and libpython (the base's
# LIBDIR/LDLIBRARY, /usr/local/lib/libpython3.11.so in the official image, which it dlopens), and the
# venv's bin/python points at the base image's python3. So the runtime stage uses the same base image and
# the same /opt/redisai paths as the others; change neither alone. The base must be CPython 3.11 built
# with a shared libpython: the official python images are (--enable-shared; the deps stage checks it),
# and so is Debian's python3.11 (with libpython3.11-dev for the libpython3.11.so link).
#
# Stages, for the cache: `requirements` reads the pins out of pyproject.toml; `deps` is the venv with
# them (torch, TensorFlow, ONNX Runtime, LiteRT: about 2.5 GB), rebuilt only when a pin changes; `build`
# installs the package into /opt/redisai/app (on the venv's path through a .pth file) and compiles the
# module, rebuilt on every source edit; the runtime copies the three, so a source edit adds a few MB of
# layers, not another copy of the venv.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------------------- requirements
FROM ${PYTHON_IMAGE} AS requirements

# The pinned dependencies and backends, read from pyproject.toml alone: the deps stage below copies
# only this list, so its layers are rebuilt when a pin changes, not on any other edit of pyproject.toml.
COPY pyproject.toml /tmp/pyproject.toml
RUN python3 -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['backends']))" > /tmp/requirements.txt

# ----------------------------------------------------------------------------------------------- deps
FROM ${PYTHON_IMAGE} AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python3 -c "import sysconfig, sys; sys.exit(0 if sysconfig.get_config_var('Py_ENABLE_SHARED') else 'this Python has no shared libpython: the module cannot embed it')"

RUN python3 -m venv /opt/redisai/.venv

# torch first, from PyTorch's CPU-only index: PyPI's default torch wheel for Linux is a CUDA build that
# pulls several GB of NVIDIA libraries. The CPU wheel (version 2.13.0+cpu) satisfies the
# `torch==2.13.0` pin of pyproject.toml, so the install below keeps it.
ARG PIP_INDEX_URL
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN /opt/redisai/.venv/bin/pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"

# The rest, then the C++ headers out of the venv the runtime copies (about 350 MB): TensorFlow's are
# not used; torch's move to /opt/torch-include, where the build stage compiles torch's memory
# allocator (module/torch_allocator.cpp) against them. The .pth file puts /opt/redisai/app, where the
# build stage installs the package, on the venv's path.
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN /opt/redisai/.venv/bin/pip install -r /tmp/requirements.txt \
 && rm -rf /tmp/requirements.txt /opt/redisai/.venv/lib/python3.11/site-packages/tensorflow/include \
 && mv /opt/redisai/.venv/lib/python3.11/site-packages/torch/include /opt/torch-include \
 && echo /opt/redisai/app > /opt/redisai/.venv/lib/python3.11/site-packages/redisai-app.pth

# ---------------------------------------------------------------------------------------------- build
FROM deps AS build

# The C shim needs a compiler and CMake (>= 3.18; bookworm has 3.25), torch's allocator a C++ one.
# Redis itself is not needed to build: the shim compiles against the project's own module/redismodule.h.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake make gcc g++ libc6-dev \
 && rm -rf /var/lib/apt/lists/*

# The package itself, a regular (non-editable) copy in /opt/redisai/app (its dependencies are the
# venv's): /src does not exist in the runtime stage.
COPY . /src
RUN /opt/redisai/.venv/bin/pip install --no-deps --target /opt/redisai/app /src

# The module, built against the venv (its Python, its numpy headers, the base image's libpython).
RUN cmake -S /src -B /src/build -DCMAKE_BUILD_TYPE=Release -DREDISAI_PYTHON_ENV=/opt/redisai/.venv \
        -DREDISAI_TORCH_INCLUDE=/opt/torch-include \
 && cmake --build /src/build \
 && cp /src/build/redisai.so /opt/redisai/redisai.so \
 && cp /src/build/redisai_torch.so /opt/redisai/redisai_torch.so

# -------------------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

# Redis (redis-tools brings redis-cli, for the health check and cluster setup) and libseccomp, which the
# executors' sandbox is made of; no build tools.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools libseccomp2 \
 && rm -rf /var/lib/apt/lists/*

# The venv with the backends, the package and the module, at the paths the module was built for; the
# package's command-line tool (`redisai`) on the PATH.
COPY --from=deps /opt/redisai/.venv /opt/redisai/.venv
COPY --from=build /opt/redisai/app /opt/redisai/app
COPY --from=build /opt/redisai/redisai.so /opt/redisai/redisai.so
COPY --from=build /opt/redisai/redisai_torch.so /opt/redisai/redisai_torch.so
ENV PATH=/opt/redisai/app/bin:$PATH

# Smoke test of this very image: the module loads, every backend imports in the executors (paths as
# RedisAI's own, accepted and unused), and a TorchScript run goes through a worker queue and back. A
# broken image fails to build, saying which command failed, instead of failing at `docker run`.
RUN redis-server --port 6390 --save '' --appendonly no --dir /tmp --daemonize yes --logfile /tmp/smoke.log \
        --loadmodule /opt/redisai/redisai.so \
 && for i in $(seq 1 300); do redis-cli -p 6390 ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done \
 && expect() { want="$1"; shift; got="$(redis-cli -p 6390 "$@" 2>&1 | tr '\n' ' ')"; \
               [ "$got" = "$want " ] || { echo "smoke test: redis-cli $* answered '$got', not '$want'"; \
                                          cat /tmp/smoke.log; exit 1; }; } \
 && printf 'def multiply(a, b):\n    return a * b\n' > /tmp/smoke.py \
 && expect PONG PING \
 && expect OK AI.TENSORSET t FLOAT 2 VALUES 2 3 \
 && expect OK -x AI.SCRIPTSET s CPU SOURCE < /tmp/smoke.py \
 && expect OK AI.SCRIPTRUN s multiply INPUTS t t OUTPUTS o \
 && expect '4 9' AI.TENSORGET o VALUES \
 && { redis-cli -p 6390 INFO ai | grep -q '^ai_torch_peak:[1-9]' \
      || { echo "smoke test: torch's memory is not counted (redisai_torch.so)"; exit 1; }; } \
 && expect OK AI.CONFIG LOADBACKEND TF redisai_tensorflow/redisai_tensorflow.so \
 && expect OK AI.CONFIG LOADBACKEND TFLITE redisai_tflite/redisai_tflite.so \
 && expect OK AI.CONFIG LOADBACKEND ONNX redisai_onnxruntime/redisai_onnxruntime.so \
 && expect OK AI.CONFIG LOADBACKEND TORCH redisai_torch/redisai_torch.so \
 && { redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true; } \
 && rm -f /tmp/smoke.log /tmp/smoke.py

# The Debian package created the `redis` user; the server runs as it and writes only to /data.
RUN install -d -o redis -g redis /data
VOLUME /data
WORKDIR /data
USER redis

EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD redis-cli -p 6379 ping | grep -q PONG

# No password and every interface: publish the port only where the network is trusted, or add
# --requirepass / an ACL file. Module arguments go after the .so path (see docs/configuration.md).
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--loadmodule", "/opt/redisai/redisai.so"]
