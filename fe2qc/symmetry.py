"""Crystal symmetry of 4th-order elastic tensors: Laue classes, exact projections, detection.

An elastic tensor is centrosymmetric, so its symmetry is one of the 11 Laue classes (plus
isotropy). The projection onto a class is the average over the class's rotation group
``P(C) = (1/|G|) Σ_g g * C`` (``(g * C)_ijkl = g_ia g_jb g_kc g_ld C_abcd``): it is the
orthogonal projection (in the Frobenius norm of the full tensor) onto the tensors with that
symmetry, so it is exact, linear (error bars of projected constants follow from projecting the
samples), and idempotent. Isotropy is the average over all rotations, in closed form:
``C_iso = 3K J + 2G K_dev`` with ``K = C_iijj / 9``, ``G = (C_ijij - C_iijj / 3) / 10``.

Axes (the crystal frame, as in Nye's *Physical Properties of Crystals*, 1985, and the IEEE
standard): cubic axes along x, y, z; the 4-, 3- or 6-fold axis along z (tetragonal,
trigonal, hexagonal); for the trigonal -3m class a 2-fold axis along x; the monoclinic 2-fold
axis along y (b unique). A crystal in another orientation is rotated first (``rotation``).

Independent constants per class (Nye): isotropic 2, cubic 3, hexagonal 5 (6/m and 6/mmm give
the same elastic tensor, transversely isotropic), tetragonal 6 (4/mmm) or 7 (4/m), trigonal
6 (-3m) or 7 (-3), orthorhombic 9, monoclinic 13, triclinic 21.

Numpy only; tensors are full 3×3×3×3 arrays, batched with leading axes.
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import InputError

__all__ = ["LAUE_CLASSES", "CONSTANTS", "rotation_group", "project", "symmetry_distance",
           "detect_laue_class"]

#: the classes, from the highest symmetry to the lowest
LAUE_CLASSES = ("isotropic", "cubic", "hexagonal", "tetragonal", "tetragonal_low", "trigonal",
                "trigonal_low", "orthorhombic", "monoclinic", "triclinic")

#: independent elastic constants of each class
CONSTANTS = {"isotropic": 2, "cubic": 3, "hexagonal": 5, "tetragonal": 6, "tetragonal_low": 7,
             "trigonal": 6, "trigonal_low": 7, "orthorhombic": 9, "monoclinic": 13,
             "triclinic": 21}

#: the class names that mean the same (Hermann-Mauguin symbols of the Laue groups)
_ALIASES = {"m-3m": "cubic", "m-3": "cubic", "6/mmm": "hexagonal", "6/m": "hexagonal",
            "4/mmm": "tetragonal", "4/m": "tetragonal_low", "-3m": "trigonal",
            "-3": "trigonal_low", "mmm": "orthorhombic", "2/m": "monoclinic",
            "-1": "triclinic"}


def _axis_rotation(axis, angle: float) -> np.ndarray:
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _close(generators: list[np.ndarray]) -> np.ndarray:
    """The finite group the rotations generate (closure under products)."""
    group = [np.eye(3)]
    frontier = [np.eye(3)]
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                p = h @ g
                if not any(np.allclose(p, q, atol=1e-10) for q in group):
                    group.append(p)
                    new.append(p)
        frontier = new
    return np.array(group)


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CONSTANTS:
        raise InputError(f"unknown Laue class {name!r}: choose one of {', '.join(LAUE_CLASSES)} "
                         f"(or a symbol: {', '.join(_ALIASES)})")
    return key


def rotation_group(laue: str) -> np.ndarray:
    """The proper rotations of a Laue class in the standard axes, shape (|G|, 3, 3).

    Raises:
        InputError: unknown class, or ``"isotropic"`` (not a finite group).
    """
    key = _canonical(laue)
    z, y, x = (0, 0, 1), (0, 1, 0), (1, 0, 0)
    gens = {
        "cubic": [_axis_rotation(z, np.pi / 2), _axis_rotation((1, 1, 1), 2 * np.pi / 3)],
        "hexagonal": [_axis_rotation(z, np.pi / 3), _axis_rotation(x, np.pi)],
        "tetragonal": [_axis_rotation(z, np.pi / 2), _axis_rotation(x, np.pi)],
        "tetragonal_low": [_axis_rotation(z, np.pi / 2)],
        "trigonal": [_axis_rotation(z, 2 * np.pi / 3), _axis_rotation(x, np.pi)],
        "trigonal_low": [_axis_rotation(z, 2 * np.pi / 3)],
        "orthorhombic": [_axis_rotation(z, np.pi), _axis_rotation(x, np.pi)],
        "monoclinic": [_axis_rotation(y, np.pi)],
        "triclinic": [],
    }
    if key == "isotropic":
        raise InputError("isotropy is not a finite rotation group; project() treats it in "
                         "closed form")
    return _close(gens[key])


def _rotate_all(C: np.ndarray, R: np.ndarray) -> np.ndarray:
    return np.einsum("ia,jb,kc,ld,...abcd->...ijkl", R, R, R, R, C, optimize=True)


def _isotropic(C: np.ndarray) -> np.ndarray:
    d = np.eye(3)
    J = np.einsum("ij,kl->ijkl", d, d) / 3.0
    Isym = 0.5 * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d))
    Kdev = Isym - J
    K = np.einsum("...iijj->...", C) / 9.0
    G = (np.einsum("...ijij->...", C) - 3.0 * K) / 10.0
    return 3.0 * K[..., None, None, None, None] * J + 2.0 * G[..., None, None, None, None] * Kdev


def project(C_ijkl: np.ndarray, laue: str, rotation: np.ndarray | None = None) -> np.ndarray:
    """The exact projection of elastic tensor(s) onto a Laue class (group average).

    Args:
        C_ijkl: tensor(s), shape (..., 3, 3, 3, 3); minor and major symmetry assumed.
        laue: a class of :data:`LAUE_CLASSES` or its symbol (``"m-3m"``, ``"6/mmm"``, ...).
        rotation: R taking crystal axes to the tensor's frame (``x_frame = R x_crystal``);
            None: the tensor is in the crystal's standard axes.

    Returns:
        The projected tensor(s), same shape.
    """
    C = np.asarray(C_ijkl, float)
    if C.shape[-4:] != (3, 3, 3, 3):
        raise InputError(f"an elastic tensor has shape (..., 3, 3, 3, 3), got {C.shape}")
    key = _canonical(laue)
    if rotation is not None:
        R = np.asarray(rotation, float)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-8):
            raise InputError("rotation must be a 3×3 orthogonal matrix")
        C = _rotate_all(C, R.T)  # to crystal axes
    if key == "isotropic":
        P = _isotropic(C)
    else:
        group = rotation_group(key)
        P = sum(_rotate_all(C, g) for g in group) / len(group)
    if rotation is not None:
        P = _rotate_all(P, R)
    return P


def symmetry_distance(C_ijkl: np.ndarray, laue: str, rotation: np.ndarray | None = None
                      ) -> float:
    """Relative Frobenius distance ``|C - P(C)| / |C|`` of a tensor from a Laue class."""
    C = np.asarray(C_ijkl, float)
    norm = float(np.linalg.norm(C))
    if norm == 0.0:
        return 0.0
    return float(np.linalg.norm(C - project(C, laue, rotation)) / norm)


def detect_laue_class(C_ijkl: np.ndarray, *, tol: float | None = None,
                      stderr_ijkl: np.ndarray | None = None,
                      rotation: np.ndarray | None = None) -> dict:
    """The highest-symmetry Laue class a tensor has within a tolerance, in the given axes.

    The tolerance is ``tol`` (relative Frobenius distance) or, with ``stderr_ijkl``, the
    tensor's own noise level: a class is accepted when the distance is below
    ``3 |stderr| / |C|`` (what projecting away pure noise would remove, with a margin).

    Returns:
        dict with ``laue`` (the class), ``constants`` (how many), ``distance`` (to it) and
        ``distances`` (to every class).
    """
    C = np.asarray(C_ijkl, float)
    if tol is None:
        if stderr_ijkl is None:
            tol = 1e-6
        else:
            tol = 3.0 * float(np.linalg.norm(stderr_ijkl)) / max(float(np.linalg.norm(C)),
                                                               1e-300)
    dist = {k: symmetry_distance(C, k, rotation) for k in LAUE_CLASSES}
    for k in LAUE_CLASSES:  # from the highest symmetry down
        if dist[k] <= tol:
            return {"laue": k, "constants": CONSTANTS[k], "distance": dist[k],
                    "distances": dist, "tolerance": tol}
    return {"laue": "triclinic", "constants": 21, "distance": 0.0, "distances": dist,
            "tolerance": tol}  # pragma: no cover - triclinic distance is 0
