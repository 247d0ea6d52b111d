"""Units (LAMMPS ``metal``) and the Voigt convention used at the user boundary.

Inside the code stresses are in eV/Å³ and tensors are full 3×3 (or 3×3×3×3)
arrays. At the user boundary (CLI, JSON, README tables) stresses and moduli are
reported in GPa, and 6×6 matrices use Voigt order ``xx yy zz yz xz xy``
(indices 0..5), without factors of 2 for stiffness: ``C_IJ = C_ijkl`` with
``I <-> (i, j)`` by that table.
"""

import numpy as np

__all__ = [
    "EV_PER_A3_IN_GPA",
    "MVV2E",
    "VOIGT_PAIRS",
    "to_voigt_stiffness",
    "from_voigt_stiffness",
    "to_voigt_stress",
]

#: 1 eV/Å³ in GPa (CODATA 2018 elementary charge; the value LAMMPS uses).
EV_PER_A3_IN_GPA = 160.21766208
#: amu·Å²/ps² in eV (LAMMPS ``metal`` ``mvv2e``).
MVV2E = 1.0364269e-4
#: Voigt index -> Cartesian pair, order xx yy zz yz xz xy.
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def to_voigt_stiffness(C_ijkl: np.ndarray) -> np.ndarray:
    """Return the 6×6 Voigt matrix of a 3×3×3×3 stiffness tensor."""
    C = np.asarray(C_ijkl)
    out = np.empty((6, 6))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            out[I, J] = C[i, j, k, l]
    return out


def from_voigt_stiffness(C_IJ: np.ndarray) -> np.ndarray:
    """Return the 3×3×3×3 tensor with minor and major symmetries from a 6×6 Voigt matrix."""
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
