"""Atomistic RVE material points in the QC continuum (issue 11): perfect-lattice RVEs.

A perfect Bravais RVE relaxes nothing under a homogeneous F, so as the continuum's material
point it must reproduce the Cauchy-Born continuum: the patch test of the consistent schemes
holds (forces at round-off under uniform F), and at a non-uniform displacement the residual and
the Jacobian equal those of the Cauchy-Born continuum of the same lattice. An RVE of another
lattice constant is refused before any work (its volume per site is not the QC lattice's).

Through the QC solve: a relaxation around a vacancy with perfect-lattice RVE points is the
Cauchy-Born one, and an RVE material's history follows the solver's commit/revert rule (a
converged relaxation commits the RVE states of its converged displacements, a failed one leaves
the committed states as they were, and the next relaxation warm-starts from them).
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.rve import AtomisticRVE
from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.patch import PATCH_TOLERANCE
from coupling.qc.setups import default_setup
from coupling.qc.solver import relax
from coupling.qc.system import build_system
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import PointMaterial

#: (domain radius, atomistic radius) in units of a0 for the 2D lattice, in Å for the slab
_SIZES = {2: (20.0, 4.01, (2, 1, 1)), 3: (42.0, 8.0, (2, 2, 2))}


def _system(dim, scheme):
    pot, lattice, a0 = default_setup(dim)
    R, Ra, size = _SIZES[dim]
    scale = a0 if dim == 2 else 1.0
    system = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R * scale),
                          atomistic=Disc(0.0, 0.0, Ra * scale), scheme=scheme)
    return system, pot, lattice, a0, size


def _rve(pot, lattice, a0, size):
    return AtomisticRVE.from_lattice(pot, lattice, a0, size=size, dim=3, multiple_images=True)


def _uniform_F(dim, seed=7, amplitude=0.02):
    rng = np.random.default_rng(seed)
    F = np.eye(3)
    k = 2 if dim == 2 else 3
    F[:k, :k] += amplitude * rng.uniform(-1, 1, (k, k))
    if dim == 3:  # the slab is one period thick: keep the z column of F at identity
        F[:, 2] = [0.0, 0.0, 1.0]
    return F


# every scheme in 2D runs in `make test`; the 3D slab (8-10 s a scheme) in `make test-slow`
# (the dispatched patch tests of tests/test_qc_dispatch.py run the slab under MPI in make test)
@pytest.mark.parametrize("dim, scheme", [
    (2, "qcf"), (2, "gfc"), (2, "bgfc"), pytest.param(3, "bgfc", marks=pytest.mark.slow),
    pytest.param(3, "qcf", marks=pytest.mark.slow), pytest.param(3, "gfc", marks=pytest.mark.slow)])
def test_patch_test_with_perfect_lattice_rve_points(dim, scheme):
    system, pot, lattice, a0, size = _system(dim, scheme)
    rve = _rve(pot, lattice, a0, size)
    for F in (np.eye(3), _uniform_F(dim)):
        material = PointMaterial(rve)
        model = QCModel(system, scheme, F_ref=F, material=material)
        U = system.homogeneous(F)
        if scheme == "gfc":
            model.dead_load = model.ghost_force(U)
        f = model.node_forces(U)
        assert np.linalg.norm(f, axis=1).max() <= PATCH_TOLERANCE
        assert material.last_work.sum() == 0  # a perfect lattice relaxes nothing


@pytest.mark.parametrize("dim", [2])  # the slab: 35 s here, covered by its patch test
def test_perfect_rve_continuum_equals_cauchy_born(dim):
    system, pot, lattice, a0, size = _system(dim, "bqce")
    rve_model = QCModel(system, "bqce", material=PointMaterial(_rve(pot, lattice, a0, size)))
    cb_model = QCModel(system, "bqce")
    rng = np.random.default_rng(3)
    U = system.homogeneous(_uniform_F(dim)) + 0.01 * rng.standard_normal(
        (system.n_nodes, system.ncomp))
    g_rve, g_cb = rve_model.residual(U), cb_model.residual(U)
    assert np.abs(g_rve - g_cb).max() <= 1e-10 * np.abs(g_cb).max()
    K_rve, K_cb = rve_model.jacobian(U), cb_model.jacobian(U)
    assert abs(K_rve - K_cb).max() <= 1e-10 * abs(K_cb).max()


def test_rve_of_another_lattice_constant_is_refused():
    system, pot, lattice, a0, size = _system(2, "bgfc")
    rve = _rve(pot, lattice, 1.01 * a0, size)
    with pytest.raises(InputError, match="volume per site"):
        QCModel(system, "bgfc", material=PointMaterial(rve))


def _small_vacancy_system(scheme):
    """A tiny 2D vacancy system (few cells: every Gauss point is an RVE evaluation)."""
    pot, lattice, a0 = default_setup(2)
    R = 11.0 if scheme.startswith("b") else 10.0
    system = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R * a0),
                          atomistic=Disc(0.0, 0.0, 2.01 * a0), scheme=scheme,
                          vacancies=[[0.0, 0.0]], handshake=pot.cutoff, growth=0.8,
                          resolve_clamp=False, clamp_width=5.6)
    return system, pot, lattice, a0


#: largest nodal displacement difference (Å) between the perfect-RVE and the Cauchy-Born
#: relaxations (measured: 1e-15 Å; the RVE relaxes nothing, so only round-off differs)
_PERFECT_RVE_U_TOLERANCE = 1e-13


@pytest.mark.parametrize("scheme", ["bgfc", "qcf"])
def test_vacancy_relaxation_with_perfect_rve_points_is_the_cauchy_born_one(scheme):
    system, pot, lattice, a0 = _small_vacancy_system(scheme)
    F = np.diag([1.01, 0.995, 1.0])
    U0 = system.homogeneous(F)
    U_cb, rep_cb = relax(QCModel(system, scheme, F_ref=F), U0, tol=1e-10)
    material = PointMaterial(_rve(pot, lattice, a0, (2, 1, 1)))
    U_rve, rep_rve = relax(QCModel(system, scheme, F_ref=F, material=material), U0, tol=1e-10)
    assert rep_cb.converged and rep_rve.converged
    assert np.abs(U_cb - U0).max() > 1e-3  # the vacancy relaxes
    assert np.abs(U_rve - U_cb).max() <= _PERFECT_RVE_U_TOLERANCE
    assert material.step_work_q.sum() == 0  # a perfect lattice relaxes nothing


def _states(material):
    return [np.array(s) for s in material.committed_states]


def test_rve_history_is_committed_after_convergence_and_kept_after_a_failure():
    system, pot, lattice, a0 = _small_vacancy_system("qcf")
    rve = AtomisticRVE.from_lattice(pot, lattice, a0, size=(2, 2, 1), vacancy=True, dim=3,
                                    multiple_images=True)
    material = PointMaterial(rve)
    model = QCModel(system, "qcf", material=material)
    F1, F2 = np.diag([1.01, 0.995, 1.0]), np.diag([1.012, 0.994, 1.0])
    U1, rep = relax(model, system.homogeneous(F1), tol=1e-8)
    assert rep.converged
    # the states committed are those of the converged displacements
    assert np.array_equal(material.F_qij, model.qcf_cont.F(U1))
    # committed: every Gauss point's relaxed RVE state, not the initial (unrelaxed) one
    first = _states(material)
    assert len(first) == system.mesh.n_cells
    assert all(np.abs(st).max() > 1e-6 for st in first)
    assert material.step_work_q.sum() > 0

    # a failed relaxation (forced: one Newton iteration is not enough) reverts the trial
    U0 = U1 + system.homogeneous(F2) - system.homogeneous(F1)
    with pytest.raises(CalculationFailed):
        relax(model, U0, tol=1e-12, max_iter=1)
    model.commit()  # nothing to commit: the failed attempt's trial states are gone
    assert all(np.array_equal(a, b) for a, b in zip(_states(material), first, strict=True))

    # the next relaxation starts every RVE from the committed states: less RVE work than the
    # same relaxation from the initial states (a new material)
    U2, rep = relax(model, U0, tol=1e-8)
    assert rep.converged
    warm = material.step_work_q.sum()
    assert not all(np.array_equal(a, b) for a, b in zip(_states(material), first, strict=True))
    cold_material = PointMaterial(rve)
    U2_cold, rep = relax(QCModel(system, "qcf", material=cold_material), U0, tol=1e-8)
    assert rep.converged
    cold = cold_material.step_work_q.sum()
    assert warm < 0.8 * cold
    # the same answer either way, to the RVE relaxation's tolerance (measured: 6e-12 Å)
    assert np.abs(U2 - U2_cold).max() <= 1e-10


def test_residual_and_jacobian_at_one_displacement_share_one_rve_evaluation():
    system, pot, lattice, a0 = _small_vacancy_system("qcf")
    material = PointMaterial(_rve(pot, lattice, a0, (2, 1, 1)))
    model = QCModel(system, "qcf", material=material)
    rng = np.random.default_rng(5)
    U = system.homogeneous(_uniform_F(2)) + 0.01 * rng.standard_normal(
        (system.n_nodes, system.ncomp))
    r = model.qcf_residual(U, tangent=True)
    J = model.jacobian(U)
    assert material.calls == 1  # the Jacobian used the tangent kept with the residual
    model.revert()  # forgets the kept evaluation: the Jacobian evaluates the material again
    J_new, r_new = model.jacobian(U), model.qcf_residual(U)
    assert material.calls == 2  # and the residual after it is served from that evaluation
    assert np.array_equal(r, r_new) and (J != J_new).nnz == 0  # the same bits
