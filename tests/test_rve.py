"""Atomistic RVE and Cauchy-Born material points: consistent tangent, patch test, errors."""

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.cauchy_born import CauchyBorn
from atomistic.lattice import crystal
from atomistic.relax import relax
from atomistic.rve import AtomisticRVE
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import MaterialPoint, PointMaterial, PointModel
from fe2qc.tensors import embed_F

F_TEST = np.eye(3) + np.array([[0.012, 0.004, -0.002], [0.003, -0.006, 0.001],
                               [-0.001, 0.002, 0.008]])


@pytest.fixture(scope="module")
def cu(cu_u3):
    return cu_u3


@pytest.fixture(scope="module")
def vacancy_rve(cu_vacancy_rve):
    return cu_vacancy_rve


def _fd_tangent(rve, F, u0, h=1e-5):
    A = np.zeros((3, 3, 3, 3))
    for k in range(3):
        for L in range(3):
            Fp, Fm = F.copy(), F.copy()
            Fp[k, L] += h
            Fm[k, L] -= h
            A[:, :, k, L] = (rve.evaluate_one(Fp, u0, tangent=False).P
                             - rve.evaluate_one(Fm, u0, tangent=False).P) / (2 * h)
    return A


def test_relaxed_tangent_matches_finite_differences_with_vacancy(vacancy_rve):
    s = vacancy_rve.evaluate_one(F_TEST)
    assert s.max_force < 1e-10
    A_fd = _fd_tangent(vacancy_rve, F_TEST, s.u_nc)
    scale = np.abs(A_fd).max()
    assert np.abs(s.A - A_fd).max() < 1e-5 * scale
    # the unrelaxed (Born) tangent at the same state visibly misses the relaxation
    born = vacancy_rve.evaluate_one(F_TEST, s.u_nc, relaxed=False)
    assert np.abs(born.A - A_fd).max() > 1e-3 * scale
    # major symmetry of the consistent tangent (it is a Hessian of W)
    assert np.allclose(s.A, s.A.transpose(2, 3, 0, 1), atol=1e-9 * scale)


def test_rve_stress_is_derivative_of_relaxed_energy_density(vacancy_rve):
    s = vacancy_rve.evaluate_one(F_TEST)
    h = 1e-6
    for k, L in [(0, 0), (0, 1), (2, 1)]:
        Fp, Fm = F_TEST.copy(), F_TEST.copy()
        Fp[k, L] += h
        Fm[k, L] -= h
        dW = (vacancy_rve.evaluate_one(Fp, s.u_nc, tangent=False).W
              - vacancy_rve.evaluate_one(Fm, s.u_nc, tangent=False).W) / (2 * h)
        assert dW == pytest.approx(s.P[k, L], abs=1e-6 * np.abs(s.P).max())


def test_patch_perfect_lattice_relaxes_to_zero_force_and_gives_cauchy_born_stress(cu, cu_u3_a0):
    rve = AtomisticRVE(cu, crystal("fcc", cu_u3_a0, size=(3, 3, 3)))
    cb = CauchyBorn(cu, "fcc", cu_u3_a0)
    rng = np.random.default_rng(5)
    for F in [np.eye(3), np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))]:
        s = rve.evaluate_one(F)
        conf = rve.deformed(F, s.u_nc)
        assert Calculator(cu).compute(conf).max_force < 1e-10
        P_cb, A_cb, W_cb = cb.evaluate_one(F)
        assert np.allclose(s.P, P_cb, atol=1e-10 * max(1e-3, np.abs(P_cb).max()))
        assert np.allclose(s.A, A_cb, atol=1e-9 * np.abs(A_cb).max())


