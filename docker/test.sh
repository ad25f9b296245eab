#!/usr/bin/env bash
# `make docker-test`: builds the image and runs docker-compose.yml for real on this machine.
#
#  1. a Docker engine: the running one, or Debian's docker.io started here (installed if missing), and
#     Compose (`docker compose`, else Debian's docker-compose);
#  2. the base image: python:3.11-slim-bookworm when it is there or can be pulled, else a local one from
#     Debian's archive (docker/local-base.sh, kept as redisai-local/python:3.11-slim-bookworm);
#  3. torch's wheel source: PyTorch's CPU index when it answers, else a local index on 127.0.0.1 holding
#     torch==2.13.0's CPU wheel (as this machine's pip finds it) and its dependencies;
#  4. `docker build` of the image (docker-compose.yml's redisai-python:latest) with those as build args;
#  5. the standalone profile: `up`, the intro's redis-cli walkthrough (docs/redisai-intro: tensors, the TF
#     graph multiplying a and b into c, the TorchScript multiply), a MODELEXECUTE on TF, TFLITE, TORCH and
#     ONNX, the executors' sandbox as INFO reports it (seccomp and no_new_privs must hold), then `down` and `up` again on the same data volume and every result checked again;
#  6. the cluster profile (3 masters): `up`, cluster-init, `redis-cli --cluster check`, the same
#     walkthrough and backends through `redis-cli -c`, a restart on the same volumes, the check again;
#  7. `down -v` (KEEP=1 leaves both profiles running).
#
# Environment: PYTHON_IMAGE, TORCH_INDEX_URL (skip the probing, as the Dockerfile's build args),
# PIP_INDEX_URL (passed on to the build), REDISAI_PORT (host port of the standalone server: default a
# free one, on 127.0.0.1), KEEP=1, REDISAI_DOCKER_CACHE (default ~/.cache/redisai-docker: the local
# torch index), REDISAI_TORCH_INDEX_PORT (its port on 127.0.0.1, default 38117). Model blobs come from tests/model_fixtures.py, run by .venv/bin/python when the
# checkout has a .venv, else inside the image just built.
#
# Whatever only this machine needs stays here: the local base, its CA bundle (baked into the local base:
# PyPI's TLS here is signed by a CA only the machine's bundle has), the local torch index. The
# Dockerfile's and docker-compose.yml's defaults are the public ones.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
IMAGE=redisai-python:latest
PROJECT=redisai-dockertest
OFFICIAL_BASE=python:3.11-slim-bookworm
LOCAL_BASE=redisai-local/python:3.11-slim-bookworm
OFFICIAL_TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_PIN=torch==2.13.0
CACHE=${REDISAI_DOCKER_CACHE:-$HOME/.cache/redisai-docker}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
WORK=$(mktemp -d /tmp/redisai-docker-test.XXXXXX)
START=$(date +%s)
STEP_START=$START
INDEX_PID=
COMPOSE=()
FAILED=1

log() { printf '[docker-test %s +%4ds] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - START))" "$*"; }
step() {
  local now; now=$(date +%s)
  [ "$STEP_START" = "$START" ] || log "    (step took $((now - STEP_START)) s)"
  STEP_START=$now
  printf '\n'; log "== $*"
}
die() { log "FAILED: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  [ -z "$INDEX_PID" ] || kill "$INDEX_PID" 2>/dev/null || true
  if [ "${#COMPOSE[@]}" -gt 0 ] && [ "${KEEP:-0}" != 1 ]; then
    "${COMPOSE[@]}" --profile cluster down -v --remove-orphans >"$WORK/down.log" 2>&1 || cat "$WORK/down.log"
  fi
  if [ "$FAILED" = 1 ]; then
    log "FAILED after $(($(date +%s) - START)) s (exit $rc); logs in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

apt_install() {
  log "apt-get install $*"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; exit 1; }
}

# ------------------------------------------------------------------------------------ 1. the engine
step "Docker engine"
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || apt_install docker.io
  command -v docker >/dev/null || apt_install docker.io
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/redisai-dockerd.log)"
    $SUDO sh -c 'setsid nohup dockerd >/var/log/redisai-dockerd.log 2>&1 </dev/null &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/redisai-dockerd.log; die "dockerd did not start"; }
  fi
fi
log "engine $(docker version -f '{{.Server.Version}}'), client $(docker version -f '{{.Client.Version}}'), $(docker info -f '{{.Driver}}, cgroup {{.CgroupDriver}}')"
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  command -v docker-compose >/dev/null || apt_install docker-compose
  COMPOSE=(docker-compose)
