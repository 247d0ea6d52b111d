"""One history mechanism for material points: PointHistory and PointMaterial.

A point model stores no history; the batched material keeps a committed and a trial state per
point. An evaluation starts every point from its committed state, a converged step commits the
trial, a cut-back forgets it, and whatever the committed state is (changed by hand, restored
from a checkpoint) is what the next evaluation starts from. The dispatcher's material is the
same mechanism.
"""

import numpy as np
import pytest

from coupling.dispatch import DispatchedMaterial, run_worker, split_world
from fe2.materials import NeoHookean
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import (
    DelegatingMaterial,
    MaterialPoint,
    PointHistory,
    PointMaterial,
    PointModel,
    PointResult,
)
from fe2qc.mpi import mpi


class Accumulating:
    """A toy point with memory: the state adds up F_00 over the evaluations it went through.

    ``P = s F`` with ``s`` the new state, so the stress shows where the point started from;
    ``work`` is ``s``. Fails (CalculationFailed) at ``F_00 == fail_at``.
    """

    dim = 2

    def __init__(self, fail_at=None):
        self.fail_at = fail_at

    def initial_state(self):
        return np.ones(1)

    def evaluate_point(self, F, state, *, tangent=True):
        F = np.asarray(F, dtype=float)
        if F[0, 0] == self.fail_at:
            raise CalculationFailed("the toy point did not converge (injected)")
        s = np.asarray(state, dtype=float) + F[0, 0]
        A = np.zeros((2, 2, 2, 2))
        if tangent:
            A[...] = s[0]
        return PointResult(s[0] * F, A, float(s[0]), s, float(s[0]))


def _F(*f00):
    F = np.tile(np.eye(2), (len(f00), 1, 1))
    F[:, 0, 0] = f00
    return F


@pytest.fixture(params=["local", "dispatched"])
def mat(request):
    """The toy point's batched material: evaluated here, or by the dispatcher (no workers)."""
    if request.param == "local":
        return PointMaterial(Accumulating())
    return DispatchedMaterial(split_world(mpi().COMM_SELF, 0), Accumulating())


def test_point_history_commits_reverts_and_reinitialises_on_a_new_batch_size():
    h = PointHistory(lambda: np.zeros(2))
    assert h.committed is None and h.as_array() is None
    states = h.states(3)
    assert len(states) == 3 and not np.any(h.as_array()) and h.as_array().shape == (3, 2)
    h.set_trial([np.full(2, k) for k in range(3)])
    h.revert()
    assert h.trial is None and not np.any(h.as_array())
    h.set_trial([np.full(2, k) for k in range(3)])
    h.commit()
    assert h.trial is None and np.array_equal(h.as_array()[:, 0], [0, 1, 2])
    h.commit()  # nothing to commit: unchanged
    assert np.array_equal(h.as_array()[:, 0], [0, 1, 2])
    assert h.states(3) is h.committed  # the same batch: the committed states themselves
    assert not np.any(h.states(2))  # a new batch size: initial states
    h.committed = [np.zeros(1), np.zeros(2)]  # e.g. restored; sizes differ: no stacked array
    assert h.as_array() is None and h.trial is None


def test_evaluation_starts_from_the_committed_state_and_only_commit_keeps_the_trial(mat):
    assert isinstance(mat, MaterialPoint) and isinstance(Accumulating(), PointModel)
    F = _F(1.0, 2.0)
    P, A = mat.evaluate(F)
    assert np.array_equal(P[:, 0, 0], [2.0, 6.0])  # s = 1 + F00
    assert np.array_equal(mat.history.as_array()[:, 0], [1.0, 1.0])  # trial only
    mat.evaluate(F)  # a second Newton iteration: again from the committed state
    assert np.array_equal(mat.history.trial[1], [3.0])
    mat.commit()
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0])
    mat.evaluate(F)
    mat.revert()  # a cut-back: the trial is forgotten
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0])
    P, _ = mat.evaluate(F)
    assert np.array_equal(P[:, 0, 0], [3.0, 10.0])
    W = mat.energy_density(F)  # from the committed states; history and trial unchanged
    assert np.array_equal(W, [3.0, 5.0]) and np.array_equal(mat.history.trial[0], [3.0])
    assert mat.committed_states is mat.history.committed


def test_history_follows_the_committed_state_changed_by_hand_or_restored(mat):
    F = _F(1.0, 1.0, 1.0)
    mat.evaluate(F)
    mat.commit()
    st = mat.history.committed
    st[0], st[2] = st[2] + 10.0, np.zeros(1)  # change the committed states in place
    P, _ = mat.evaluate(F)
    assert np.array_equal(P[:, 0, 0], [13.0, 3.0, 1.0])
    mat.history.committed = [np.full(1, 5.0)] * 3  # e.g. from a checkpoint: the trial goes
    assert mat.history.trial is None
    mat.commit()  # nothing to commit
    P, _ = mat.evaluate(F)
    assert np.array_equal(P[:, 0, 0], [6.0, 6.0, 6.0])


