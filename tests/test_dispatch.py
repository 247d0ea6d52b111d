"""Dispatch of material points to MPI workers.

The results are those of evaluating each point alone (bitwise), history travels with the
point, a failing RVE names its Gauss point on every macro rank and never leaves a worker
hanging.

The tests marked ``mpi`` need exactly 2 ranks (``mpirun -n 2 python -m pytest -m mpi``).
"""

import numpy as np
import pytest

from atomistic.cauchy_born import CauchyBorn
from atomistic.lattice import crystal
from atomistic.rve import AtomisticRVE
from coupling.dispatch import (
    DispatchedMaterial,
    PointEvaluationError,
    run_worker,
    split_world,
)
from fe2.materials import NeoHookean
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import PointModel
from fe2qc.mpi import mpi
from fe2qc.tensors import embed_F

MPI = mpi()


def _random_F(n, dim, seed, amplitude=0.08):
    rng = np.random.default_rng(seed)
    return np.eye(dim) + amplitude * rng.standard_normal((n, dim, dim))


class FailsAt:
    """A point model that raises for one marked F (F[0, 0] == marker), else delegates."""

    def __init__(self, model, marker, exc_type=CalculationFailed):
        self.model, self.marker, self.exc_type = model, marker, exc_type
        self.dim = model.dim

    def initial_state(self):
        return self.model.initial_state()

    def evaluate_point(self, F, state, *, tangent=True):
        if F[0, 0] == self.marker:
            raise self.exc_type("RVE relaxation did not converge (injected)")
        return self.model.evaluate_point(F, state, tangent=tangent)


def _need_two_ranks():
    if MPI.COMM_WORLD.size != 2:
        pytest.skip("needs exactly 2 MPI ranks")


# ---------------------------------------------------------------------------------------------
# Serial


def test_point_models_satisfy_the_protocol(cu_vacancy_rve, cu_u3, cu_u3_a0):
    assert isinstance(cu_vacancy_rve, PointModel)
    assert isinstance(CauchyBorn(cu_u3, "fcc", cu_u3_a0), PointModel)
    assert isinstance(NeoHookean(1.0, 1.5, 2), PointModel)


def test_worker_less_dispatch_reproduces_neo_hookean_bitwise():
    for dim in (2, 3):
        nh = NeoHookean(1.0, 1.5, dim)
        F = _random_F(17, dim, seed=dim)
        with DispatchedMaterial(split_world(MPI.COMM_SELF, 0), nh) as mat:
            P, A = mat.evaluate(F)
            W = mat.energy_density(F)
        P0, A0_ = nh.evaluate(F)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
        assert np.array_equal(W, nh.energy_density(F))
        assert mat.timings["calls"] == 2 and mat.timings["compute"] > 0


def test_split_world_refuses_worker_counts_that_leave_no_macro_rank():
    for bad in (1, -1, 2.5, "1"):
        with pytest.raises(InputError, match="n_workers"):
            split_world(MPI.COMM_SELF, bad)


def test_plane_strain_rve_point_is_the_in_plane_part_of_the_3d_response(cu_u3, cu_u3_a0):
    rve2, rve3 = (AtomisticRVE(cu_u3, crystal("fcc", cu_u3_a0, size=(2, 2, 2)), dim=dim,
                               multiple_images=True) for dim in (2, 3))
    F2 = np.array([[1.01, 0.004], [-0.002, 0.995]])
    F3 = embed_F(F2)
    r2 = rve2.evaluate_point(F2, np.zeros(0))
    r3 = rve3.evaluate_point(F3, np.zeros(0))
    assert np.allclose(r2.P, r3.P[:2, :2], rtol=0, atol=1e-14)
    assert np.allclose(r2.A, r3.A[:2, :2, :2, :2], rtol=0, atol=1e-13)
    assert r2.W == pytest.approx(r3.W, abs=1e-15)


def test_cauchy_born_point_equals_batched_cauchy_born(cu_u3, cu_u3_a0):
    cb = CauchyBorn(cu_u3, "fcc", cu_u3_a0)
    F = _random_F(3, 3, seed=4, amplitude=0.02)
    P, A = cb.evaluate(F)
    for q in range(3):
        r = cb.evaluate_point(F[q], cb.initial_state())
        assert np.array_equal(r.P, P[q]) and np.array_equal(r.A, A[q])


