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


def _random_F(n, amplitude, seed):
    """``n`` deformation gradients with ``|F - I| <= amplitude`` entrywise and det F > 0."""
    F = np.eye(3) + np.random.default_rng(seed).uniform(-amplitude, amplitude, (n, 3, 3))
    assert (np.linalg.det(F) > 0).all()
    return F


def test_perfect_lattice_rve_material_is_cauchy_born(cu, cu_u3_a0):
    """A perfect Bravais RVE has nothing to relax: W, P, A are Cauchy-Born's to round-off.

    Cauchy-Born's W is absolute (the cohesive energy included), the RVE's relative to its
    reference cell: the offset is ``W_ref = e_ref / V0 = W_cb(I)``, the cohesive energy per
    volume. Both count the same volume per site.
    """
    rve = AtomisticRVE.from_lattice(cu, "fcc", cu_u3_a0, size=(2, 2, 2), multiple_images=True)
    cb = CauchyBorn(cu, "fcc", cu_u3_a0, dim=3)
    mat = PointMaterial(rve)
    assert rve.n_sites == rve.n_atoms == 32
    assert mat.site_volume == pytest.approx(cb.site_volume, rel=1e-12)
    assert cb.site_volume == pytest.approx(cu_u3_a0 ** 3 / 4, rel=1e-12) == cb.V0
    W_cb_I = cb.energy_density(np.eye(3)[None])[0]
    assert rve.W_ref == pytest.approx(W_cb_I, rel=1e-12)
    assert W_cb_I * cb.site_volume == pytest.approx(-3.54, abs=0.01)  # Cu_u3 cohesive energy
    F = np.concatenate([np.eye(3)[None], _random_F(5, 0.02, 11)])
    W, P, A = mat.energy_stress_tangent(F)
    W_cb, P_cb, A_cb = cb.energy_stress_tangent(F)
    assert not mat.last_work.any()  # no relaxation: the forces vanish by symmetry
    assert np.abs(W + rve.W_ref - W_cb).max() < 1e-10 * np.abs(W_cb).max()
    assert np.abs(P - P_cb).max() < 1e-10 * np.abs(P_cb).max()
    assert np.abs(A - A_cb).max() < 1e-10 * np.abs(A_cb).max()
    assert np.array_equal(cb.energy_density(F), W_cb)
    assert all(np.array_equal(x, y) for x, y in zip(cb.evaluate(F), (P_cb, A_cb), strict=True))
    W2, P2, A2 = cb.energy_stress_tangent(F, tangent=False)
    assert A2 is None and np.array_equal(W2, W_cb) and np.array_equal(P2, P_cb)


def test_site_volume_counts_the_vacant_site(vacancy_rve, cu, cu_u3_a0):
    cb = CauchyBorn(cu, "fcc", cu_u3_a0)
    assert vacancy_rve.n_atoms == 107 and vacancy_rve.n_sites == 108
    assert vacancy_rve.site_volume == pytest.approx(cb.site_volume, rel=1e-12)
    assert PointMaterial(vacancy_rve).site_volume == vacancy_rve.site_volume
    cb2 = CauchyBorn(cu, "triangular", 2.5, dim=2)  # a layer: unit thickness
    assert cb2.site_volume == cb2.V0 == pytest.approx(2.5 ** 2 * np.sqrt(3) / 2, rel=1e-12)
    with pytest.raises(InputError, match="n_sites"):
        AtomisticRVE(cu, vacancy_rve.reference, n_sites=100)


def test_vacancy_rve_energy_stress_tangent_is_one_evaluation_with_consistent_w(vacancy_rve):
    """One evaluation gives what energy_density and evaluate give, and P = dW/dF."""
    F = np.stack([F_TEST, np.eye(3) + 0.01 * np.diag([1.0, -0.5, 0.3])])
    mat, ref = PointMaterial(vacancy_rve), PointMaterial(vacancy_rve)
    W, P, A = mat.energy_stress_tangent(F)
    P0, A0 = ref.evaluate(F)
    assert np.array_equal(ref.energy_density(F), W)  # both relax from the committed states
    assert np.array_equal(P, P0) and np.array_equal(A, A0)
    assert all(np.array_equal(a, b)
               for a, b in zip(mat.history.trial, ref.history.trial, strict=True))
    assert (mat.last_work > 0).all() and not np.any(mat.history.as_array())  # trial only
    mat.commit()
    assert np.array_equal(mat.history.as_array(), np.stack(ref.history.trial))
    # P = dW/dF by central differences of energy_stress_tangent's W, warm-started from the
    # committed (relaxed) states; each perturbation a batch of its own
    h = 1e-6
    for k, L in [(0, 0), (0, 1), (1, 2), (2, 0), (2, 2)]:
        E = np.zeros((3, 3))
        E[k, L] = h
        Wp = mat.energy_stress_tangent(F + E, tangent=False)[0]
        Wm = mat.energy_stress_tangent(F - E, tangent=False)[0]
        dW = (Wp - Wm) / (2 * h)
        assert np.abs(dW - P[:, k, L]).max() < 1e-6 * np.abs(P).max()
    mat.revert()
    assert np.array_equal(mat.history.as_array(), np.stack(ref.history.trial))


