"""fe2qc: concurrent FE² and quasicontinuum multiscale mechanics.

This small package holds what every layer shares: the MPI bootstrap
(:mod:`fe2qc.mpi`), error types (:mod:`fe2qc.errors`), units and Voigt
conventions (:mod:`fe2qc.units`) and the material-point protocol
(:mod:`fe2qc.material`). It imports nothing from ``fe2``, ``atomistic`` or
``coupling``; the command line (:mod:`coupling.cli`) sits on top of them all.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
