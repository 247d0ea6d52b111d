"""Point location in a QC mesh and P1 interpolation (:func:`interpolation_matrix`).

Points are found by matplotlib's triangle finder (2D) or a sorted search (1D), with a
tolerant barycentric test over nearby cells for points on boundary edges. The triangle
finder and the KD-tree of the nodes are built once per mesh and kept on it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from coupling.qc.mesh import QCMesh
from fe2qc.errors import InputError

__all__ = ["interpolation_matrix"]


def interpolation_matrix(mesh: QCMesh, Y_q2, *, outside="raise", tol=1e-9) -> sp.csr_matrix:
    """Sparse (nq, m) matrix of P1 weights: ``u(Y_q) = A @ u_m``.

    Query points that coincide with a node (within ``tol`` times the mesh extent) get a
    unit row. Points outside the mesh (including inside a crack slit) raise
    :class:`InputError` for ``outside="raise"``; ``"nan"`` puts NaN on the nearest node,
    ``"nearest"`` weight 1 on the nearest node, ``"zero"`` an empty row.
    """
    if outside not in ("raise", "nan", "nearest", "zero"):
        raise InputError(f"outside must be 'raise', 'nan', 'nearest' or 'zero', got {outside!r}")
    P = mesh.points_md
    d = mesh.dim
    Y = np.asarray(Y_q2, float)
    if Y.ndim == 1 and d == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[1] != d:
        raise InputError(f"query points must have shape (nq, {d}), got {Y.shape}")
    nq, m = len(Y), len(P)
    scale = max(float(np.ptp(P, axis=0).max()), 1.0)
    ntree = _cached(mesh, "_node_tree_cache", lambda: cKDTree(P))
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
        N[r] = mesh.cells_kv[kk]
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
    J = mesh.jac_kdd[k]
    P0 = mesh.points_md[mesh.cells_kv[k, 0]]
    if d == 1:
        lam1 = ((Y - P0)[:, 0] / J[:, 0, 0])[:, None]
    else:
        lam1 = np.linalg.solve(J, (Y - P0)[..., None])[..., 0]
    return np.concatenate([1.0 - lam1.sum(axis=1, keepdims=True), lam1], axis=1)


def _locate_1d(mesh, y, atol):
    x0 = mesh.points_md[mesh.cells_kv[:, 0], 0]
    x1 = mesh.points_md[mesh.cells_kv[:, 1], 0]
    lo, hi = np.minimum(x0, x1), np.maximum(x0, x1)
    order = np.argsort(lo)
    lo_s, hi_s = lo[order], hi[order]
    j = np.clip(np.searchsorted(lo_s, y, side="right") - 1, 0, len(lo_s) - 1)
    ok = (y >= lo_s[j] - atol) & (y <= hi_s[j] + atol)
    return np.where(ok, order[j], -1)


def _cached(mesh, key: str, build):
    """``mesh.__dict__[key]``, built by ``build()`` on first use (the mesh is not changed)."""
    value = mesh.__dict__.get(key)
    if value is None:
        value = mesh.__dict__[key] = build()
    return value


def _trifinder(mesh):
    def build():
        import matplotlib.tri as mtri

        T = mtri.Triangulation(mesh.points_md[:, 0], mesh.points_md[:, 1], mesh.cells_kv)
        return T.get_trifinder()

    return _cached(mesh, "_trifinder_cache", build)


def _locate_2d(mesh, Y, tol):
    k = np.asarray(_trifinder(mesh)(Y[:, 0], Y[:, 1]), dtype=np.int64)
    miss = np.flatnonzero(k < 0)
    if len(miss):  # points on boundary edges: tolerant test over nearby cells
        P = mesh.points_md
        cent = P[mesh.cells_kv].mean(axis=1)
        ncand = min(32, mesh.n_cells)
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