def test_step_sums_cover_the_trial_evaluations_of_the_converged_step(mat):
    F = _F(1.0, 2.0)
    assert mat.step_work_q is None and mat.F_qij is None
    mat.evaluate(F)
    mat.revert()  # the cut-back's evaluations do not count
    mat.evaluate(F)
    mat.evaluate(F)
    assert np.array_equal(mat.last_work, [2.0, 3.0]) and len(mat.last_seconds) == 2
    mat.energy_density(F)  # not an evaluation of the step
    mat.commit()
    assert np.array_equal(mat.step_work_q, [4.0, 6.0])
    assert len(mat.step_seconds_q) == 2 and (mat.step_seconds_q >= 0).all()
    P, A = mat.evaluate(_F(0.5, 0.5))
    assert np.array_equal(mat.F_qij, _F(0.5, 0.5)) and mat.P_qij is P and mat.A_qijkl is A
    mat.commit()
    assert np.array_equal(mat.step_work_q, [2.5, 3.5])
    mat.commit()  # a step without evaluations has no sums
    assert mat.step_work_q is None and mat.step_seconds_q is None


def test_a_failed_point_keeps_its_error_type_and_leaves_the_history_alone():
    mat = PointMaterial(Accumulating(fail_at=3.0))
    mat.evaluate(_F(1.0, 1.0, 1.0))
    mat.commit()
    before = mat.history.as_array().copy()
    with pytest.raises(CalculationFailed, match="injected") as info:
        mat.evaluate(_F(1.0, 3.0, 1.0))
    assert info.value.point_index == 1
    assert any("material point 1 of 3" in n for n in info.value.__notes__)
    assert np.array_equal(mat.history.as_array(), before) and mat.history.trial is None
    with pytest.raises(InputError, match="det F"):
        mat.evaluate(_F(1.0, -1.0, 1.0))
    with pytest.raises(InputError, match="shape"):
        mat.evaluate(np.eye(3)[None])


def test_point_material_of_an_analytic_law_is_the_batched_law_bitwise():
    for dim in (2, 3):
        nh = NeoHookean(1.0, 1.5, dim)
        F = np.eye(dim) + 0.05 * np.random.default_rng(dim).standard_normal((6, dim, dim))
        mat = PointMaterial(nh)
        P, A = mat.evaluate(F)
        P0, A0 = nh.evaluate(F)
        assert np.array_equal(P, P0) and np.array_equal(A, A0)
        assert np.array_equal(mat.energy_density(F), nh.energy_density(F))
        assert mat.history.as_array().shape == (6, 0)  # stateless: empty states
        r = nh.evaluate_point(F[0], nh.initial_state(), tangent=False)
        assert np.array_equal(r.P, P0[0]) and not r.A.any()


def test_delegating_material_passes_every_call_to_the_inner_point():
    inner = PointMaterial(Accumulating())
    mat = DelegatingMaterial(inner)
    assert isinstance(mat, MaterialPoint) and mat.inner is inner and mat.dim == 2
    P, A = mat.evaluate(_F(2.0))
    assert P[0, 0, 0] == 6.0 and A[0, 0, 0, 0, 0] == 3.0 and inner.calls == 1  # s = 1 + 2
    mat.commit()
    assert inner.history.committed[0][0] == 3.0
    mat.evaluate(_F(1.0))
    mat.revert()
    assert inner.history.trial is None and inner.history.committed[0][0] == 3.0
    assert mat.energy_density(_F(1.0))[0] == 4.0  # from the committed state 3
    assert inner.history.committed[0][0] == 3.0


def test_rve_warm_start_follows_the_committed_state(cu_vacancy_rve):
    rve = cu_vacancy_rve
    F = np.stack([np.eye(3) + 0.005 * np.diag([1.0, -0.5, 0.2])] * 2)
    mat = PointMaterial(rve)
    mat.evaluate(F)
    cold = mat.last_work.copy()
    assert (cold > 0).all()  # the vacancy relaxes
    mat.commit()
    mat.evaluate(F)
    assert (mat.last_work == 0).all()  # relaxed already
    mat.revert()
    mat.history.committed[1] = rve.initial_state()  # point 1 back to the unrelaxed vacancy
    mat.evaluate(F)
    assert mat.last_work[0] == 0 and mat.last_work[1] == cold[1]


