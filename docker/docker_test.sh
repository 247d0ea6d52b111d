#!/usr/bin/env bash
# `make docker-test`: build docker/Dockerfile's image and run, inside it,
#   1. the CLI: `fe2qc --help`, `fe2qc elastic --potential Cu_u3.eam --lattice fcc --json`;
#   2. the MPI demo: `mpirun -n 2 python3 demos/fe2_crack.py --quick` (from a temporary folder,
#      so its results/ land outside the source tree);
#   3. `make test VENV=/dolfinx-env` (the image's venv, set up by the Dockerfile).
# The engine is docker where a Docker engine answers, else podman (docker/engine.sh installs and
# configures it); the base image is the official one or a stand-in (docker/build_base.sh).
# Everything printed goes to results/docker-test/docker-test.log under the working directory,
# each check's own output to results/docker-test/<check>.log; a summary ends the run.
# Exit status: 0 when every check passed.
#
# Environment:
#   DOCKER_TEST_TARGET  make arguments of check 3 (default "test"), e.g. "lint" or
#                       "test-serial" while developing; VENV=<image venv> is always added.
#   DOCKER_TEST_ENGINE  "podman" to use podman even where docker works.
#   DOCKER_TEST_PULL=0  do not try to pull the official base image.
#   DOCKER_TEST_IMAGE   the tag of the built image (default localhost/fe2qc:docker-test).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=$(mkdir -p results/docker-test && cd results/docker-test && pwd)
LOG=$OUT/docker-test.log
exec > >(tee "$LOG") 2>&1
TEE_PID=$!
trap 'exec >&- 2>&-; wait "$TEE_PID"' EXIT
T_START=$SECONDS

# shellcheck source=docker/engine.sh
source docker/engine.sh || { echo "[docker-test] no usable container engine"; exit 1; }
IMAGE=${DOCKER_TEST_IMAGE:-localhost/fe2qc:docker-test}
TARGET=${DOCKER_TEST_TARGET:-test}
dt_say "log: $LOG"
dt_say "source: $(pwd) ($(git describe --always --dirty 2>/dev/null || echo 'not a git checkout'))"

# -- base image --------------------------------------------------------------------------------
t0=$SECONDS
if ! bash docker/build_base.sh; then
  dt_say "FAILED: could not provide the base image (see above)"; exit 1
fi
T_BASE=$((SECONDS - t0))
BASE_KIND=$(cat "$DT_BUILD/base-kind")

# -- the project's image -----------------------------------------------------------------------
build_flags=(--network=host)
[ "$ENGINE_NAME" = podman ] && build_flags+=(--pull=never)
dt_say "building $IMAGE from docker/Dockerfile ($ENGINE_NAME build ${build_flags[*]})"
t0=$SECONDS
if ! "${ENGINE[@]}" build "${build_flags[@]}" -f docker/Dockerfile -t "$IMAGE" .; then
  dt_say "FAILED: $ENGINE_NAME build of docker/Dockerfile"; exit 1
fi
T_BUILD=$((SECONDS - t0))
dt_say "image built in $T_BUILD s"

# -- the checks --------------------------------------------------------------------------------
# No network inside (the suite must not need one); --init reaps the ranks the tests orphan.
RUN=("${ENGINE[@]}" run --rm --init --network=none --shm-size=1g "$IMAGE")
declare -A RESULT SECS
check() {  # check NAME COMMAND...: run COMMAND in a fresh container, output to $OUT/NAME.log
  local name=$1 t0=$SECONDS rc
  shift
  dt_say "---- check '$name': $*"
  "${RUN[@]}" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  SECS[$name]=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then RESULT[$name]=PASS; else RESULT[$name]="FAIL (exit $rc)"; fi
  dt_say "---- check '$name': ${RESULT[$name]} in ${SECS[$name]} s"
}

# The image's venv: where python3 lives (the official image's /dolfinx-env, or the stand-in's).
VENV_IN=$("${RUN[@]}" python3 -c "import sys; print(sys.prefix)" | tail -n 1)
dt_say "the image's Python environment: $VENV_IN"

check cli bash -c 'set -e; cd "$(mktemp -d)"; fe2qc --help > help.txt; head -n 3 help.txt; \
  fe2qc elastic --potential Cu_u3.eam --lattice fcc --json'
check mpi_demo bash -c 'set -e; cd "$(mktemp -d)"; \
  mpirun -n 2 python3 /opt/fe2qc/demos/fe2_crack.py --quick; \
  ls -l results/fe2_crack_quick; test -s results/fe2_crack_quick/summary.json'
# `git init`: the image has no .git, and the README-command tests copy the source files that
# `git ls-files --others --exclude-standard` lists (nothing is committed; this container is
# thrown away afterwards).
# make -k: the MPI pass runs (and is counted) even when the serial pass has a failure.
check make_test bash -c "git init -q && make -k $TARGET VENV=$VENV_IN"

# -- summary -----------------------------------------------------------------------------------
counts() {  # the pytest summary lines ("N passed, M skipped ... in T s") of a check's log, in order
  grep -Eo '[0-9]+ (passed|failed|errors?)(, [0-9]+ [a-z]+)* in [0-9.]+s' "$OUT/$1.log" \
    | awk '!seen[$0]++' | paste -sd '|' - | sed 's/|/ | /g'
}
cli_c=$(grep -Eo '"C11"[^,]*' "$OUT/cli.log" | head -n 1)
failed=0
for k in cli mpi_demo make_test; do [ "${RESULT[$k]}" = PASS ] || failed=1; done
cat <<EOF

[docker-test] ==================== summary ====================
[docker-test] engine:       $ENGINE_NAME ($("${ENGINE[0]}" --version))
[docker-test] base image:   $BASE_KIND ghcr.io/fenics/dolfinx/dolfinx:stable ($T_BASE s)
[docker-test] image build:  $T_BUILD s ($IMAGE)
[docker-test] 1 CLI:        ${RESULT[cli]} (${SECS[cli]} s) fe2qc --help; fe2qc elastic Cu_u3 fcc: ${cli_c:-no C11}
[docker-test] 2 MPI demo:   ${RESULT[mpi_demo]} (${SECS[mpi_demo]} s) mpirun -n 2 python3 demos/fe2_crack.py --quick
[docker-test] 3 make -k $TARGET VENV=$VENV_IN: ${RESULT[make_test]} (${SECS[make_test]} s)
[docker-test]     pytest (serial pass, then each MPI rank's): $(counts make_test)
[docker-test] total:        $((SECONDS - T_START)) s; full log $LOG
EOF
if [ "$BASE_KIND" = stand-in ]; then
  dt_say "NOTE: the base was a STAND-IN (Debian + pip DOLFINx), not the official image."
fi
[ "$failed" -eq 0 ] && dt_say "docker-test: PASSED" || dt_say "docker-test: FAILED"
exit "$failed"
