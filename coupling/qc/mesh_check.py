"""Validation of QC meshes.

User meshes (:func:`user_mesh`), nodes on lattice sites (:func:`check_nodes_on_sites`) and
conformity (:func:`check_conforming`).

A user mesh's nodes must sit on lattice sites wherever the QC schemes need atoms (the
atomistic region, its handshake and padding, a resolved clamped layer); every error says
which node or site is wrong and how to fix the mesh.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from coupling.qc.mesh import QCMesh, as_sites, site_tree
from fe2qc.errors import InputError

__all__ = ["check_conforming", "check_nodes_on_sites", "user_mesh"]


def user_mesh(points, cells, X_s2, *, required_mask_s=None, tol=1e-6,
              tree: cKDTree | None = None) -> QCMesh:
    """A mesh from user node coordinates and cells; every node must lie on a site.

    Nodes are matched to their nearest site within ``tol`` (Å); cells are oriented
    positively. Raises :class:`InputError` (see :func:`check_nodes_on_sites`) if a node
    is off-site or a required site is not a node. ``tree`` is the sites' KD-tree
    (:func:`coupling.qc.mesh.site_tree`) if the caller has one.
    """
    X = as_sites(X_s2)
    P = np.asarray(points, float)
    if P.ndim == 1:
        P = P[:, None]
    if P.ndim != 2 or P.shape[1] != X.shape[1]:
        raise InputError(f"points must have shape (m, {X.shape[1]}) like the sites, "
                         f"got {P.shape}")
    tree = site_tree(X) if tree is None else tree
    dist, site = tree.query(P)
    mesh = QCMesh(P, site, np.asarray(cells, dtype=np.int64), len(X))
    check_nodes_on_sites(mesh, X, required_mask_s, tol=tol, tree=tree)
    if len(np.unique(site)) != len(site):
        raise InputError("two mesh nodes sit on the same lattice site; remove the duplicate")
    s = mesh.signed_volumes_k
    scale = np.ptp(P, axis=0).max() if len(P) else 1.0
    if np.any(np.abs(s) <= 1e-14 * scale ** P.shape[1]):
        k = int(np.argmin(np.abs(s)))
        raise InputError(f"cell {k} ({mesh.cells_kv[k].tolist()}) is degenerate (zero "
                         f"measure); remove it from the mesh")
    neg = s < 0
    if np.any(neg):
        C = mesh.cells_kv.copy()
        C[neg, -2:] = C[neg, -2:][:, ::-1]
        mesh = QCMesh(P, site, C, len(X))
    return mesh


def check_nodes_on_sites(mesh: QCMesh, X_s2, required_mask_s=None, tol=1e-6, *,
                         tree: cKDTree | None = None) -> None:
    """Raise :class:`InputError` unless the nodes sit on sites where they must.

    A node whose nearest site is required (every node when ``required_mask_s`` is None)
    must lie within ``tol`` (Å) of that site, and every required site must be a node.
    ``tree`` is the sites' KD-tree (:func:`coupling.qc.mesh.site_tree`) if the caller has one.
    """
    X = as_sites(X_s2)
    P = mesh.points_md
    if P.shape[1] != X.shape[1]:
        raise InputError(f"mesh is {P.shape[1]}D but the sites are {X.shape[1]}D")
    dist, site = (site_tree(X) if tree is None else tree).query(P)
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
            "mesh with coupling.qc.mesh_build.build_mesh, which puts every node on a site.")
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
                         f"{int(ns[i])}; fix node_site_m (coupling.qc.mesh_check.user_mesh "
                         "computes it)")


def check_conforming(mesh: QCMesh, tol=1e-9) -> None:
    """Raise RuntimeError if an edge has more than two cells or a node hangs on a boundary edge."""
    if mesh.dim != 2:
        return
    C = mesh.cells_kv
    E = np.sort(np.concatenate([C[:, [0, 1]], C[:, [1, 2]], C[:, [2, 0]]]), axis=1)
    _, c = np.unique(E, axis=0, return_counts=True)
    if np.any(c > 2):
        raise RuntimeError("non-manifold mesh: an edge belongs to more than two triangles")
    if np.any(mesh.signed_volumes_k <= 0):
        raise RuntimeError("mesh has a triangle of non-positive area")
    P = mesh.points_md
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