fi
log "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -1))"
COMPOSE_NAME=${COMPOSE[*]}
COMPOSE+=(-p "$PROJECT" -f "$REPO/docker-compose.yml")

# ------------------------------------------------------------------------------------ 2. the base
step "Base image"
if [ -n "${PYTHON_IMAGE:-}" ]; then
  BASE=$PYTHON_IMAGE
  log "PYTHON_IMAGE=$BASE (given)"
elif docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 || timeout 60 docker pull -q "$OFFICIAL_BASE" >"$WORK/pull.log" 2>&1; then
  BASE=$OFFICIAL_BASE
  log "official $BASE"
else
  log "cannot pull $OFFICIAL_BASE ($(tail -1 "$WORK/pull.log" | cut -c1-120))"
  BASE=$LOCAL_BASE
  ca=
  [ ! -s /etc/ssl/certs/ca-certificates.crt ] || ca=/etc/ssl/certs/ca-certificates.crt
  CA_BUNDLE=$ca "$REPO/docker/local-base.sh" "$BASE"
fi

# ------------------------------------------------------------------------------------ 3. torch's source
step "torch wheel source"
BUILD_NETWORK=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  TORCH_INDEX=$TORCH_INDEX_URL
  log "TORCH_INDEX_URL=$TORCH_INDEX (given)"
elif curl -sSf -m 15 -o /dev/null "$OFFICIAL_TORCH_INDEX/torch/" 2>"$WORK/curl.log"; then
  TORCH_INDEX=$OFFICIAL_TORCH_INDEX
  log "PyTorch's CPU index answers: $TORCH_INDEX"
