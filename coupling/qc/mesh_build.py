"""Builders of QC meshes whose nodes are lattice sites.

A 1D chain (:func:`build_mesh_1d`) and a gmsh-coarsened 2D mesh (:func:`build_mesh`).

Near the atomistic region every site is a node; away from it the mesh coarsens with a size
field ``h(d) = min(max_size, spacing + growth * d)``, d the distance to the refined/unrefined
interface (a gmsh Distance field, evaluated in C++). :func:`build_mesh` generates nodes with
gmsh, snaps each to its nearest site, thins them, adds every refined site and triangulates
with :class:`scipy.spatial.Delaunay`. An optional straight crack along -x is cut as a
one-row-wide slit whose faces are free surfaces.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import ConvexHull, Delaunay, cKDTree

from coupling.qc.geometry import Box, Crack, Disc
from coupling.qc.mesh import QCMesh, as_sites
from coupling.qc.mesh_check import check_conforming
from fe2qc.errors import InputError

__all__ = ["build_mesh", "build_mesh_1d"]

_SHEAR = 1e-7  # x + _SHEAR*y before Delaunay: breaks square-lattice ties the same way everywhere


def build_mesh_1d(x_s, *, node_sites=None) -> QCMesh:
    """A chain mesh: nodes at ``node_sites`` (default all sites) sorted by x, consecutive cells."""
    x = as_sites(x_s)[:, 0]
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
    """Generate gmsh nodes (n, 2) of the 2D domain with the size field, and a boundary mask."""
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
            cx, cy, R = domain.cx, domain.cy, domain.radius
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
    """Indices (into X) of the rows just above and just below the crack plane, and their y.

    The rows are the crack faces behind the tip and the ligament ahead of it, sorted by -x.
    """
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
    """Positions (into the row) to keep along ``order`` (walking away from the tip).

    The first, the last, every refined site, and otherwise one site per local mesh size.
    """
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
    """Nodes of one face row (sorted by -x).

    Behind the tip they are spaced like the local mesh size (refined sites always, both ends);
    ahead of the tip the same rule if ``ahead``, else only the refined sites.
    """
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


def build_mesh(X_s2, *, refine_mask_s, domain, spacing, growth=0.3, max_size=None, crack=None,
               present_s=None, outer_mask_s=None, outer_growth=None) -> QCMesh:
    """Build a QC triangle mesh whose nodes are lattice sites.

    Args:
        X_s2: (n, 2) reference site coordinates (Å), all distinct.
        refine_mask_s: (n,) bool, sites that must be nodes (atomistic region, handshake,
            padding, clamped ring ...).
        domain: a :class:`~coupling.qc.geometry.Disc` or :class:`~coupling.qc.geometry.Box`;
            only present sites inside it are used.
        spacing: nearest-neighbour distance (Å).
        growth: size-field slope, h = min(max_size, spacing + growth * d).
        max_size: cap on the element size (Å), None for no cap.
        crack: optional :class:`~coupling.qc.geometry.Crack`: a one-row-wide slit along
            -x from the tip whose faces are free surfaces.
        present_s: (n,) bool, sites that exist (False = vacancy); default all.
        outer_mask_s: (n,) bool, refined sites (e.g. a clamped outer layer) away from which
            the mesh coarsens at ``outer_growth`` instead of ``growth``.
        outer_growth: size-field slope away from ``outer_mask_s`` (default ``growth``).

    Returns:
        The mesh; ``mesh.info`` holds the counts and the time taken.
    """
    t0 = time.perf_counter()
    X = as_sites(X_s2)
    if X.shape[1] != 2:
        raise InputError("build_mesh needs 2D sites (n, 2); use build_mesh_1d for a chain")
    n = len(X)
    if not isinstance(domain, Disc | Box):
        raise InputError(f"domain must be a Disc(cx, cy, radius) or a Box(xmin, ymin, xmax, "
                         f"ymax) of coupling.qc.geometry; got {domain!r}")
    dom = domain
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
        raise InputError(f"crack must be a coupling.qc.geometry.Crack, got {crack!r}")
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

