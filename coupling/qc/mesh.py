"""The QC mesh: a P1 simplex mesh whose nodes are a subset of the lattice sites.

Every node sits exactly on a lattice site (``node_site_m``). Near the atomistic
region every site is a node; away from it the mesh coarsens with a size field
``h(d) = min(max_size, spacing + growth * d)``, d the distance to the refined/unrefined
interface (a gmsh Distance field, evaluated in C++). :func:`build_mesh` generates
nodes with gmsh, snaps each to its nearest site, thins them, adds every refined site and
triangulates with :class:`scipy.spatial.Delaunay`. An optional straight crack along -x is cut as a
one-row-wide slit whose faces are free surfaces.

The class is dimension-generic: in 2D ``points_m2`` is (m, 2) and ``cells_k3``
(k, 3); in 1D (a chain of sites on the x axis, :func:`build_mesh_1d`) they are
(m, 1) and (k, 2). The field names are those of the 2D case.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.spatial import ConvexHull, Delaunay, cKDTree

from fe2qc.errors import InputError

__all__ = [
    "Box",
    "Crack",
    "Disc",
    "QCMesh",
    "build_mesh",
    "build_mesh_1d",
    "check_conforming",
    "check_nodes_on_sites",
    "interpolation_matrix",
]

_SHEAR = 1e-7  # x + _SHEAR*y before Delaunay: breaks square-lattice ties the same way everywhere


@dataclass(frozen=True)
class Disc:
    """A disc domain of centre (cx, cy) and radius R (Å)."""

    cx: float
    cy: float
    R: float

    def contains(self, X, tol=0.0):
        X = np.asarray(X, float)
        return np.hypot(X[:, 0] - self.cx, X[:, 1] - self.cy) <= self.R + tol


@dataclass(frozen=True)
class Box:
    """An axis-aligned box domain [xmin, xmax] x [ymin, ymax] (Å)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def contains(self, X, tol=0.0):
        X = np.asarray(X, float)
        return ((X[:, 0] >= self.xmin - tol) & (X[:, 0] <= self.xmax + tol)
                & (X[:, 1] >= self.ymin - tol) & (X[:, 1] <= self.ymax + tol))


@dataclass(frozen=True)
class Crack:
    """A straight crack along -x from ``tip_x`` on the line y = ``y_plane`` (between two rows)."""

    tip_x: float
    y_plane: float


def _as_domain(domain):
    if isinstance(domain, (Disc, Box)):
        return domain
    if isinstance(domain, (tuple, list)) and domain:
        kind, *args = domain
        if kind == "disc" and len(args) == 3:
            return Disc(*map(float, args))
        if kind == "box" and len(args) == 4:
            return Box(*map(float, args))
    raise InputError(
        f"domain must be Disc(cx, cy, R), Box(xmin, ymin, xmax, ymax), ('disc', cx, cy, R) or "
        f"('box', xmin, ymin, xmax, ymax); got {domain!r}")


