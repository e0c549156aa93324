#!/usr/bin/env bash
# Makes sure the two base images the Docker deployment needs exist in the
# local Docker engine, for machines that cannot reach an image registry:
#
#   debian:bookworm-slim  FROM of docker/Dockerfile
#   redis:7               the `redis` service of docker/docker-compose.yml
#
# For each image, in order, the first that works:
#   1. it is already in the engine: nothing to do;
#   2. `docker pull` (bounded in time);
#   3. `docker load` of the copy this script saved in its cache last time;
#   4. build it locally from the Debian mirror:
#      - debian:bookworm-slim: `debootstrap --variant=minbase bookworm`, trimmed
#        like the official slim image, then `docker import`;
#      - redis:7: a stand-in FROM debian:bookworm-slim with Debian's
#        redis-server installed by apt-get inside `docker build` (or, when build
#        containers cannot reach the mirror, a second debootstrap root with
#        `--include=redis-server`, imported). It behaves like the official image:
#        `redis-server` listens on every interface with protected mode off, data
#        in /data, CMD ["redis-server"], redis-cli included.
#   and save it to the cache (`docker save`), so a re-run is a `docker load`.
#
# Idempotent. Needs root (or sudo) only for debootstrap / apt-get.
# Environment:
#   DSYNC_DOCKER_CACHE  cache directory (default ~/.cache/dsync-docker)
#   DEBIAN_MIRROR       default http://deb.debian.org/debian
#   PULL_TIMEOUT        seconds for each `docker pull` attempt (default 60)
#   REDIS_VIA           auto (default) | build | debootstrap: how to make redis:7
set -euo pipefail

CACHE="${DSYNC_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dsync-docker}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"
REDIS_VIA="${REDIS_VIA:-auto}"
DEBIAN_IMAGE="debian:bookworm-slim"
REDIS_IMAGE="redis:7"

log() { echo "[docker_base_images] $*"; }
die() { echo "[docker_base_images] ERROR: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

docker info >/dev/null 2>&1 || die "no Docker engine (docker info failed)"
mkdir -p "$CACHE"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
  log "$1: trying docker pull (timeout ${PULL_TIMEOUT}s)"
  if timeout "$PULL_TIMEOUT" docker pull -q "$1" >/dev/null 2>&1; then
    log "$1: pulled from the registry"
    return 0
  fi
  log "$1: docker pull failed (no registry reachable)"
  return 1
}

# cache file name of an image: debian:bookworm-slim -> debian_bookworm-slim.tar
cache_file() { echo "$CACHE/$(echo "$1" | tr ':/' '__').tar"; }

try_load() {
  local f
  f="$(cache_file "$1")"
  [ -s "$f" ] || return 1
  log "$1: loading the cached copy $f"
  docker load -q -i "$f" >/dev/null && have_image "$1"
}

save_to_cache() {
  local f
  f="$(cache_file "$1")"
  docker save -o "$f.tmp" "$1" && mv "$f.tmp" "$f"
  log "$1: saved to the cache ($f, $(du -h "$f" | cut -f1))"
}

ensure_debootstrap() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt-get)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
}

# Makes a debootstrapped root look like the official slim image: no docs,
# man pages or locales (dpkg excludes them from now on too), apt keeps no
# package lists or .debs, full bookworm sources (updates, security).
slim_root() {
  local root="$1"
  $SUDO mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
  $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'EOF'
# as in the official debian:*-slim images
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
  $SUDO tee "$root/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  $SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  $SUDO find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  $SUDO rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"* \
    "$root/usr/share/lintian/"* "$root/usr/share/linda/"*
  $SUDO find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  $SUDO rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/tmp/"* "$root/root/.bash_history"
  # Docker provides these at run time.
  $SUDO rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  $SUDO truncate -s 0 "$root/etc/machine-id" 2>/dev/null || true
}

debootstrap_root() { # <dir> [extra debootstrap args...]
  local dir="$1"
  shift
  ensure_debootstrap
  $SUDO rm -rf "$dir"
  log "debootstrap --variant=minbase${*:+ $*} bookworm $dir $MIRROR (takes a few minutes)"
  if ! $SUDO debootstrap --variant=minbase "$@" bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1; then
    tail -n 30 "$dir.log" >&2
    die "debootstrap failed (full log: $dir.log)"
  fi
}

build_debian() {
  local dir="$CACHE/rootfs-bookworm"
  debootstrap_root "$dir"
  slim_root "$dir"
  log "$DEBIAN_IMAGE: docker import"
  $SUDO tar --numeric-owner -C "$dir" -c . |
    docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -m "debootstrap --variant=minbase bookworm $MIRROR (scripts/docker_base_images.sh)" - "$DEBIAN_IMAGE" >/dev/null
  $SUDO rm -rf "$dir" "$dir.log"
  log "$DEBIAN_IMAGE: built locally with debootstrap"
}

