"""Laue-class projections of elastic tensors (fe2qc.symmetry) against textbook facts.

References: the number of independent constants and the zero/equal patterns of the Voigt
matrices per Laue class (Nye, Physical Properties of Crystals, 1985, Table 9; standard axes);
the Voigt averages of a cubic crystal (K = (C11 + 2 C12)/3, G = (C11 - C12 + 3 C44)/5, Hill,
Proc. Phys. Soc. A 65, 349 (1952)); measured constants of real crystals (Mg, α-quartz), which
must be fixed points of their own class's projection.
"""

import numpy as np
import pytest

from fe2qc.errors import InputError
from fe2qc.symmetry import (
    CONSTANTS,
    LAUE_CLASSES,
    detect_laue_class,
    project,
    rotation_group,
    symmetry_distance,
)
from fe2qc.tensors import from_voigt_stiffness, rotate4, to_voigt_stiffness


def _sym_basis():
    out = []
    for I in range(6):
        for J in range(I, 6):
            V = np.zeros((6, 6))
            V[I, J] = V[J, I] = 1.0
            out.append(from_voigt_stiffness(V))
    return np.array(out)


def _random(seed=0):
    A = np.random.default_rng(seed).normal(size=(6, 6))
    return from_voigt_stiffness(A + A.T + 12 * np.eye(6))


@pytest.mark.parametrize("laue", LAUE_CLASSES)
def test_independent_constants_are_nyes(laue):
    P = project(_sym_basis(), laue).reshape(21, -1)
    assert np.linalg.matrix_rank(P, tol=1e-9) == CONSTANTS[laue]
    C = _random(1)
    once = project(C, laue)
    np.testing.assert_allclose(project(once, laue), once, atol=1e-12)  # idempotent
    # orthogonal: the removed part is orthogonal to every tensor of the class
    assert abs(np.sum((C - once) * project(_random(2), laue))) < 1e-9


def test_group_orders():
    assert {k: len(rotation_group(k)) for k in LAUE_CLASSES if k != "isotropic"} == {
        "cubic": 24, "hexagonal": 12, "tetragonal": 8, "tetragonal_low": 4, "trigonal": 6,
        "trigonal_low": 3, "orthorhombic": 4, "monoclinic": 2, "triclinic": 1}


def test_voigt_patterns_of_trigonal_and_monoclinic():
    V = to_voigt_stiffness(project(_random(3), "-3m"))
    # Nye: C14 = -C24 = C56, C15 = C25 = C46 = 0, C66 = (C11 - C12)/2, C11 = C22, C44 = C55
    assert V[0, 3] == pytest.approx(-V[1, 3]) and V[0, 3] == pytest.approx(V[4, 5])
    assert abs(V[0, 3]) > 1e-3
    assert np.allclose([V[0, 4], V[1, 4], V[3, 5]], 0, atol=1e-12)
    assert V[5, 5] == pytest.approx((V[0, 0] - V[0, 1]) / 2)
    M = to_voigt_stiffness(project(_random(4), "2/m"))
    nonzero = {(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (0, 1), (0, 2), (1, 2),
               (0, 4), (1, 4), (2, 4), (3, 5)}
    for I in range(6):
        for J in range(I, 6):
            assert (abs(M[I, J]) > 1e-6) == ((I, J) in nonzero), (I, J)


def test_real_crystals_are_fixed_points_and_cubic_averages():
    # Mg (hexagonal; GPa): C11 59.4, C12 25.6, C13 21.4, C33 61.6, C44 16.4
    mg = np.zeros((6, 6))
    mg[0, 0] = mg[1, 1] = 59.4
    mg[2, 2] = 61.6
    mg[0, 1] = mg[1, 0] = 25.6
    mg[0, 2] = mg[2, 0] = mg[1, 2] = mg[2, 1] = 21.4
    mg[3, 3] = mg[4, 4] = 16.4
    mg[5, 5] = (59.4 - 25.6) / 2
    C = from_voigt_stiffness(mg)
    assert symmetry_distance(C, "hexagonal") < 1e-14
    assert symmetry_distance(C, "cubic") > 0.01
    assert detect_laue_class(C)["laue"] == "hexagonal"
    # Cu (cubic): projection averages; isotropic projection = Voigt averages
    cu = np.zeros((6, 6))
    cu[:3, :3] = 122.0
    cu[range(3), range(3)] = 170.0
    cu[range(3, 6), range(3, 6)] = 76.0
    C = from_voigt_stiffness(cu)
    assert detect_laue_class(C)["laue"] == "cubic"
    iso = to_voigt_stiffness(project(C, "isotropic"))
    K, G = (170 + 2 * 122) / 3, (170 - 122 + 3 * 76) / 5
    assert iso[0, 1] == pytest.approx(K - 2 * G / 3) and iso[3, 3] == pytest.approx(G)
    # a rotated cubic crystal is cubic in its own axes, not in the lab's
    R = np.array([[1, 1, 0], [-1, 1, 0], [0, 0, np.sqrt(2)]]) / np.sqrt(2)
    Crot = rotate4(C, R)
    assert symmetry_distance(Crot, "cubic") > 0.05
    assert symmetry_distance(Crot, "cubic", rotation=R) < 1e-14
    assert symmetry_distance(Crot, "tetragonal") < 1e-14  # the z axis is still 4-fold


def test_detection_uses_the_error_bars():
    cu = np.zeros((6, 6))
    cu[:3, :3] = 122.0
    cu[range(3), range(3)] = 170.0
    cu[range(3, 6), range(3, 6)] = 76.0
    A = np.random.default_rng(7).normal(size=(6, 6)) * 0.5
    noisy = from_voigt_stiffness(cu + (A + A.T) / 2)
    err = from_voigt_stiffness(np.full((6, 6), 0.5))
    assert detect_laue_class(noisy)["laue"] == "triclinic"  # exact test: noise breaks it
    got = detect_laue_class(noisy, stderr_ijkl=err)
    assert got["laue"] == "cubic" and got["constants"] == 3


def test_bad_input():
    with pytest.raises(InputError, match="Laue class"):
        project(_random(), "hexagonal-ish")
    with pytest.raises(InputError, match="orthogonal"):
        project(_random(), "cubic", rotation=2 * np.eye(3))
    with pytest.raises(InputError, match="shape"):
        project(np.zeros((6, 6)), "cubic")