@dataclass(eq=False)
class QCMesh:
    """A P1 simplex mesh whose nodes sit on lattice sites.

    Attributes:
        points_m2: (m, d) node reference coordinates (d = 2; d = 1 for a chain).
        node_site_m: (m,) index of the lattice site each node sits on.
        cells_k3: (k, d+1) node indices of each simplex, positively oriented.
        n_sites: number of lattice sites (length of :attr:`node_of_site`).
        info: counts and timings from the builder.
    """

    points_m2: np.ndarray
    node_site_m: np.ndarray
    cells_k3: np.ndarray
    n_sites: int
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.points_m2 = np.ascontiguousarray(self.points_m2, dtype=float)
        if self.points_m2.ndim == 1:
            self.points_m2 = self.points_m2[:, None]
        self.node_site_m = np.ascontiguousarray(self.node_site_m, dtype=np.int64)
        self.cells_k3 = np.ascontiguousarray(self.cells_k3, dtype=np.int64)
        m, d = self.points_m2.shape
        if d not in (1, 2) or self.cells_k3.ndim != 2 or self.cells_k3.shape[1] != d + 1:
            raise InputError(f"QCMesh needs points (m, d) with d in (1, 2) and cells (k, d+1); "
                             f"got points {self.points_m2.shape}, cells {self.cells_k3.shape}")
        if self.node_site_m.shape != (m,):
            raise InputError(f"node_site_m must have shape ({m},), got {self.node_site_m.shape}")
        if len(self.cells_k3) and (self.cells_k3.min() < 0 or self.cells_k3.max() >= m):
            raise InputError("cells refer to nodes outside 0..m-1")

    # ---- aliases -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.points_m2.shape[1]

    @property
    def points(self) -> np.ndarray:
        return self.points_m2

    @property
    def cells(self) -> np.ndarray:
        return self.cells_k3

    @property
    def num_nodes(self) -> int:
        return len(self.points_m2)

    @property
    def num_cells(self) -> int:
        return len(self.cells_k3)

    # ---- geometry ------------------------------------------------------------------------
    @cached_property
    def _jac_kdd(self) -> np.ndarray:
        P = self.points_m2[self.cells_k3]  # (k, d+1, d)
        return np.swapaxes(P[:, 1:] - P[:, :1], 1, 2)  # columns = edge vectors

    @cached_property
    def signed_areas_k(self) -> np.ndarray:
        """Signed measure of each cell (area in 2D, length in 1D)."""
        J = self._jac_kdd
        if self.dim == 1:
            return J[:, 0, 0].copy()
        return 0.5 * (J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0])

    @cached_property
    def areas_k(self) -> np.ndarray:
        """Measure of each cell (area in 2D, length in 1D)."""
        return np.abs(self.signed_areas_k)

    @cached_property
    def grad_shape_k32(self) -> np.ndarray:
        """Reference-coordinate gradients of the d+1 P1 shape functions per cell, (k, d+1, d)."""
        d = self.dim
        Jinv = np.linalg.inv(self._jac_kdd)  # (k, d, d): rows = grads of barycentrics 1..d
        G = np.empty((self.num_cells, d + 1, d))
        G[:, 1:] = Jinv
        G[:, 0] = -Jinv.sum(axis=1)
        return G

    @cached_property
    def node_of_site(self) -> np.ndarray:
        """(n_sites,) node index of each site, -1 where the site is not a node."""
        out = np.full(self.n_sites, -1, dtype=np.int64)
        out[self.node_site_m] = np.arange(self.num_nodes)
        return out

    @cached_property
    def boundary_facets(self) -> np.ndarray:
        """(f, d) node indices of the facets that belong to exactly one cell."""
        d = self.dim
        if d == 1:
            ends = self.cells_k3.ravel()
            u, c = np.unique(ends, return_counts=True)
            return u[c == 1][:, None]
        C = self.cells_k3
        E = np.sort(np.concatenate([C[:, [0, 1]], C[:, [1, 2]], C[:, [2, 0]]]), axis=1)
        u, c = np.unique(E, axis=0, return_counts=True)
        return u[c == 1]

    def boundary_nodes(self) -> np.ndarray:
        """Sorted indices of the nodes on boundary facets (outer boundary and crack faces)."""
        return np.unique(self.boundary_facets)

    # ---- construction from user arrays ---------------------------------------------------
    @classmethod
    def from_arrays(cls, points, cells, X_s2, *, required_mask_s=None, tol=1e-6) -> QCMesh:
        """A mesh from user node coordinates and cells; every node must lie on a site.

        Nodes are matched to their nearest site within ``tol`` (Å); cells are oriented
        positively. Raises :class:`InputError` (see :func:`check_nodes_on_sites`) if a node
        is off-site or a required site is not a node.
        """
        X = _sites(X_s2)
        P = np.asarray(points, float)
        if P.ndim == 1:
            P = P[:, None]
        if P.ndim != 2 or P.shape[1] != X.shape[1]:
            raise InputError(f"points must have shape (m, {X.shape[1]}) like the sites, "
                             f"got {P.shape}")
        dist, site = cKDTree(X).query(P)
        mesh = cls(P, site, np.asarray(cells, dtype=np.int64), len(X))
        check_nodes_on_sites(mesh, X, required_mask_s, tol=tol)
        if len(np.unique(site)) != len(site):
            raise InputError("two mesh nodes sit on the same lattice site; remove the duplicate")
        s = mesh.signed_areas_k
        scale = np.ptp(P, axis=0).max() if len(P) else 1.0
        if np.any(np.abs(s) <= 1e-14 * scale ** P.shape[1]):
            k = int(np.argmin(np.abs(s)))
            raise InputError(f"cell {k} ({mesh.cells_k3[k].tolist()}) is degenerate (zero "
                             f"measure); remove it from the mesh")
        neg = s < 0
        if np.any(neg):
            C = mesh.cells_k3.copy()
            C[neg, -2:] = C[neg, -2:][:, ::-1]
            mesh = cls(P, site, C, len(X))
        return mesh


def _sites(X_s2) -> np.ndarray:
    X = np.asarray(X_s2, float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] not in (1, 2) or not np.all(np.isfinite(X)):
        raise InputError(f"sites must be a finite (n, 2) (or (n, 1)) array, got shape {X.shape}")
    return X


