"""Output of QC results: nodal displacements as VTX (ParaView) and atoms as extended XYZ (OVITO).

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

__all__ = ["QCVTXWriter", "to_dolfinx", "write_extxyz", "write_vtx"]


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


def write_extxyz(path, positions_n3, *, cell, pbc, arrays=None, info=None, symbols="X",
                 append=False, origin=None) -> None:
    """Write one frame of atoms as extended XYZ (ASE), readable by OVITO.

    The extended XYZ format (ASE's reader and writer) has no cell origin: the cell spans
    ``origin + s @ cell`` with ``origin = 0``. Positions given in a frame whose cell corner is
    elsewhere (e.g. centred on a crack tip) are therefore written shifted, ``x - origin``, so
    that they lie inside the cell, and ``origin`` is stored in the frame's info (key
    ``frame_origin``, three floats, Å): add it back to get the positions in the original frame.
    Along a non-periodic axis every written atom must lie inside the cell.

    Args:
        path: output file.
        positions_n3: (n, 3) positions (Å).
        cell: (3, 3) cell vectors as rows (Å).
        pbc: three booleans.
        arrays: per-atom arrays, each (n,) or (n, k) (e.g. displacements, energies, masks).
        info: per-frame scalars/strings (e.g. step, time, load).
        symbols: chemical symbol(s), a string for all atoms or a list of n; ``"X"`` (ASE's
            and OVITO's dummy species) when the potential names no element.
        append: add a frame to an existing file instead of overwriting it.
        origin: (3,) corner of the cell in the frame of ``positions_n3`` (Å); default 0.
    """
    import ase
    import ase.io

    R = np.asarray(positions_n3, float)
    if R.ndim != 2 or R.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {R.shape}")
    if not np.isfinite(R).all():
        bad = int(np.flatnonzero(~np.isfinite(R).all(axis=1))[0])
        raise InputError(f"position of atom {bad} is not finite ({R[bad].tolist()})")
    n = len(R)
    C = np.asarray(cell, float)
    if C.shape != (3, 3) or not np.isfinite(C).all() or abs(np.linalg.det(C)) < 1e-12:
        raise InputError(f"cell must be three finite, independent vectors (3, 3), got {C!r}")
    pbc = tuple(bool(p) for p in pbc)
    o = np.zeros(3) if origin is None else np.asarray(origin, float).reshape(-1)
    if o.shape != (3,) or not np.isfinite(o).all():
        raise InputError(f"origin must be three finite numbers (Å), got {origin!r}")
    R = R - o
    frac = R @ np.linalg.inv(C)
    for k in range(3):
        out = np.flatnonzero((frac[:, k] < -1e-9) | (frac[:, k] > 1 + 1e-9))
        if not pbc[k] and len(out):
            i = int(out[0])
            raise InputError(
                f"atom {i} at {(R[i] + o).tolist()} lies outside the cell along the "
                f"non-periodic axis {k} ({len(out)} atoms do): give the cell's corner as "
                f"origin= or enlarge the cell")
    if isinstance(symbols, str):
        symbols = [symbols] * n
    atoms = ase.Atoms(symbols=symbols, positions=R, cell=C, pbc=pbc)
    for key, val in (arrays or {}).items():
        v = np.asarray(val)
        if v.shape[:1] != (n,):
            raise InputError(f"per-atom array {key!r} must have {n} rows, got shape {v.shape}")
        if v.dtype == bool:
            v = v.astype(np.int8)
        atoms.arrays[key] = v
    atoms.info.update(info or {})
    if origin is not None:
        atoms.info["frame_origin"] = o
    ase.io.write(str(path), atoms, format="extxyz", append=append)
