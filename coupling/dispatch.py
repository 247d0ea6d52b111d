"""Material points evaluated by a task farm: the FE² material with MPI workers.

:class:`DispatchedMaterial` is the :class:`fe2qc.material.PointMaterial` of a
:class:`fe2qc.material.PointModel` whose batch is evaluated through a
:class:`coupling.farm.Farm`: it overrides :meth:`~fe2qc.material.PointMaterial.evaluate_batch`
only, so the history, the per-point work and seconds and the last F, P, A are kept exactly as
for a local evaluation. Without workers (``split_world(comm, 0)``) every macro rank evaluates
its own points (:class:`coupling.farm.LocalFarm`); with workers (or ``groups = n_macro``) the
leader of each group of macro ranks hands chunks of ``chunk_size`` points to the idle workers
of its group, and the groups share work by the seconds each chunk's points took in the last
round (:class:`coupling.farm.GroupFarm`: dynamic balancing inside a group, longest first
across groups, no rank that sees every point); worker ranks run :func:`run_worker`.

The interface to the farm
    A task is one chunk ``(start, tangent, F_qij, states)`` of a rank's points (``start``: the
    index of its first point in that rank's batch); the handler (:func:`point_handler`)
    evaluates it with :func:`evaluate_points` and returns ``(PointBatch, failure record or
    None)``. Another farm behind :class:`coupling.farm.Farm` (``run(tasks, error=None)``,
    ``close()``) plugs in unchanged.

History travels with the point
    The states (e.g. relaxed internal displacements of an RVE, the warm start of the next
    relaxation) live on the macro rank that owns the Gauss point, in the material's
    :class:`fe2qc.material.PointHistory`. Each evaluation ships the *committed* state with F
    and gets the trial state back with P and A; :meth:`~DispatchedMaterial.commit` /
    :meth:`~DispatchedMaterial.revert` just swap local copies. No worker holds history, so any
    worker may evaluate any point at any time: results do not depend on the number of workers,
    on chunking or on which worker finished first - they are bitwise those of evaluating the
    points one by one in one process (same inputs, same code path). The price is moving the
    state twice per evaluation (3 doubles per atom; small next to the RVE relaxation).

Failures
    An exception in a point evaluation is caught where it happens (worker or macro rank),
    turned into an error record naming the point, and after the collective reply
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
      time spent evaluating points;
    * ``critical``: per call, the largest compute time of one evaluating rank - the shortest
      wall time that call could have taken with its assignment of points;
    * ``dispatch``: ``wall - critical``: gather/scatter, pickling, message latency, idle workers
      waiting for the last chunk, and macro ranks waiting for each other at the gather. The
      dispatch share is ``dispatch / wall``.

Example (a script; library code never uses ``COMM_WORLD``)::

    layout = split_world(MPI.COMM_WORLD, n_workers=3)
    model = AtomisticRVE.from_lattice(pot, "fcc", a0, vacancy=True, dim=2)
    if layout.is_worker:
        run_worker(layout, model)
    else:
        with DispatchedMaterial(layout, model) as material:
            msh = mesh.create_unit_square(layout.macro_comm, 8, 8)
            Problem(msh, material, ...).solve(10)
"""

from __future__ import annotations

import time

import numpy as np

from coupling.farm import Layout, error_record, make_farm, serve, split_world
from fe2qc.errors import CalculationFailed, InputError, raise_if_interrupt
from fe2qc.material import PointBatch, PointMaterial, PointModel, evaluate_point_batch

__all__ = [
    "Layout",
    "split_world",
    "DispatchedMaterial",
    "PointEvaluationError",
    "run_worker",
    "evaluate_points",
    "point_handler",
]


class PointEvaluationError(RuntimeError):
    """A material point raised something other than an input error or a failed calculation.

    Most likely a bug; the FE² solver stops rather than cutting back.
    """


def evaluate_points(model: PointModel, F_qij, states, tangent: bool, first_index: int,
                    dim: int):
    """Evaluate consecutive points; stop at the first failure.

    What a worker (or a macro rank without workers) does with one chunk of points. A failed
    calculation becomes an error record naming the point (``first_index`` + its place in
    the chunk) so that every macro rank can cut back; an interrupt (Ctrl-C, also the
    ``SystemError`` numba wraps it in) is raised as ``KeyboardInterrupt`` instead.

    Returns:
        ``(PointBatch of the points done, error record or None, compute seconds)``.
    """
    t_start = time.perf_counter()
    block, failure = evaluate_point_batch(model, F_qij, states, tangent=tangent, dim=dim)
    err = None
    if failure is not None:
        i, exc = failure
        err = dict(error_record(exc), index=int(first_index + i))
    return block, err, time.perf_counter() - t_start


