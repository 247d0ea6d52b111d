"""Linear-elastic fracture mechanics (fe2qc.lefm).

Crack-tip K fields (isotropic limit, equilibrium, traction-free faces, J-integral, sqrt(r)),
E' and Griffith's K.
"""

import numpy as np
import pytest

from fe2qc.errors import InputError
from fe2qc.lefm import (
    AnisotropicCrack,
    cubic_crack_frame_stiffness,
    cubic_stiffness,
    griffith_K,
    isotropic_K_field,
    isotropic_plane_strain_modulus,
)
from fe2qc.tensors import sym

CU = (170.0, 122.5, 75.8)  # GPa, strongly anisotropic (Zener ratio 3.2)
FRAMES = {
    "100/010": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "1-10/110": [[1, -1, 0], [1, 1, 0], [0, 0, 1]],
    "210/-120": [[2, 1, 0], [-1, 2, 0], [0, 0, 1]],  # b16, b26 != 0
}


def _iso_C(lam, mu):
    d = np.eye(3)
    return (lam * np.einsum("ij,kl->ijkl", d, d)
            + mu * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d)))


def _grad(field, X, h):
    """du_i/dx_j (n, 2, 2) by central differences."""
    g = np.empty((len(X), 2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        g[:, :, j] = (field(X + e) - field(X - e)) / (2 * h)
    return g


def _stress(C, g):
    """In-plane plane-strain stress sigma_ij (i, j in x, y) from the displacement gradient."""
    return np.einsum("ijkl,nkl->nij", C[:2, :2, :2, :2], g)


def _cases():
    lam, mu = 60.0, 30.0
    iso = (_iso_C(lam, mu), lambda K, X, tip=(0, 0): isotropic_K_field(K, X, lam=lam, mu=mu,
                                                                          tip=tip),
           isotropic_plane_strain_modulus(lam, mu))
    out = {"isotropic": iso}
    for name, O in FRAMES.items():
        C = cubic_crack_frame_stiffness(*CU, O)
        ac = AnisotropicCrack(C)
        out["Cu " + name] = (C, ac.displacements, ac.plane_strain_modulus)
    return out


CASES = _cases()


def test_compliance_voigt_factors():
    """The Voigt compliance s (inverse Voigt stiffness) has factors 1, 2, 4 relative to S_ijkl."""
    C = cubic_crack_frame_stiffness(*CU, FRAMES["210/-120"])
    ac = AnisotropicCrack(C)
    S = ac.compliance_tensor()
    I4 = 0.5 * (np.einsum("ik,jl->ijkl", np.eye(3), np.eye(3))
                + np.einsum("il,jk->ijkl", np.eye(3), np.eye(3)))
    assert np.allclose(np.einsum("ijkl,klmn->ijmn", S, C), I4, atol=1e-12)
    # cube frame: s44 = 1/C44 = 4 S_yzyz; isotropic b22 = (1 - nu^2)/E
    ac0 = AnisotropicCrack(cubic_stiffness(*CU))
    assert ac0.s[3, 3] == pytest.approx(1 / CU[2], rel=1e-12)
    assert ac0.compliance_tensor()[1, 2, 1, 2] == pytest.approx(0.25 / CU[2], rel=1e-12)
    lam, mu = 60.0, 30.0
    E, nu = mu * (3 * lam + 2 * mu) / (lam + mu), lam / (2 * (lam + mu))
    iso = AnisotropicCrack(_iso_C(lam, mu))
    assert iso.b[1, 1] == pytest.approx((1 - nu**2) / E, rel=1e-12)
    assert iso.b[5, 5] == pytest.approx(1 / mu, rel=1e-12)
    assert iso.mu == pytest.approx([1j, 1j], abs=1e-12)


@pytest.mark.parametrize("aniso", [1e-6, 0.0])
def test_nearly_isotropic_cubic_reproduces_isotropic_field(aniso):
    C11, C12 = CU[0], CU[1]
    mu, lam = (C11 - C12) / 2, C12
    ac = AnisotropicCrack(cubic_stiffness(C11, C12, mu * (1 + aniso)))
    th = np.linspace(-np.pi, np.pi, 41)
    X = 3.0 * np.c_[np.cos(th), np.sin(th)]
    ui = isotropic_K_field(2.0, X, lam=lam, mu=mu)
    ua = ac.displacements(2.0, X)
    assert np.abs(ua - ui).max() < 1e-5 * np.abs(ui).max()
    Ep = isotropic_plane_strain_modulus(lam, mu)
    assert ac.plane_strain_modulus == pytest.approx(Ep, rel=1e-5)
    # a real anisotropy is seen (the comparison can fail)
    ac3 = AnisotropicCrack(cubic_stiffness(C11, C12, mu * 1.01))
    assert np.abs(ac3.displacements(2.0, X) - ui).max() > 1e-4 * np.abs(ui).max()


@pytest.mark.parametrize("name", list(CASES))
def test_field_is_in_equilibrium_and_faces_are_traction_free(name):
    C, field, _ = CASES[name]
    K = 1.0
    u = lambda X: field(K, X)  # noqa: E731
    # div sigma = 0 at points away from the tip and the crack faces
    th = np.array([-2.5, -1.3, -0.4, 0.0, 0.7, 1.9, 2.8])
    X = 1.0 * np.c_[np.cos(th), np.sin(th)]
    h = 1e-3
    sig = lambda Y: _stress(C, _grad(u, Y, 1e-6))  # noqa: E731
    div = np.zeros((len(X), 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        div += (sig(X + e) - sig(X - e))[:, :, j] / (2 * h)
    scale = np.abs(sig(X)).max()  # |sigma| / r at r = 1
    assert np.abs(div).max() < 1e-5 * scale
    # the same check on a field that is not in equilibrium fails
    bad = lambda Y: _stress(C, _grad(lambda Z: u(Z) * (1 + 0.1 * Z[:, :1]), Y, 1e-6))  # noqa
    divb = sum((bad(X + e) - bad(X - e))[:, :, j] / (2 * h)
               for j, e in enumerate(np.eye(2) * h))
    assert np.abs(divb).max() > 1e-2 * scale
    # traction-free faces: sigma_yy = sigma_xy = 0 on y = +0 (theta = pi) and y = -0
    hy = 1e-6
    for x in (-0.5, -1.0, -2.0):
        for side in (1.0, -1.0):
            def at(dy, dx=0.0, x=x, side=side):
                return u(np.array([[x + dx, side * 0.0 + side * dy]]))[0]
            g = np.empty((2, 2))
            g[:, 0] = (at(0.0, hy) - at(0.0, -hy)) / (2 * hy)
            # one-sided second-order difference away from the face
            g[:, 1] = side * (-3 * at(0.0) + 4 * at(hy) - at(2 * hy)) / (2 * hy)
            s = _stress(C, g[None])[0]
            assert abs(s[1, 1]) < 1e-6 * scale and abs(s[0, 1]) < 1e-6 * scale


@pytest.mark.parametrize("name", list(CASES))
def test_J_integral_equals_K2_over_Eprime(name):
    C, field, Ep = CASES[name]
    K, r = 1.7, 2.0
    x, w = np.polynomial.legendre.leggauss(80)
    th = np.concatenate([-np.pi / 2 * (1 - x), np.pi / 2 * (1 + x)])  # (-pi, 0) and (0, pi)
    wt = np.concatenate([w, w]) * np.pi / 2
    n = np.c_[np.cos(th), np.sin(th)]
    g = _grad(lambda Y: field(K, Y), r * n, 1e-6 * r)
    s = _stress(C, g)
    eps = sym(g)
    W = 0.5 * np.einsum("nij,nij->n", s, eps)
    integrand = W * n[:, 0] - np.einsum("nij,nj,ni->n", s, n, g[:, :, 0])
    J = float(np.sum(wt * integrand * r))
    assert J == pytest.approx(K**2 / Ep, rel=1e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_sqrt_r_scaling_and_continuity(name):
    _, field, _ = CASES[name]
    th = np.linspace(-np.pi, np.pi, 20001)
    X = np.c_[np.cos(th), np.sin(th)]
    u1 = field(1.0, X)
    assert np.allclose(field(1.0, 4.0 * X), 2.0 * u1, rtol=1e-13, atol=1e-14)
    assert np.allclose(field(3.0, X), 3.0 * u1, rtol=1e-13, atol=1e-14)
    # (the end points are left out: shifting rounds their y = ±1e-16 to 0, i.e. the upper face)
    shifted = field(1.0, X[1:-1] + [5.0, -2.0], tip=(5.0, -2.0))
    assert np.allclose(shifted, u1[1:-1], rtol=1e-12, atol=1e-14)
    # continuous on (-pi, pi), open crack: the faces separate (u_y jump > 0), no overlap
    jumps = np.abs(np.diff(u1, axis=0)).max()
    assert jumps < 1e-3 * np.abs(u1).max()
    assert u1[-1, 1] > 0 > u1[0, 1]


def test_griffith_K_and_bad_inputs():
    assert griffith_K(0.5, 4.0) == pytest.approx(2.0)
    with pytest.raises(InputError, match="gamma"):
        griffith_K(-1.0, 1.0)
    with pytest.raises(InputError, match="3x3x3x3"):
        AnisotropicCrack(np.eye(6))
    with pytest.raises(InputError, match="mirror plane"):
        AnisotropicCrack(cubic_crack_frame_stiffness(*CU, [[1, -1, 0], [1, 1, 1], [-1, -1, 2]]))
    with pytest.raises(InputError, match="orthogonal"):
        cubic_crack_frame_stiffness(*CU, [[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="mu > 0"):
        isotropic_K_field(1.0, np.zeros((1, 2)), lam=1.0, mu=-1.0)
