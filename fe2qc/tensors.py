"""Tensor algebra of continuum mechanics, written once.

Voigt maps, symmetric parts, the plane-strain embedding of F, the Cauchy stress, rotation of a
4th-order tensor and the acoustic tensor.

Conventions (see the README's *Conventions*): tensors are full 3×3 (2×2 in plane strain) and
3×3×3×3 arrays inside the code; Voigt only at the user boundary, order ``xx yy zz yz xz xy``
(indices 0..5, :data:`VOIGT_PAIRS`), stiffness without factors of 2 (``C_IJ = C_ijkl``), the
order LAMMPS's ``compute born/matrix`` uses. Batched arrays carry the point index first
(``F_qij``, ``A_qijkl``). Numpy only.

The floating-point operations are those of the copies this module replaced (same ``einsum``
subscripts, same order of additions), so results are bit-for-bit unchanged.
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import InputError

__all__ = [
    "VOIGT_PAIRS",
    "to_voigt_stiffness",
    "from_voigt_stiffness",
    "to_voigt_stress",
    "sym",
    "minor_sym",
    "embed_F",
    "cauchy_stress",
    "rotate4",
    "acoustic_directions",
    "acoustic_tensor",
    "acoustic_min_eigenvalue",
]

#: Voigt index -> Cartesian pair, order xx yy zz yz xz xy.
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


# -- Voigt -----------------------------------------------------------------------------------
def to_voigt_stiffness(C_ijkl: np.ndarray) -> np.ndarray:
    """Return the 6×6 Voigt matrix ``C_IJ = C_ijkl`` of a 3×3×3×3 tensor (float64)."""
    C = np.asarray(C_ijkl)
    out = np.empty((6, 6))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            out[I, J] = C[i, j, k, l]
    return out


def from_voigt_stiffness(C_IJ: np.ndarray) -> np.ndarray:
    """Return the 3×3×3×3 tensor with minor symmetries from a 6×6 Voigt matrix.

    Major symmetry holds when ``C_IJ`` is symmetric.
    """
    C = np.empty((3, 3, 3, 3))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            for a, b in ((i, j), (j, i)):
                for c, d in ((k, l), (l, k)):
                    C[a, b, c, d] = C_IJ[I, J]
    return C


def to_voigt_stress(s_ij: np.ndarray) -> np.ndarray:
    """Return the Voigt 6-vector (xx yy zz yz xz xy) of a symmetric 3×3 tensor."""
    s = np.asarray(s_ij)
    return np.array([s[i, j] for i, j in VOIGT_PAIRS])


# -- symmetric parts -------------------------------------------------------------------------
def sym(M: np.ndarray) -> np.ndarray:
    """Symmetric part ``(M + Mᵀ)/2`` over the last two axes (a matrix or a stack of them)."""
    return 0.5 * (M + np.swapaxes(M, -1, -2))


def minor_sym(A_ijkl: np.ndarray) -> np.ndarray:
    """Symmetrise a 4th-order tensor over ``ij`` and then over ``kl`` (the last four axes).

    Applied to the tangent ``A = ∂P/∂F`` at zero stress this is the elastic tensor ``C_ijkl``
    (A's major symmetry is kept).
    """
    C = 0.5 * (A_ijkl + np.swapaxes(A_ijkl, -4, -3))
    return 0.5 * (C + np.swapaxes(C, -2, -1))


# -- kinematics and stress -------------------------------------------------------------------
def embed_F(F_qij: np.ndarray) -> np.ndarray:
    """Embed 2×2 deformation gradients as plane-strain 3×3 ones (``F33 = 1``).

    3×3 input is returned as is (as a float array, not copied when it already is one); any
    leading batch axes are kept.
    """
    F = np.asarray(F_qij, dtype=float)
    if F.shape[-1] == 3:
        return F
    out = np.zeros(F.shape[:-2] + (3, 3))
    out[..., :2, :2] = F
    out[..., 2, 2] = 1.0
    return out


def cauchy_stress(F_qij: np.ndarray, P_qij: np.ndarray) -> np.ndarray:
    """Cauchy stress ``sigma = P Fᵀ / det F`` at each point (shapes ``(nq, d, d)``)."""
    return np.einsum("qik,qjk->qij", P_qij, F_qij) / np.linalg.det(F_qij)[:, None, None]


# -- rotation --------------------------------------------------------------------------------
def rotate4(T_ijkl: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``T'_abcd = R_ai R_bj R_ck R_dl T_ijkl``: R's rows are the new axes in the old frame.

    Raises:
        InputError: R is not a 3×3 orthogonal matrix (rotations and reflections are accepted).
    """
    R = np.asarray(R, dtype=float)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-12):
        raise InputError("rotation must be a 3x3 orthogonal matrix (rows = new axes)")
    return np.einsum("ai,bj,ck,dl,ijkl->abcd", R, R, R, R, np.asarray(T_ijkl, dtype=float))


# -- acoustic tensor -------------------------------------------------------------------------
def acoustic_directions(d: int, n_angles: int) -> np.ndarray:
    """Unit directions ``N_nd`` that the acoustic tensor is scanned over.

    ``d = 1``: the one direction; ``d = 2``: ``(cos t, sin t)`` at ``n_angles`` angles in
    [0, π) (N and -N give the same acoustic tensor); ``d = 3``: a Fibonacci sphere of
    ``4 n_angles`` points.
    """
    if d == 1:
        return np.ones((1, 1))
    if d == 2:
        t = np.linspace(0.0, np.pi, n_angles, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    m = 4 * n_angles
    k = np.arange(m) + 0.5
    phi = np.arccos(1 - 2 * k / m)
    th = np.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], 1)


def acoustic_tensor(A_qiJkL: np.ndarray, N_nJ: np.ndarray) -> np.ndarray:
    """Symmetric part of the acoustic tensor ``Q_ik = A_iJkL N_J N_L`` for each direction.

    Args:
        A_qiJkL: tangent(s) ``∂P/∂F``, shape ``(nq, d, d, d, d)`` or ``(d, d, d, d)``.
        N_nJ: directions, shape ``(n, d)`` (e.g. :func:`acoustic_directions`).

    Returns:
        ``Q_qnik`` (or ``Q_nik`` for one tangent), symmetrised over ``ik``.
    """
    A = np.asarray(A_qiJkL)
    if A.ndim == 4:
        Q = np.einsum("iJkL,nJ,nL->nik", A, N_nJ, N_nJ)
    else:
        Q = np.einsum("qijkl,nj,nl->qnik", A, N_nJ, N_nJ)
    return sym(Q)


def acoustic_min_eigenvalue(A_qijkl: np.ndarray, n_angles: int = 180) -> np.ndarray:
    """Min over directions N and over eigenvalues of the acoustic tensor Q_ik = A_iJkL N_J N_L.

    Strong ellipticity holds at a point iff this is positive. In 2D N = (cos t, sin t) is scanned
    over ``n_angles`` angles in [0, pi); in 3D over a Fibonacci sphere of ``4 n_angles`` points
    (:func:`acoustic_directions`).

    Args:
        A_qijkl: tangents, shape ``(nq, d, d, d, d)``, d = 2 or 3 (eV/Å³).
        n_angles: number of directions scanned in 2D (``4 n_angles`` in 3D).

    Returns:
        ``(nq,)`` smallest eigenvalue per point (eV/Å³).
    """
    A = np.asarray(A_qijkl)
    N_nd = acoustic_directions(A.shape[-1], n_angles)
    return np.linalg.eigvalsh(acoustic_tensor(A, N_nd))[..., 0].min(axis=1)