def point_handler(point_model: PointModel):
    """The farm handler of point chunks ``(start, tangent, F_qij, states)``.

    Returns:
        ``handler(task) -> (PointBatch, error record or None)``.
    """
    dim = int(point_model.dim)

    def handle(task):
        start, tangent, F_qij, states = task
        block, err, _ = evaluate_points(point_model, F_qij, states, tangent, start, dim)
        return block, err

    return handle


def run_worker(layout: Layout, point_model: PointModel) -> dict:
    """Serve point evaluations until the group's leader sends stop; call on worker ranks.

    Every chunk gets a reply (results, or results up to the failing point plus an error
    record), so the leader never waits forever.

    Returns:
        ``{"points": ..., "chunks": ..., "compute": seconds}`` done by this worker.
    """
    if not layout.is_worker:
        raise InputError(f"run_worker() is for worker ranks; rank {layout.rank} is a macro rank "
                         "(use DispatchedMaterial there)")
    handle = point_handler(point_model)
    points = 0

    def counting(task):
        nonlocal points
        block, err = handle(task)
        points += len(block)
        return block, err

    stats = serve(layout, counting)
    return {"points": points, "chunks": stats["tasks"], "compute": stats["compute"]}


class DispatchedMaterial(PointMaterial):
    """A :class:`fe2qc.material.PointMaterial` whose points are evaluated by a task farm.

    On worker ranks when the layout has any, else on the macro ranks (each its own points, or
    shared by cost with ``groups = n_macro``).

    Args:
        layout: from :func:`split_world`; construct on every macro rank.
        point_model: the point model (used locally for ``dim`` and ``initial_state()``, and
            for evaluations when there are no workers; workers get their own in
            :func:`run_worker`).
        chunk_size: points per task (1: finest load balance). Without workers and groups a
            rank evaluates its points as one chunk.
        poll_interval: seconds a group leader sleeps between probes for results (0: a blocking
            receive, lowest latency; MPICH then busy-polls a core, which steals compute when
            the leader shares cores with workers - use e.g. 1e-3 there).
        replicated: the macro problem is replicated on every macro rank (the QC: its atoms and
            its continuum assembly run whole on each rank): every macro rank passes the same
            batch. The batch is then split into contiguous blocks, one per macro rank; each
            rank's block goes through the farm (evaluated there, or by the workers) and every
            rank gets the whole batch back (one ``allgather``), so the history is the same on
            every rank and the results are bitwise those of one rank evaluating every point.

    Attributes:
        timings: cumulative seconds, see the module docstring (and ``moved``: the tasks moved
            between groups).
        farm: the :class:`coupling.farm.Farm` that runs the chunks.
        point_seconds: the seconds each point of this rank's block took in the last round
            (the costs the farm balances the next round by); None before the first round.
    """

    def __init__(self, layout: Layout, point_model: PointModel, *, chunk_size: int = 1,
                 poll_interval: float = 0.0, replicated: bool = False) -> None:
        if not layout.is_macro:
            raise InputError(f"rank {layout.rank} is a worker rank: call run_worker() there, "
                             "DispatchedMaterial() on the macro ranks")
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
        super().__init__(point_model)
        self.layout = layout
        self.chunk_size = int(chunk_size)
        self.replicated = bool(replicated)
        self.farm = make_farm(layout, point_handler(point_model), poll_interval=poll_interval)
        self.timings = {"calls": 0, "wall": 0.0, "compute": 0.0, "critical": 0.0,
                        "dispatch": 0.0, "moved": 0}
        self._closed = False
        # chunks go through the farm one by one where it shares them out (workers or groups)
        self._chunked = bool(layout.n_workers or layout.groups > 1)
        #: seconds each point of this rank's block took in the last round (the cost the farm
        #: balances the next round by); None before the first round
        self.point_seconds: np.ndarray | None = None

    def evaluate_batch(self, F_qij: np.ndarray, *, tangent: bool = True,
                       points: np.ndarray | None = None) -> PointBatch:
        """Evaluate this rank's points through the farm. Collective over the macro ranks.

        ``points``: None, or the batch's indices in a shared numbering
        (:class:`fe2qc.material.PointMaterial`).

        Raises:
            InputError, CalculationFailed, PointEvaluationError: on every macro rank when a
                point anywhere failed (see the module docstring).
        """
        if self._closed:
            raise InputError("DispatchedMaterial was closed; its workers have stopped")
        t_start = time.perf_counter()
        d = self.dim
        tasks, error, costs = [], None, None
        try:
            F = np.asarray(F_qij, dtype=float)
            if F.ndim != 3 or F.shape[1:] != (d, d):
                raise InputError(f"deformation gradients must have shape (nq, {d}, {d}), "
                                 f"got {F.shape}")
            states = self.history.states(len(F), points)
            lo, hi = self._block(len(F))
            F, states = F[lo:hi], states[lo:hi]
            step = self.chunk_size if self._by_chunk else max(len(F), 1)
            tasks = [(s, tangent, F[s:s + step], states[s:s + step])
                     for s in range(0, len(F), step)]
            last = self.point_seconds
            if last is not None and len(last) == len(F):
                costs = [float(last[s:s + step].sum()) for s in range(0, len(F), step)]
        except Exception as exc:  # noqa: BLE001 - shared below, so no rank is left waiting
            raise_if_interrupt(exc)
            F = np.zeros((0, d, d))
            error = dict(error_record(exc), index=-1)
        out = self.farm.run(tasks, error=error, costs=costs)
        wall = time.perf_counter() - t_start
        t = self.timings
        t["calls"] += 1
        t["wall"] += wall
        t["compute"] += out.compute
        t["critical"] += out.critical
        t["dispatch"] += wall - out.critical
        t["moved"] += out.moved
        if not out.errors:  # a task's seconds, spread over its points
            self.point_seconds = np.concatenate(
                [np.full(len(task[2]), sec / max(len(task[2]), 1))
                 for task, sec in zip(tasks, out.seconds, strict=True)]) if tasks else None
        if out.errors:
            raise self._exception(out.errors, len(F))
        batch = PointBatch.concatenate(out.results, d)
        if self.replicated and self.layout.n_macro > 1:  # every rank gets the whole batch
            batch = PointBatch.concatenate(self.layout.macro_comm.allgather(batch), d)
        return batch

    @property
    def _by_chunk(self) -> bool:
        """One task per chunk: the farm shares chunks out, or reports progress per task."""
        return self._chunked or getattr(self.farm, "progress", None) is not None

    def _block(self, n: int) -> tuple[int, int]:
        """This macro rank's points ``lo .. hi - 1`` of a batch of ``n`` (all unless replicated)."""
        if not self.replicated:
            return 0, n
        size, rank = self.layout.n_macro, self.layout.macro_comm.rank
        edges = [n * r // size for r in range(size + 1)]
        return edges[rank], edges[rank + 1]

    def _exception(self, errors: list[dict], nq: int) -> Exception:
        """The exception every macro rank raises for the failure records of a round."""
        counts = self.layout.macro_comm.allgather(nq)  # only on failures: name global points
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        errors = [dict(e) for e in errors]
        for e in errors:
            if "index" in e:  # a point's record (or -1: the rank's batch)
                local = int(e["index"])
            else:  # the handler itself raised: name the chunk's first point
                local = int(e["task"]) * self.chunk_size if self._by_chunk else 0
            e["local"] = local
            e["index"] = int(offsets[e["rank"]] + local) if local >= 0 else -1
        errors.sort(key=lambda e: (e["rank"], e["local"]))
        e = errors[0]
        g = e["index"]
        rank = self.layout.macro_comm.rank
        if self.replicated:  # every rank holds the whole batch: the index in it
            local = g if g >= 0 else None
        else:
            local = e["local"] if (g >= 0 and e["rank"] == rank) else None
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
        """Stop the workers (from their leaders); call once on every macro rank."""
        if self._closed:
            return
        self._closed = True
        self.farm.close()

    def __enter__(self) -> DispatchedMaterial:
        """Return the material; :meth:`close` on leaving the block."""
        return self

    def __exit__(self, *exc) -> None:
        """Stop the workers."""
        self.close()

    @property
    def dispatch_share(self) -> float:
        """Fraction of the evaluation wall time not spent computing on the critical path."""
        w = self.timings["wall"]
        return self.timings["dispatch"] / w if w > 0 else 0.0

    def __repr__(self) -> str:
        """Return the model, the ranks and the chunk size."""
        return (f"DispatchedMaterial({self.point_model!r}, {self.layout.n_macro} macro ranks, "
                f"{self.layout.n_workers} workers, chunk_size={self.chunk_size})")
