"""A discrete-event model of one FE² material round: what the task farm's layouts cost at scale.

One *round* is one Newton iteration's RVE evaluations: every mesh rank hands its Gauss points
(tasks of ``chunk_size`` points: F and the RVE state) to the farm of :mod:`coupling.farm` and
gets P, A and the new state back. The model replays that round, message by message, for

* the **old layout** (``groups=1``): the macro root gathers every point, serves every worker
  one task at a time and scatters the results (the single funnel);
* the **new layout** (``groups=G``): each group's leader gathers its group's points, the
  leaders exchange one load number each (an allgather), move tasks between groups by
  :func:`coupling.farm.plan_transfers` (longest first, one message per giver-taker pair),
  serve their own workers and return the results of moved tasks;
* the layouts without workers: every mesh rank runs its own points (``LocalFarm``), or each
  mesh rank is a group of its own that shares its points by cost (``groups = mesh ranks``).

Equations (the parameters are measured, see ``benchmarks/bench_fe2.py`` and :class:`Machine`)
    * a message of ``b`` bytes (pickled ``send``/``recv`` of mpi4py) takes
      ``t_msg(b) = latency + per_byte * b`` from the start of the send until the receiver has
      the object, and keeps both the sender and the receiver busy for that time (on shared
      memory and with pickling most of it is processor time);
    * a mesh rank spends ``dispatch`` seconds per point of its own (building the tasks, the
      history, joining the results) before the round;
    * a gather/scatter over ``m`` ranks costs ``ceil(log2 m) * latency + per_byte * B`` (``B``
      the bytes arriving at, or leaving, the root: a binomial tree), an allgather of a few
      numbers over ``G`` leaders ``ceil(log2 G) * latency`` plus the bytes; both are
      synchronisation points;
    * a group leader is a single server: each task it hands out occupies it ``t_msg(task)``
      plus ``leader_task`` seconds of book-keeping, each result ``t_msg(result)`` (received
      as soon as the leader is free and the result is ready: ``Recv(ANY_SOURCE)``, the
      earliest ready first); tasks go out longest first (by their predicted cost) to
      whichever worker returned a result, exactly as
      :meth:`coupling.farm.GroupFarm._evaluate`; a worker is a server busy for its task's RVE
      seconds, starting ``handoff`` seconds after its task was sent (0 on cores of their own;
      where ranks share cores, the receiving rank is not always on a core);
    * the cross-group step is :func:`coupling.farm.plan_transfers` on the groups' predicted
      loads; a giver pickles one message per taker (the tasks longest first that fit the
      planned amount), a taker starts after receiving it, and the results of moved tasks go
      back in one message per pair after the taker's own round;
    * a round ends at the last scatter; the parallel efficiency of a round on ``P`` ranks is
      ``(sum of the RVE seconds / P) / round time``.

    Hence with one worker and one mesh rank
    ``T = n dispatch + sum(c) + n (h + handoff)``, ``h = t_msg(task) + t_msg(result) +
    leader_task``; with ``W`` workers and equal tasks the leader keeps up while
    ``W h <= c + h`` and else saturates at ``T ~ n h``: the funnel. Groups divide ``n`` and
    ``W`` by ``G``.

Assumptions (stated again in :func:`assumptions`)
    * weak scaling: ``points_per_worker`` Gauss points per worker (chunk size 1, as
      :class:`coupling.dispatch.DispatchedMaterial` by default), ``workers_per_mesh_rank``
      workers per mesh rank (e.g. one mesh rank per node of 32 cores), ``groups = mesh ranks``
      for the new layout (the default of :func:`coupling.farm.split_world`), 1 for the old;
    * RVE seconds per point drawn from a measured sample (the demo's per-point seconds),
      assigned to the mesh ranks *clustered* (sorted, so the expensive points near a crack tip
      sit on few mesh ranks: the worst case for balancing across groups) or at random;
      the costs of the previous round predict this round's exactly unless
      ``prediction_noise`` (log-normal sigma) is given;
    * message costs measured on shared memory apply between nodes (with pickled Python objects
      the pickling dominates the wire latency of a fast network); no contention for the
      network, no stragglers other than the RVE costs themselves; every rank on a core of
      its own (``handoff = 0``); the mesh ranks are idle while the workers run RVEs (counted
      in ``P``, which caps the efficiency of a layout with workers at ``k / (k + 1)`` for
      ``k`` workers per mesh rank); the macro solve between rounds is not counted.

Everything here is pure numpy/heapq (no MPI, no dolfinx): cheap to import and to test.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from coupling.farm import plan_transfers

__all__ = [
    "Machine",
    "RoundPrediction",
    "simulate_round",
    "scaling_layout",
    "project",
    "assumptions",
    "DEFAULT_MACHINE",
    "DEFAULT_COSTS",
]


@dataclass(frozen=True)
class Machine:
    """The measured costs the model is driven by (seconds, bytes).

    Attributes:
        latency: seconds of a pickled message of zero bytes (one way).
        per_byte: seconds per byte of a pickled message.
        task_bytes: bytes of a one-point task (F and the RVE state, pickled).
        result_bytes: bytes of a one-point result (P, A, W, work, seconds, state).
        dispatch: seconds a mesh rank spends per own point outside the RVE evaluations.
        leader_task: seconds of a leader's book-keeping per task besides its two messages.
        handoff: seconds a worker waits for its next task beyond the messages (the leader
            or the worker off its core when ranks share cores; 0 on dedicated cores).
        small_bytes: bytes of a leader's share of an allgather (loads, records, seconds).
    """

    latency: float
    per_byte: float
    task_bytes: float
    result_bytes: float
    dispatch: float = 0.0
    leader_task: float = 0.0
    handoff: float = 0.0
    small_bytes: float = 200.0

    def message(self, nbytes: float) -> float:
        """Seconds of one message of ``nbytes`` bytes: ``latency + per_byte * nbytes``."""
        return self.latency + self.per_byte * float(nbytes)

    def tree(self, ranks: int, nbytes: float) -> float:
        """A gather/scatter/allgather over ``ranks`` ranks moving ``nbytes`` at the root."""
        if ranks <= 1:
            return 0.0
        return math.ceil(math.log2(ranks)) * self.latency + self.per_byte * float(nbytes)

    def per_task(self, points: int = 1) -> float:
        """A leader's seconds per task of ``points`` points (both messages and book-keeping)."""
        return (self.message(points * self.task_bytes) + self.message(points * self.result_bytes)
                + self.leader_task)