def test_vacancy_rve_history_is_committed_only_after_a_converged_step(cu_vacancy_rve):
    model = cu_vacancy_rve
    F1 = _random_F(2, 3, seed=1, amplitude=0.01)
    F2 = _random_F(2, 3, seed=2, amplitude=0.01)
    mat = DispatchedMaterial(split_world(MPI.COMM_SELF, 0), model)
    mat.evaluate(F1)
    assert all(not s.any() for s in mat.committed_states)  # trial only: nothing committed yet
    cold_work = mat.last_work.copy()
    mat.commit()
    relaxed = [s.copy() for s in mat.committed_states]
    assert all(np.abs(s).max() > 1e-4 for s in relaxed)  # the vacancy relaxes: the state matters
    P1, _ = mat.evaluate(F1)  # from the committed state: the relaxation is already done
    assert (mat.last_work < cold_work).all()
    mat.evaluate(F2)
    mat.revert()  # a cut-back: the trial at F2 is forgotten
    assert all(np.array_equal(a, b) for a, b in zip(mat.committed_states, relaxed, strict=True))
    P1b, _ = mat.evaluate(F1)
    assert np.array_equal(P1, P1b)
    ref = [model.evaluate_one(F1[q], relaxed[q].reshape(-1, 3)).P for q in range(2)]
    assert np.array_equal(P1, np.array(ref))


def test_failing_point_raises_with_its_index_and_keeps_the_error_type():
    nh = NeoHookean(1.0, 1.5, 2)
    F = _random_F(6, 2, seed=0)
    layout = split_world(MPI.COMM_SELF, 0)
    mat = DispatchedMaterial(layout, FailsAt(nh, F[4, 0, 0]))
    with pytest.raises(CalculationFailed, match="Gauss point 4") as info:
        mat.evaluate(F)
    assert info.value.point_index == 4
    assert "did not converge (injected)" in str(info.value)
    bug = DispatchedMaterial(layout, FailsAt(nh, F[1, 0, 0], KeyError))
    with pytest.raises(PointEvaluationError, match="KeyError") as info:
        bug.evaluate(F)
    assert info.value.point_index == 1
    F[2] = [[1.0, 0.0], [0.0, -1.0]]  # det F < 0: an input error
    with pytest.raises(InputError, match="Gauss point 2"):
        DispatchedMaterial(layout, nh).evaluate(F)
    with pytest.raises(InputError, match="shape"):
        DispatchedMaterial(layout, nh).evaluate(np.eye(3)[None])