def test_energy_stress_tangent_is_one_trial_evaluation_with_w(mat):
    F = _F(1.0, 2.0)
    mat.evaluate(F)
    mat.commit()  # committed states 2, 3
    W0 = mat.energy_density(F)  # from the committed states: 3, 5
    P0, A0 = mat.evaluate(F)
    trial = [s.copy() for s in mat.history.trial]
    mat.revert()
    calls = mat.calls
    W, P, A = mat.energy_stress_tangent(F)
    assert mat.calls == calls + 1 and np.array_equal(mat.last_work, [3.0, 5.0])  # one pass
    assert np.array_equal(W, W0) and np.array_equal(P, P0) and np.array_equal(A, A0)
    assert all(np.array_equal(a, b) for a, b in zip(mat.history.trial, trial, strict=True))
    assert mat.P_qij is P and mat.A_qijkl is A and mat.W_q is W
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0])  # trial only
    mat.revert()  # a cut-back forgets it
    assert mat.history.trial is None and np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0])
    W, P, A = mat.energy_stress_tangent(F, tangent=False)  # e.g. a line search: no A
    assert A is None and mat.A_qijkl is None and np.array_equal(W, W0)
    mat.commit()  # the trial of the last evaluation becomes the committed state
    assert np.array_equal(mat.history.as_array()[:, 0], [3.0, 5.0])
    assert np.array_equal(mat.step_work_q, [3.0, 5.0])


def test_site_volume_is_the_point_models():
    assert PointMaterial(Accumulating()).site_volume is None
    model = Accumulating()
    model.site_volume = 11.8
    assert PointMaterial(model).site_volume == 11.8


def test_points_keep_their_history_across_batches_that_share_a_numbering(mat):
    """Two continua on overlapping cell subsets with one material: cells 0-3 and cells 3, 1."""
    W, _, _ = mat.energy_stress_tangent(_F(1.0, 1.0, 1.0, 1.0), points=np.arange(4))
    assert np.array_equal(W, [2.0] * 4)  # s = 1 + F00
    W, _, _ = mat.energy_stress_tangent(_F(2.0, 2.0), points=[3, 1])  # not a new batch
    assert np.array_equal(W, [3.0, 3.0])  # from the committed (initial) states
    assert np.array_equal(np.concatenate(mat.history.trial), [2.0, 3.0, 2.0, 3.0])  # merged
    assert np.array_equal(mat.history.as_array()[:, 0], [1.0] * 4)  # trial only
    mat.commit()  # every batch's trial since the last commit
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0, 2.0, 3.0])
    assert np.array_equal(mat.step_work_q, [2.0, 5.0, 2.0, 5.0])  # over the numbering
    P, _ = mat.evaluate(_F(1.0, 1.0), points=[3, 1])
    assert np.array_equal(P[:, 0, 0], [4.0, 4.0])
    mat.revert()
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0, 2.0, 3.0])
    W = mat.energy_density(_F(1.0, 1.0), points=[5, 0])  # a new point: its initial state
    assert np.array_equal(W, [2.0, 3.0]) and mat.history.trial is None
    assert np.array_equal(mat.history.as_array()[:, 0], [2.0, 3.0, 2.0, 3.0, 1.0, 1.0])
    mat.energy_stress_tangent(_F(1.0, 1.0), points=[5, 0], tangent=False)
    mat.energy_stress_tangent(_F(1.0), points=[2])
    mat.commit()
    assert np.array_equal(mat.history.as_array()[:, 0], [3.0, 3.0, 3.0, 3.0, 1.0, 2.0])
    assert np.array_equal(mat.step_work_q, [3.0, 0.0, 3.0, 0.0, 0.0, 2.0])
    for bad in ([1, 1], [0], [-1, 2], [0.0, 1.0]):
        with pytest.raises(InputError, match="points must be"):
            mat.energy_stress_tangent(_F(1.0, 1.0), points=bad)
    assert np.array_equal(mat.history.as_array()[:, 0], [3.0, 3.0, 3.0, 3.0, 1.0, 2.0])


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_keyed_energy_stress_tangent_on_a_worker_is_the_local_evaluation(cu_vacancy_rve):
    """One RVE worker: W, P, A and the keyed history are those of the local evaluation."""
    comm = mpi().COMM_WORLD
    if comm.size != 2:
        pytest.skip("needs exactly 2 MPI ranks")
    model = cu_vacancy_rve
    layout = split_world(comm, 1)
    if layout.is_worker:
        run_worker(layout, model)
        return
    F = np.eye(3) + 0.01 * np.random.default_rng(4).uniform(-1, 1, (4, 3, 3))
    local = PointMaterial(model)
    with DispatchedMaterial(layout, model) as mat:
        for m in (mat, local):  # two "continua": points 0-2 and 2-3
            m.energy_stress_tangent(F[:3], points=[0, 1, 2])
            m.energy_stress_tangent(F[2:], tangent=False, points=[2, 3])
            m.commit()
        assert len(mat.committed_states) == 4
        W, P, A = mat.energy_stress_tangent(F[::-1], points=[3, 2, 1, 0])
        W0, P0, A0 = local.energy_stress_tangent(F[::-1], points=[3, 2, 1, 0])
        assert np.array_equal(W, W0) and np.array_equal(P, P0) and np.array_equal(A, A0)
        assert np.array_equal(mat.last_work, local.last_work)
        for m in (mat, local):
            m.commit()
        for a, b in zip(mat.committed_states, local.committed_states, strict=True):
            assert np.array_equal(a, b)
