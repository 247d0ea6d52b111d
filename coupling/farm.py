"""MPI rank layout and a task farm: groups of macro ranks hand out opaque tasks to their workers.

Layout
    :func:`split_world` splits a communicator into *macro* ranks (the first ``size - n_workers``
    ranks; :attr:`Layout.macro_comm` carries the DOLFINx mesh and the macro solver) and *worker*
    ranks that only run tasks (:func:`serve`), and both into ``groups``: group ``g`` has the
    macro ranks ``m`` with ``m * G // n_macro == g`` and the worker teams ``t`` with
    ``t * G // n_teams == g``. The first macro rank of a group is its *leader*. Workers form
    *teams* of ``team_size`` consecutive ranks (``[mpi] rve_ranks``) that run each task
    together: the team's first rank gets the task from its group's leader and broadcasts it
    over the team's communicator (:attr:`Layout.team_comm`, which a handler such as a LAMMPS
    RVE runs on), and sends the result back. ``n_workers=0`` makes every rank a macro rank.

The farm interface (:class:`Farm`)
    One collective call over the macro ranks, ``farm.run(tasks, error=None, costs=None) ->
    FarmRound``: every macro rank passes its own list of tasks (opaque, picklable payloads) and
    their predicted costs (e.g. the seconds they took last time; None: unknown, and then every
    task of the round counts 1 on every rank, so that units never mix) and
    gets back the results of its tasks in order, the seconds each took, every failure record of
    the round (the same list on every macro rank) and the compute seconds. A *handler*
    ``handler(task) -> (result, record)`` runs the tasks; ``record`` is None, or a dict
    describing why the task failed (the handler's own words, e.g. naming the failed item).
    After a failure no new tasks are handed out in that group and the outstanding ones are
    collected. A handler that raises becomes a record too (:func:`error_record`); an interrupt
    (KeyboardInterrupt, SystemExit, or the ``SystemError`` numba raises around one,
    :func:`fe2qc.errors.is_interrupt`) is raised as KeyboardInterrupt where it happened, never
    a record. ``error`` lets a rank that failed before making its tasks (e.g. on a bad input)
    take part in the round: then no task runs anywhere and every rank gets the record.
    :meth:`Farm.close` stops the workers.

    Every record the round returns carries ``rank`` (the macro rank that owns the task; that
    rank's own ``error`` has ``task`` -1) and ``task`` (its index in that rank's list), and
    ``worker`` (the worker rank) where a worker produced it; a :class:`GroupFarm`'s also
    ``ran_on``, the rank (of the layout's ``comm``) that ran the task.

Farms
    * :class:`LocalFarm` (no workers, no balancing): every macro rank runs its own tasks in
      order and stops at the first failure; the records and seconds are shared with one
      ``allgather``.
    * :class:`GroupFarm` (workers, or ``groups = n_macro`` without workers): no rank sees every
      task. In each round

      1. the macro ranks of a group send their tasks and costs to the group's leader (a
         gather over the group only);
      2. the leaders exchange their group's predicted load (one number each, an
         ``allgather`` over the leaders) and move work from groups above their share (the
         share is proportional to the group's workers) to groups below it, longest tasks
         first (:func:`plan_transfers`: the same plan on every leader, point-to-point
         messages between the leaders of each pair);
      3. each leader hands its tasks, longest first, to idle workers of its group one at a
         time (``Recv(ANY_SOURCE)`` and the next task to whoever finished first: dynamic
         balancing, so that a task that takes many times longer than predicted, e.g. an RVE
         near an instability, does not leave the other workers waiting); a group without
         workers (one macro rank) runs its tasks itself;
      4. results of moved tasks go back to their group; the leaders share the failure records
         and seconds (one ``allgather`` of small data) and scatter the results to their
         group's macro ranks.

      With one group this is the classic farm with the macro root as the only funnel; with
      ``groups = min(n_macro, n_workers)`` (the default of :func:`split_world`) each leader
      serves at most a few macro ranks and a few workers, and the only all-rank operations
      per round are two ``allgather`` calls of a few numbers per group. Worker ranks run
      :func:`serve`.

    Tasks are evaluated one at a time with the same inputs wherever they run, so the results
    do not depend on the layout, the grouping, the costs or the order (bitwise).
    :func:`make_farm` picks a farm for the layout. The farm knows nothing about what a task
    computes (see :mod:`coupling.dispatch` for the material points).

Seconds
    ``compute``: the sum over the ranks that ran tasks (workers, or macro ranks without workers)
    of the time spent in the handler; ``critical``: the largest of these per-rank sums, the
    shortest wall time the round could have taken with its assignment of tasks.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fe2qc.errors import CalculationFailed, InputError, raise_if_interrupt
from fe2qc.mpi import mpi

__all__ = [
    "Layout",
    "split_world",
    "Farm",
    "FarmRound",
    "LocalFarm",
    "GroupFarm",
    "make_farm",
    "serve",
    "error_record",
    "plan_transfers",
]

_TAG_WORK, _TAG_RESULT, _TAG_STOP = 7301, 7302, 7303
_TAG_MOVE, _TAG_MOVED_BACK = 7304, 7305  # tasks moved between group leaders, and their results

#: ``handler(task) -> (result, failure record or None)``
Handler = Callable[[Any], tuple[Any, "dict | None"]]


# ---------------------------------------------------------------------------------------------
# Layout


@dataclass(eq=False)
class Layout:
    """Which ranks run the macro problem, which run tasks, and how they are grouped.

    ``comm`` is a private duplicate of the communicator given to :func:`split_world` (farm
    messages never mix with the caller's); ranks ``0 .. n_macro - 1`` are macro ranks, the last
    ``n_workers`` ranks are workers. See the module docstring for the groups.
    """

    comm: Any
    n_workers: int
    macro_comm: Any | None  # the communicator for the mesh; None on worker ranks
    groups: int = 1
    #: the macro ranks of this rank's group (None on worker ranks)
    group_macro_comm: Any | None = None
    #: the group leaders (None on every other rank)
    leader_comm: Any | None = None
    #: worker ranks per team (one task runs on a whole team)
    team_size: int = 1
    #: this worker's team (None on macro ranks)
    team_comm: Any | None = None

    @property
    def rank(self) -> int:
        """This rank in ``comm``."""
        return self.comm.rank

    @property
    def size(self) -> int:
        """All ranks, macro and workers."""
        return self.comm.size

    @property
    def n_macro(self) -> int:
        """Number of macro ranks."""
        return self.size - self.n_workers

    @property
    def is_macro(self) -> bool:
        """This rank runs the macro problem."""
        return self.rank < self.n_macro

    @property
    def is_worker(self) -> bool:
        """This rank only runs tasks."""
        return not self.is_macro

    @property
    def n_teams(self) -> int:
        """Number of worker teams."""
        return self.n_workers // self.team_size

    def team_leader(self, rank: int) -> int:
        """The first rank of a worker's team."""
        return self.n_macro + (rank - self.n_macro) // self.team_size * self.team_size

    def group_of(self, rank: int) -> int:
        """The group of a rank of ``comm``."""
        if rank < self.n_macro:
            return rank * self.groups // self.n_macro
        return (rank - self.n_macro) // self.team_size * self.groups // self.n_teams

    @property
    def group(self) -> int:
        """This rank's group."""
        return self.group_of(self.rank)

    def leader(self, group: int) -> int:
        """The rank (in ``comm``) of a group's leader: its first macro rank."""
        return -(-group * self.n_macro // self.groups)  # ceil(g * n_macro / G)

    @property
    def is_leader(self) -> bool:
        """This rank leads its group."""
        return self.is_macro and self.rank == self.leader(self.group)

    def group_workers(self, group: int) -> list[int]:
        """The workers (in ``comm``) a group's leader sends tasks to: its teams' first ranks."""
        return [r for r in range(self.n_macro, self.size, self.team_size)
                if self.group_of(r) == group]

    def free(self) -> None:
        """Free the communicators (collective over the original communicator)."""
        for c in (self.team_comm, self.leader_comm, self.group_macro_comm, self.macro_comm,
                  self.comm):
            if c is not None:
                c.Free()
        self.macro_comm = self.group_macro_comm = self.leader_comm = self.team_comm = None

    def __repr__(self) -> str:
        """Return the rank, its role and the counts."""
        return (f"Layout(rank {self.rank} of {self.size}, {self.n_macro} macro, "
                f"{self.n_workers} workers, {self.groups} groups, "
                f"{'macro' if self.is_macro else 'worker'} in group {self.group})")


def split_world(comm, n_workers: int, groups: int | None = None, team_size: int = 1) -> Layout:
    """Split ``comm`` into macro ranks (the first ``size - n_workers``) and worker ranks.

    Collective over ``comm``; every rank must pass the same ``n_workers``, ``groups`` and
    ``team_size``.

    Args:
        comm: the communicator to split (duplicated first).
        n_workers: the ranks that only run tasks.
        groups: how many groups share the work (see the module docstring). Default: with
            workers ``min(n_macro, n_workers)`` (each leader serves few ranks); without workers
            1 (no balancing: every macro rank runs its own tasks, :class:`LocalFarm`).
            With workers 1 .. min(n_macro, n_workers) (every group has a macro rank and a
            worker); without workers 1 or ``n_macro`` (each macro rank a group of its own,
            which moves tasks between macro ranks by their cost).
        team_size: worker ranks that run each task together (a multi-rank RVE); must divide
            ``n_workers``. Groups are counted in teams: at most ``n_workers // team_size``.

    Raises:
        InputError: unless ``0 <= n_workers < comm.size`` (at least one macro rank), or for a
            group count or team size outside those ranges.
    """
    try:
        n = operator.index(n_workers)
    except TypeError:
        raise InputError(f"n_workers must be an integer, got {n_workers!r}") from None
    if not 0 <= n < comm.size:
        raise InputError(
            f"n_workers must be in 0..{comm.size - 1} for {comm.size} ranks (at least one rank "
            f"runs the macro problem), got {n}")
    n_macro = comm.size - n
    try:
        r = operator.index(team_size)
    except TypeError:
        raise InputError(f"team_size must be an integer, got {team_size!r}") from None
    if r < 1 or (n and n % r) or (not n and r != 1):
        raise InputError(f"the ranks per RVE (team_size, [mpi] rve_ranks) must be a divisor of "
                         f"the {n} workers (and 1 without workers), got {r}")
    teams = n // r
    if groups is None:
        groups = min(n_macro, teams) if n else 1
    try:
        g = operator.index(groups)
    except TypeError:
        raise InputError(f"groups must be an integer, got {groups!r}") from None
    if n and not 1 <= g <= min(n_macro, teams):
        raise InputError(f"groups must be in 1..{min(n_macro, teams)} with {n_macro} macro ranks "
                         f"and {teams} worker teams of {r} (every group needs a macro rank and "
                         f"a worker), got {g}")
    if not n and g not in (1, n_macro):
        raise InputError(f"without workers, groups must be 1 (each macro rank runs its own "
                         f"points) or {n_macro} (the macro ranks share their points by cost), "
                         f"got {g}")
    dup = comm.Dup()
    layout = Layout(dup, n, None, g, team_size=r)
    macro = layout.is_macro
    sub = dup.Split(0 if macro else 1, key=dup.rank)
    layout.macro_comm = sub if macro else None
    if not macro:
        sub.Free()
    grp = dup.Split(layout.group if macro else g, key=dup.rank)  # workers: a spare colour
    layout.group_macro_comm = grp if macro else None
    if not macro:
        grp.Free()
    lead = dup.Split(0 if layout.is_leader else 1, key=dup.rank)
    layout.leader_comm = lead if layout.is_leader else None
    if not layout.is_leader:
        lead.Free()
    team = dup.Split(layout.team_leader(dup.rank) if not macro else 0, key=dup.rank)
    layout.team_comm = None if macro else team
    if macro:
        team.Free()
    return layout


# ---------------------------------------------------------------------------------------------
# Records and the interface


def error_record(exc: BaseException) -> dict:
    """Describe a failure as a picklable dict: ``kind``, ``type`` and ``message``.

    ``kind`` is ``"InputError"``, ``"CalculationFailed"`` (also for ``LinAlgError`` and
    ``FloatingPointError``) or ``"other"`` (most likely a bug).
    """
    if isinstance(exc, InputError):
        kind = "InputError"
    elif isinstance(exc, (CalculationFailed, np.linalg.LinAlgError, FloatingPointError)):
        kind = "CalculationFailed"
    else:
        kind = "other"
    return {"kind": kind, "type": type(exc).__name__, "message": str(exc)}


def _run_task(handler: Handler, task) -> tuple[Any, dict | None, float]:
    """``(result, record, seconds)`` of one task; a raising handler gives a record."""
    t0 = time.perf_counter()
    try:
        result, record = handler(task)
    except Exception as exc:  # noqa: BLE001 - a record for every macro rank
        raise_if_interrupt(exc)  # Ctrl-C, also inside numba, is never a record
        result, record = None, error_record(exc)
    return result, record, time.perf_counter() - t0


@dataclass
class FarmRound:
    """What one :meth:`Farm.run` gives a macro rank.

    Attributes:
        results: the results of this rank's tasks, in order (None for a task that was not run
            or whose handler raised).
        errors: every failure record of the round, the same list on every macro rank, each
            with ``rank``, ``task`` and (from a worker) ``worker`` added.
        compute: summed handler seconds of the ranks that ran tasks.
        critical: the largest handler seconds of one such rank.
        seconds: the handler seconds of each of this rank's tasks (0 where not run): the cost
            to predict the next round with.
        moved: tasks moved between groups in this round (all groups).
    """

    results: list
    errors: list[dict] = field(default_factory=list)
    compute: float = 0.0
    critical: float = 0.0
    seconds: list[float] = field(default_factory=list)
    moved: int = 0


class Farm(Protocol):
    """Runs the tasks of every macro rank (see the module docstring)."""

    def run(self, tasks: Sequence, *, error: dict | None = None,
            costs: Sequence[float] | None = None) -> FarmRound:
        """Run this rank's tasks; collective over the macro ranks."""
        ...

    def close(self) -> None:
        """Stop the workers, if any; call once on every macro rank."""
        ...


# ---------------------------------------------------------------------------------------------
# Farms


class LocalFarm:
    """No workers: every macro rank runs its own tasks.

    Args:
        layout: from :func:`split_world` (its ``macro_comm`` shares the records and seconds).
        handler: runs one task.
    """

    def __init__(self, layout: Layout, handler: Handler) -> None:
        self.layout = layout
        self.handler = handler
        #: ``progress(done, total)`` after each task, or None
        self.progress: Callable[[int, int], None] | None = None

    def run(self, tasks: Sequence, *, error: dict | None = None,
            costs: Sequence[float] | None = None) -> FarmRound:
        """Run this rank's tasks in order, stop at the first failure, share the records."""
        comm = self.layout.macro_comm
        results: list = [None] * len(tasks)
        seconds = [0.0] * len(tasks)
        record = None
        if error is not None:
            record = dict(error, task=-1)
        else:
            for k, task in enumerate(tasks):
                results[k], rec, seconds[k] = _run_task(self.handler, task)
                if self.progress is not None:
                    self.progress(k + 1, len(tasks))
                if rec is not None:
                    record = dict(rec, task=k)
                    break
        if record is not None:
            record["rank"] = comm.rank
        info = comm.allgather((sum(seconds), record))
        errors = [r for _, r in info if r is not None]
        secs = [s for s, _ in info]
        return FarmRound(results, errors, float(sum(secs)), float(max(secs)), seconds)

    def close(self) -> None:
        """Nothing to stop."""


def plan_transfers(loads: Sequence[float], capacities: Sequence[float], *,
                   tolerance: float = 0.02) -> list[tuple[int, int, float]]:
    """Which group gives how much work to which: the same answer on every leader.

    Each group's share of the total load is proportional to its capacity (its workers, or 1).
    Groups above their share give to groups below it, the largest surplus to the largest
    deficit first, until no surplus is left; differences below ``tolerance`` times the mean
    share are left alone.

    Args:
        loads: the predicted load of each group (e.g. seconds).
        capacities: each group's capacity (> 0).
        tolerance: relative size of a difference not worth a transfer.

    Returns:
        ``(giver, taker, amount)`` triples, givers and takers disjoint.
    """
    loads = np.asarray(loads, dtype=float)
    cap = np.asarray(capacities, dtype=float)
    total = float(loads.sum())
    if len(loads) < 2 or total <= 0:
        return []
    share = total * cap / cap.sum()
    floor = tolerance * total / len(loads)
    surplus = loads - share
    give = [[float(surplus[g]), g] for g in range(len(loads)) if surplus[g] > floor]
    take = [[float(-surplus[g]), g] for g in range(len(loads)) if -surplus[g] > floor]
    give.sort(key=lambda x: (-x[0], x[1]))
    take.sort(key=lambda x: (-x[0], x[1]))
    plan = []
    i = j = 0
    while i < len(give) and j < len(take):
        amount = min(give[i][0], take[j][0])
        plan.append((give[i][1], take[j][1], amount))
        give[i][0] -= amount
        take[j][0] -= amount
        if give[i][0] <= floor:
            i += 1
        if take[j][0] <= floor:
            j += 1
    return plan


def _longest_first(costs: Sequence[float]) -> list[int]:
    """Indices by decreasing cost (ties by index)."""
    return sorted(range(len(costs)), key=lambda k: (-costs[k], k))


class GroupFarm:
    """Groups of macro ranks, each with its own workers, sharing work by its measured cost.

    See the module docstring for one round. The leaders exchange only the group loads, the
    moved tasks and the failure records; the workers of a group hear only from its leader.

    Args:
        layout: from :func:`split_world`, with workers or with one group per macro rank; the
            worker ranks run :func:`serve`.
        handler: runs a task on a leader whose group has no workers.
        poll_interval: seconds a leader sleeps between probes for results (0: a blocking
            receive, lowest latency; MPICH then busy-polls a core, which steals compute when
            the leader shares cores with workers - use e.g. 1e-3 there).
        balance: move tasks between groups by cost (False: each group runs its own).
    """

    def __init__(self, layout: Layout, handler: Handler | None = None, *,
                 poll_interval: float = 0.0, balance: bool = True) -> None:
        if not poll_interval >= 0:
            raise InputError(f"poll_interval must be >= 0 seconds, got {poll_interval}")
        if not layout.n_workers and layout.groups != layout.n_macro:
            raise InputError("GroupFarm without workers needs one group per macro rank "
                             "(split_world(comm, 0, groups=comm.size)); else use LocalFarm")
        self.layout = layout
        self.handler = handler
        self.poll_interval = float(poll_interval)
        self.balance = bool(balance)
        self.workers = layout.group_workers(layout.group) if layout.is_macro else []
        #: ``progress(done, total)`` after each task this leader's group ran, or None
        self.progress: Callable[[int, int], None] | None = None

    # -- one round ---------------------------------------------------------------------------
    def run(self, tasks: Sequence, *, error: dict | None = None,
            costs: Sequence[float] | None = None) -> FarmRound:
        """Run this rank's tasks in its group (or another); collective over the macro ranks."""
        lay = self.layout
        tasks = list(tasks)
        if costs is not None:
            costs = [float(c) for c in costs]
            if len(costs) != len(tasks):
                raise InputError(f"{len(costs)} costs for {len(tasks)} tasks")
        rank = lay.macro_comm.rank
        if error is not None:
            error = dict(error, task=-1, rank=rank)
        gathered = lay.group_macro_comm.gather((rank, tasks, costs, error), root=0)
        replies = self._lead(gathered) if lay.is_leader else None
        return lay.group_macro_comm.scatter(replies, root=0)

    def _lead(self, gathered) -> list[FarmRound]:
        """The leader's part of a round: returns the reply to each macro rank of the group."""
        lay = self.layout
        # this group's tasks, each keyed by (macro rank, index in its list)
        keys = [(r, k) for r, ts, _, _ in gathered for k in range(len(ts))]
        payload = {(r, k): t for r, ts, _, _ in gathered for k, t in enumerate(ts)}
        known = all(cs is not None for _, _, cs, _ in gathered)
        cost = {(r, k): (cs[k] if known else 1.0) for r, ts, cs, _ in gathered
                for k in range(len(ts))}
        errors = [e for _, _, _, e in gathered if e is not None]
        capacity = max(len(self.workers), 1)
        info = lay.leader_comm.allgather((float(sum(cost.values())), capacity, bool(errors),
                                          known, len(keys)))
        if not all(i[3] for i in info):  # a rank without measured costs: count tasks instead
            cost = dict.fromkeys(keys, 1.0)
            info = [(float(i[4]), *i[1:]) for i in info]
        results: dict = {}
        seconds: dict = {}
        busy: dict[int, float] = {}
        moved = 0
        if not any(i[2] for i in info):
            plan = (plan_transfers([i[0] for i in info], [i[1] for i in info])
                    if self.balance else [])
            moved = self._round(plan, keys, payload, cost, results, seconds, errors, busy)
        everything = lay.leader_comm.allgather((errors, busy, moved))
        all_errors = sorted((e for errs, _, _ in everything for e in errs),
                            key=lambda e: (e["rank"], e["task"]))
        secs = [s for _, b, _ in everything for s in b.values()]
        moved = sum(m for _, _, m in everything)
        compute, critical = float(sum(secs)), float(max(secs, default=0.0))
        return [FarmRound([results.get((r, k)) for k in range(len(ts))], all_errors, compute,
                          critical, [seconds.get((r, k), 0.0) for k in range(len(ts))], moved)
                for r, ts, _, _ in gathered]

    def _round(self, plan, keys, payload, cost, results, seconds, errors, busy) -> int:
        """Move tasks by ``plan``, run this leader's share, return moved results; count moves."""
        lay = self.layout
        me = lay.group
        comm = lay.comm
        requests = []
        sent: dict[int, list] = {}
        order = [keys[i] for i in _longest_first([cost[k] for k in keys])]
        for giver, taker, amount in plan:
            if giver != me:
                continue
            out, left = [], amount
            for key in order:
                if key in payload and cost[key] <= left * (1 + 1e-12):
                    out.append(key)
                    left -= cost[key]
            sent[taker] = out
            msg = [(key, payload.pop(key), cost[key]) for key in out]
            requests.append(comm.isend(msg, dest=lay.leader(taker), tag=_TAG_MOVE))
        came: dict[int, list] = {}
        for giver, taker, _ in plan:
            if taker == me:
                came[giver] = comm.recv(source=lay.leader(giver), tag=_TAG_MOVE)
        queue = [(key, payload[key], cost[key]) for key in order if key in payload]
        for msgs in came.values():
            queue += msgs
        queue.sort(key=lambda item: -item[2])  # longest first (stable: own tasks first)
        done = self._evaluate(queue, busy)
        for giver, msgs in came.items():  # results of the moved tasks go home
            back = [(key, *done.pop(key, (None, None, 0.0))) for key, _, _ in msgs]
            requests.append(comm.isend(back, dest=lay.leader(giver), tag=_TAG_MOVED_BACK))
        for taker in sent:
            for key, result, record, sec in comm.recv(source=lay.leader(taker),
                                                      tag=_TAG_MOVED_BACK):
                done[key] = (result, record, sec)
        for key, (result, record, sec) in done.items():
            results[key], seconds[key] = result, sec
            if record is not None:
                errors.append(dict(record, rank=key[0], task=key[1]))
        for req in requests:
            req.wait()
        return sum(len(v) for v in sent.values())

    def _evaluate(self, queue, busy) -> dict:
        """Run ``queue`` ``[(key, task, cost)]`` here or on the group's workers, in order.

        Returns:
            ``{key: (result, record or None, seconds)}`` for the tasks that ran (after a
            failure, no further task is started).
        """
        done: dict = {}
        if not self.workers:  # a group of one macro rank without workers
            me = self.layout.rank
            busy[me] = 0.0
            for key, task, _ in queue:
                result, record, sec = _run_task(self.handler, task)
                busy[me] += sec
                if record is not None:
                    record = dict(record, ran_on=me)
                done[key] = (result, record, sec)
                if self.progress is not None:
                    self.progress(len(done), len(queue))
                if record is not None:
                    break
            return done
        MPI = mpi()
        comm = self.layout.comm
        for w in self.workers:
            busy[w] = 0.0
        nxt = outstanding = 0
        failed = False
        for w in self.workers:
            if nxt == len(queue):
                break
            comm.send((nxt, queue[nxt][1]), dest=w, tag=_TAG_WORK)
            nxt += 1
            outstanding += 1
        status = MPI.Status()
        while outstanding:
            if self.poll_interval > 0:
                while not comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_RESULT):
                    time.sleep(self.poll_interval)
            k, result, record, sec = comm.recv(source=MPI.ANY_SOURCE, tag=_TAG_RESULT,
                                               status=status)
            outstanding -= 1
            worker = status.Get_source()
            busy[worker] += sec
            if record is not None:
                record = dict(record, worker=worker, ran_on=worker)
                failed = True
            done[queue[k][0]] = (result, record, sec)
            if self.progress is not None:
                self.progress(len(done), len(queue))
            if not failed and nxt < len(queue):  # after a failure: drain, hand out nothing
                comm.send((nxt, queue[nxt][1]), dest=worker, tag=_TAG_WORK)
                nxt += 1
                outstanding += 1
        return done

    def close(self) -> None:
        """Send stop to the group's workers (from its leader); call once on every macro rank."""
        if self.layout.is_leader:
            for w in self.workers:
                self.layout.comm.send(None, dest=w, tag=_TAG_STOP)


def make_farm(layout: Layout, handler: Handler, *, poll_interval: float = 0.0) -> Farm:
    """The farm for ``layout``: :class:`GroupFarm` with workers or groups, else :class:`LocalFarm`.

    ``handler`` runs the tasks on macro ranks that have no workers; worker ranks pass theirs
    to :func:`serve`.
    """
    if not poll_interval >= 0:
        raise InputError(f"poll_interval must be >= 0 seconds, got {poll_interval}")
    if layout.n_workers or layout.groups > 1:
        return GroupFarm(layout, handler, poll_interval=poll_interval)
    return LocalFarm(layout, handler)


def serve(layout: Layout, handler: Handler) -> dict:
    """Run tasks for the group's leader until it sends stop; call on worker ranks.

    Every task gets a reply (its result, or a failure record), so the leader never waits
    forever.

    Returns:
        ``{"tasks": ..., "compute": seconds}`` done by this worker.

    Raises:
        InputError: on a macro rank.
        KeyboardInterrupt: for an interrupt inside the handler.
    """
    if not layout.is_worker:
        raise InputError(f"serve() is for worker ranks; rank {layout.rank} is a macro rank")
    MPI = mpi()
    comm = layout.comm
    leader = layout.leader(layout.group)
    team = layout.team_comm
    first = team is None or team.size == 1 or team.rank == 0
    status = MPI.Status()
    stats = {"tasks": 0, "compute": 0.0}
    while True:
        if first:
            msg = comm.recv(source=leader, tag=MPI.ANY_TAG, status=status)
            if status.Get_tag() == _TAG_STOP:
                msg = None
            if team is not None and team.size > 1:
                team.bcast(msg, root=0)  # the task (or stop) to the rest of the team
        else:
            msg = team.bcast(None, root=0)
        if msg is None:
            return stats
        k, task = msg
        result, record, seconds = _run_task(handler, task)
        stats["tasks"] += 1
        stats["compute"] += seconds
        if first:
            comm.send((k, result, record, seconds), dest=leader, tag=_TAG_RESULT)
