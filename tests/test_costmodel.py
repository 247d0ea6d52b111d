"""The discrete-event model of a farm round (coupling.costmodel) against hand-calculable cases.

Each case is worked out on paper from the farm's protocol (coupling.farm): one worker costs the
sum of the RVE seconds plus two messages and the book-keeping per task; equal tasks on W
workers take ceil(n / W) task times; the longest-first order is what the code does; a single
leader saturates once W times its per-task time exceeds a task; groups remove that; and the
default 10^4-rank projection of the new layout stays >= 0.9 while the old one collapses.
No MPI, no dolfinx; the whole file runs in about 1.5 s.
"""

import math
from dataclasses import replace

import numpy as np
import pytest

from coupling.costmodel import (
    DEFAULT_COSTS,
    Machine,
    assumptions,
    project,
    scaling_layout,
    simulate_round,
)

FREE = Machine(latency=0.0, per_byte=0.0, task_bytes=1000.0, result_bytes=2000.0)


def test_one_worker_is_the_sum_of_the_costs_plus_the_per_task_overheads():
    m = Machine(latency=1e-4, per_byte=1e-8, task_bytes=1000.0, result_bytes=3000.0,
                dispatch=2e-5, leader_task=5e-5)
    assert m.message(1000.0) == pytest.approx(1e-4 + 1e-5, rel=1e-12)
    assert m.per_task() == pytest.approx((1e-4 + 1e-5) + (1e-4 + 3e-5) + 5e-5, rel=1e-12)
    costs = [0.01, 0.03, 0.02, 0.005, 0.015]
    r = simulate_round([costs], m, workers=1, groups=1)
    # one mesh rank (no gather, no allgather partners), one worker: everything in sequence
    expected = 5 * 2e-5 + sum(costs) + 5 * (2e-4 + 4e-5 + 5e-5)
    assert r.time == pytest.approx(expected, rel=1e-12)
    assert r.efficiency == pytest.approx(sum(costs) / 2 / expected, rel=1e-12)
    assert r.leader_busy == pytest.approx(5 * (2e-4 + 4e-5 + 5e-5), rel=1e-12)
    # a hand-off delay (ranks sharing cores) delays each task's start, not the leader
    r = simulate_round([costs], replace(m, handoff=1e-3), workers=1, groups=1)
    assert r.time == pytest.approx(expected + 5 * 1e-3, rel=1e-12)


@pytest.mark.parametrize(("n", "w"), [(10, 3), (12, 4), (7, 7), (5, 8)])
def test_equal_tasks_on_equal_workers_take_ceil_n_over_w_rounds(n, w):
    r = simulate_round([[0.5] * n], FREE, workers=w, groups=1)
    assert r.time == pytest.approx(math.ceil(n / w) * 0.5, rel=1e-12)


def test_tasks_go_out_longest_first_by_the_predicted_cost_to_whoever_is_free():
    # LPT on 2 workers: 3 | 2, then 2 -> the worker free at 2, 1 -> the one free at 3: 4
    assert simulate_round([[1, 2, 2, 3]], FREE, workers=2).time == pytest.approx(4.0)
    # predicted the other way round: 1 | 2, then 2 at t=1 (-> 3), 3 at t=2 (-> 5)
    r = simulate_round([[1, 2, 2, 3]], FREE, workers=2, predicted=[[4, 3, 3, 1]])
    assert r.time == pytest.approx(5.0)


def test_mesh_ranks_without_workers_run_their_own_points_or_share_them_by_cost():
    m = Machine(latency=1e-3, per_byte=0.0, task_bytes=0.0, result_bytes=0.0, small_bytes=0.0)
    # LocalFarm: the slower rank, then one allgather over 2 ranks (one latency)
    r = simulate_round([[3, 1, 1, 1], [0.5]], m, workers=0, groups=1)
    assert r.time == pytest.approx(6 + 1e-3)
    # groups = mesh ranks: loads 6 and 0.5, share 3.25, surplus 2.75: longest first among
    # those that fit, the 3 does not, two 1s do (as coupling.farm): rank 0 keeps 3 + 1 = 4,
    # rank 1 runs 0.5 + 2; one latency each for the load allgather, the move, the results
    # going back (received after rank 0's own 4 s) and the final allgather
    r = simulate_round([[3, 1, 1, 1], [0.5]], m, workers=0, groups=2)
    assert r.moved == 2
    assert r.time == pytest.approx(1e-3 + 1e-3 + 4 + 1e-3 + 1e-3)
    assert list(r.extra["group_end"]) == pytest.approx([2e-3 + 4 + 1e-3, 2e-3 + 2.5 + 1e-3])


def test_the_root_funnel_saturates_when_w_times_the_leader_time_exceeds_a_task_and_groups_fix_it():
    m = Machine(latency=2.5e-5, per_byte=0.0, task_bytes=1000.0, result_bytes=1000.0,
                leader_task=5e-5)
    h = m.per_task()  # 1e-4 s of leader time per task
    c, mesh, workers, per_rank = 1e-3, 10, 100, 100
    costs = [[c] * per_rank for _ in range(mesh)]
    old = simulate_round(costs, m, workers=workers, groups=1)
    n = mesh * per_rank
    assert workers * h > c + h  # the leader cannot keep 100 workers busy
    # leader-bound: every task's two messages in sequence, plus the last task
    assert n * h <= old.time <= n * h + c + 0.002
    assert old.leader_busy == pytest.approx(n * h, rel=1e-12)
    new = simulate_round(costs, m, workers=workers, groups=mesh)
    # 10 groups, 10 workers each: W_g h = c, so the leader just keeps up: ~(n/W)(c + h)
    assert new.time == pytest.approx(per_rank / 10 * (c + h) + 10 * h, rel=0.05)
    assert new.time < 0.2 * old.time
    assert new.efficiency > 0.7 and old.efficiency < 0.1  # of 110 ranks; ideal: 100 / 110


def test_default_projection_new_layout_scales_to_1e4_ranks_and_the_old_one_stops():
    assert scaling_layout(10000) == (312, 9688, 312)
    assert scaling_layout(10000, old=True) == (312, 9688, 1)
    assert scaling_layout(2) == (1, 1, 1)
    new = project(10000)
    old = project(10000, old=True)
    assert new.efficiency >= 0.9
    assert old.efficiency < 0.1
    assert new.compute == pytest.approx(old.compute, rel=0.1)  # same kind of work
    a = assumptions()
    assert a["points_per_worker"] == 64 and a["workers_per_mesh_rank"] == 31
    assert a["rve_seconds"]["mean"] == pytest.approx(float(np.mean(DEFAULT_COSTS)))


def test_chunks_carry_their_points_bytes_and_seconds():
    m = Machine(latency=1e-4, per_byte=1e-8, task_bytes=1000.0, result_bytes=3000.0)
    costs = [0.01, 0.03, 0.02, 0.005, 0.015]  # chunks of 2: 0.04, 0.025, 0.015 (2, 2, 1 points)
    r = simulate_round([costs], m, workers=1, groups=1, chunk_size=2)
    per_point = 1e-5 + 3e-5
    assert r.time == pytest.approx(sum(costs) + 3 * 2e-4 + 5 * per_point, rel=1e-12)