# ------------------------------------------------------------------------------------------
# 1D
# ------------------------------------------------------------------------------------------
def build_mesh_1d(x_s, *, node_sites=None) -> QCMesh:
    """A chain mesh: nodes at ``node_sites`` (default all sites) sorted by x, consecutive cells."""
    x = _sites(x_s)[:, 0]
    nodes = np.arange(len(x)) if node_sites is None else np.unique(np.asarray(node_sites, int))
    nodes = nodes[np.argsort(x[nodes], kind="stable")]
    if len(nodes) < 2:
        raise InputError("a 1D mesh needs at least two nodes")
    if np.any(np.diff(x[nodes]) <= 0):
        raise InputError("two 1D nodes share a coordinate; sites must be distinct")
    m = len(nodes)
    cells = np.stack([np.arange(m - 1), np.arange(1, m)], axis=1)
    return QCMesh(x[nodes][:, None], nodes, cells, len(x),
                  info={"n_sites": len(x), "n_nodes": m, "n_cells": m - 1})


# ------------------------------------------------------------------------------------------
# 2D builder
# ------------------------------------------------------------------------------------------
class _SizeField:
    """h = min(max_size, spacing + g_k * d_k), d_k the distance to group k's interface.

    A group is a set of refined sites with its own growth rate (e.g. the atomistic region
    with a slow rate, the clamped outer layer with a fast one); its interface is the set of
    its sites with an unrefined site within 1.5 spacings and vice versa. Without refined
    sites h = max_size (spacing if None) everywhere; without unrefined sites h = ``coarse``
    (no gmsh node is needed).
    """

    def __init__(self, groups, X_unref, spacing, max_size, coarse):
        self.a = float(spacing)
        self.hmax = np.inf if max_size is None else float(max_size)
        self.parts = []  # (interface points, growth, tree)
        r = 1.5 * self.a
        # large site sets: unbalanced trees build 2-3x faster and query as fast
        tree_unref = (cKDTree(X_unref, balanced_tree=False, compact_nodes=False)
                      if len(X_unref) else None)
        for X_ref, growth in groups:
            if not (len(X_ref) and len(X_unref)):
                continue
            d1, _ = tree_unref.query(X_ref, distance_upper_bound=r)
            near = tree_unref.query_ball_point(X_ref, r, return_sorted=False)
            hit = np.unique(np.fromiter((k for lst in near for k in lst), np.int64))
            X_int = np.concatenate([X_ref[np.isfinite(d1)], X_unref[hit]])
            if len(X_int):
                self.parts.append((X_int, float(growth), cKDTree(X_int)))
        if not any(len(X_ref) for X_ref, _ in groups):
            self.uniform = self.a if max_size is None else self.hmax
        else:
            self.uniform = float(coarse)

    def __call__(self, P):
        P = np.atleast_2d(np.asarray(P, float))
        if not self.parts:
            return np.full(len(P), self.uniform)
        h = np.full(len(P), self.hmax)
        for _, g, tree in self.parts:
            d, _ = tree.query(P)
            h = np.minimum(h, self.a + g * d)
        return h

    def install(self, gmsh):
        """Set this size field as gmsh's background mesh (evaluated in C++)."""
        f = gmsh.model.mesh.field
        if not self.parts:
            c = f.add("MathEval")
            f.setString(c, "F", repr(float(self.uniform)))
            f.setAsBackgroundMesh(c)
            return
        expr = None
        for X_int, g, _ in self.parts:
            tags = [gmsh.model.geo.addPoint(x, y, 0.0) for x, y in X_int]
            gmsh.model.geo.synchronize()
            dist = f.add("Distance")
            f.setNumbers(dist, "PointsList", tags)
            term = f"{self.a!r} + {g!r} * F{dist}"
            expr = term if expr is None else f"Min({expr}, {term})"
        if np.isfinite(self.hmax):
            expr = f"Min({self.hmax!r}, {expr})"
        c = f.add("MathEval")
        f.setString(c, "F", expr)
        f.setAsBackgroundMesh(c)