#: measured by ``benchmarks/bench_fe2.py --quick`` on the development machine (2 cores shared
#: with other work, MPICH over shared memory, mpi4py pickling, Python 3.12): its
#: ``model_parameters`` (a ping-pong of one Gauss point's task, 969 B, and result, 1313 B:
#: 121 us for both; the farm's own book-keeping 46 us per task; 6 us per point on the mesh
#: rank), with ``handoff = 0`` (every rank on a core of its own)
DEFAULT_MACHINE = Machine(latency=5.9e-5, per_byte=8.8e-10, task_bytes=969.0,
                          result_bytes=1313.0, dispatch=6.3e-6, leader_task=4.6e-5,
                          handoff=0.0)

#: the demo's RVE seconds per point: the 24 quantiles (at (k + 1/2) / 24) of the 447
#: per-point seconds of the quick crack run on one rank (32-atom Cu_u3 EAM RVEs, 4 Newton
#: rounds of 112 points, the first evaluation left out as a warm-up); mean 18.3 ms
DEFAULT_COSTS = 1e-3 * np.array([13.7, 14.0, 14.3, 14.5, 14.8, 15.1, 15.6, 16.6, 17.3, 17.7,
                                 17.9, 18.1, 18.3, 18.5, 18.6, 18.9, 19.1, 19.3, 19.5, 19.6,
                                 20.1, 20.8, 24.1, 31.3])


@dataclass
class RoundPrediction:
    """The model's answer for one round.

    Attributes:
        time: predicted wall seconds of the round.
        compute: sum of the RVE seconds.
        ranks: all ranks (mesh ranks and workers).
        efficiency: ``compute / ranks / time``.
        leader_busy: seconds the busiest leader spent on messages and book-keeping.
        moved: tasks moved between groups.
        groups: the groups of the layout.
        extra: with groups, ``group_end`` (when each group had its results, seconds),
            ``group_workers`` and ``start`` (the end of the load allgather).
    """

    time: float
    compute: float
    ranks: int
    efficiency: float
    leader_busy: float = 0.0
    moved: int = 0
    groups: int = 1
    extra: dict = field(default_factory=dict)


