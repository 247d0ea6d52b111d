"""fe2qc.tensors and fe2qc.units against analytic results.

Voigt round trips, symmetric parts, plane-strain embedding, Cauchy stress of a rotated
stressed state, rotation of isotropic and cubic stiffnesses, the acoustic tensor of an
isotropic tangent, and the unit constants.
"""

import numpy as np
import pytest

from fe2qc.errors import InputError
from fe2qc.tensors import (
    VOIGT_PAIRS,
    acoustic_directions,
    acoustic_min_eigenvalue,
    acoustic_tensor,
    cauchy_stress,
    embed_F,
    from_voigt_stiffness,
    minor_sym,
    rotate4,
    sym,
    to_voigt_stiffness,
    to_voigt_stress,
)
from fe2qc.units import (
    EV_IN_J,
    EV_PER_A3_IN_GPA,
    EV_PER_A52_IN_MPA_SQRT_M,
    HARTREE_BOHR_IN_EV_A,
    MPA_SQRT_M_IN_EV_A3_SQRT_A,
    MVV2E,
)

RNG = np.random.default_rng(20261201)


def _isotropic(lmbda, mu, d):
    I = np.eye(d)
    return (lmbda * np.einsum("ij,kl->ijkl", I, I)
            + mu * (np.einsum("ik,jl->ijkl", I, I) + np.einsum("il,jk->ijkl", I, I)))


def _cubic(c11, c12, c44):
    C_IJ = np.zeros((6, 6))
    C_IJ[:3, :3] = c12
    C_IJ[[0, 1, 2], [0, 1, 2]] = c11
    C_IJ[[3, 4, 5], [3, 4, 5]] = c44
    return from_voigt_stiffness(C_IJ)


def _random_rotation():
    Q, R = np.linalg.qr(RNG.normal(size=(3, 3)))
    Q = Q * np.sign(np.diag(R))
    return Q if np.linalg.det(Q) > 0 else -Q


def _rot_z(deg):
    t = np.radians(deg)
    # rows = the new axes in the old frame
    return np.array([[np.cos(t), np.sin(t), 0.0], [-np.sin(t), np.cos(t), 0.0], [0, 0, 1]])


# -- Voigt ------------------------------------------------------------------------------------
def test_voigt_order_is_lammps_born_matrix_order_xx_yy_zz_yz_xz_xy():
    assert VOIGT_PAIRS == ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def test_voigt_round_trip_of_a_stiffness_with_minor_and_major_symmetries():
    M = RNG.normal(size=(6, 6))
    M = M + M.T
    C = from_voigt_stiffness(M)
    assert np.array_equal(to_voigt_stiffness(C), M)
    assert np.array_equal(from_voigt_stiffness(to_voigt_stiffness(C)), C)
    # minor and major symmetries, C_IJ = C_ijkl without factors of 2
    assert np.array_equal(C, C.transpose(1, 0, 2, 3))
    assert np.array_equal(C, C.transpose(0, 1, 3, 2))
    assert np.array_equal(C, C.transpose(2, 3, 0, 1))
    assert C[1, 2, 0, 1] == M[3, 5] and C[2, 1, 1, 0] == M[3, 5]