def _gmsh_nodes(domain, size: _SizeField) -> tuple[np.ndarray, np.ndarray]:
    """gmsh nodes (n, 2) of the 2D domain with the size field, and a mask of boundary nodes."""
    import gmsh

    if gmsh.isInitialized():
        raise RuntimeError("gmsh is already initialised elsewhere; build_mesh needs its own "
                           "session (finalise the other one first)")
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("qc_mesh")
        geo = gmsh.model.geo
        if isinstance(domain, Disc):
            cx, cy, R = domain.cx, domain.cy, domain.R
            h = size(np.array([[cx + R, cy], [cx, cy + R], [cx - R, cy], [cx, cy - R]]))
            c = geo.addPoint(cx, cy, 0.0, float(h.max()))
            p = [geo.addPoint(cx + R * np.cos(t), cy + R * np.sin(t), 0.0, float(hi))
                 for t, hi in zip(np.arange(4) * np.pi / 2, h, strict=True)]
            curves = [geo.addCircleArc(p[i], c, p[(i + 1) % 4]) for i in range(4)]
        else:
            corners = np.array([[domain.xmin, domain.ymin], [domain.xmax, domain.ymin],
                                [domain.xmax, domain.ymax], [domain.xmin, domain.ymax]])
            h = size(corners)
            p = [geo.addPoint(x, y, 0.0, float(hi)) for (x, y), hi in zip(corners, h, strict=True)]
            curves = [geo.addLine(p[i], p[(i + 1) % 4]) for i in range(4)]
        loop = geo.addCurveLoop(curves)
        surf = geo.addPlaneSurface([loop])
        geo.synchronize()
        size.install(gmsh)
        gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
        gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        gmsh.option.setNumber("Mesh.Algorithm", 5)
        gmsh.model.mesh.generate(2)
        _, xyz, _ = gmsh.model.mesh.getNodes(2, surf, includeBoundary=True)
        _, xyz_b, _ = gmsh.model.mesh.getNodes(1, -1, includeBoundary=True)
    finally:
        gmsh.finalize()
    P = np.asarray(xyz, float).reshape(-1, 3)[:, :2]
    Pb = np.asarray(xyz_b, float).reshape(-1, 3)[:, :2]
    is_b = np.zeros(len(P), bool)
    if len(Pb):
        d, _ = cKDTree(Pb).query(P)
        is_b = d < 1e-9 * max(1.0, np.abs(P).max())
    return P, is_b


def _crack_rows(X, cand, crack: Crack, spacing):
    """Indices (into X) of the rows just above and just below the crack plane (the crack
    faces behind the tip, the ligament ahead of it), sorted by -x, and their y."""
    behind = cand[X[cand, 0] < crack.tip_x]
    y = X[behind, 1]
    above, below = behind[y > crack.y_plane], behind[y < crack.y_plane]
    if not len(above) or not len(below):
        raise InputError(f"crack at y = {crack.y_plane} with tip x = {crack.tip_x} has no "
                         "sites on one side behind the tip; put y_plane between two rows "
                         "inside the domain")
    tol = 1e-3 * spacing
    y_up, y_dn = X[above, 1].min(), X[below, 1].max()
    on = behind[np.abs(y - crack.y_plane) < 1e-2 * spacing]
    if len(on):
        y_up = X[above[X[above, 1] > crack.y_plane + 1e-2 * spacing], 1].min()
        y_dn = X[below[X[below, 1] < crack.y_plane - 1e-2 * spacing], 1].max()
        raise InputError(f"crack plane y = {crack.y_plane} passes through a row of sites "
                         f"(e.g. site {int(on[0])}); put it between two rows, e.g. at "
                         f"y = {0.5 * (X[on[0], 1] + y_up)}")
    # the whole rows, behind and ahead of the tip
    row_up = cand[np.abs(X[cand, 1] - y_up) < tol]
    row_dn = cand[np.abs(X[cand, 1] - y_dn) < tol]
    return row_up[np.argsort(-X[row_up, 0])], row_dn[np.argsort(-X[row_dn, 0])], y_up, y_dn


def _thin(order, x, h, refined_row):
    """Positions (into the row) to keep along ``order`` (walking away from the tip): the first,
    the last, every refined site, and otherwise one site per local mesh size."""
    keep = [order[0]]
    last = x[order[0]]
    for i, hi in zip(order[1:-1], h[1:-1], strict=True):
        if refined_row[i] or abs(last - x[i]) >= hi:
            keep.append(i)
            last = x[i]
    if len(order) > 1:
        end = order[-1]
        if abs(last - x[end]) < 0.5 * h[-1] and len(keep) > 1 and not refined_row[keep[-1]]:
            keep.pop()
        keep.append(end)
    return keep


def _pick_face_nodes(X, row, refined, size: _SizeField, tip_x, *, ahead: bool):
    """Nodes of one face row (sorted by -x): spaced like the local mesh size behind the tip
    (refined sites always, both ends); ahead of the tip the same rule if ``ahead``, else only
    the refined sites."""
    x = X[row, 0]
    is_ahead = x >= tip_x
    keep = []
    behind = np.flatnonzero(~is_ahead)  # walking away from the tip (-x)
    if len(behind):
        keep += _thin(behind, x, size(X[row[behind]]), refined[row])
    front = np.flatnonzero(is_ahead)[::-1]  # walking away from the tip (+x)
    if len(front):
        if ahead:
            keep += _thin(front, x, size(X[row[front]]), refined[row])
        else:
            keep += [i for i in front if refined[row[i]]]
    return row[np.unique(np.asarray(keep, np.int64))]


