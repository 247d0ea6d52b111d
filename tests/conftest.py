"""Shared pytest hooks.

DOLFINx and PETSc destructors are collective, so after each test every rank
collects garbage and then meets the others at a barrier (as DOLFINx's own
``python/test/conftest.py`` does). MPI is never initialised here: the barrier
only runs when a test already loaded ``mpi4py.MPI`` and more than one rank runs.
"""

import gc
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