def _split(n: int, parts: int, index: int) -> tuple[int, int]:
    """Members ``lo .. hi - 1`` of ``n`` with ``member * parts // n == index``."""
    lo = -(-index * n // parts)
    hi = -(-(index + 1) * n // parts)
    return lo, hi


def _serve(start: float, cost: np.ndarray, points: np.ndarray, workers: int,
           machine: Machine) -> tuple[float, float]:
    """A leader handing tasks (RVE seconds ``cost``, ``points`` each, in order) to workers.

    Returns:
        ``(time the last result is in, seconds the leader was busy)``.
    """
    n = len(cost)
    if workers == 0:  # the leader runs its tasks itself
        return start + float(np.sum(cost)), 0.0
    if n == 0:
        return start, 0.0
    send = (machine.latency + machine.per_byte * machine.task_bytes * points
            + machine.leader_task).tolist()
    recv = (machine.latency + machine.per_byte * machine.result_bytes * points).tolist()
    cost = cost.tolist()
    t = start
    if points.min() == points.max():  # equal tasks (chunks): a heap of plain floats
        s, rc, wait = send[0], recv[0], machine.handoff
        heap = []
        for k in range(min(workers, n)):
            t += s
            heap.append(t + wait + cost[k])
        heapq.heapify(heap)
        replace = heapq.heapreplace
        for k in range(len(heap), n):  # a result comes in, the next task goes out
            r = heap[0]
            t = (t if t > r else r) + rc + s
            replace(heap, t + wait + cost[k])
        for r in sorted(heap):
            t = (t if t > r else r) + rc
        return t, n * (s + rc)
    ready: list[tuple[float, int]] = []  # (result ready at, task)
    first = min(workers, n)
    for k in range(first):
        t += send[k]
        ready.append((t + machine.handoff + cost[k], k))
    heapq.heapify(ready)
    nxt = first
    pop, replace = heapq.heappop, heapq.heapreplace
    while nxt < n:  # a result comes in, the next task goes out to the same worker
        r, k = ready[0]
        t = (t if t > r else r) + recv[k]
        t += send[nxt]
        replace(ready, (t + machine.handoff + cost[nxt], nxt))
        nxt += 1
    while ready:
        r, k = pop(ready)
        t = (t if t > r else r) + recv[k]
    busy = float(sum(send) + sum(recv))
    return t, busy


def simulate_round(point_costs: Sequence[Sequence[float]], machine: Machine, *,
                   workers: int = 0, groups: int = 1, chunk_size: int = 1,
                   predicted: Sequence[Sequence[float]] | None = None,
                   balance: bool = True) -> RoundPrediction:
    """Predict the wall time of one round of the farm.

    Args:
        point_costs: per mesh rank, the RVE seconds of each of its points (in order).
        machine: the measured costs.
        workers: worker ranks (0: the mesh ranks evaluate).
        groups: groups as in :func:`coupling.farm.split_world` (1: the old layout).
        chunk_size: points per task (without workers and groups a rank runs its points as
            one chunk, as :class:`coupling.dispatch.DispatchedMaterial`).
        predicted: per mesh rank, the predicted seconds of each point (the last round's;
            default: exact).
        balance: move tasks between groups by their predicted cost.

    Returns:
        The predicted round.
    """
    m = len(point_costs)
    costs = [np.asarray(c, dtype=float).ravel() for c in point_costs]
    pred = costs if predicted is None else [np.asarray(c, dtype=float).ravel()
                                            for c in predicted]
    compute = float(sum(c.sum() for c in costs))
    ranks = m + workers
    prep = [machine.dispatch * len(c) for c in costs]
    if workers == 0 and groups == 1:  # LocalFarm: own points, one allgather
        t = max(p + c.sum() for p, c in zip(prep, costs, strict=True))
        t += machine.tree(m, m * machine.small_bytes)
        return RoundPrediction(t, compute, ranks, compute / ranks / t if t > 0 else 0.0)
    chunk = int(chunk_size)

    def chunks(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if chunk == 1:
            return c, np.ones(len(c))
        starts = np.arange(0, len(c), chunk)
        return np.add.reduceat(c, starts) if len(c) else c, np.diff(np.append(starts, len(c)))

    # per group: the tasks' actual and predicted seconds and points, longest first
    act, prd, pts = [], [], []
    start = np.zeros(groups)
    for g in range(groups):
        lo, hi = _split(m, groups, g)
        a = [chunks(costs[r]) for r in range(lo, hi)]
        q = [chunks(pred[r])[0] for r in range(lo, hi)]
        a_g = np.concatenate([x[0] for x in a]) if a else np.zeros(0)
        p_g = np.concatenate([x[1] for x in a]) if a else np.zeros(0)
        q_g = np.concatenate(q) if q else np.zeros(0)
        order = np.argsort(-q_g, kind="stable")
        act.append(a_g[order])
        prd.append(q_g[order])
        pts.append(p_g[order])
        b = sum(len(costs[r]) for r in range(lo + 1, hi)) * machine.task_bytes
        start[g] = max(prep[lo:hi], default=0.0) + machine.tree(hi - lo, b)
    n_w = [(_split(workers, groups, g)[1] - _split(workers, groups, g)[0]) for g in range(groups)]
    # the leaders' load allgather (a synchronisation)
    t1 = float(start.max()) + machine.tree(groups, groups * machine.small_bytes)
    clock = np.full(groups, t1)
    loads = [float(q.sum()) for q in prd]
    plan = plan_transfers(loads, [max(w, 1) for w in n_w]) if balance and groups > 1 else []
    came: list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(groups)]
    sent: list[list[tuple[int, float]]] = [[] for _ in range(groups)]
    sent_at: dict[tuple[int, int], float] = {}
    moved = 0
    for giver, taker, amount in plan:  # the givers pickle and isend, longest first
        left = amount
        take = np.zeros(len(prd[giver]), dtype=bool)
        for i, q in enumerate(prd[giver].tolist()):
            if q <= left * (1 + 1e-12):
                take[i] = True
                left -= q
        n_pts = float(pts[giver][take].sum())
        came[taker].append((giver, act[giver][take], prd[giver][take], pts[giver][take]))
        act[giver], prd[giver], pts[giver] = (x[~take] for x in (act[giver], prd[giver],
                                                               pts[giver]))
        sent_at[(giver, taker)] = float(clock[giver])
        clock[giver] += machine.message(n_pts * machine.task_bytes)
        sent[giver].append((taker, n_pts))
        moved += int(take.sum())
    end = np.zeros(groups)
    busy = np.zeros(groups)
    for g in range(groups):  # the takers receive (in plan order), then serve their queue
        for giver, _, _, p in came[g]:
            clock[g] = (max(clock[g], sent_at[(giver, g)])
                        + machine.message(p.sum() * machine.task_bytes))
        a = np.concatenate([act[g]] + [x[1] for x in came[g]])
        q = np.concatenate([prd[g]] + [x[2] for x in came[g]])
        p = np.concatenate([pts[g]] + [x[3] for x in came[g]])
        order = np.argsort(-q, kind="stable")
        end[g], busy[g] = _serve(float(clock[g]), a[order], p[order], n_w[g], machine)
    back_at = {}
    for g in range(groups):  # results of moved tasks go home
        for giver, _, _, p in came[g]:
            back_at[(g, giver)] = float(end[g])
            end[g] += machine.message(p.sum() * machine.result_bytes)
    for g in range(groups):
        for taker, n_pts in sent[g]:
            end[g] = (max(end[g], back_at[(taker, g)])
                      + machine.message(n_pts * machine.result_bytes))
    t2 = float(end.max()) + machine.tree(groups, groups * machine.small_bytes)
    t = t2
    for g in range(groups):
        lo, hi = _split(m, groups, g)
        b = sum(len(costs[r]) for r in range(lo + 1, hi)) * machine.result_bytes
        t = max(t, t2 + machine.tree(hi - lo, b))
    return RoundPrediction(t, compute, ranks, compute / ranks / t if t > 0 else 0.0,
                           float(busy.max()), moved, groups,
                           {"group_end": end, "group_workers": n_w, "start": t1})


def scaling_layout(ranks: int, *, workers_per_mesh_rank: int = 31, old: bool = False
                   ) -> tuple[int, int, int]:
    """``(mesh ranks, workers, groups)`` of the weak-scaling series at ``ranks`` ranks.

    ``ranks // (k + 1)`` mesh ranks (at least 1) and the rest workers; groups = mesh ranks
    (new layout, the default of :func:`coupling.farm.split_world`) or 1 (old layout).
    """
    k = int(workers_per_mesh_rank)
    mesh = max(1, ranks // (k + 1))
    workers = ranks - mesh
    return mesh, workers, (1 if old else min(mesh, workers))


def _assign(sample: np.ndarray, n_points: int, mesh: int, clustered: bool,
            rng: np.random.Generator) -> list[np.ndarray]:
    """Draw ``n_points`` costs from ``sample`` and deal them to ``mesh`` ranks."""
    draw = rng.choice(sample, size=n_points, replace=True)
    if clustered:
        draw = np.sort(draw)[::-1]
    edges = [n_points * r // mesh for r in range(mesh + 1)]
    return [draw[edges[r]:edges[r + 1]] for r in range(mesh)]


def project(ranks: int, *, old: bool = False, machine: Machine = DEFAULT_MACHINE,
            costs: Sequence[float] = DEFAULT_COSTS, points_per_worker: int = 64,
            workers_per_mesh_rank: int = 31, chunk_size: int = 1, clustered: bool = True,
            prediction_noise: float = 0.0, seed: int = 0) -> RoundPrediction:
    """The predicted round of the weak-scaling series at ``ranks`` ranks (see the docstring).

    Args:
        ranks: all ranks (>= 2).
        old: the old layout (one group: the root funnel) instead of the new one.
        machine: the measured costs.
        costs: a sample of RVE seconds per point to draw from.
        points_per_worker: Gauss points per worker.
        workers_per_mesh_rank: workers per mesh rank.
        chunk_size: points per task.
        clustered: deal the costs sorted (expensive points together) rather than at random.
        prediction_noise: log-normal sigma of the predicted cost over the actual one.
        seed: of the random draws.

    Returns:
        The predicted round.
    """
    rng = np.random.default_rng(seed)
    mesh, workers, groups = scaling_layout(ranks, workers_per_mesh_rank=workers_per_mesh_rank,
                                           old=old)
    pc = _assign(np.asarray(costs, dtype=float), points_per_worker * workers, mesh, clustered,
                 rng)
    pred = None
    if prediction_noise > 0:
        pred = [c * np.exp(prediction_noise * rng.standard_normal(len(c))) for c in pc]
    return simulate_round(pc, machine, workers=workers, groups=groups, chunk_size=chunk_size,
                          predicted=pred)


def assumptions(machine: Machine = DEFAULT_MACHINE, *, points_per_worker: int = 64,
                workers_per_mesh_rank: int = 31, chunk_size: int = 1, clustered: bool = True,
                prediction_noise: float = 0.0, costs: Sequence[float] = DEFAULT_COSTS) -> dict:
    """The assumptions of :func:`project`, as a JSON-able dict (with the machine's numbers)."""
    c = np.asarray(costs, dtype=float)
    return {
        "scaling": "weak: points_per_worker Gauss points per worker, workers_per_mesh_rank "
                   "workers per mesh rank, groups = mesh ranks (new) or 1 (old)",
        "points_per_worker": int(points_per_worker),
        "workers_per_mesh_rank": int(workers_per_mesh_rank),
        "chunk_size": int(chunk_size),
        "rve_seconds": {"mean": float(c.mean()), "min": float(c.min()), "max": float(c.max()),
                        "samples": int(len(c))},
        "clustered_costs": bool(clustered),
        "prediction_noise": float(prediction_noise),
        "machine": asdict(machine),
        "messages": "measured pickled send/recv on shared memory, used between nodes too; no "
                    "network contention; mesh ranks idle during the RVE round (counted)",
    }