def _delaunay(Pn, spacing):
    """Delaunay triangles (k, 3) of the points, positively oriented, degenerate ones dropped."""
    Q = Pn - Pn.mean(axis=0)
    Q[:, 0] += _SHEAR * Q[:, 1]
    tri = Delaunay(Q)
    if len(tri.coplanar):
        raise RuntimeError(f"Delaunay dropped point {int(tri.coplanar[0, 0])}; report this as "
                           "a bug")
    C = tri.simplices.astype(np.int64)
    area = _signed_area(Pn, C)
    good = np.abs(area) > 1e-8 * spacing ** 2
    C, area = C[good], area[good]
    neg = area < 0
    C[neg] = C[neg][:, [0, 2, 1]]
    return C


def _signed_area(P, C):
    e1 = P[C[:, 1]] - P[C[:, 0]]
    e2 = P[C[:, 2]] - P[C[:, 0]]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def check_conforming(mesh: QCMesh, tol=1e-9) -> None:
    """Raise RuntimeError if an edge has more than two cells or a node hangs on a boundary edge."""
    if mesh.dim != 2:
        return
    C = mesh.cells_k3
    E = np.sort(np.concatenate([C[:, [0, 1]], C[:, [1, 2]], C[:, [2, 0]]]), axis=1)
    _, c = np.unique(E, axis=0, return_counts=True)
    if np.any(c > 2):
        raise RuntimeError("non-manifold mesh: an edge belongs to more than two triangles")
    if np.any(mesh.signed_areas_k <= 0):
        raise RuntimeError("mesh has a triangle of non-positive area")
    P = mesh.points_m2
    bf = mesh.boundary_facets
    p0, p1 = P[bf[:, 0]], P[bf[:, 1]]
    mid, half = 0.5 * (p0 + p1), 0.5 * np.linalg.norm(p1 - p0, axis=1)
    near = cKDTree(P).query_ball_point(mid, half * (1 + 1e-9))
    for e, nb in enumerate(near):
        for q in nb:
            if q in bf[e]:
                continue
            d = p1[e] - p0[e]
            t = np.dot(P[q] - p0[e], d) / np.dot(d, d)
            off = abs(d[0] * (P[q] - p0[e])[1] - d[1] * (P[q] - p0[e])[0]) / np.sqrt(d @ d)
            if 0 < t < 1 and off < tol * max(1.0, np.sqrt(d @ d)):
                raise RuntimeError(f"hanging node {q} at {P[q].tolist()} on boundary edge "
                                   f"{bf[e].tolist()}")


