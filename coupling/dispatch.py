"""MPI layout and dynamic dispatch of material points (RVEs) to worker ranks.

Layout
    :func:`split_world` splits a communicator into *macro* ranks (the first ``size - n_workers``
    ranks; :attr:`Layout.macro_comm` carries the DOLFINx mesh and the macro solver) and *worker*
    ranks that only evaluate material points (:func:`run_worker`). ``n_workers=0`` makes every
    rank a macro rank that evaluates its own Gauss points.

Dispatch
    :class:`DispatchedMaterial` is the :class:`fe2qc.material.MaterialPoint` the macro solver
    sees. With workers, every :meth:`~DispatchedMaterial.evaluate` gathers the owned batches of
    all macro ranks on the macro root (rank 0 of the layout), which hands out chunks of
    ``chunk_size`` points to idle workers with plain point-to-point messages: one chunk to each
    worker, then ``Recv(ANY_SOURCE)`` and the next chunk to whoever finished first. This is
    dynamic load balancing: an RVE with a defect, or one near an instability, relaxes many times
    longer than a perfect one, and a static split would leave the other workers waiting. The
    root puts the results back in order and scatters them to the macro ranks.

History travels with the point
    The states (e.g. relaxed internal displacements of an RVE, the warm start of the next
    relaxation) live on the macro rank that owns the Gauss point, as a committed and a trial
    copy per point. Each evaluation ships the *committed* state with F and gets the trial state
    back with P and A; :meth:`~DispatchedMaterial.commit` / :meth:`~DispatchedMaterial.revert`
    just swap local copies. No worker holds history, so any worker may evaluate any point at any
    time: results do not depend on the number of workers, on chunking or on which worker
    finished first - they are bitwise those of evaluating the points one by one in one process
    (same inputs, same code path). The price is moving the state twice per evaluation (3
    doubles per atom; small next to the RVE relaxation).

Failures
    An exception in a point evaluation is caught where it happens (worker or macro rank),
    turned into an error record naming the global point index, and after the collective reply
    :meth:`~DispatchedMaterial.evaluate` raises on *every* macro rank: :class:`InputError` and
    :class:`CalculationFailed` (and ``LinAlgError`` / ``FloatingPointError``, mapped to
    :class:`CalculationFailed`) keep their type so the FE² solver cuts the load step back on
    every rank; anything else becomes :class:`PointEvaluationError`. The exception carries
    ``point_index`` (the index in this rank's batch, or None when the point is owned by another
    rank), ``global_point_index`` and ``failures`` (all error records). Workers always get a
    reply or a stop message, so nothing hangs; after a failure no new chunks are handed out and
    the outstanding ones are collected. An interrupt (KeyboardInterrupt, SystemExit, or the
    ``SystemError`` numba raises around a KeyboardInterrupt, see
    :func:`fe2qc.errors.is_interrupt`) is never a failure record: it is raised as
    KeyboardInterrupt where it happened, and the caller ends the run on every rank
    (:mod:`coupling.interrupts`, ``comm.Abort``).

Timings (cumulative, seconds, in :attr:`DispatchedMaterial.timings`)
    * ``wall``: wall time spent in ``evaluate``/``energy_density`` on this macro rank;
    * ``compute``: sum over evaluating ranks (workers, or macro ranks without workers) of the
      time spent inside ``evaluate_point``;
    * ``critical``: per call, the largest compute time of one evaluating rank - the shortest
      wall time that call could have taken with its assignment of points;
    * ``dispatch``: ``wall - critical``: gather/scatter, pickling, message latency, idle workers
      waiting for the last chunk, and macro ranks waiting for each other at the gather. The
      dispatch share is ``dispatch / wall``.

Example (a script; library code never uses ``COMM_WORLD``)::

    layout = split_world(MPI.COMM_WORLD, n_workers=3)
    model = RVEPoint(AtomisticRVE.from_lattice(pot, "fcc", a0, vacancy=True), dim=2)
    if layout.is_worker:
        run_worker(layout, model)
    else:
        with DispatchedMaterial(layout, model) as material:
            msh = mesh.create_unit_square(layout.macro_comm, 8, 8)
            Problem(msh, material, ...).solve(10)
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fe2qc.errors import CalculationFailed, InputError, is_interrupt
from fe2qc.mpi import mpi

__all__ = [
    "Layout",
    "split_world",
    "DispatchedMaterial",
    "PointEvaluationError",
    "run_worker",
    "evaluate_points",
]

_TAG_WORK, _TAG_RESULT, _TAG_STOP = 7301, 7302, 7303
_ROOT = 0


class PointEvaluationError(RuntimeError):
    """A material point raised something other than an input error or a failed calculation
    (most likely a bug); the FE² solver stops rather than cutting back."""


# ---------------------------------------------------------------------------------------------
# Layout


@dataclass(eq=False)
class Layout:
    """Which ranks run the macro problem and which evaluate material points.

    ``comm`` is a private duplicate of the communicator given to :func:`split_world` (dispatch
    messages never mix with the caller's); ranks ``0 .. n_macro - 1`` are macro ranks, the last
    ``n_workers`` ranks are workers.
    """

    comm: Any
    n_workers: int
    macro_comm: Any | None  # the communicator for the mesh; None on worker ranks
    worker_comm: Any | None  # the workers among themselves; None on macro ranks

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    @property
    def n_macro(self) -> int:
        return self.size - self.n_workers

    @property
    def is_macro(self) -> bool:
        return self.rank < self.n_macro

    @property
    def is_worker(self) -> bool:
        return not self.is_macro

    @property
    def is_root(self) -> bool:
        """The macro root: gathers the batches and dispatches them."""
        return self.rank == _ROOT

    @property
    def worker_ranks(self) -> list[int]:
        return list(range(self.n_macro, self.size))

    def free(self) -> None:
        """Free the communicators (collective over the original communicator)."""
        for c in (self.macro_comm, self.worker_comm, self.comm):
            if c is not None:
                c.Free()
        self.macro_comm = self.worker_comm = None

    def __repr__(self) -> str:
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
# Evaluating points (shared by workers and worker-less macro ranks)


def _error_record(exc: BaseException, index: int) -> dict:
    if isinstance(exc, InputError):
        kind = "InputError"
    elif isinstance(exc, (CalculationFailed, np.linalg.LinAlgError, FloatingPointError)):
        kind = "CalculationFailed"
    else:
        kind = "other"
    return {"index": int(index), "kind": kind, "type": type(exc).__name__, "message": str(exc)}


@dataclass
class _Block:
    """Results of consecutive points, packed as arrays."""

    P: np.ndarray
    A: np.ndarray
    W: np.ndarray
    work: np.ndarray
    seconds: np.ndarray
    states: list = field(default_factory=list)

    @classmethod
    def empty(cls, n: int, d: int) -> _Block:
        return cls(np.zeros((n, d, d)), np.zeros((n, d, d, d, d)), np.zeros(n), np.zeros(n),
                   np.zeros(n), [None] * n)

    def put(self, start: int, other: _Block) -> None:
        stop = start + len(other.W)
        self.P[start:stop] = other.P
        self.A[start:stop] = other.A
        self.W[start:stop] = other.W
        self.work[start:stop] = other.work
        self.seconds[start:stop] = other.seconds
        self.states[start:stop] = other.states

    def take(self, start: int, stop: int) -> _Block:
        return _Block(self.P[start:stop], self.A[start:stop], self.W[start:stop],
                      self.work[start:stop], self.seconds[start:stop], self.states[start:stop])


def evaluate_points(model, F_qij, states, tangent: bool, first_index: int, dim: int):
    """Evaluate consecutive points; stop at the first failure.

    What a worker (or a macro rank without workers) does with one chunk of points. A failed
    calculation becomes an error record naming the point (``first_index`` + its place in
    the chunk) so that every macro rank can cut back; an interrupt (Ctrl-C, also the
    ``SystemError`` numba wraps it in) is raised as ``KeyboardInterrupt`` instead.

    Returns ``(block of the points done, error record or None, compute seconds)``.
    """
    n = len(F_qij)
    out = _Block.empty(n, dim)
    err = None
    done = 0
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        try:
            r = model.evaluate_point(F_qij[i], states[i], tangent=tangent)
            out.P[i] = r.P
            out.A[i] = r.A
            out.W[i] = r.W
            out.work[i] = r.work
            out.states[i] = np.asarray(r.state, dtype=float)
        except Exception as exc:  # noqa: BLE001 - reported to every macro rank
            if is_interrupt(exc):  # Ctrl-C inside numba: SystemError around the interrupt
                raise KeyboardInterrupt from None
            err = _error_record(exc, first_index + i)
            break
        out.seconds[i] = time.perf_counter() - t0
        done += 1
    return out.take(0, done), err, time.perf_counter() - t_start


def run_worker(layout: Layout, point_model) -> dict:
    """Serve point evaluations until the macro root sends stop; call on worker ranks.

    Every chunk gets a reply (results, or results up to the failing point plus an error
    record), so the macro root never waits forever.

    Returns:
        ``{"points": ..., "chunks": ..., "compute": seconds}`` done by this worker.
    """
    if not layout.is_worker:
        raise InputError(f"run_worker() is for worker ranks; rank {layout.rank} is a macro rank "
                         "(use DispatchedMaterial there)")
    MPI = mpi()
    comm = layout.comm
    status = MPI.Status()
    stats = {"points": 0, "chunks": 0, "compute": 0.0}
    while True:
        msg = comm.recv(source=_ROOT, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == _TAG_STOP:
            return stats
        start, tangent, F_qij, states = msg
        try:
            block, err, seconds = evaluate_points(point_model, F_qij, states, tangent, start,
                                                  point_model.dim)
        except Exception as exc:  # noqa: BLE001 - a bug outside the point loop: still reply
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            block, err, seconds = None, _error_record(exc, start), 0.0
        if err is not None:
            err["worker"] = layout.rank
        stats["chunks"] += 1
        stats["points"] += 0 if block is None else len(block.W)
        stats["compute"] += seconds
        comm.send((start, block, err, seconds), dest=_ROOT, tag=_TAG_RESULT)


# ---------------------------------------------------------------------------------------------
# The material the macro solver sees


class DispatchedMaterial:
    """A :class:`fe2qc.material.MaterialPoint` whose points are evaluated by a
    :class:`~coupling.points.PointModel`, on worker ranks when the layout has any.

    Args:
        layout: from :func:`split_world`; construct on every macro rank.
        point_model: the point model (used locally for ``dim`` and ``initial_state()``, and
            for evaluations when there are no workers; workers get their own in
            :func:`run_worker`).
        chunk_size: points per message to a worker (1: finest load balance).
        poll_interval: seconds the macro root sleeps between probes for results (0: a blocking
            receive, lowest latency; MPICH then busy-polls a core, which steals compute when
            the root shares cores with workers - use e.g. 1e-3 there).

    Attributes:
        timings: cumulative seconds, see the module docstring.
        last_work: ``work`` of each local point in the last evaluation.
        last_seconds: compute seconds of each local point in the last evaluation.
    """

    def __init__(self, layout: Layout, point_model, *, chunk_size: int = 1,
                 poll_interval: float = 0.0) -> None:
        if not layout.is_macro:
            raise InputError(f"rank {layout.rank} is a worker rank: call run_worker() there, "
                             "DispatchedMaterial() on the macro ranks")
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
        self.layout = layout
        self.point_model = point_model
        self.dim = int(point_model.dim)
        self.chunk_size = int(chunk_size)
        if not poll_interval >= 0:
            raise InputError(f"poll_interval must be >= 0 seconds, got {poll_interval}")
        self.poll_interval = float(poll_interval)
        self._committed: list[np.ndarray] | None = None
        self._trial: list[np.ndarray] | None = None
        self.last_work = np.zeros(0)
        self.last_seconds = np.zeros(0)
        self.timings = {"calls": 0, "wall": 0.0, "compute": 0.0, "critical": 0.0,
                        "dispatch": 0.0}
        self._closed = False

    # -- states --------------------------------------------------------------------------------
    @property
    def committed_states(self) -> list[np.ndarray] | None:
        """Committed state of each local point (None before the first evaluation)."""
        return self._committed

    def _states(self, nq: int) -> list[np.ndarray]:
        if self._committed is None or len(self._committed) != nq:
            init = np.asarray(self.point_model.initial_state(), dtype=float)
            self._committed = [init.copy() for _ in range(nq)]
        return self._committed

    def commit(self) -> None:
        """The last trial states become the committed ones (local, no communication)."""
        if self._trial is not None:
            self._committed = self._trial
            self._trial = None

    def revert(self) -> None:
        """Forget the last trial states (local, no communication)."""
        self._trial = None

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P_qij, A_qijkl)`` at this rank's owned points. Collective over the macro ranks."""
        block = self._run(F_qij, tangent=True)
        self._trial = list(block.states)
        self.last_work = block.work.copy()
        self.last_seconds = block.seconds.copy()
        return block.P, block.A

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """W at this rank's points, from the committed states; states are left unchanged.
        Collective over the macro ranks."""
        return self._run(F_qij, tangent=False).W

    def _run(self, F_qij, tangent: bool) -> _Block:
        if self._closed:
            raise InputError("DispatchedMaterial was closed; its workers have stopped")
        t_start = time.perf_counter()
        d = self.dim
        local_err = None
        try:
            F = np.asarray(F_qij, dtype=float)
            if F.ndim != 3 or F.shape[1:] != (d, d):
                raise InputError(f"deformation gradients must have shape (nq, {d}, {d}), "
                                 f"got {F.shape}")
            states = self._states(len(F))
        except Exception as exc:  # noqa: BLE001 - shared below, so no rank is left waiting
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            F, states = np.zeros((0, d, d)), []
            local_err = _error_record(exc, -1)
        if self.layout.n_workers == 0:
            block, errors, offset, compute, critical = self._run_local(F, states, tangent,
                                                                       local_err)
        else:
            block, errors, offset, compute, critical = self._run_dispatched(F, states, tangent,
                                                                            local_err)
        wall = time.perf_counter() - t_start
        t = self.timings
        t["calls"] += 1
        t["wall"] += wall
        t["compute"] += compute
        t["critical"] += critical
        t["dispatch"] += wall - critical
        if errors:
            raise self._exception(errors, offset, len(F))
        return block

    def _run_local(self, F, states, tangent, local_err):
        comm = self.layout.macro_comm
        err = local_err
        block = _Block.empty(0, self.dim)
        seconds = 0.0
        if err is None:
            block, err, seconds = evaluate_points(self.point_model, F, states, tangent, 0,
                                                  self.dim)
        if err is not None:
            err["rank"] = comm.rank
            err["local"] = err["index"]
        info = comm.allgather((len(F), seconds, err))
        offsets = np.concatenate([[0], np.cumsum([n for n, _, _ in info])])
        errors = []
        for r, (_, _, e) in enumerate(info):
            if e is not None:
                e = dict(e)
                e["index"] = int(offsets[r] + e["local"]) if e["local"] >= 0 else -1
                errors.append(e)
        secs = [s for _, s, _ in info]
        return block, errors, int(offsets[comm.rank]), float(sum(secs)), float(max(secs))

    def _run_dispatched(self, F, states, tangent, local_err):
        comm = self.layout.macro_comm
        if local_err is not None:
            local_err["rank"] = comm.rank
        gathered = comm.gather((F, states, local_err), root=_ROOT)
        replies = None
        if comm.rank == _ROOT:
            counts = [len(f) for f, _, _ in gathered]
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
            errors = [e for _, _, e in gathered if e is not None]
            compute = critical = 0.0
            blocks = [None] * len(gathered)
            if not errors:
                F_all = np.concatenate([f for f, _, _ in gathered]) if gathered else F
                S_all = [s for _, ss, _ in gathered for s in ss]
                block, errors, busy = self._dispatch(F_all, S_all, tangent)
                for e in errors:
                    r = int(np.searchsorted(offsets, e["index"], side="right") - 1)
                    e["rank"], e["local"] = r, e["index"] - int(offsets[r])
                compute = float(sum(busy.values()))
                critical = float(max(busy.values(), default=0.0))
                if not errors:
                    blocks = [block.take(offsets[r], offsets[r + 1]) for r in range(len(counts))]
            replies = [(blocks[r], errors, int(offsets[r]), compute, critical)
                       for r in range(len(gathered))]
        block, errors, offset, compute, critical = comm.scatter(replies, root=_ROOT)
        return block, errors, offset, compute, critical

    def _dispatch(self, F_all, S_all, tangent):
        """On the macro root: hand chunks to idle workers, collect the results in order."""
        MPI = mpi()
        comm = self.layout.comm
        n, d = len(F_all), self.dim
        out = _Block.empty(n, d)
        chunks = [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]
        busy = dict.fromkeys(self.layout.worker_ranks, 0.0)
        errors: list[dict] = []
        nxt = outstanding = 0

        def send(worker):
            s, e = chunks[nxt]
            comm.send((s, tangent, F_all[s:e], S_all[s:e]), dest=worker, tag=_TAG_WORK)

        for w in self.layout.worker_ranks:
            if nxt == len(chunks):
                break
            send(w)
            nxt += 1
            outstanding += 1
        status = MPI.Status()
        while outstanding:
            if self.poll_interval > 0:
                while not comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_RESULT):
                    time.sleep(self.poll_interval)
            start, block, err, seconds = comm.recv(source=MPI.ANY_SOURCE, tag=_TAG_RESULT,
                                                   status=status)
            outstanding -= 1
            worker = status.Get_source()
            busy[worker] += seconds
            if block is not None:
                out.put(start, block)
            if err is not None:
                errors.append(err)
            elif not errors and nxt < len(chunks):  # after a failure: drain, hand out nothing
                send(worker)
                nxt += 1
                outstanding += 1
        errors.sort(key=lambda e: e["index"])
        return out, errors, busy

    def _exception(self, errors: list[dict], offset: int, nq: int) -> Exception:
        e = errors[0]
        g = e["index"]
        local = g - offset if (g >= 0 and offset <= g < offset + nq) else None
        where = (f"Gauss point {g} (global batch index; macro rank {e.get('rank')}, "
                 f"local index {e.get('local')})" if g >= 0 else
                 f"the batch of macro rank {e.get('rank')}")
        on = f" on worker rank {e['worker']}" if "worker" in e else ""
        more = f" ({len(errors) - 1} more failures)" if len(errors) > 1 else ""
        msg = f"material point evaluation failed at {where}{on}: {e['type']}: {e['message']}{more}"
        cls = {"InputError": InputError, "CalculationFailed": CalculationFailed}.get(
            e["kind"], PointEvaluationError)
        exc = cls(msg)
        exc.point_index = local
        exc.global_point_index = g if g >= 0 else None
        exc.failures = errors
        return exc

    # -- shutdown ------------------------------------------------------------------------------
    def close(self) -> None:
        """Send stop to every worker (from the macro root); call once on every macro rank."""
        if self._closed:
            return
        self._closed = True
        if self.layout.n_workers and self.layout.is_root:
            for w in self.layout.worker_ranks:
                self.layout.comm.send(None, dest=w, tag=_TAG_STOP)

    def __enter__(self) -> DispatchedMaterial:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dispatch_share(self) -> float:
        """Fraction of the evaluation wall time not spent computing on the critical path."""
        w = self.timings["wall"]
        return self.timings["dispatch"] / w if w > 0 else 0.0

    def __repr__(self) -> str:
        return (f"DispatchedMaterial({self.point_model!r}, {self.layout.n_macro} macro ranks, "
                f"{self.layout.n_workers} workers, chunk_size={self.chunk_size})")