def test_voigt_stress_vector_is_xx_yy_zz_yz_xz_xy():
    s = sym(RNG.normal(size=(3, 3)))
    assert np.array_equal(to_voigt_stress(s),
                          [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


# -- symmetric parts --------------------------------------------------------------------------
def test_sym_is_the_symmetric_part_over_the_last_two_axes():
    M = RNG.normal(size=(4, 3, 3))
    S = sym(M)
    assert np.array_equal(S, np.swapaxes(S, -1, -2))
    W = RNG.normal(size=(3, 3))
    assert np.abs(sym(W - W.T)).max() == 0.0  # the skew part is removed
    assert np.array_equal(sym(S), S)


def test_minor_sym_of_a_stressed_tangent_leaves_the_elastic_tensor():
    """minor_sym of a stressed tangent A_iJkL = C_iJkL + delta_ik S_JL keeps C (dP/dF at S).

    minor_sym keeps C, which has the minor symmetries already, and averages the stress term
    over the four index swaps (ij and kl); the result has the minor symmetries and minor_sym
    is idempotent.
    """
    C = _isotropic(0.7, 0.4, 3)
    assert np.allclose(minor_sym(C), C, rtol=0, atol=1e-15)
    S = sym(RNG.normal(size=(3, 3)))
    A = C + np.einsum("ik,jl->ijkl", np.eye(3), S)
    out = minor_sym(A)
    assert np.array_equal(out, out.transpose(1, 0, 2, 3))
    assert np.array_equal(out, out.transpose(0, 1, 3, 2))
    assert np.allclose(minor_sym(out), out, rtol=0, atol=1e-15)
    I = np.eye(3)
    expected = C + 0.25 * (np.einsum("ik,jl->ijkl", I, S) + np.einsum("jk,il->ijkl", I, S)
                           + np.einsum("il,jk->ijkl", I, S) + np.einsum("jl,ik->ijkl", I, S))
    assert np.allclose(out, expected, rtol=0, atol=1e-15)


# -- kinematics and stress --------------------------------------------------------------------
def test_embed_F_puts_2d_gradients_in_plane_strain_3x3_with_F33_one():
    F2 = np.array([[[1.1, 0.2], [-0.1, 0.9]], [[1.0, 0.0], [0.3, 1.2]]])
    F3 = embed_F(F2)
    assert F3.shape == (2, 3, 3)
    assert np.array_equal(F3[:, :2, :2], F2)
    assert np.array_equal(F3[:, 2, 2], [1.0, 1.0])
    assert not F3[:, 2, :2].any() and not F3[:, :2, 2].any()
    assert np.array_equal(embed_F(F2[0]), F3[0])
    G = RNG.normal(size=(3, 3))
    assert embed_F(G) is G  # 3x3 float input passes through


def test_cauchy_stress_of_a_rigidly_rotated_stressed_state_is_the_rotated_stress():
    """F = R, P = R sigma0 (P = J sigma F^-T with sigma = R sigma0 R^T): sigma = R sigma0 R^T."""
    R = np.array([_random_rotation() for _ in range(3)])
    sigma0 = sym(RNG.normal(size=(3, 3, 3)))
    P = np.matmul(R, sigma0)
    sigma = cauchy_stress(R, P)
    assert np.allclose(sigma, R @ sigma0 @ np.swapaxes(R, 1, 2), rtol=0, atol=1e-14)
    # uniform stretch lambda: sigma = P lambda / lambda^3
    lam = 1.1
    F = lam * np.eye(3)[None]
    assert np.allclose(cauchy_stress(F, sigma0[:1]), sigma0[:1] / lam**2, rtol=1e-15, atol=0)


# -- rotation ---------------------------------------------------------------------------------
def test_rotation_leaves_an_isotropic_tensor_unchanged():
    C = _isotropic(1.3, 0.55, 3)
    for _ in range(5):
        assert np.allclose(rotate4(C, _random_rotation()), C, rtol=0, atol=1e-14)


def test_rotation_by_90_degrees_permutes_the_axes_of_an_orthotropic_and_a_cubic_tensor():
    """New x = old y, new y = -old x: C'_1111 = C_2222, C'_1133 = C_2233, C'_2323 = C_1313.

    A cubic tensor maps onto itself.
    """
    M = np.array([[10.0, 2, 3, 0, 0, 0], [2, 20, 4, 0, 0, 0], [3, 4, 30, 0, 0, 0],
                  [0, 0, 0, 5, 0, 0], [0, 0, 0, 0, 6, 0], [0, 0, 0, 0, 0, 7]])
    Cr = to_voigt_stiffness(rotate4(from_voigt_stiffness(M), _rot_z(90.0)))
    perm = [1, 0, 2, 4, 3, 5]  # xx <-> yy, yz <-> xz
    assert np.allclose(Cr, M[np.ix_(perm, perm)], rtol=0, atol=1e-13)
    C = _cubic(170.0, 122.5, 75.8)
    assert np.allclose(rotate4(C, _rot_z(90.0)), C, rtol=0, atol=1e-12)


def test_rotation_by_45_degrees_of_a_cubic_tensor_gives_the_110_moduli():
    c11, c12, c44 = 170.0, 122.5, 75.8
    Cr = to_voigt_stiffness(rotate4(_cubic(c11, c12, c44), _rot_z(45.0)))
    assert Cr[0, 0] == pytest.approx((c11 + c12) / 2 + c44, rel=1e-14)
    assert Cr[0, 1] == pytest.approx((c11 + c12) / 2 - c44, rel=1e-14)
    assert Cr[5, 5] == pytest.approx((c11 - c12) / 2, rel=1e-13)
    assert Cr[2, 2] == pytest.approx(c11, rel=1e-14) and Cr[3, 3] == pytest.approx(c44, rel=1e-14)


def test_rotation_back_and_forth_is_the_identity_and_non_orthogonal_R_is_refused():
    C = from_voigt_stiffness(sym(RNG.normal(size=(6, 6))))
    R = _random_rotation()
    assert np.allclose(rotate4(rotate4(C, R), R.T), C, rtol=0, atol=1e-14)
    with pytest.raises(InputError, match="orthogonal"):
        rotate4(C, 1.01 * np.eye(3))
    with pytest.raises(InputError, match="orthogonal"):
        rotate4(C, np.eye(2))


# -- acoustic tensor --------------------------------------------------------------------------
def test_acoustic_directions_are_unit_vectors():
    assert np.array_equal(acoustic_directions(1, 10), [[1.0]])
    for d, n in ((2, 180), (3, 4 * 180)):
        N = acoustic_directions(d, 180)
        assert N.shape == (n, d)
        assert np.allclose(np.linalg.norm(N, axis=1), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("d", [2, 3])
def test_acoustic_tensor_of_an_isotropic_tangent_has_eigenvalues_mu_and_lambda_plus_2mu(d):
    """Q(N) = (lambda + mu) N x N + mu I: N is the longitudinal eigenvector (lambda + 2 mu).

    Every direction normal to it is transverse (mu).
    """
    lmbda, mu = 1.5, 0.4
    N = acoustic_directions(d, 30)
    Q = acoustic_tensor(_isotropic(lmbda, mu, d), N)
    assert Q.shape == (len(N), d, d)
    expected = (lmbda + mu) * np.einsum("ni,nk->nik", N, N) + mu * np.eye(d)
    assert np.allclose(Q, expected, rtol=0, atol=1e-14)
    ev = np.linalg.eigvalsh(Q)
    assert np.allclose(ev[:, :-1], mu, rtol=0, atol=1e-14)
    assert np.allclose(ev[:, -1], lmbda + 2 * mu, rtol=0, atol=1e-14)
    # batched tangents give the same per point
    Qb = acoustic_tensor(np.array([_isotropic(lmbda, mu, d)] * 2), N)
    assert np.allclose(Qb, Q[None], rtol=0, atol=1e-15)


@pytest.mark.parametrize("d", [2, 3])
def test_acoustic_min_eigenvalue_of_an_isotropic_tangent_is_mu(d):
    """The smallest eigenvalue of Q(N) = (lambda + mu) N x N + mu I over every unit N is mu.

    The eigenvalues are mu (twice in 3D) and lambda + 2 mu, so the minimum over N is mu when
    lambda + 2 mu > mu, and it is negative (the material lost strong ellipticity) when mu < 0.
    """
    cases = [(1.5, 1.0), (0.0, 0.3), (-0.2, 0.5), (2.0, -0.1), (0.5, -1e-3)]
    A = np.array([_isotropic(lm, mu, d) for lm, mu in cases])
    got = acoustic_min_eigenvalue(A)
    assert np.allclose(got, [mu for _, mu in cases], rtol=0, atol=1e-13)
    assert (got[3:] < 0).all() and (got[:3] > 0).all()
    # lambda + 2 mu < mu (lambda < -mu): the longitudinal wave is the soft one
    soft = acoustic_min_eigenvalue(np.array([_isotropic(-1.5, 1.0, d), _isotropic(-3.0, 1.0, d)]))
    assert np.allclose(soft, [0.5, -1.0], rtol=0, atol=1e-13)


def test_acoustic_min_eigenvalue_finds_the_soft_direction_of_an_anisotropic_tangent():
    """Cubic 2D tangent rotated by 30 deg: the minimum over N does not change.

    Q is invariant under rotating A and N together, so the minimum must not change (the scan
    covers every direction).
    """
    c11, c12, c44 = 1.0, 0.6, 0.1  # eV/Å³; soft shear
    A = np.zeros((2, 2, 2, 2))
    A[0, 0, 0, 0] = A[1, 1, 1, 1] = c11
    A[0, 0, 1, 1] = A[1, 1, 0, 0] = c12
    A[0, 1, 0, 1] = A[1, 0, 1, 0] = A[0, 1, 1, 0] = A[1, 0, 0, 1] = c44
    t = np.radians(30.0)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    Ar = np.einsum("ai,bj,ck,dl,ijkl->abcd", R, R, R, R, A)
    lam = acoustic_min_eigenvalue(np.array([A, Ar]), n_angles=3600)
    assert lam[0] == pytest.approx(c44, rel=1e-12)  # along a cube axis: Q = diag(c11, c44)
    assert lam[1] == pytest.approx(c44, rel=1e-5)


# -- units ------------------------------------------------------------------------------------
def test_unit_constants_are_the_values_lammps_and_si_use():
    # LAMMPS metal: 1 eV/Å³ = 1.6021766208e-19 J / 1e-30 m³ (CODATA 2014 digits)
    assert EV_PER_A3_IN_GPA == 160.21766208
    assert EV_PER_A3_IN_GPA == pytest.approx(EV_IN_J / 1e-30 / 1e9, rel=1e-8)
    assert MPA_SQRT_M_IN_EV_A3_SQRT_A * EV_PER_A3_IN_GPA == pytest.approx(100.0, rel=1e-15)
    assert EV_PER_A52_IN_MPA_SQRT_M == pytest.approx(1.602176634, rel=1e-15)
    # the two K conversions agree to the two CODATA e's (6e-9)
    assert EV_PER_A52_IN_MPA_SQRT_M * MPA_SQRT_M_IN_EV_A3_SQRT_A == pytest.approx(1, rel=1e-8)
    # amu Å²/ps² in eV (LAMMPS mvv2e), from 1.66053906660e-27 kg and e
    assert MVV2E == pytest.approx(1.66053906660e-27 * 1e-20 / 1e-24 / EV_IN_J, rel=1e-7)
    # LAMMPS's funcfl literal, not CODATA (27.211386 eV * 0.529177 Å = 14.39965)
    assert HARTREE_BOHR_IN_EV_A == 27.2 * 0.529
