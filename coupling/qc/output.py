"""Output of QC results: nodal displacements as VTX (ParaView).

Atoms are written as extended XYZ (OVITO) by :func:`atomistic.extxyz.write_extxyz`.

:class:`QCVTXWriter` turns a :class:`coupling.qc.mesh.QCMesh` into a DOLFINx mesh (on
``MPI.COMM_SELF`` by default, since QC runs serially) and writes a P1 vector function
``displacement`` with any number of components (3 for an fcc slab on its 2D projection)
at successive times to an ADIOS2 ``.bp`` folder. DOLFINx reorders the nodes; the writer
maps QC node values to DOLFINx dofs through the geometry's input indices. The conversion
(:func:`coupling.qc.continuum.to_dolfinx`, :func:`coupling.qc.continuum.node_of_dof`) is the
DOLFINx continuum's.
"""

from __future__ import annotations

from pathlib import Path

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import numpy as np  # noqa: E402
from dolfinx import fem  # noqa: E402
from dolfinx.io import VTXWriter  # noqa: E402

from coupling.qc.continuum import node_of_dof, to_dolfinx  # noqa: E402
from fe2qc.errors import InputError  # noqa: E402

__all__ = ["QCVTXWriter", "to_dolfinx", "write_vtx"]


class QCVTXWriter:
    """Write QC nodal vectors (m, ncomp) as a P1 function ``name`` to a VTX ``.bp`` folder.

    Use as a context manager or call :meth:`close`. ``function`` is the DOLFINx function
    holding the last written values.
    """

    def __init__(self, path, mesh, *, ncomp=None, comm=None, name="displacement",
                 engine="BP4"):
        self.qc_mesh = mesh
        self.ncomp = mesh.dim if ncomp is None else int(ncomp)
        if self.ncomp < 1:
            raise InputError(f"ncomp must be >= 1, got {ncomp!r}")
        self.dolfinx_mesh, node_of_geom = to_dolfinx(mesh, comm)
        dm = self.dolfinx_mesh
        V = fem.functionspace(dm, ("Lagrange", 1, (self.ncomp,)))
        self.function = fem.Function(V, name=name)
        self._node_of_dof = node_of_dof(V, node_of_geom)
        path = Path(path)
        if path.suffix != ".bp":
            path = path.with_suffix(".bp")
        self.path = path
        self._writer = VTXWriter(dm.comm, str(path), [self.function], engine)

    def set_values(self, U_m_by_c) -> None:
        """Set :attr:`function` from the nodal values U (m, ncomp) without writing them."""
        U = np.asarray(U_m_by_c, float)
        if U.ndim == 1 and self.ncomp == 1:
            U = U[:, None]
        m = self.qc_mesh.n_nodes
        if U.shape != (m, self.ncomp):
            raise InputError(f"nodal values must have shape ({m}, {self.ncomp}), got {U.shape}")
        self.function.x.array[:] = U[self._node_of_dof].ravel()

    def write(self, t, U_m_by_c) -> None:
        """Write the nodal values U (m, ncomp) at time t."""
        self.set_values(U_m_by_c)
        self._writer.write(float(t))

    def close(self) -> None:
        """Close the VTX file (collective); closing again does nothing."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_vtx(path, mesh, U_m_by_c, t=0.0, comm=None, *, name="displacement") -> Path:
    """Write one (m, c) array at time t, or a sequence (T, m, c) at the times t (length T)."""
    U = np.asarray(U_m_by_c, float)
    if U.ndim == 2:
        U, times = U[None], [t]
    else:
        times = list(np.atleast_1d(t))
    if U.ndim != 3 or len(times) != len(U):
        raise InputError(f"give U as (m, c) with one time or (T, m, c) with T times; got "
                         f"U {np.shape(U_m_by_c)} and {len(times)} time(s)")
    with QCVTXWriter(path, mesh, ncomp=U.shape[2], comm=comm, name=name) as w:
        for ti, Ui in zip(times, U, strict=True):
            w.write(ti, Ui)
    return w.path