def build_mesh(X_s2, *, refine_mask_s, domain, spacing, growth=0.3, max_size=None, crack=None,
               present_s=None, outer_mask_s=None, outer_growth=None) -> QCMesh:
    """Build a QC triangle mesh whose nodes are lattice sites.

    Args:
        X_s2: (n, 2) reference site coordinates (Å), all distinct.
        refine_mask_s: (n,) bool, sites that must be nodes (atomistic region, handshake,
            padding, clamped ring ...).
        domain: :class:`Disc`, :class:`Box`, ``("disc", cx, cy, R)`` or
            ``("box", xmin, ymin, xmax, ymax)``; only present sites inside it are used.
        spacing: nearest-neighbour distance (Å).
        growth: size-field slope, h = min(max_size, spacing + growth * d).
        max_size: cap on the element size (Å), None for no cap.
        crack: optional :class:`Crack` (or ``(tip_x, y_plane)``): a one-row-wide slit along
            -x from the tip whose faces are free surfaces.
        present_s: (n,) bool, sites that exist (False = vacancy); default all.
        outer_mask_s: (n,) bool, refined sites (e.g. a clamped outer layer) away from which
            the mesh coarsens at ``outer_growth`` instead of ``growth``.
        outer_growth: size-field slope away from ``outer_mask_s`` (default ``growth``).

    Returns:
        The mesh; ``mesh.info`` holds the counts and the time taken.
    """
    t0 = time.perf_counter()
    X = _sites(X_s2)
    if X.shape[1] != 2:
        raise InputError("build_mesh needs 2D sites (n, 2); use build_mesh_1d for a chain")
    n = len(X)
    dom = _as_domain(domain)
    spacing = float(spacing)
    if not (np.isfinite(spacing) and spacing > 0):
        raise InputError(f"spacing must be > 0 (Å), got {spacing!r}")
    if not (growth > 0):
        raise InputError(f"growth must be > 0, got {growth!r}")
    if max_size is not None and not (max_size >= spacing):
        raise InputError(f"max_size must be >= spacing ({spacing}), got {max_size!r}")
    refined = np.asarray(refine_mask_s, bool)
    present = np.ones(n, bool) if present_s is None else np.asarray(present_s, bool)
    if refined.shape != (n,) or present.shape != (n,):
        raise InputError(f"refine_mask_s and present_s must have shape ({n},)")
    if crack is not None and not isinstance(crack, Crack):
        crack = Crack(*map(float, crack))
    refined = refined & present
    inside = dom.contains(X, tol=1e-6 * spacing) & present
    cand = np.flatnonzero(inside | refined)
    if len(cand) < 3:
        raise InputError("fewer than 3 present sites inside the domain")
    unref = cand[~refined[cand]]
    coarse = 0.25 * np.ptp(X[cand], axis=0).max()
    outer = (np.zeros(n, bool) if outer_mask_s is None
             else np.asarray(outer_mask_s, bool) & refined)
    if outer.shape != (n,):
        raise InputError(f"outer_mask_s must have shape ({n},)")
    g_out = growth if outer_growth is None else outer_growth
    if not (g_out > 0):
        raise InputError(f"outer_growth must be > 0, got {outer_growth!r}")
    size = _SizeField([(X[refined & ~outer], growth), (X[outer], g_out)], X[unref], spacing,
                      max_size, coarse)

    # 1) fixed nodes: refined sites, hull vertices of the site set, crack face rows
    fixed = [np.flatnonzero(refined)]
    if crack is None:
        fixed.append(cand[ConvexHull(X[cand]).vertices])
    else:
        row_up, row_dn, y_up, y_dn = _crack_rows(X, cand, crack, spacing)
        for half in (cand[X[cand, 1] > crack.y_plane], cand[X[cand, 1] < crack.y_plane]):
            if len(half) >= 3 and np.ptp(X[half, 1]) > 0:
                fixed.append(half[ConvexHull(X[half]).vertices])
            else:
                fixed.append(half)
        fixed.append(_pick_face_nodes(X, row_up, refined, size, crack.tip_x, ahead=False))
        fixed.append(_pick_face_nodes(X, row_dn, refined, size, crack.tip_x, ahead=True))
    fixed = np.unique(np.concatenate(fixed))

    # 2) gmsh nodes with the size field, snapped to the nearest candidate site
    t1 = time.perf_counter()
    P, is_b = _gmsh_nodes(dom, size)
    t_gmsh = time.perf_counter() - t1
    _, j = cKDTree(X[cand], balanced_tree=False, compact_nodes=False).query(P)
    snapped = cand[j]
    # boundary nodes first, then by position; keep the first of duplicates
    order = np.lexsort((snapped, ~is_b))
    snapped = snapped[order]
    _, first = np.unique(snapped, return_index=True)
    snapped = snapped[np.sort(first)]
    snapped = snapped[~np.isin(snapped, fixed)]
    if crack is not None:  # the upper face row ahead of the tip carries refined nodes only
        free_row = row_up[(X[row_up, 0] >= crack.tip_x) & ~refined[row_up]]
        snapped = snapped[~np.isin(snapped, free_row)]
    h = size(X[snapped])
    dfix, _ = cKDTree(X[fixed]).query(X[snapped])
    ok = dfix >= 0.5 * h
    snapped, h = snapped[ok], h[ok]
    if len(snapped):
        tree = cKDTree(X[snapped])
        nbrs = tree.query_ball_point(X[snapped], 0.5 * h)
        accepted = np.zeros(len(snapped), bool)
        for i, nb in enumerate(nbrs):
            if not any(accepted[k] for k in nb if k != i):
                accepted[i] = True
        snapped = snapped[accepted]
    nodes = np.unique(np.concatenate([fixed, snapped]))

    # 3) Delaunay of the node set (sheared to break lattice ties consistently). With a crack
    #    each half separately: the lower half is y < plane; the upper half is y > plane plus
    #    the lower face row's nodes ahead of the tip, which both halves share as their common
    #    boundary (no forced row of nodes ahead of the tip: a fully resolved ligament row in
    #    a coarse mesh made needle elements that carried displacement errors to the tip).
    #    Upper-half triangles that reach a lower-row node behind the tip fill the slit (the
    #    hull of the upper half) and are dropped.
    Pn = X[nodes]
    n_removed = 0
    if crack is None:
        C = _delaunay(Pn, spacing)
    else:
        tol = 1e-3 * spacing
        low = np.abs(Pn[:, 1] - y_dn) < tol
        up = np.flatnonzero((Pn[:, 1] > crack.y_plane) | (low & (Pn[:, 0] >= crack.tip_x)))
        dn = np.flatnonzero(Pn[:, 1] < crack.y_plane)
        Cu = up[_delaunay(Pn[up], spacing)]
        has_low = (Pn[Cu, 1] < crack.y_plane).any(axis=1)
        cut = has_low & (Pn[Cu, 0].mean(axis=1) < crack.tip_x)
        n_removed = int(cut.sum())
        Cu = Cu[~cut]
        # what stays across the plane must be the bonds at and ahead of the tip
        across = (Pn[Cu, 1] < crack.y_plane).any(axis=1)
        if across.any() and Pn[Cu[across], 0].min() < crack.tip_x - 1.5 * spacing:
            raise RuntimeError("a cell bridges the crack faces behind the tip; report this "
                               "mesh as a bug")
        C = np.concatenate([Cu, dn[_delaunay(Pn[dn], spacing)]])
    used = np.zeros(len(nodes), bool)
    used[C.ravel()] = True
    if not np.all(used):
        lost = nodes[~used]
        if np.any(refined[lost]):
            raise RuntimeError(f"required site {lost[refined[lost]][0]} lost its triangles; "
                               "report this mesh as a bug")
        remap = np.cumsum(used) - 1
        C = remap[C]
        nodes, Pn = nodes[used], Pn[used]
    info = {
        "n_sites": int(n),
        "n_candidate_sites": int(len(cand)),
        "n_refined": int(refined.sum()),
        "n_gmsh": int(len(P)),
        "n_nodes": int(len(nodes)),
        "n_cells": int(len(C)),
        "n_crack_cells_removed": n_removed,
        "time_gmsh_s": t_gmsh,
        "time_s": time.perf_counter() - t0,
    }
    mesh = QCMesh(Pn, nodes, C, n, info=info)
    check_conforming(mesh)
    mesh.info["time_s"] = time.perf_counter() - t0
    return mesh