def test_cauchy_born_stress_and_tangent_are_derivatives_of_energy(cu, cu_u3_a0):
    cb = CauchyBorn(cu, "fcc", cu_u3_a0)
    F = F_TEST
    P, A, _ = cb.evaluate_one(F)
    h = 1e-6
    for k in range(3):
        for L in range(3):
            Fp, Fm = F.copy(), F.copy()
            Fp[k, L] += h
            Fm[k, L] -= h
            dW = (cb.evaluate_one(Fp, tangent=False)[2] - cb.evaluate_one(Fm, tangent=False)[2])
            assert dW / (2 * h) == pytest.approx(P[k, L], abs=1e-6 * np.abs(P).max())
            dP = (cb.evaluate_one(Fp)[0] - cb.evaluate_one(Fm)[0]) / (2 * h)
            assert np.allclose(dP, A[:, :, k, L], atol=1e-6 * np.abs(A).max())


def test_plane_strain_rve_is_the_in_plane_block_of_3d(vacancy_rve, cu):
    F2 = F_TEST[:2, :2]
    rve2 = AtomisticRVE(cu, vacancy_rve.reference, dim=2, fmax=1e-11)
    rve2.e_ref = vacancy_rve.e_ref
    P2, A2 = PointMaterial(rve2).evaluate(F2[None])
    F3 = embed_F(F2)
    s = vacancy_rve.evaluate_one(F3)
    assert np.allclose(P2[0], s.P[:2, :2], atol=1e-12)
    assert np.allclose(A2[0], s.A[:2, :2, :2, :2], atol=1e-9 * np.abs(s.A).max())


def test_material_point_protocol_and_warm_start(vacancy_rve, cu, cu_u3_a0):
    assert isinstance(vacancy_rve, PointModel)
    assert isinstance(PointMaterial(vacancy_rve), MaterialPoint)
    assert isinstance(CauchyBorn(cu, "fcc", cu_u3_a0), MaterialPoint)
    assert isinstance(CauchyBorn(cu, "fcc", cu_u3_a0), PointModel)
    rve = PointMaterial(AtomisticRVE(cu, vacancy_rve.reference, fmax=1e-10))
    F = np.stack([F_TEST, np.eye(3)])
    rve.evaluate(F)
    cold = rve.last_work.copy()
    rve.commit()
    rve.evaluate(F)  # the same F again, warm-started from the committed state
    assert rve.last_work[0] < cold[0]
    assert rve.last_work[0] == 0
    rve.revert()


def test_bad_deformation_gradients_are_refused(vacancy_rve):
    F = np.eye(3)
    F[0, 0] = -1.0
    material = PointMaterial(vacancy_rve)
    with pytest.raises(InputError, match="det F"):
        material.evaluate(F[None])
    with pytest.raises(InputError, match="NaN"):
        material.evaluate(np.full((1, 3, 3), np.nan))
    with pytest.raises(InputError, match="shape"):
        material.evaluate(np.eye(2)[None])
    with pytest.raises(InputError, match="det F"):
        vacancy_rve.evaluate_point(F, vacancy_rve.initial_state())


def test_relaxation_reports_non_convergence(cu, cu_u3_a0):
    conf = crystal("fcc", cu_u3_a0, size=(3, 3, 3))
    conf.positions_nc += np.random.default_rng(1).normal(0, 0.1, conf.positions_nc.shape)
    calc = Calculator(cu)
    for method in ("fire", "lbfgs", "newton"):
        with pytest.raises(CalculationFailed, match="did not reach"):
            relax(conf, calc, method=method, fmax=1e-12, max_iter=2)
    with pytest.raises(InputError, match="unknown relaxation method"):
        relax(conf, calc, method="bfgs-magic")


@pytest.mark.parametrize("method", ["fire", "lbfgs", "newton"])
def test_relaxation_methods_reach_the_same_vacancy_energy(cu, method, vacancy_rve):
    conf = vacancy_rve.reference.copy()
    conf.positions_nc += np.random.default_rng(2).normal(0, 0.02, conf.positions_nc.shape)
    fmax = {"fire": 1e-5, "lbfgs": 1e-6, "newton": 1e-10}[method]
    r = relax(conf, Calculator(cu), method=method, fmax=fmax)
    assert r.converged and r.max_force <= fmax
    assert r.energy == pytest.approx(vacancy_rve.e_ref, abs=1e-7)