# ---------------------------------------------------------------------------------------------
# Two ranks


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_one_worker_gives_bitwise_the_serial_evaluation():
    _need_two_ranks()
    nh = NeoHookean(1.0, 1.5, 3)
    model = nh
    layout = split_world(MPI.COMM_WORLD, 1)
    F = _random_F(23, 3, seed=7)
    if layout.is_worker:
        stats = run_worker(layout, model)
        assert stats["points"] == 2 * len(F) and stats["chunks"] == 5 + 8
        return
    assert layout.macro_comm.size == 1
    P0, A0_ = nh.evaluate(F)
    with DispatchedMaterial(layout, model, chunk_size=5) as mat:
        P, A = mat.evaluate(F)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
        mat.chunk_size = 3
        P, A = mat.evaluate(F)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
    t = mat.timings
    assert t["calls"] == 2 and t["compute"] > 0
    assert t["dispatch"] == pytest.approx(t["wall"] - t["critical"])


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_rve_history_travels_with_the_point_to_the_worker(cu_vacancy_rve):
    _need_two_ranks()
    model = cu_vacancy_rve
    layout = split_world(MPI.COMM_WORLD, 1)
    F1 = _random_F(3, 3, seed=11, amplitude=0.01)
    F2 = F1 + 0.002 * np.eye(3)
    if layout.is_worker:
        run_worker(layout, model)
        return
    local = DispatchedMaterial(split_world(MPI.COMM_SELF, 0), model)
    with DispatchedMaterial(layout, model) as mat:
        for m in (mat, local):
            m.evaluate(F1)
            m.commit()
        P, A = mat.evaluate(F2)
        P0, A0_ = local.evaluate(F2)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
        assert np.array_equal(mat.last_work, local.last_work)
        mat.commit()
        local.commit()
        for a, b in zip(mat.committed_states, local.committed_states, strict=True):
            assert np.array_equal(a, b)
        # With one worker, "history travels with the point" and "the worker caches the states by
        # point index" give the same results so far. Change the committed states on the macro
        # side only (swap points 0 and 2, reset point 1 to the unrelaxed vacancy): the worker's
        # result must follow what it is sent.
        mat.evaluate(F2)
        hot_work = mat.last_work.copy()  # from states already relaxed at F2
        mat.revert()
        for m in (mat, local):
            st = m.committed_states
            st[0], st[2] = st[2].copy(), st[0].copy()
            st[1] = np.zeros_like(st[1])
        sent = [s.copy() for s in mat.committed_states]
        P, A = mat.evaluate(F2)
        P0, A0_ = local.evaluate(F2)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
        assert np.array_equal(mat.last_work, local.last_work)
        assert (mat.last_work > hot_work).all()  # the changed states needed more relaxation
        ref = [model.evaluate_one(F2[q], sent[q].reshape(-1, 3)).P for q in range(3)]
        assert np.array_equal(P, np.array(ref))


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_without_workers_each_rank_evaluates_its_own_points_and_failures_reach_all():
    _need_two_ranks()
    comm = MPI.COMM_WORLD
    nh = NeoHookean(1.0, 1.5, 2)
    layout = split_world(comm, 0)
    assert layout.is_macro and layout.macro_comm.size == 2
    F = _random_F(3 + comm.rank, 2, seed=comm.rank)
    mat = DispatchedMaterial(layout, nh)
    P, A = mat.evaluate(F)
    P0, A0_ = nh.evaluate(F)
    assert np.array_equal(P, P0) and np.array_equal(A, A0_)
    # point 2 of rank 1 fails: global index 3 + 2 = 5; both ranks raise the same type
    marker = comm.bcast(F[2, 0, 0] if comm.rank == 1 else None, root=1)
    bad = DispatchedMaterial(layout, FailsAt(nh, marker))
    with pytest.raises(CalculationFailed, match="Gauss point 5 .*macro rank 1, local index 2"
                       ) as info:
        bad.evaluate(F)
    assert info.value.point_index == (2 if comm.rank == 1 else None)
    assert info.value.global_point_index == 5


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_failing_rve_on_a_worker_names_the_gauss_point_and_the_worker_stops_cleanly():
    _need_two_ranks()
    nh = NeoHookean(1.0, 1.5, 3)
    F = _random_F(9, 3, seed=3)
    k = 6
    model = FailsAt(nh, F[k, 0, 0])
    layout = split_world(MPI.COMM_WORLD, 1)
    if layout.is_worker:
        stats = run_worker(layout, model)  # returns: the macro root sent stop
        assert stats["chunks"] >= 2
        return
    with DispatchedMaterial(layout, model, chunk_size=2, poll_interval=1e-3) as mat:
        with pytest.raises(CalculationFailed, match=f"Gauss point {k} .*worker rank 1") as info:
            mat.evaluate(F)
        assert info.value.point_index == k
        assert "did not converge (injected)" in str(info.value)
        mat.revert()
        P, _ = mat.evaluate(np.delete(F, k, axis=0))  # the channel is clean afterwards
        assert np.array_equal(P, nh.evaluate(np.delete(F, k, axis=0))[0])


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_fe2_solve_with_one_worker_equals_the_plain_serial_solve():
    _need_two_ranks()
    import fe2qc.mpi

    fe2qc.mpi.dolfinx()
    from dolfinx import mesh

    from fe2.solver import Dirichlet, Problem

    nh = NeoHookean(1.0, 1.5, 2)
    layout = split_world(MPI.COMM_WORLD, 1)
    if layout.is_worker:
        run_worker(layout, nh)
        return

    def solve(comm, material):
        msh = mesh.create_unit_square(comm, 4, 4, mesh.CellType.triangle)
        problem = Problem(msh, material, bcs=[
            Dirichlet(lambda x: np.isclose(x[0], 0.0), (0.0, 0.0)),
            Dirichlet(lambda x: np.isclose(x[0], 1.0), 0.25, component=0)],
            rtol=1e-12, atol=1e-13, log=None)
        reports = problem.solve(2)
        return problem.u.x.array.copy(), reports, problem.energy()

    with DispatchedMaterial(layout, nh) as mat:
        u, reports, energy = solve(layout.macro_comm, mat)
    u0, reports0, energy0 = solve(MPI.COMM_SELF, nh)
    assert np.allclose(u, u0, rtol=0, atol=1e-12)
    assert energy == pytest.approx(energy0, rel=1e-12)
    assert [r.iterations for r in reports] == [r.iterations for r in reports0]
    assert mat.timings["calls"] == sum(len(r.residual_norms) for r in reports) + 1


# ---------------------------------------------------------------------------------------------
# Groups (coupling.farm.GroupFarm): work shared by measured cost, no funnel through one rank


def test_plan_moves_work_from_groups_above_their_share_to_those_below():
    from coupling.farm import plan_transfers

    assert plan_transfers([5.0, 5.0], [1, 1]) == []  # balanced: nothing moves
    assert plan_transfers([12.0, 3.0], [1, 1]) == [(0, 1, 4.5)]
    # shares follow the capacity (workers): 2 of 3 of the load belong to group 1
    assert plan_transfers([6.0, 3.0], [1, 2]) == [(0, 1, 3.0)]
    plan = plan_transfers([10.0, 0.0, 1.0, 9.0], [1, 1, 1, 1])
    assert plan == [(0, 1, 5.0), (3, 2, 4.0)]
    moved = np.zeros(4)
    for g, t, a in plan:
        moved[g] -= a
        moved[t] += a
    assert np.allclose(np.array([10.0, 0.0, 1.0, 9.0]) + moved, 5.0)
    assert plan_transfers([5.0, 5.1], [1, 1]) == []  # within the tolerance (2 % of a share)
    assert plan_transfers([0.0, 0.0], [1, 1]) == [] and plan_transfers([3.0], [1]) == []


