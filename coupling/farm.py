"""MPI rank layout and a task farm: the macro root hands out opaque tasks to worker ranks.

Layout
    :func:`split_world` splits a communicator into *macro* ranks (the first ``size - n_workers``
    ranks; :attr:`Layout.macro_comm` carries the DOLFINx mesh and the macro solver) and *worker*
    ranks that only run tasks (:func:`serve`). ``n_workers=0`` makes every rank a macro rank.

The farm interface (:class:`Farm`)
    One collective call over the macro ranks, ``farm.run(tasks, error=None) -> FarmRound``:
    every macro rank passes its own list of tasks (opaque, picklable payloads) and gets back the
    results of its tasks in order, every failure record of the round (the same list on every
    macro rank) and the compute seconds. A *handler* ``handler(task) -> (result, record)`` runs
    the tasks; ``record`` is None, or a dict describing why the task failed (the handler's own
    words, e.g. naming the failed item). After a failure no new tasks are handed out and the
    outstanding ones are collected. A handler that raises becomes a record too
    (:func:`error_record`); an interrupt (KeyboardInterrupt, SystemExit, or the ``SystemError``
    numba raises around one, :func:`fe2qc.errors.is_interrupt`) is raised as
    KeyboardInterrupt where it happened, never a record. ``error`` lets a rank that failed
    before making its tasks (e.g. on a bad input) take part in the round: then no task runs
    anywhere and every rank gets the record. :meth:`Farm.close` stops the workers.

    Every record the round returns carries ``rank`` (the macro rank that owns the task; that
    rank's own ``error`` has ``task`` -1) and ``task`` (its index in that rank's list), and
    ``worker`` (the worker rank) where a worker produced it.

Farms
    * :class:`LocalFarm` (no workers): every macro rank runs its own tasks in order and stops at
      the first failure; the records and seconds are shared with one ``allgather``.
    * :class:`WorkerFarm`: the macro root (rank 0 of the layout) gathers the tasks of all macro
      ranks and hands them out one at a time with plain point-to-point messages: one task to
      each worker, then ``Recv(ANY_SOURCE)`` and the next task to whoever finished first. This
      is dynamic load balancing: a task that takes many times longer than the others (an RVE
      with a defect, or near an instability) does not leave the other workers waiting, as a
      static split would. The root puts the results back in order and scatters them to the
      macro ranks. Worker ranks run :func:`serve`.

    :func:`make_farm` picks one for the layout. The farm knows nothing about what a task
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
    "WorkerFarm",
    "make_farm",
    "serve",
    "error_record",
]

_TAG_WORK, _TAG_RESULT, _TAG_STOP = 7301, 7302, 7303
_ROOT = 0

#: ``handler(task) -> (result, failure record or None)``
Handler = Callable[[Any], tuple[Any, "dict | None"]]


# ---------------------------------------------------------------------------------------------
# Layout


@dataclass(eq=False)
class Layout:
    """Which ranks run the macro problem and which run tasks.

    ``comm`` is a private duplicate of the communicator given to :func:`split_world` (farm
    messages never mix with the caller's); ranks ``0 .. n_macro - 1`` are macro ranks, the last
    ``n_workers`` ranks are workers.
    """

    comm: Any
    n_workers: int
    macro_comm: Any | None  # the communicator for the mesh; None on worker ranks
    worker_comm: Any | None  # the workers among themselves; None on macro ranks

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
    def is_root(self) -> bool:
        """The macro root: gathers the tasks and hands them out."""
        return self.rank == _ROOT

    @property
    def worker_ranks(self) -> list[int]:
        """The worker ranks in ``comm``."""
        return list(range(self.n_macro, self.size))

    def free(self) -> None:
        """Free the communicators (collective over the original communicator)."""
        for c in (self.macro_comm, self.worker_comm, self.comm):
            if c is not None:
                c.Free()
        self.macro_comm = self.worker_comm = None

    def __repr__(self) -> str:
        """Return the rank, its role and the counts."""
        return (f"Layout(rank {self.rank} of {self.size}, {self.n_macro} macro, "
                f"{self.n_workers} workers, {'macro' if self.is_macro else 'worker'})")


def split_world(comm, n_workers: int) -> Layout:
    """Split ``comm`` into macro ranks (the first ``size - n_workers``) and worker ranks.

    Collective over ``comm``; every rank must pass the same ``n_workers``.

    Raises:
        InputError: unless ``0 <= n_workers < comm.size`` (at least one macro rank).
    """
    try:
        n = operator.index(n_workers)
    except TypeError:
        raise InputError(f"n_workers must be an integer, got {n_workers!r}") from None
    if not 0 <= n < comm.size:
        raise InputError(
            f"n_workers must be in 0..{comm.size - 1} for {comm.size} ranks (at least one rank "
            f"runs the macro problem), got {n}")
    dup = comm.Dup()
    macro = dup.rank < dup.size - n
    sub = dup.Split(0 if macro else 1, key=dup.rank)
    return Layout(dup, n, sub if macro else None, None if macro else sub)


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
    """

    results: list
    errors: list[dict] = field(default_factory=list)
    compute: float = 0.0
    critical: float = 0.0


class Farm(Protocol):
    """Runs the tasks of every macro rank (see the module docstring)."""

    def run(self, tasks: Sequence, *, error: dict | None = None) -> FarmRound:
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

    def run(self, tasks: Sequence, *, error: dict | None = None) -> FarmRound:
        """Run this rank's tasks in order, stop at the first failure, share the records."""
        comm = self.layout.macro_comm
        results: list = [None] * len(tasks)
        seconds = 0.0
        record = None
        if error is not None:
            record = dict(error, task=-1)
        else:
            for k, task in enumerate(tasks):
                results[k], rec, sec = _run_task(self.handler, task)
                seconds += sec
                if rec is not None:
                    record = dict(rec, task=k)
                    break
        if record is not None:
            record["rank"] = comm.rank
        info = comm.allgather((seconds, record))
        errors = [r for _, r in info if r is not None]
        secs = [s for s, _ in info]
        return FarmRound(results, errors, float(sum(secs)), float(max(secs)))

    def close(self) -> None:
        """Nothing to stop."""


class WorkerFarm:
    """The macro root hands the tasks of all macro ranks to idle workers, one at a time.

    Args:
        layout: from :func:`split_world`, with workers; the worker ranks run :func:`serve`.
        poll_interval: seconds the macro root sleeps between probes for results (0: a blocking
            receive, lowest latency; MPICH then busy-polls a core, which steals compute when
            the root shares cores with workers - use e.g. 1e-3 there).
    """

    def __init__(self, layout: Layout, *, poll_interval: float = 0.0) -> None:
        if not layout.n_workers:
            raise InputError("WorkerFarm needs a layout with workers (use LocalFarm without)")
        if not poll_interval >= 0:
            raise InputError(f"poll_interval must be >= 0 seconds, got {poll_interval}")
        self.layout = layout
        self.poll_interval = float(poll_interval)

    def run(self, tasks: Sequence, *, error: dict | None = None) -> FarmRound:
        """Gather every rank's tasks on the root, farm them out, scatter the results."""
        comm = self.layout.macro_comm
        if error is not None:
            error = dict(error, task=-1, rank=comm.rank)
        gathered = comm.gather((list(tasks), error), root=_ROOT)
        replies = None
        if comm.rank == _ROOT:
            counts = [len(t) for t, _ in gathered]
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
            errors = [e for _, e in gathered if e is not None]
            results: list = [None] * int(offsets[-1])
            busy = {}
            if not errors:
                results, errors, busy = self._farm([t for ts, _ in gathered for t in ts])
                for e in errors:
                    g = e.pop("task")
                    r = int(np.searchsorted(offsets, g, side="right") - 1)
                    e["rank"], e["task"] = r, g - int(offsets[r])
            compute = float(sum(busy.values()))
            critical = float(max(busy.values(), default=0.0))
            replies = [FarmRound(results[offsets[r]:offsets[r + 1]], errors, compute, critical)
                       for r in range(len(gathered))]
        return comm.scatter(replies, root=_ROOT)

    def _farm(self, tasks: list) -> tuple[list, list[dict], dict[int, float]]:
        """On the macro root: hand tasks to idle workers, collect the results in order."""
        MPI = mpi()
        comm = self.layout.comm
        results: list = [None] * len(tasks)
        busy = dict.fromkeys(self.layout.worker_ranks, 0.0)
        errors: list[dict] = []
        nxt = outstanding = 0
        for w in self.layout.worker_ranks:
            if nxt == len(tasks):
                break
            comm.send((nxt, tasks[nxt]), dest=w, tag=_TAG_WORK)
            nxt += 1
            outstanding += 1
        status = MPI.Status()
        while outstanding:
            if self.poll_interval > 0:
                while not comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_RESULT):
                    time.sleep(self.poll_interval)
            k, result, record, seconds = comm.recv(source=MPI.ANY_SOURCE, tag=_TAG_RESULT,
                                                   status=status)
            outstanding -= 1
            worker = status.Get_source()
            busy[worker] += seconds
            results[k] = result
            if record is not None:
                errors.append(dict(record, task=k, worker=worker))
            elif not errors and nxt < len(tasks):  # after a failure: drain, hand out nothing
                comm.send((nxt, tasks[nxt]), dest=worker, tag=_TAG_WORK)
                nxt += 1
                outstanding += 1
        errors.sort(key=lambda e: e["task"])
        return results, errors, busy

    def close(self) -> None:
        """Send stop to every worker (from the macro root); call once on every macro rank."""
        if self.layout.is_root:
            for w in self.layout.worker_ranks:
                self.layout.comm.send(None, dest=w, tag=_TAG_STOP)


def make_farm(layout: Layout, handler: Handler, *, poll_interval: float = 0.0) -> Farm:
    """The farm for ``layout``: :class:`WorkerFarm` with workers, else :class:`LocalFarm`.

    ``handler`` runs the tasks locally (:class:`LocalFarm`); with workers, the worker ranks
    pass theirs to :func:`serve`.
    """
    if layout.n_workers:
        return WorkerFarm(layout, poll_interval=poll_interval)
    if not poll_interval >= 0:
        raise InputError(f"poll_interval must be >= 0 seconds, got {poll_interval}")
    return LocalFarm(layout, handler)


def serve(layout: Layout, handler: Handler) -> dict:
    """Run tasks for the macro root until it sends stop; call on worker ranks.

    Every task gets a reply (its result, or a failure record), so the macro root never waits
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
    status = MPI.Status()
    stats = {"tasks": 0, "compute": 0.0}
    while True:
        msg = comm.recv(source=_ROOT, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == _TAG_STOP:
            return stats
        k, task = msg
        result, record, seconds = _run_task(handler, task)
        stats["tasks"] += 1
        stats["compute"] += seconds
        comm.send((k, result, record, seconds), dest=_ROOT, tag=_TAG_RESULT)