def test_perfect_layer_rve_counts_cauchy_borns_unit_thickness():
    """A triangular-lattice RVE (a layer, vacuum along z) is per 1 Å of thickness, as CB."""
    from coupling.qc.setups import default_setup

    pot, lattice, a0 = default_setup(2)
    rve = AtomisticRVE.from_lattice(pot, lattice, a0, size=(2, 1, 1), dim=2,
                                    multiple_images=True)
    cb = CauchyBorn(pot, lattice, a0, dim=2)
    assert rve.V0 == pytest.approx(rve.reference.volume / rve.reference.cell_cc[2, 2], rel=1e-14)
    assert rve.site_volume == pytest.approx(cb.site_volume, rel=1e-12)
    assert rve.W_ref == pytest.approx(cb.energy_density(np.eye(2)[None])[0], rel=1e-12)
    F = _random_F(4, 0.02, 3)[:, :2, :2]
    W, P, A = PointMaterial(rve).energy_stress_tangent(F)
    W_cb, P_cb, A_cb = cb.energy_stress_tangent(F)
    assert np.abs(W + rve.W_ref - W_cb).max() < 1e-10 * np.abs(W_cb).max()
    assert np.abs(P - P_cb).max() < 1e-10 * np.abs(P_cb).max()
    assert np.abs(A - A_cb).max() < 1e-10 * np.abs(A_cb).max()
    with pytest.raises(InputError, match="thickness"):
        AtomisticRVE(pot, rve.reference, thickness=0.0)


def test_oriented_perfect_lattice_rve_is_the_rotated_cauchy_born(cu, cu_u3_a0):
    """Rows of ``orientation`` become x, y, z: W(F) = W_cb(R^T F R), P and A rotate with R."""
    O = np.array([[1, 1, -2], [1, 1, 1], [1, -1, 0]])
    rve = AtomisticRVE.from_lattice(cu, "fcc", cu_u3_a0, size=(1, 1, 1), orientation=O,
                                    multiple_images=True)
    cb = CauchyBorn(cu, "fcc", cu_u3_a0)
    assert rve.site_volume == pytest.approx(cb.site_volume, rel=1e-12)
    R = O / np.linalg.norm(O, axis=1)[:, None]  # lattice frame -> lab frame
    F = _random_F(3, 0.02, 2)
    W, P, A = PointMaterial(rve).energy_stress_tangent(F)
    W_cb, P_cb, A_cb = cb.energy_stress_tangent(np.einsum("ai,qab,bj->qij", R, F, R))
    P_cb = np.einsum("ia,qab,jb->qij", R, P_cb, R)
    A_cb = np.einsum("ia,jb,kc,ld,qabcd->qijkl", R, R, R, R, A_cb)
    assert np.abs(W + rve.W_ref - W_cb).max() < 1e-10 * np.abs(W_cb).max()
    assert np.abs(P - P_cb).max() < 1e-10 * np.abs(P_cb).max()
    assert np.abs(A - A_cb).max() < 1e-10 * np.abs(A_cb).max()


def test_the_rve_keeps_its_lattice_and_orientation(vacancy_rve, cu, cu_u3_a0):
    for rve in (vacancy_rve, AtomisticRVE.from_lattice(
            cu, "fcc", cu_u3_a0, size=(1, 1, 1), orientation=[[1, 1, -2], [1, 1, 1], [1, -1, 0]],
            multiple_images=True)):
        info = rve.reference.info
        assert info["lattice"] == "fcc" and info["a0"] == cu_u3_a0
    assert np.array_equal(vacancy_rve.reference.info["orientation"], np.eye(3))
    assert np.array_equal(rve.reference.info["orientation"], [[1, 1, -2], [1, 1, 1], [1, -1, 0]])