def test_group_counts_are_checked():
    with pytest.raises(InputError, match=r"without workers, groups must be 1 .* or 1"):
        split_world(MPI.COMM_SELF, 0, 2)
    with pytest.raises(InputError, match="groups must be an integer"):
        split_world(MPI.COMM_SELF, 0, 1.5)
    with pytest.raises(InputError, match=r"ranks per RVE .* must be a divisor of the 0 "
                       r"workers \(and 1 without workers\), got 2"):
        split_world(MPI.COMM_SELF, 0, 1, team_size=2)
    layout = split_world(MPI.COMM_SELF, 0, 1)
    assert layout.groups == 1 and layout.is_leader and layout.leader(0) == 0
    assert layout.team_comm is None and layout.team_size == 1


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_two_macro_ranks_share_points_by_cost_bitwise_and_failures_reach_all():
    """Two groups without workers: the rank with more (costlier) points gives some away."""
    _need_two_ranks()
    comm = MPI.COMM_WORLD
    nh = NeoHookean(1.0, 1.5, 2)
    with pytest.raises(InputError, match=r"groups must be in 1\.\.1 with 1 macro ranks and 1 "
                       r"worker teams of 1 \(every group needs a macro rank and a worker\), "
                       r"got 2"):
        split_world(comm, 1, 2)
    layout = split_world(comm, 0, groups=2)
    assert layout.groups == 2 and layout.is_leader
    F = _random_F(12 if comm.rank == 0 else 3, 2, seed=comm.rank)
    P0, A0_ = nh.evaluate(F)
    mat = DispatchedMaterial(layout, nh)
    for _ in range(2):  # uniform costs first, then the measured seconds of each point
        P, A = mat.evaluate(F)
        assert np.array_equal(P, P0) and np.array_equal(A, A0_)
    assert len(mat.point_seconds) == len(F) and (mat.point_seconds > 0).all()
    assert mat.timings["moved"] >= 4  # 12 vs 3 points: 4 of rank 0's go to rank 1 at first
    # a failing point among those moved to rank 1 (rank 0's longest-first picks): named by its
    # owner on both ranks, the type kept
    costs = mat.point_seconds.copy()
    k = int(np.argmax(costs)) if comm.rank == 0 else 0
    marker = comm.bcast(F[k, 0, 0] if comm.rank == 0 else None, root=0)
    bad = DispatchedMaterial(layout, FailsAt(nh, marker))
    bad.point_seconds = mat.point_seconds
    with pytest.raises(CalculationFailed, match=f"Gauss point {comm.bcast(k)} .*macro rank 0"
                       ) as info:
        bad.evaluate(F)
    assert info.value.point_index == (k if comm.rank == 0 else None)
    assert info.value.failures[0]["ran_on"] == 1  # moved there, failed there
    P, _ = mat.evaluate(F)  # the channels are clean afterwards
    assert np.array_equal(P, P0)


@pytest.mark.mpi
@pytest.mark.lammps
@pytest.mark.timeout(120)
def test_lammps_rve_on_a_worker_gives_bitwise_its_local_evaluation(cu_u3):
    """The RVE relaxed by LAMMPS: on the worker's team communicator (1 rank) as on COMM_SELF."""
    _need_two_ranks()
    from atomistic.lammps.rve import LammpsRVE

    rve = AtomisticRVE.from_lattice(cu_u3, "fcc", 3.615, size=(2, 2, 2), vacancy=True, dim=2,
                                    multiple_images=True)
    layout = split_world(MPI.COMM_WORLD, 1, team_size=1)
    model = LammpsRVE(rve, layout.team_comm)
    F = _random_F(3, 2, seed=5, amplitude=0.01)
    if layout.is_worker:
        assert layout.team_comm.size == 1
        run_worker(layout, model)
        return
    local = DispatchedMaterial(split_world(MPI.COMM_SELF, 0), LammpsRVE(rve))
    with DispatchedMaterial(layout, model) as mat:
        P, A = mat.evaluate(F)
    P0, A0_ = local.evaluate(F)
    assert np.array_equal(P, P0) and np.array_equal(A, A0_)
    assert np.array_equal(np.stack(mat.history.trial), np.stack(local.history.trial))