else
  log "PyTorch's CPU index does not answer ($(tr -d '\n' <"$WORK/curl.log" | cut -c1-100)): a local index"
  index=$CACHE/torch-index
  if [ ! -f "$index/.complete" ]; then
    rm -rf "$index" && mkdir -p "$index"
    # This machine's pip (its config may name local wheel folders) takes the CPU wheel of the pinned
    # torch and its dependencies, for CPython 3.11 on this architecture, as the image's pip would.
    python3 -m pip download -q --only-binary=:all: --python-version 3.11 --dest "$WORK/wheels" "$TORCH_PIN" \
      >"$WORK/pip-download.log" 2>&1 || { cat "$WORK/pip-download.log"; die "pip download $TORCH_PIN"; }
    ls "$WORK/wheels" | grep -q '^torch-2\.13\.0+cpu-' \
      || die "no CPU build of $TORCH_PIN here ($(ls "$WORK/wheels" | grep '^torch-')): pass TORCH_INDEX_URL"
    for wheel in "$WORK"/wheels/*.whl; do  # a PEP 503 layout: one folder per normalized project name
      project=$(basename "$wheel" | cut -d- -f1 | tr 'A-Z_.' 'a-z--')
      mkdir -p "$index/$project" && mv "$wheel" "$index/$project/"
    done
    touch "$index/.complete"
  fi
  # The same URL every run (the build argument is part of the torch layer's cache key), on another
  # port only when that one is taken.
  port=${REDISAI_TORCH_INDEX_PORT:-38117}
  if python3 -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
    log "port $port is taken: another one (the torch layer will not come from the cache)"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  python3 -m http.server --bind 127.0.0.1 --directory "$index" "$port" >"$WORK/index.log" 2>&1 &
  INDEX_PID=$!
  TORCH_INDEX=http://127.0.0.1:$port/
  for _ in $(seq 1 50); do curl -sf -o /dev/null "$TORCH_INDEX/torch/" && break; sleep 0.1; done
  curl -sf "$TORCH_INDEX/torch/" | grep -q 'torch-2\.13\.0' || { cat "$WORK/index.log"; die "the local index does not serve torch"; }
  BUILD_NETWORK=(--network host)  # the build's RUN steps reach 127.0.0.1 of this machine
  log "local index $TORCH_INDEX from $index: $(ls "$index" | grep -v '^\.' | tr '\n' ' ')"
fi

# ------------------------------------------------------------------------------------ 4. the image
step "docker build -t $IMAGE"
build_args=(--build-arg "PYTHON_IMAGE=$BASE" --build-arg "TORCH_INDEX_URL=$TORCH_INDEX")
[ -z "${PIP_INDEX_URL:-}" ] || build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
docker_build() {  # docker_build LOG ARGS...: each step's heading and whether it came from the cache
  local log=$1 rc; shift
  log "docker build $*"
  set +e
  docker build "$@" 2>&1 | tee "$log" | {
    grep --line-buffered -E '^(Step [0-9]+/[0-9]+ : |Successfully (built|tagged)| ---> Using cache|#[0-9]+ (\[|CACHED|DONE))' \
      | cut -c1-150 | sed -u 's/^/    /'; true; }
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { tail -40 "$log"; die "docker build $*"; }
}
build_start=$(date +%s)
# The deps stage (the venv with the backends, 2.5 GB, minutes to build) first, under a tag of its own:
# tagged, its layers stay the cache of the next build even after a `docker image prune`.
docker_build "$WORK/build-deps.log" "${BUILD_NETWORK[@]}" "${build_args[@]}" --target deps -t "${IMAGE%:*}:deps" "$REPO"
log "deps stage in $(($(date +%s) - build_start)) s"
docker_build "$WORK/build.log" "${BUILD_NETWORK[@]}" "${build_args[@]}" -t "$IMAGE" "$REPO"
log "image built in $(($(date +%s) - build_start)) s: $IMAGE $(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19), \
$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"

# ------------------------------------------------------------------------------------ model blobs
step "Model blobs (tests/model_fixtures.py)"
mkdir -p "$WORK/blobs"
cp "$REPO/tests/model_fixtures.py" "$WORK/blobs/"
make_blobs='
import sys, pathlib
out = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(out))
import model_fixtures as m
for name, build in (("graph.pb", m.tf_mul_graph), ("mul.tflite", m.tflite_mul), ("add_mul.pt", m.torch_add_mul),
                    ("mul.onnx", m.onnx_mul)):
    (out / name).write_bytes(build())
    print(name, (out / name).stat().st_size, "bytes")
'
if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -c 'import tensorflow, torch, onnx' 2>/dev/null; then
  log "built by $REPO/.venv/bin/python"
  (cd "$WORK" && "$REPO/.venv/bin/python" -c "$make_blobs" "$WORK/blobs" 2>"$WORK/blobs.log") | sed 's/^/    /' \
    || { tail -20 "$WORK/blobs.log"; die "model blobs"; }
else
  log "no .venv with the frameworks here: built inside $IMAGE"
  docker run --rm --user 0 -v "$WORK/blobs:/blobs" -w /blobs "$IMAGE" /opt/redisai/.venv/bin/python -c "$make_blobs" /blobs \
    2>"$WORK/blobs.log" | sed 's/^/    /' || { tail -20 "$WORK/blobs.log"; die "model blobs"; }
fi
printf 'def multiply(a, b):\n    return a * b\n' >"$WORK/blobs/myscript.py"
for blob in graph.pb mul.tflite add_mul.pt mul.onnx; do [ -s "$WORK/blobs/$blob" ] || { cat "$WORK/blobs.log"; die "no $blob"; }; done

# ------------------------------------------------------------------------------------ checks
CLI=()  # the redis-cli of a container: docker exec -i <container> redis-cli [-c -p port]
check() {  # check LABEL EXPECTED ARGS... : runs redis-cli ARGS, compares its lines joined by spaces
  local label=$1 expected=$2 got; shift 2
  got=$("${CLI[@]}" "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$expected" ] || die "$label: redis-cli $* -> '$got', expected '$expected'"
  log "  ok  $label: $got"
}
check_blob() {  # check_blob LABEL FILE ARGS... : the file's bytes as the last argument (redis-cli -x)
  local label=$1 file=$2 got; shift 2
  got=$("${CLI[@]}" -x "$@" <"$WORK/blobs/$file" 2>&1 | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = OK ] || die "$label: redis-cli -x $* < $file -> '$got'"
  log "  ok  $label ($(stat -c %s "$WORK/blobs/$file") bytes): $got"
}

walkthrough() {  # walkthrough PREFIX: the intro's session, keys named PREFIX... ({tag} in the cluster)
  local p=$1
  check "AI.TENSORSET ${p}tA FLOAT 2 VALUES 2 3" OK AI.TENSORSET "${p}tA" FLOAT 2 VALUES 2 3
  check "EXISTS ${p}tA" 1 EXISTS "${p}tA"
  check "TYPE ${p}tA" AI_TENSOR TYPE "${p}tA"
  check "AI.TENSORGET ${p}tA META VALUES" "dtype FLOAT shape 2 values 2 3" AI.TENSORGET "${p}tA" META VALUES
  check_blob "cat graph.pb | redis-cli -x AI.MODELSET ${p}mymodel TF CPU INPUTS a b OUTPUTS c BLOB" graph.pb \
    AI.MODELSET "${p}mymodel" TF CPU INPUTS a b OUTPUTS c BLOB
  check "AI.TENSORSET ${p}tB FLOAT 2 VALUES 3 5" OK AI.TENSORSET "${p}tB" FLOAT 2 VALUES 3 5
  check "AI.MODELRUN ${p}mymodel INPUTS ${p}tA ${p}tB OUTPUTS ${p}tModel" OK \
    AI.MODELRUN "${p}mymodel" INPUTS "${p}tA" "${p}tB" OUTPUTS "${p}tModel"
  check "AI.TENSORGET ${p}tModel VALUES" "6 15" AI.TENSORGET "${p}tModel" VALUES
  check_blob "cat myscript.py | redis-cli -x AI.SCRIPTSET ${p}myscript CPU SOURCE" myscript.py \
    AI.SCRIPTSET "${p}myscript" CPU SOURCE
  check "AI.SCRIPTRUN ${p}myscript multiply INPUTS ${p}tA ${p}tB OUTPUTS ${p}tScript" OK \
    AI.SCRIPTRUN "${p}myscript" multiply INPUTS "${p}tA" "${p}tB" OUTPUTS "${p}tScript"
  check "AI.TENSORGET ${p}tScript VALUES" "6 15" AI.TENSORGET "${p}tScript" VALUES
}

BACKENDS="TF:graph.pb:6_15 TFLITE:mul.tflite:6_15 TORCH:add_mul.pt:8_18 ONNX:mul.onnx:6_15"
backend_tag() { [ "$1" = cluster ] && printf '{%s}' "$(tr 'A-Z' 'a-z' <<<"$2")" || printf '%s:' "$(tr 'A-Z' 'a-z' <<<"$2")"; }

store_backends() {  # store_backends MODE: one model per backend (AI.MODELSTORE) and its two inputs
  local entry backend file k
  for entry in $BACKENDS; do
    IFS=: read -r backend file _ <<<"$entry"; k=$(backend_tag "$1" "$backend")
    if [ "$backend" = TF ]; then
      check_blob "AI.MODELSTORE ${k}m TF CPU INPUTS 2 a b OUTPUTS 1 c BLOB < $file" "$file" \
        AI.MODELSTORE "${k}m" TF CPU INPUTS 2 a b OUTPUTS 1 c BLOB
    else
      check_blob "AI.MODELSTORE ${k}m $backend CPU BLOB < $file" "$file" AI.MODELSTORE "${k}m" "$backend" CPU BLOB
    fi
    check "AI.TENSORSET ${k}a FLOAT 2 VALUES 2 3" OK AI.TENSORSET "${k}a" FLOAT 2 VALUES 2 3
    check "AI.TENSORSET ${k}b FLOAT 2 VALUES 3 5" OK AI.TENSORSET "${k}b" FLOAT 2 VALUES 3 5
  done
}

execute_backends() {  # execute_backends MODE: MODELEXECUTE on each backend's model, its output checked
  local entry backend file expected k
  for entry in $BACKENDS; do
    IFS=: read -r backend file expected <<<"$entry"; k=$(backend_tag "$1" "$backend")
    check "$backend: AI.MODELEXECUTE ${k}m INPUTS 2 ${k}a ${k}b OUTPUTS 1 ${k}out" OK \
      AI.MODELEXECUTE "${k}m" INPUTS 2 "${k}a" "${k}b" OUTPUTS 1 "${k}out"
    check "$backend: AI.TENSORGET ${k}out VALUES" "${expected/_/ }" AI.TENSORGET "${k}out" VALUES
  done
}

persisted() {  # persisted MODE PREFIX: what the walkthrough and the backends left, read back
  local p=$2 entry backend k
  check "AI.TENSORGET ${p}tModel VALUES (kept)" "6 15" AI.TENSORGET "${p}tModel" VALUES
  check "AI.TENSORGET ${p}tScript VALUES (kept)" "6 15" AI.TENSORGET "${p}tScript" VALUES
  check "AI.MODELRUN ${p}mymodel (kept) INPUTS ${p}tA ${p}tB OUTPUTS ${p}tModel2" OK \
    AI.MODELRUN "${p}mymodel" INPUTS "${p}tA" "${p}tB" OUTPUTS "${p}tModel2"
  check "AI.TENSORGET ${p}tModel2 VALUES" "6 15" AI.TENSORGET "${p}tModel2" VALUES
  check "AI.SCRIPTRUN ${p}myscript (kept) multiply" OK \
    AI.SCRIPTRUN "${p}myscript" multiply INPUTS "${p}tA" "${p}tB" OUTPUTS "${p}tScript2"
  check "AI.TENSORGET ${p}tScript2 VALUES" "6 15" AI.TENSORGET "${p}tScript2" VALUES
  for entry in $BACKENDS; do
    IFS=: read -r backend _ <<<"$entry"; k=$(backend_tag "$1" "$backend")
    check "AI.TENSORGET ${k}out VALUES (kept)" "$(grep -o "$backend:[^ ]*" <<<"$BACKENDS" | cut -d: -f3 | tr _ ' ')" \
      AI.TENSORGET "${k}out" VALUES
  done
  execute_backends "$1"
}

container() { "${COMPOSE[@]}" ps -q "$1"; }

wait_healthy() {  # wait_healthy SERVICE...: the image's / compose's health check passes
  local service cid status
  for service in "$@"; do
    cid=$(container "$service")
    [ -n "$cid" ] || die "no container for $service"
    for _ in $(seq 1 180); do
      status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$cid")
      [ "$status" = healthy ] && break
      [ "$status" = unhealthy ] || [ "$(docker inspect -f '{{.State.Running}}' "$cid")" = true ] || break
      sleep 1
    done
    [ "$status" = healthy ] || { docker logs --tail 40 "$cid"; die "$service is $status"; }
    log "$service healthy (container $(docker inspect -f '{{.Name}}' "$cid" | tr -d /))"
  done
}

# ------------------------------------------------------------------------------------ 5. standalone
step "Standalone profile: $COMPOSE_NAME -p $PROJECT up redisai"
if [ -z "${REDISAI_PORT:-}" ]; then
  REDISAI_PORT=127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export REDISAI_PORT
"${COMPOSE[@]}" --profile cluster down -v --remove-orphans >"$WORK/down.log" 2>&1 || true  # a previous run's leftovers
"${COMPOSE[@]}" up -d --no-build redisai 2>&1 | sed 's/^/    /'
wait_healthy redisai
CLI=(docker exec -i "$(container redisai)" redis-cli)
log "published on $REDISAI_PORT; redis-cli -p 6379 inside the container"
check "PING" PONG PING
step "Standalone: the intro's walkthrough"
walkthrough ""
step "Standalone: MODELEXECUTE on the four backends"
store_backends standalone
execute_backends standalone
if command -v redis-cli >/dev/null; then
  host=${REDISAI_PORT%:*}; [ "$host" != "$REDISAI_PORT" ] || host=127.0.0.1
  got=$(redis-cli -h "$host" -p "${REDISAI_PORT##*:}" AI.TENSORGET tModel VALUES | tr '\n' ' ')
  [ "$got" = "6 15 " ] || die "through the published port: '$got'"
  log "  ok  this machine's redis-cli -h $host -p ${REDISAI_PORT##*:} AI.TENSORGET tModel VALUES: $got"
fi
# The executors' sandbox under Docker's default seccomp profile: seccomp and no_new_privs must hold (stores
# are refused where seccomp cannot be applied); Landlock and the memory bound depend on the host's kernel
# and cgroups, and are logged as they are.
sandbox=$("${CLI[@]}" INFO ai | tr -d '\r' | grep '^ai_executors_\(sandbox\|seccomp\|no_new_privs\|landlock_abi\|memory_bound\):')
grep -qx 'ai_executors_seccomp:1' <<<"$sandbox" && grep -qx 'ai_executors_no_new_privs:1' <<<"$sandbox" \
  || die "the executors' sandbox in the container: $sandbox"
log "  ok  INFO ai, the executors' sandbox in the container: $(tr '\n' ' ' <<<"$sandbox")"
keys=$("${CLI[@]}" DBSIZE)
# The package's command-line tool, on the image's PATH.
listing=$(docker exec "$(container redisai)" redisai -p 6379 ls) || die "redisai -p 6379 ls"
grep -q 'mymodel' <<<"$listing" || die "redisai ls does not list mymodel: $listing"
log "  ok  redisai -p 6379 ls (the package's tool in the container): $(wc -l <<<"$listing") keys, $(grep mymodel <<<"$listing" | tr '\t' ' ')"

step "Standalone: down and up again on the same data volume"
"${COMPOSE[@]}" down 2>&1 | sed 's/^/    /'
docker volume inspect -f 'volume {{.Name}} kept' "${PROJECT}_redisai-data" | sed 's/^/    /'
"${COMPOSE[@]}" up -d --no-build redisai 2>&1 | sed 's/^/    /'
wait_healthy redisai
CLI=(docker exec -i "$(container redisai)" redis-cli)
check "DBSIZE (as before the restart)" "$keys" DBSIZE
persisted standalone ""
"${COMPOSE[@]}" stop redisai >/dev/null 2>&1

# ------------------------------------------------------------------------------------ 6. cluster
step "Cluster profile: $COMPOSE_NAME -p $PROJECT --profile cluster up node1 node2 node3 cluster-init"
cluster_up() {
  "${COMPOSE[@]}" --profile cluster up -d --no-build node1 node2 node3 cluster-init 2>&1 | sed 's/^/    /'
  wait_healthy node1 node2 node3
  local init rc
  init=$(container cluster-init)
  rc=$(timeout 120 docker wait "$init") || die "cluster-init did not finish"
  docker logs "$init" 2>&1 | tail -5 | sed 's/^/    cluster-init: /'
  [ "$rc" = 0 ] || die "cluster-init exited $rc"
  CLI=(docker exec -i "$(container node1)" redis-cli -c -p 7001)
  docker exec "$(container node1)" redis-cli --cluster check 127.0.0.1:7001 >"$WORK/check.log" 2>&1 \
    || { cat "$WORK/check.log"; die "redis-cli --cluster check"; }
  grep -E '^127.0.0.1:7001|^\[OK\]|^M:|slots:|keys' "$WORK/check.log" | cut -c1-120 | sed 's/^/    --cluster check: /'
  grep -q '^\[OK\] All 16384 slots covered' "$WORK/check.log" || die "slots not covered"
  [ "$(grep -c '^M:' "$WORK/check.log")" = 3 ] || die "not 3 masters"
  got=$(docker exec "$(container node1)" redis-cli -p 7001 CLUSTER INFO | tr -d '\r' | grep -E '^cluster_(state|slots_ok|known_nodes|size):' | tr '\n' ' ')
  [ "${got#cluster_state:ok }" != "$got" ] || die "CLUSTER INFO: $got"
  log "  ok  CLUSTER INFO: $got"
}
cluster_up
step "Cluster: the intro's walkthrough (redis-cli -c, keys tagged {intro})"
walkthrough "{intro}"
step "Cluster: MODELEXECUTE on the four backends (keys tagged {tf} {tflite} {torch} {onnx}: spread over the masters)"
store_backends cluster
for entry in $BACKENDS; do
  k=$(backend_tag cluster "${entry%%:*}")
  where=
  for n in node1:7001 node2:7002 node3:7003; do
    [ "$(docker exec "$(container "${n%:*}")" redis-cli -p "${n#*:}" EXISTS "${k}m")" = 1 ] && where="$where $n"
  done
  log "  ${k}m is in slot $("${CLI[@]}" CLUSTER KEYSLOT "${k}m"), on$where"
done
execute_backends cluster
keys=$(for n in node1:7001 node2:7002 node3:7003; do docker exec "$(container "${n%:*}")" redis-cli -p "${n#*:}" DBSIZE; done | tr '\n' ' ')
log "keys on node1 node2 node3: $keys"

step "Cluster: down and up again on the same volumes"
"${COMPOSE[@]}" --profile cluster down 2>&1 | sed 's/^/    /'
cluster_up
got=$(for n in node1:7001 node2:7002 node3:7003; do docker exec "$(container "${n%:*}")" redis-cli -p "${n#*:}" DBSIZE; done | tr '\n' ' ')
[ "$got" = "$keys" ] || die "keys per node after the restart: $got, before: $keys"
log "  ok  keys on node1 node2 node3 (as before the restart): $got"
persisted cluster "{intro}"

# ------------------------------------------------------------------------------------ 7. done
step "Done"
FAILED=0
log "make docker-test passed in $(($(date +%s) - START)) s (base $BASE, torch from $TORCH_INDEX)"
[ "${KEEP:-0}" != 1 ] || log "KEEP=1: both profiles still run (${COMPOSE[*]} --profile cluster down -v)"
