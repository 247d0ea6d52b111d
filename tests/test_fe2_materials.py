"""Analytic material points: P and A against finite differences, symmetry, objectivity."""

import numpy as np
import pytest

from fe2.materials import NeoHookean, StVenantKirchhoff
from fe2qc.errors import InputError
from fe2qc.material import MaterialPoint, PointModel

LAWS = [NeoHookean, StVenantKirchhoff]


def _random_F(dim, n=5, seed=0, amplitude=0.3):
    rng = np.random.default_rng(seed)
    F = np.eye(dim) + amplitude * rng.uniform(-1, 1, (n, dim, dim))
    assert (np.linalg.det(F) > 0).all()
    return F


def _central_differences_F(fn, F_qij, h=1e-6):
    """``d fn(F) / dF_kl`` by central differences of step ``h``, as ``out[..., k, l]``."""
    dim = F_qij.shape[-1]
    out = None
    for k in range(dim):
        for l in range(dim):
            dF = np.zeros((dim, dim))
            dF[k, l] = h
            d = (fn(F_qij + dF) - fn(F_qij - dF)) / (2 * h)
            if out is None:
                out = np.zeros(d.shape + (dim, dim))
            out[..., k, l] = d
    return out


def _random_rotation(dim, seed=1):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    if np.linalg.det(Q) < 0:
        Q[:, 0] *= -1
    return Q


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_material_satisfies_protocol(law, dim):
    assert isinstance(law(1.0, 2.0, dim), MaterialPoint)
    assert isinstance(law(1.0, 2.0, dim), PointModel)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_stress_is_energy_derivative_by_central_differences(law, dim):
    mat = law(1.3, 2.1, dim)
    F_qij = _random_F(dim)
    P_qij, _ = mat.evaluate(F_qij)
    P_fd = _central_differences_F(mat.energy_density, F_qij)
    assert np.abs(P_fd - P_qij).max() <= 1e-6 * np.abs(P_qij).max()


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_tangent_is_stress_derivative_by_central_differences(law, dim):
    mat = law(1.3, 2.1, dim)
    F_qij = _random_F(dim, seed=3)
    _, A_qijkl = mat.evaluate(F_qij)
    assert A_qijkl.shape == (len(F_qij),) + (dim,) * 4
    A_fd = _central_differences_F(lambda F: mat.evaluate(F)[0], F_qij)
    assert np.abs(A_fd - A_qijkl).max() <= 1e-6 * np.abs(A_qijkl).max()


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_tangent_has_major_symmetry_of_a_hyperelastic_law(law, dim):
    _, A_qijkl = law(1.0, 3.0, dim).evaluate(_random_F(dim, seed=7))
    assert np.allclose(A_qijkl, np.einsum("qijkl->qklij", A_qijkl), rtol=0, atol=1e-12)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_energy_and_stress_are_objective_under_rotation(law, dim):
    mat = law(1.0, 3.0, dim)
    F_qij = _random_F(dim, seed=11)
    Q = _random_rotation(dim)
    QF_qij = np.einsum("ik,qkj->qij", Q, F_qij)
    assert np.allclose(mat.energy_density(QF_qij), mat.energy_density(F_qij), atol=1e-13)
    P_qij, A_qijkl = mat.evaluate(F_qij)
    QP_qij, QA_qijkl = mat.evaluate(QF_qij)
    # P(QF) = Q P(F); A(QF)_ijkl = Q_im Q_kn A(F)_mjnl
    assert np.allclose(QP_qij, np.einsum("ik,qkj->qij", Q, P_qij), atol=1e-12)
    assert np.allclose(QA_qijkl, np.einsum("im,kn,qmjnl->qijkl", Q, Q, A_qijkl), atol=1e-12)
    # Cauchy stress is symmetric (balance of angular momentum)
    sigma_qij = np.einsum("qik,qjk->qij", P_qij, F_qij)
    assert np.allclose(sigma_qij, np.swapaxes(sigma_qij, 1, 2), atol=1e-12)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("dim", [2, 3])
def test_reference_state_is_stress_free_with_isotropic_linear_tangent(law, dim):
    mu, lmbda = 1.7, 2.9
    P_qij, A_qijkl = law(mu, lmbda, dim).evaluate(np.eye(dim)[None])
    assert np.allclose(P_qij, 0, atol=1e-14)
    eye = np.eye(dim)
    C = (
        lmbda * np.einsum("ij,kl->ijkl", eye, eye)
        + mu * np.einsum("ik,jl->ijkl", eye, eye)
        + mu * np.einsum("il,jk->ijkl", eye, eye)
    )
    assert np.allclose(A_qijkl[0], C, atol=1e-13)


@pytest.mark.parametrize("law", LAWS)
def test_inverted_deformation_is_refused(law):
    mat = law(1.0, 1.0, 2)
    F_qij = np.stack([np.eye(2), np.diag([1.0, -0.5])])
    with pytest.raises(InputError, match="det F"):
        mat.evaluate(F_qij)
    with pytest.raises(InputError):
        mat.evaluate(np.eye(3)[None])  # wrong dimension


def test_invalid_parameters_are_refused():
    with pytest.raises(InputError):
        NeoHookean(-1.0, 1.0, 2)
    with pytest.raises(InputError):
        NeoHookean(1.0, 1.0, 4)