# The official redis image's entrypoint in short: a bare `redis-server` (no
# config file) runs with protected mode off, as the redis user, in /data.
# shellcheck disable=SC2016 # a script to write out, not to expand here
REDIS_ENTRYPOINT='#!/bin/sh
set -e
# first arg is an option or a config file: run redis-server with it
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
  case "${2:-}" in
    *.conf) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  if [ "$(id -u)" = "0" ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
'

build_containers_reach_mirror() {
  local host
  host="$(echo "$MIRROR" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')"
  timeout 30 docker run --rm "$DEBIAN_IMAGE" bash -c "exec 3<>/dev/tcp/$host/80" >/dev/null 2>&1
}

build_redis_with_docker_build() {
  local ctx
  ctx="$(mktemp -d)"
  printf '%s' "$REDIS_ENTRYPOINT" >"$ctx/docker-entrypoint.sh"
  cat >"$ctx/Dockerfile" <<EOF
# Stand-in for the official redis:7 image, built by scripts/docker_base_images.sh
FROM $DEBIAN_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
  log "$REDIS_IMAGE: docker build (Debian's redis-server FROM $DEBIAN_IMAGE)"
  if ! DOCKER_BUILDKIT=0 docker build -q -t "$REDIS_IMAGE" "$ctx" >"$ctx.log" 2>&1; then
    tail -n 30 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    return 1
  fi
  rm -rf "$ctx" "$ctx.log"
  log "$REDIS_IMAGE: built locally (docker build, apt-get install redis-server)"
}

build_redis_with_debootstrap() {
  local dir="$CACHE/rootfs-bookworm-redis"
  debootstrap_root "$dir" --include=redis-server
  slim_root "$dir"
  printf '%s' "$REDIS_ENTRYPOINT" | $SUDO tee "$dir/usr/local/bin/docker-entrypoint.sh" >/dev/null
  $SUDO chmod 755 "$dir/usr/local/bin/docker-entrypoint.sh"
  $SUDO mkdir -p "$dir/data"
  $SUDO chroot "$dir" chown redis:redis /data
  log "$REDIS_IMAGE: docker import"
  $SUDO tar --numeric-owner -C "$dir" -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'VOLUME /data' --change 'WORKDIR /data' --change 'EXPOSE 6379' \
      --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["redis-server"]' \
      -m "debootstrap --include=redis-server bookworm (scripts/docker_base_images.sh)" - "$REDIS_IMAGE" >/dev/null
  $SUDO rm -rf "$dir" "$dir.log"
  log "$REDIS_IMAGE: built locally with debootstrap --include=redis-server"
}

# --- debian:bookworm-slim
if have_image "$DEBIAN_IMAGE"; then
  log "$DEBIAN_IMAGE: present, nothing to do"
elif try_pull "$DEBIAN_IMAGE"; then
  :
elif try_load "$DEBIAN_IMAGE"; then
  log "$DEBIAN_IMAGE: loaded from the cache"
else
  start=$SECONDS
  build_debian
  save_to_cache "$DEBIAN_IMAGE"
  log "$DEBIAN_IMAGE: done in $((SECONDS - start))s"
fi

# --- redis:7
if have_image "$REDIS_IMAGE"; then
  log "$REDIS_IMAGE: present, nothing to do"
elif try_pull "$REDIS_IMAGE"; then
  :
elif try_load "$REDIS_IMAGE"; then
  log "$REDIS_IMAGE: loaded from the cache"
else
  start=$SECONDS
  case "$REDIS_VIA" in
    build) build_redis_with_docker_build || die "docker build of $REDIS_IMAGE failed" ;;
    debootstrap) build_redis_with_debootstrap ;;
    auto)
      if build_containers_reach_mirror; then
        build_redis_with_docker_build || {
          log "$REDIS_IMAGE: docker build failed; falling back to debootstrap"
          build_redis_with_debootstrap
        }
      else
        log "$REDIS_IMAGE: build containers cannot reach $MIRROR; using debootstrap instead"
        build_redis_with_debootstrap
      fi
      ;;
    *) die "REDIS_VIA must be auto, build or debootstrap" ;;
  esac
  save_to_cache "$REDIS_IMAGE"
  log "$REDIS_IMAGE: done in $((SECONDS - start))s"
fi

log "base images ready: $DEBIAN_IMAGE $(docker image inspect -f '{{.Id}}' "$DEBIAN_IMAGE" | cut -c8-19), $REDIS_IMAGE $(docker image inspect -f '{{.Id}}' "$REDIS_IMAGE" | cut -c8-19)"
