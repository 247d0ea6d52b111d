"""The QC mesh: a P1 simplex mesh whose nodes are a subset of the lattice sites.

Every node sits exactly on a lattice site (``node_site_m``). :class:`QCMesh` holds the
mesh and its element shapes: the measures and the P1 shape-function gradients of its
simplices, computed once per mesh. The other jobs live next to it:
:mod:`coupling.qc.mesh_build` builds meshes (a 1D chain, a gmsh-coarsened 2D mesh with an
optional crack slit), :mod:`coupling.qc.mesh_check` validates user meshes and
:mod:`coupling.qc.locate` finds points in the mesh and interpolates.

The class is dimension-generic: in 2D ``points_md`` is (m, 2) and ``cells_kv``
(k, 3); in 1D (a chain of sites on the x axis) they are (m, 1) and (k, 2) (``d`` is the
dimension, ``v = d + 1`` the vertices of a simplex).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from fe2qc.errors import InputError

__all__ = ["QCMesh", "as_sites", "site_tree"]


def as_sites(X_s2) -> np.ndarray:
    """Site coordinates as a finite (n, d) float array, d = 2 (or 1 for a chain)."""
    X = np.asarray(X_s2, float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] not in (1, 2) or not np.all(np.isfinite(X)):
        raise InputError(f"sites must be a finite (n, 2) (or (n, 1)) array, got shape {X.shape}")
    return X


def site_tree(X_s2: np.ndarray) -> cKDTree:
    """The KD-tree of a site set, built once per QC system and shared by its users.

    Large site sets: unbalanced trees build 2-3x faster and query as fast.
    """
    return cKDTree(X_s2, balanced_tree=False, compact_nodes=False)


@dataclass(eq=False)
class QCMesh:
    """A P1 simplex mesh whose nodes sit on lattice sites.

    Attributes:
        points_md: (m, d) node reference coordinates (d = 2; d = 1 for a chain).
        node_site_m: (m,) index of the lattice site each node sits on.
        cells_kv: (k, d+1) node indices of each simplex, positively oriented.
        n_sites: number of lattice sites (length of :attr:`node_of_site`).
        info: counts and timings from the builder.
    """

    points_md: np.ndarray
    node_site_m: np.ndarray
    cells_kv: np.ndarray
    n_sites: int
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.points_md = np.ascontiguousarray(self.points_md, dtype=float)
        if self.points_md.ndim == 1:
            self.points_md = self.points_md[:, None]
        self.node_site_m = np.ascontiguousarray(self.node_site_m, dtype=np.int64)
        self.cells_kv = np.ascontiguousarray(self.cells_kv, dtype=np.int64)
        m, d = self.points_md.shape
        if d not in (1, 2) or self.cells_kv.ndim != 2 or self.cells_kv.shape[1] != d + 1:
            raise InputError(f"QCMesh needs points (m, d) with d in (1, 2) and cells (k, d+1); "
                             f"got points {self.points_md.shape}, cells {self.cells_kv.shape}")
        if self.node_site_m.shape != (m,):
            raise InputError(f"node_site_m must have shape ({m},), got {self.node_site_m.shape}")
        if len(self.cells_kv) and (self.cells_kv.min() < 0 or self.cells_kv.max() >= m):
            raise InputError("cells refer to nodes outside 0..m-1")

    # ---- sizes -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension d of the mesh (2, or 1 for a chain)."""
        return self.points_md.shape[1]

    @property
    def n_nodes(self) -> int:
        """Number of nodes m."""
        return len(self.points_md)

    @property
    def n_cells(self) -> int:
        """Number of cells k."""
        return len(self.cells_kv)

    # ---- element shapes (the one P1 geometry of the QC code) ---------------------------------
    @cached_property
    def _edges_kdd(self) -> np.ndarray:
        """(k, d, d) edge vectors of each simplex from its first node (rows)."""
        P = self.points_md[self.cells_kv]  # (k, d+1, d)
        return P[:, 1:] - P[:, :1]

    @cached_property
    def jac_kdd(self) -> np.ndarray:
        """(k, d, d) Jacobian of the map from the reference simplex (columns = edges)."""
        return np.swapaxes(self._edges_kdd, 1, 2)

    @cached_property
    def signed_volumes_k(self) -> np.ndarray:
        """Signed measure of each cell (area in 2D, length in 1D).

        Positive where the cell is positively oriented.
        """
        return np.linalg.det(self._edges_kdd) / (1.0 if self.dim == 1 else 2.0)

    @cached_property
    def volumes_k(self) -> np.ndarray:
        """Measure of each cell (area in 2D, length in 1D)."""
        return np.abs(self.signed_volumes_k)

    @cached_property
    def grad_kvd(self) -> np.ndarray:
        """Reference-coordinate gradients of the d+1 P1 shape functions per cell, (k, d+1, d).

        The gradients of barycentric coordinates 1..d are the columns of the inverse edge
        matrix; that of coordinate 0 is minus their sum.
        """
        d = self.dim
        inv = np.linalg.inv(self._edges_kdd)
        G = np.empty((self.n_cells, d + 1, d))
        G[:, 1:, :] = inv.transpose(0, 2, 1)
        G[:, 0, :] = -G[:, 1:, :].sum(axis=1)
        return G

    def check_nondegenerate(self, tol: float = 1e-14) -> None:
        """Raise :class:`InputError` if a cell is degenerate.

        Degenerate: its edge-matrix determinant (its measure times d!) is below ``tol`` in
        magnitude.
        """
        det = np.abs(self.signed_volumes_k) * (1.0 if self.dim == 1 else 2.0)
        if np.any(det < tol):
            bad = int(np.argmin(det))
            raise InputError(f"mesh cell {bad} (nodes {self.cells_kv[bad].tolist()}) is "
                             "degenerate")

    @cached_property
    def node_of_site(self) -> np.ndarray:
        """(n_sites,) node index of each site, -1 where the site is not a node."""
        out = np.full(self.n_sites, -1, dtype=np.int64)
        out[self.node_site_m] = np.arange(self.n_nodes)
        return out

    @cached_property
    def boundary_facets(self) -> np.ndarray:
        """(f, d) node indices of the facets that belong to exactly one cell."""
        d = self.dim
        if d == 1:
            ends = self.cells_kv.ravel()
            u, c = np.unique(ends, return_counts=True)
            return u[c == 1][:, None]
        C = self.cells_kv
        E = np.sort(np.concatenate([C[:, [0, 1]], C[:, [1, 2]], C[:, [2, 0]]]), axis=1)
        u, c = np.unique(E, axis=0, return_counts=True)
        return u[c == 1]

    def boundary_nodes(self) -> np.ndarray:
        """Sorted indices of the nodes on boundary facets (outer boundary and crack faces)."""
        return np.unique(self.boundary_facets)
