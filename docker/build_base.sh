#!/usr/bin/env bash
# Make the base image of docker/Dockerfile available in the local image store:
#   1. the official image ghcr.io/fenics/dolfinx/dolfinx:stable, if it is already there or can be
#      pulled; else
#   2. a STAND-IN tagged with the official name: a Debian trixie root filesystem made with
#      mmdebstrap (python3, venv, gcc and Python headers for DOLFINx's JIT, make, git), imported,
#      plus docker/standin-base.Containerfile (a venv at /dolfinx-env with the pip DOLFINx stack).
# A stand-in is reused while its recipe (this script and the Containerfile) is unchanged: its
# label org.fe2qc.standin holds the recipe's hash. The root filesystem is cached as its own image.
# Writes "official" or "stand-in" to $DT_BUILD/base-kind.
# Environment: DOCKER_TEST_PULL=0 skips the pull attempt; DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=docker/engine.sh
source docker/engine.sh

BASE=ghcr.io/fenics/dolfinx/dolfinx:stable
SUITE=trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates,make,bash,git,procps
RECIPE=$( { echo "$SUITE $PACKAGES"; cat docker/standin-base.Containerfile; } | sha256sum | cut -c1-16)
ROOTFS=localhost/fe2qc-standin-rootfs:$SUITE-$(echo "$PACKAGES" | sha256sum | cut -c1-12)

label() {
  "${ENGINE[@]}" image inspect --format '{{ index .Config.Labels "org.fe2qc.standin" }}' "$1" \
    2>/dev/null || true
}

stand_in_banner() {
  cat <<EOF
[docker-test] ======================================================================
[docker-test] BASE IMAGE IS A STAND-IN, not the official $BASE
[docker-test] (the official image cannot be pulled here: no container registry).
[docker-test] It is Debian $SUITE (mmdebstrap) with a venv at /dolfinx-env holding the pip
[docker-test] DOLFINx stack (dolfinx-solver-real: DOLFINx, PETSc, MPICH, mpi4py), tagged
[docker-test] with the official name. Building on it checks docker/Dockerfile and our code in
[docker-test] a container, NOT the official image's own MPI/PETSc build.
[docker-test] ======================================================================
EOF
}

if dt_image_exists "$BASE"; then
  have=$(label "$BASE")
  if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
    dt_say "base: the official $BASE, found in the local image store"
    echo official > "$DT_BUILD/base-kind"; exit 0
  elif [ "$have" = "$RECIPE" ]; then
    stand_in_banner
    dt_say "base: reusing the stand-in $BASE already built (recipe $RECIPE)"
    echo stand-in > "$DT_BUILD/base-kind"; exit 0
  fi
  dt_say "base: the stand-in's recipe changed ($have -> $RECIPE): rebuilding it"
elif [ "${DOCKER_TEST_PULL:-1}" != 0 ]; then
  dt_say "base: trying to pull $BASE (60 s at most)"
  if timeout 60 "${ENGINE[@]}" pull "$BASE" >"$DT_BUILD/pull.log" 2>&1; then
    dt_say "base: pulled the official $BASE"
    echo official > "$DT_BUILD/base-kind"; exit 0
  fi
  dt_say "base: cannot pull $BASE ($(tail -n 1 "$DT_BUILD/pull.log" | cut -c1-120))"
fi

stand_in_banner
t0=$SECONDS
if ! dt_image_exists "$ROOTFS"; then
  dt_need_apt mmdebstrap
  tmp=$(mktemp -d "$DT_BUILD/rootfs.XXXXXX")
  dt_say "stand-in: mmdebstrap $SUITE minbase ($PACKAGES) from $MIRROR"
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp/rootfs.tar" "$MIRROR"
  "${ENGINE[@]}" import --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$ROOTFS" >/dev/null
  rm -rf "$tmp"
  dt_say "stand-in: root filesystem imported as $ROOTFS ($((SECONDS - t0)) s)"
else
  dt_say "stand-in: reusing the root filesystem image $ROOTFS"
fi

ctx=$(mktemp -d "$DT_BUILD/base-context.XXXXXX")
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/host-ca.crt"
dt_say "stand-in: building the /dolfinx-env layer (pip install dolfinx-solver-real)"
"${ENGINE[@]}" build --network=host --build-arg ROOTFS="$ROOTFS" \
  --label org.fe2qc.standin="$RECIPE" -t "$BASE" -f docker/standin-base.Containerfile "$ctx"
rm -rf "$ctx"
echo stand-in > "$DT_BUILD/base-kind"
dt_say "stand-in: $BASE built in $((SECONDS - t0)) s (recipe $RECIPE)"
