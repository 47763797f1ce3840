#!/usr/bin/env bash
# Builds the lab's image, starts it, and waits until its health endpoint answers "ok" (issue 16,
# README "Hosting"). Prints the build time, the image size and the time to healthy; the container
# (and its anonymous /lab volume) is removed on exit, the image and the build cache are kept.
#
#   tools/container_check.sh                       # base: debian:bookworm-slim, else built from Debian
#   BASE_IMAGE=debootstrap tools/container_check.sh # always build the base from Debian's mirrors
#
# Settings (environment):
#   IMAGE             the tag to build (conv3d-lab:check)
#   BASE_IMAGE        unset: debian:bookworm-slim when present or pullable, else "debootstrap";
#                     "debootstrap": conv3d-lab-base:bookworm, made here from Debian's mirrors
#                     (needs root and debootstrap) unless that image exists already;
#                     any other value: used as it is
#   DEBIAN_MIRROR     for debootstrap (http://deb.debian.org/debian)
#   BASE_EXTRA_CA_DIR *.crt files copied into a debootstrapped base, for a network whose TLS proxy
#                     has its own authority (default: /usr/local/share/ca-certificates, the
#                     authorities this host added; empty: none)
#   PORT              the port the lab answers on, on this host (default: a free one, so the check
#                     never talks to another server that holds 8501)
#   CONTAINER         the container's name (conv3d-lab-check-<pid>)
#   HEALTH_TIMEOUT_S  how long to wait for "ok" after `docker run` (180)
#   DOCKER_HEALTH=1   also wait until Docker's own HEALTHCHECK reports "healthy" (about 30 s more)
#
# Offline notes: the image is built with the classic builder (DOCKER_BUILDKIT=0), which takes a
# FROM image that exists locally without asking a registry (BuildKit, which may ask, was not
# available where this was written: no buildx plugin); --force-rm leaves no container behind when a
# step fails. Build and run use --network host, which also works on an engine started without a
# bridge network (dockerd --bridge=none); the lab is moved to $PORT by STREAMLIT_SERVER_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-conv3d-lab:check}
DEBOOTSTRAP_BASE=conv3d-lab-base:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_EXTRA_CA_DIR=${BASE_EXTRA_CA_DIR-/usr/local/share/ca-certificates}
PORT=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-180}
CONTAINER=${CONTAINER:-conv3d-lab-check-$$}

say() { printf '[container_check] %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }
seconds_since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }
now() { python3 -c 'import time; print(time.time())'; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers ('docker info' failed)"

build_debootstrap_base() {
    if docker image inspect "$DEBOOTSTRAP_BASE" >/dev/null 2>&1; then
        say "base: $DEBOOTSTRAP_BASE (exists)"
        return
    fi
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
    local rootfs started
    rootfs=$(mktemp -d /tmp/conv3d-lab-rootfs.XXXXXX)
    started=$(now)
    say "base: debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR"
    debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log"; rm -rf "$rootfs"; fail "debootstrap failed (log above)"; }
    # The same package sources as debian:bookworm-slim: updates and security fixes too.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    if [ -n "$BASE_EXTRA_CA_DIR" ] && compgen -G "$BASE_EXTRA_CA_DIR/*.crt" >/dev/null; then
        # Picked up by update-ca-certificates when the Dockerfile installs ca-certificates.
        mkdir -p "$rootfs/usr/local/share/ca-certificates"
        cp "$BASE_EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
        say "base: added $(ls "$BASE_EXTRA_CA_DIR"/*.crt | wc -l) certificate authorities from $BASE_EXTRA_CA_DIR"
    fi
    tar -C "$rootfs" -c . | docker import - "$DEBOOTSTRAP_BASE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    say "base: $DEBOOTSTRAP_BASE built in $(seconds_since "$started") s"
}

if [ -z "${BASE_IMAGE:-}" ]; then
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1 || docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        BASE_IMAGE=debian:bookworm-slim
    else
        say "debian:bookworm-slim cannot be pulled here; building the base from Debian's mirrors"
        BASE_IMAGE=debootstrap
    fi
fi
if [ "$BASE_IMAGE" = debootstrap ]; then
    build_debootstrap_base
    BASE_IMAGE=$DEBOOTSTRAP_BASE
fi

cleanup() { docker rm -f -v "$CONTAINER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "build: $IMAGE from $BASE_IMAGE"
started=$(now)
DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" . \
    >/tmp/conv3d-lab-build-$$.log 2>&1 \
    || { tail -40 /tmp/conv3d-lab-build-$$.log; fail "docker build failed (last lines above)"; }
build_s=$(seconds_since "$started")
rm -f /tmp/conv3d-lab-build-$$.log
size_mb=$(docker image inspect --format '{{.Size}}' "$IMAGE" | python3 -c 'import sys; print(round(int(sys.stdin.read()) / 1e6))')
say "build: ${build_s} s, image ${size_mb} MB"

started=$(now)
docker run -d --name "$CONTAINER" --network host -e STREAMLIT_SERVER_PORT="$PORT" -e CONV3D_LAB_DEMO=1 \
    "$IMAGE" >/dev/null
health=""
deadline=$(( $(date +%s) + HEALTH_TIMEOUT_S ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(docker inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] \
        || { docker logs --tail 40 "$CONTAINER" 2>&1; fail "the container exited (its log above)"; }
    health=$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/_stcore/health" 2>/dev/null || true)
    [ "$health" = ok ] && break
    sleep 1
done
[ "$health" = ok ] || { docker logs --tail 40 "$CONTAINER" 2>&1; fail "no 'ok' from /_stcore/health within ${HEALTH_TIMEOUT_S} s"; }
say "health: 'ok' after $(seconds_since "$started") s"

curl -fsS --max-time 10 "http://127.0.0.1:$PORT/" | grep -q '<div id="root">' \
    || fail "the home page (/) did not serve Streamlit's page"
say "home page: served"

if [ "${DOCKER_HEALTH:-0}" = 1 ]; then
    until [ "$(docker inspect --format '{{.State.Health.Status}}' "$CONTAINER")" = healthy ]; do
        [ "$(( $(date +%s) - ${started%.*} ))" -lt $(( HEALTH_TIMEOUT_S + 60 )) ] \
            || fail "Docker's HEALTHCHECK did not report healthy"
        sleep 2
    done
    say "docker health: healthy after $(seconds_since "$started") s"
fi
say "PASSED"
