"""ParaView output of a :class:`fe2.solver.Problem`: displacement and cell-averaged stress fields.

Two ADIOS2 (VTX, ``.bp``) files, since VTX wants one element per file:

* ``<stem>_displacement.bp``, per node: ``displacement`` (Å) in its own Lagrange space;
* ``<stem>_cells.bp``, per cell (DG0): cell averages (quadrature-weighted, over the Gauss
  points of each cell) of the first Piola-Kirchhoff stress ``P_GPa`` (GPa), the von Mises
  stress of the Cauchy stress ``von_mises_GPa`` (GPa) and ``det_F``, plus any extra per-cell
  scalars the caller names (``cell_fields``, set with :meth:`ResultWriter.set_cell_field`).

Stresses are converted from eV/Å³ (inside the code) to GPa here, at the user boundary, and the
field names say so. In 2D (plane strain) the von Mises stress uses the in-plane Cauchy stress
with sigma_33 = 0, since a 2D material point does not return the out-of-plane stress.
The fields come from the last material evaluation (after ``solve`` that is the
converged state), so no extra material call is made.
"""

from __future__ import annotations

from pathlib import Path

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import numpy as np  # noqa: E402
from dolfinx import fem  # noqa: E402
from dolfinx.io import VTXWriter  # noqa: E402
from mpi4py import MPI  # noqa: E402

from fe2qc.tensors import cauchy_stress  # noqa: E402
from fe2qc.units import EV_PER_A3_IN_GPA  # noqa: E402

__all__ = ["ResultWriter", "von_mises_cauchy"]


def von_mises_cauchy(F_qij: np.ndarray, P_qij: np.ndarray) -> np.ndarray:
    """Von Mises stress of sigma = P F^T / det F at each point (in-plane sigma in 2D)."""
    sigma = cauchy_stress(F_qij, P_qij)
    d = sigma.shape[-1]
    s3 = np.zeros((len(sigma), 3, 3))
    s3[:, :d, :d] = sigma
    dev = s3 - np.einsum("qii->q", s3)[:, None, None] / 3.0 * np.eye(3)
    return np.sqrt(1.5 * np.einsum("qij,qij->q", dev, dev))


class ResultWriter:
    """Write a problem's state at chosen times; use as a context manager or call :meth:`close`.

    Attributes ``P``, ``von_mises`` (both in GPa) and ``det_F`` are the DG0 functions written to
    ``<stem>_cells.bp``; ``cell_fields[name]`` the extra per-cell scalars.
    """

    def __init__(self, problem, stem: str | Path, cell_fields=()):
        self.problem = problem
        mesh = problem.mesh
        d = problem.dim
        stem = str(stem)
        T0 = fem.functionspace(mesh, ("DG", 0, (d, d)))
        S0 = fem.functionspace(mesh, ("DG", 0))
        self.P = fem.Function(T0, name="P_GPa")
        self.von_mises = fem.Function(S0, name="von_mises_GPa")
        self.det_F = fem.Function(S0, name="det_F")
        self.cell_fields = {name: fem.Function(S0, name=name) for name in cell_fields}
        n = problem.layout.num_owned_cells
        self._cell_dofs = np.asarray(S0.dofmap.list[:n, 0])
        self.displacement_path = f"{stem}_displacement.bp"
        self.cells_path = f"{stem}_cells.bp"
        self._u_writer = VTXWriter(mesh.comm, self.displacement_path, [problem.u], "BP4")
        self._f_writer = VTXWriter(
            mesh.comm, self.cells_path,
            [self.P, self.von_mises, self.det_F, *self.cell_fields.values()], "BP4")

    def set_cell_field(self, name: str, values) -> None:
        """Set the extra per-cell scalar ``name`` from one value per owned cell."""
        f = self.cell_fields[name]
        f.x.array[self._cell_dofs] = np.asarray(values, dtype=float)
        f.x.scatter_forward()

    def _update(self) -> None:
        pb = self.problem
        F_qij = pb.deformation_gradients()
        P_qij = pb.P_qij
        stale = P_qij is None or pb.F_qij is None or not np.array_equal(F_qij, pb.F_qij)
        if pb.comm.allreduce(stale, op=MPI.LOR):
            # u changed since the last material call (e.g. before any solve): evaluate once,
            # on every rank, since a dispatcher's evaluate may be collective
            P_qij, _ = pb.material.evaluate(F_qij)
        d = pb.dim
        layout = pb.layout
        dofs = self._cell_dofs
        gpa = EV_PER_A3_IN_GPA  # eV/Å³ inside, GPa in the file
        self.P.x.array.reshape(-1, d * d)[dofs] = (
            gpa * layout.cell_average(P_qij).reshape(-1, d * d))
        self.von_mises.x.array[dofs] = gpa * layout.cell_average(von_mises_cauchy(F_qij, P_qij))
        self.det_F.x.array[dofs] = layout.cell_average(np.linalg.det(F_qij))
        for f in (self.P, self.von_mises, self.det_F):
            f.x.scatter_forward()

    def write(self, t: float) -> None:
        """Write u and the cell fields at time/load factor ``t`` (collective).

        Set the extra ``cell_fields`` first (:meth:`set_cell_field`).
        """
        self._update()
        self._u_writer.write(float(t))
        self._f_writer.write(float(t))

    def close(self) -> None:
        """Close both VTX files (collective)."""
        self._u_writer.close()
        self._f_writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