# ------------------------------------------------------------------------------------------
# validation of user meshes
# ------------------------------------------------------------------------------------------
def check_nodes_on_sites(mesh: QCMesh, X_s2, required_mask_s=None, tol=1e-6) -> None:
    """Raise :class:`InputError` unless the nodes sit on sites where they must.

    A node whose nearest site is required (every node when ``required_mask_s`` is None)
    must lie within ``tol`` (Å) of that site, and every required site must be a node.
    """
    X = _sites(X_s2)
    P = mesh.points_m2
    if P.shape[1] != X.shape[1]:
        raise InputError(f"mesh is {P.shape[1]}D but the sites are {X.shape[1]}D")
    dist, site = cKDTree(X, balanced_tree=False, compact_nodes=False).query(P)
    req = np.ones(len(X), bool) if required_mask_s is None else np.asarray(required_mask_s, bool)
    if req.shape != (len(X),):
        raise InputError(f"required_mask_s must have shape ({len(X)},), got {req.shape}")
    bad = np.flatnonzero(req[site] & (dist > tol))
    if len(bad):
        i = int(bad[np.argmax(dist[bad])])
        s = int(site[i])
        raise InputError(
            f"QC mesh node {i} at {tuple(np.round(P[i], 6).tolist())} is {dist[i]:.3g} Å from "
            f"the nearest lattice site {s} at {tuple(np.round(X[s], 6).tolist())} (tolerance "
            f"{tol:g} Å), inside the region where every node must be a lattice site "
            f"({len(bad)} such node(s)). Fix: move the node onto site {s}, or regenerate the "
            "mesh with coupling.qc.mesh.build_mesh, which puts every node on a site.")
    on = dist <= tol
    is_node = np.zeros(len(X), bool)
    is_node[site[on]] = True
    missing = np.flatnonzero(req & ~is_node) if required_mask_s is not None else []
    if len(missing):
        s = int(missing[0])
        raise InputError(
            f"required lattice site {s} at {tuple(np.round(X[s], 6).tolist())} is not a mesh "
            f"node ({len(missing)} required site(s) missing). Fix: refine the mesh so that every "
            "site of the atomistic/handshake/padding region is a node (build_mesh with "
            "refine_mask_s does this).")
    ns = mesh.node_site_m
    wrong = np.flatnonzero(on & (ns != site))
    if len(wrong):
        i = int(wrong[0])
        raise InputError(f"QC mesh node {i} sits on site {int(site[i])} but node_site_m says "
                         f"{int(ns[i])}; fix node_site_m (QCMesh.from_arrays computes it)")


