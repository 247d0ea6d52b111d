"""Quadrature-point bookkeeping for DOLFINx: spaces, owned points, their names and coordinates.

A material point (an analytic law or an atomistic RVE) lives at each Gauss
point of each cell. Only the cells a rank *owns* are evaluated: cell integrals
assemble owned cells only, so evaluating ghost cells would compute boundary
RVEs twice. Values are written into the owned part of a quadrature-element
``Function`` and ghosts are filled by ``scatter_forward``.

The quadrature spaces use ``basix.ufl.quadrature_element`` with the same
degree and scheme as the measure returned by :meth:`QuadratureLayout.measure`,
so the form compiler integrates at exactly these points.
"""

from __future__ import annotations

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import basix  # noqa: E402
import basix.ufl  # noqa: E402
import numpy as np  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem  # noqa: E402

from fe2qc.errors import InputError  # noqa: E402

__all__ = ["QuadratureLayout"]

SCHEME = "default"


class QuadratureLayout:
    """Gauss points of one mesh at one quadrature degree, restricted to owned cells.

    Attributes:
        mesh: the DOLFINx mesh.
        degree: the quadrature degree ``q``.
        points_X: reference-cell points (npts, tdim), in quadrature-element order.
        weights: reference-cell weights (npts,).
        owned_cells: local indices of owned cells, ``range(num_owned_cells)``.
        points_per_cell: ``npts``.
    """

    def __init__(self, mesh, degree: int):
        if int(degree) != degree or degree < 0:
            raise InputError(f"quadrature degree must be a non-negative integer, got {degree!r}")
        self.mesh = mesh
        self.degree = int(degree)
        tdim = mesh.topology.dim
        self._cell = mesh.basix_cell()
        imap = mesh.topology.index_map(tdim)
        self.num_owned_cells = imap.size_local
        self.num_global_cells = imap.size_global
        self.owned_cells = np.arange(self.num_owned_cells, dtype=np.int32)
        self._scalar_space = self.space(())
        self.points_X = np.asarray(self._scalar_space.element.interpolation_points)
        X, w = basix.make_quadrature(self._cell, self.degree, basix.QuadratureType.default)
        if X.shape != self.points_X.shape or not np.allclose(X, self.points_X):
            raise RuntimeError("basix quadrature points differ from the quadrature element's")
        self.weights = np.asarray(w)
        self.points_per_cell = len(self.weights)
        self._cell_start = imap.local_range[0]
        self._x_expr = fem.Expression(ufl.SpatialCoordinate(mesh), self.points_X)

    # -- spaces and measures ------------------------------------------------------------------
    def space(self, value_shape: tuple[int, ...]):
        """A quadrature function space with values of shape ``value_shape`` at each point."""
        Qe = basix.ufl.quadrature_element(
            self._cell, value_shape=tuple(value_shape), scheme=SCHEME, degree=self.degree
        )
        return fem.functionspace(self.mesh, Qe)

    def measure(self):
        """``dx`` with this layout's quadrature degree and scheme."""
        return ufl.Measure(
            "dx",
            domain=self.mesh,
            metadata={"quadrature_degree": self.degree, "quadrature_scheme": SCHEME},
        )

    # -- owned points ---------------------------------------------------------------------------
    @property
    def num_owned_points(self) -> int:
        """Number of quadrature points in the cells this rank owns."""
        return self.num_owned_cells * self.points_per_cell

    @property
    def num_global_points(self) -> int:
        """Number of quadrature points in the whole mesh, over all ranks."""
        return self.num_global_cells * self.points_per_cell

    def point_ids(self) -> np.ndarray:
        """(nq_owned, 2) int64: (global cell index, local point index) of each owned point.

        The global cell index is DOLFINx's distributed numbering (the owned range of the
        cell index map); :meth:`original_point_ids` gives an input-mesh numbering that does
        not depend on the number of ranks.
        """
        cells = self._cell_start + self.owned_cells.astype(np.int64)
        cells = np.repeat(cells, self.points_per_cell)
        pts = np.tile(np.arange(self.points_per_cell, dtype=np.int64), self.num_owned_cells)
        return np.stack([cells, pts], axis=1)

    def original_point_ids(self) -> np.ndarray:
        """(nq_owned, 2) int64: (original input cell index, local point index)."""
        orig = np.asarray(self.mesh.topology.original_cell_index)[: self.num_owned_cells]
        cells = np.repeat(orig.astype(np.int64), self.points_per_cell)
        pts = np.tile(np.arange(self.points_per_cell, dtype=np.int64), self.num_owned_cells)
        return np.stack([cells, pts], axis=1)

    def point_coordinates(self) -> np.ndarray:
        """(nq_owned, gdim) reference-configuration coordinates of the owned points."""
        x = self._x_expr.eval(self.mesh, self.owned_cells)
        return np.ascontiguousarray(x.reshape(self.num_owned_points, -1))

    def owned_dofs(self, V) -> np.ndarray:
        """Local dof (block) indices of ``V``'s owned-cell points, flattened in point order."""
        return np.asarray(V.dofmap.list[: self.num_owned_cells]).reshape(-1)

    def write_owned(self, fun, values_q: np.ndarray) -> None:
        """Write (nq_owned, *value_shape) values into ``fun``'s owned points, then update ghosts."""
        dofs = self.owned_dofs(fun.function_space)
        bs = fun.function_space.dofmap.bs
        fun.x.array.reshape(-1, bs)[dofs] = np.reshape(values_q, (len(dofs), bs))
        fun.x.scatter_forward()

    def cell_average(self, values_q: np.ndarray) -> np.ndarray:
        """Quadrature-weighted average over each owned cell (exact for affine cells)."""
        v = np.reshape(values_q, (self.num_owned_cells, self.points_per_cell, -1))
        avg = np.einsum("p,cpk->ck", self.weights, v) / self.weights.sum()
        return avg.reshape((self.num_owned_cells,) + np.shape(values_q)[1:])
