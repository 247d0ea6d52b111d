# shellcheck shell=bash
# Sourced by docker/build_base.sh and docker/docker_test.sh: choose a container engine and make
# it usable on this machine, without editing anything under /etc.
#
#   docker, when `docker info` answers (a running Docker engine), else
#   podman, installed with apt-get when missing (with runc, uidmap, fuse-overlayfs, catatonit;
#   docker/build_base.sh adds mmdebstrap when it builds a stand-in base).
#
# podman here: crun (Debian's default runtime) fails on cgroups and setrlimit, so podman runs with
# `--runtime runc`, and with the ulimits of a private containers.conf ($CONTAINERS_CONF, under
# $DT_BUILD) that every podman command of these scripts reads; /etc/containers is left alone.
#
# Sets: ENGINE (array: the engine command with its global flags), ENGINE_NAME (docker|podman),
# DT_BUILD (scratch folder, default build/docker-test). Defines dt_say, dt_need_apt, dt_image_exists.

DT_BUILD=${DT_BUILD:-build/docker-test}
mkdir -p "$DT_BUILD"
DT_BUILD=$(cd "$DT_BUILD" && pwd)

dt_say() { printf '[docker-test] %s\n' "$*"; }

# Install Debian packages that are missing (asks apt-get only when one is missing).
dt_need_apt() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    dt_say "missing packages: ${missing[*]}, and no apt-get here: install them and rerun" >&2
    return 1
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  dt_say "installing with apt-get (machine set-up): ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

dt_image_exists() { "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1; }

if [ "${DOCKER_TEST_ENGINE:-}" != podman ] && command -v docker >/dev/null 2>&1 \
   && timeout 20 docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  ENGINE_NAME=docker
  [ -n "${DT_ENGINE_SAID:-}" ] || dt_say "engine: docker ($(docker --version))"
else
  if command -v docker >/dev/null 2>&1 && [ "${DOCKER_TEST_ENGINE:-}" != podman ] \
     && [ -z "${DT_ENGINE_SAID:-}" ]; then
    dt_say "docker client found but no Docker engine answers 'docker info': using podman"
  fi
  dt_need_apt podman runc uidmap fuse-overlayfs catatonit  # catatonit: `podman run --init`
  # podman's own settings for these scripts only: runc (crun fails here), and ulimits that the
  # container may set (podman's default raises nofile/nproc beyond what this sandbox allows).
  cat > "$DT_BUILD/containers.conf" <<'EOF'
# Written by docker/engine.sh for `make docker-test`; read through $CONTAINERS_CONF only.
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
  export CONTAINERS_CONF="$DT_BUILD/containers.conf"
  ENGINE=(podman --runtime "$(command -v runc)")
  ENGINE_NAME=podman
  [ -n "${DT_ENGINE_SAID:-}" ] \
    || dt_say "engine: $(podman --version), runtime runc, CONTAINERS_CONF=$CONTAINERS_CONF"
fi
export DT_ENGINE_SAID=1