# ------------------------------------------------------------------------------------------
# interpolation
# ------------------------------------------------------------------------------------------
def interpolation_matrix(mesh: QCMesh, Y_q2, *, outside="raise", tol=1e-9) -> sp.csr_matrix:
    """Sparse (nq, m) matrix of P1 weights: ``u(Y_q) = A @ u_m``.

    Query points that coincide with a node (within ``tol`` times the mesh extent) get a
    unit row. Points outside the mesh (including inside a crack slit) raise
    :class:`InputError` for ``outside="raise"``; ``"nan"`` puts NaN on the nearest node,
    ``"nearest"`` weight 1 on the nearest node, ``"zero"`` an empty row.
    """
    if outside not in ("raise", "nan", "nearest", "zero"):
        raise InputError(f"outside must be 'raise', 'nan', 'nearest' or 'zero', got {outside!r}")
    P = mesh.points_m2
    d = mesh.dim
    Y = np.asarray(Y_q2, float)
    if Y.ndim == 1 and d == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[1] != d:
        raise InputError(f"query points must have shape (nq, {d}), got {Y.shape}")
    nq, m = len(Y), len(P)
    scale = max(float(np.ptp(P, axis=0).max()), 1.0)
    ntree = cKDTree(P)
    dn, jn = ntree.query(Y, distance_upper_bound=tol * scale)
    exact = np.isfinite(dn)

    rows = np.arange(nq)
    W = np.zeros((nq, d + 1))
    N = np.zeros((nq, d + 1), dtype=np.int64)
    W[exact, 0] = 1.0
    N[exact, 0] = jn[exact]
    rest = np.flatnonzero(~exact)
    found = np.ones(nq, bool)
    if len(rest):
        Yr = Y[rest]
        if d == 1:
            k = _locate_1d(mesh, Yr[:, 0], tol * scale)
        else:
            k = _locate_2d(mesh, Yr, tol)
        ok = k >= 0
        found[rest[~ok]] = False
        r, kk = rest[ok], k[ok]
        lam = _barycentric(mesh, Y[r], kk)
        lam = np.clip(lam, 0.0, None)
        lam /= lam.sum(axis=1, keepdims=True)
        W[r] = lam
        N[r] = mesh.cells_k3[kk]
    if not np.all(found):
        bad = np.flatnonzero(~found)
        if outside == "raise":
            i = int(bad[0])
            raise InputError(
                f"point {i} at {tuple(Y[i].tolist())} is outside the QC mesh ({len(bad)} point(s)"
                " outside, e.g. beyond the domain or in the crack slit); mesh a domain that "
                "contains every site, or pass outside='nan'/'nearest'/'zero'")
        _, jb = ntree.query(Y[bad])
        W[bad] = 0.0
        N[bad] = 0
        if outside in ("nan", "nearest"):
            W[bad, 0] = np.nan if outside == "nan" else 1.0
            N[bad, 0] = jb
    A = sp.csr_matrix((W.ravel(), (np.repeat(rows, d + 1), N.ravel())), shape=(nq, m))
    A.eliminate_zeros()  # NaN entries are kept (nonzero)
    A.sort_indices()
    return A


def _barycentric(mesh, Y, k):
    d = mesh.dim
    J = mesh._jac_kdd[k]
    P0 = mesh.points_m2[mesh.cells_k3[k, 0]]
    if d == 1:
        lam1 = ((Y - P0)[:, 0] / J[:, 0, 0])[:, None]
    else:
        lam1 = np.linalg.solve(J, (Y - P0)[..., None])[..., 0]
    return np.concatenate([1.0 - lam1.sum(axis=1, keepdims=True), lam1], axis=1)


def _locate_1d(mesh, y, atol):
    x0 = mesh.points_m2[mesh.cells_k3[:, 0], 0]
    x1 = mesh.points_m2[mesh.cells_k3[:, 1], 0]
    lo, hi = np.minimum(x0, x1), np.maximum(x0, x1)
    order = np.argsort(lo)
    lo_s, hi_s = lo[order], hi[order]
    j = np.clip(np.searchsorted(lo_s, y, side="right") - 1, 0, len(lo_s) - 1)
    ok = (y >= lo_s[j] - atol) & (y <= hi_s[j] + atol)
    return np.where(ok, order[j], -1)


def _trifinder(mesh):
    tf = mesh.__dict__.get("_trifinder_cache")
    if tf is None:
        import matplotlib.tri as mtri

        T = mtri.Triangulation(mesh.points_m2[:, 0], mesh.points_m2[:, 1], mesh.cells_k3)
        tf = T.get_trifinder()
        mesh.__dict__["_trifinder_cache"] = tf
    return tf


def _locate_2d(mesh, Y, tol):
    k = np.asarray(_trifinder(mesh)(Y[:, 0], Y[:, 1]), dtype=np.int64)
    miss = np.flatnonzero(k < 0)
    if len(miss):  # points on boundary edges: tolerant test over nearby cells
        P = mesh.points_m2
        cent = P[mesh.cells_k3].mean(axis=1)
        ncand = min(32, mesh.num_cells)
        _, cand = cKDTree(cent).query(Y[miss], k=ncand)
        cand = cand.reshape(len(miss), ncand)
        for c in range(ncand):
            still = k[miss] < 0
            if not np.any(still):
                break
            idx = miss[still]
            kk = cand[still, c]
            lam = _barycentric(mesh, Y[idx], kk)
            inside = lam.min(axis=1) >= -tol
            k[idx[inside]] = kk[inside]
    return k
