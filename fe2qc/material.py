"""Material points: the batched protocol the macro solver calls, and the single-point protocol.

Batched (:class:`MaterialPoint`)
    A material point is batched over quadrature points (suffix ``_q``). At every Newton
    iteration the macro solver calls :meth:`MaterialPoint.evaluate` with trial deformation
    gradients; only once the load step has converged does it call :meth:`MaterialPoint.commit`,
    which makes the trial state (history, warm-start coordinates of atomistic RVEs) the new
    reference for the next step. A failed step calls :meth:`MaterialPoint.revert`, so nothing of
    the rejected trial leaks into the next attempt. (The same split as ``dolfinx_materials``'
    update/advance.) :class:`DelegatingMaterial` passes every call to an inner material point:
    the base of wrappers that change or watch one part of it (e.g. its tangent).

One point, state in and state out (:class:`PointModel`)
    ``evaluate_point(F_dd, state) -> PointResult(P, A, W, state, work)``: the model stores no
    history; the state of a point (e.g. the relaxed internal displacements of an RVE, the warm
    start of its next relaxation) is an argument and a result, so it can travel with the point
    to whichever process evaluates it. ``work`` measures the effort (relaxation iterations of an
    RVE, 0 for a closed-form law). :class:`atomistic.rve.AtomisticRVE`,
    :class:`atomistic.cauchy_born.CauchyBorn` and the analytic laws of :mod:`fe2.materials`
    (through :class:`StatelessPointMixin`) implement it.

One history store (:class:`PointHistory`) and the batched material over a point model
(:class:`PointMaterial`)
    :class:`PointHistory` keeps a committed and a trial state per point; :class:`PointMaterial`
    is the :class:`MaterialPoint` of any :class:`PointModel`, evaluating point by point in this
    process and recording what a driver reports (work and seconds per point and per step, the
    last F, P, A). ``coupling.dispatch.DispatchedMaterial`` is the same material with the batch
    evaluated on other MPI ranks: it overrides :meth:`PointMaterial.evaluate_batch` only.

Shapes: ``F_qij`` is (nq, d, d); ``P_qij`` the first Piola-Kirchhoff stress in
eV/Å³ (nq, d, d); ``A_qijkl = dP_ij/dF_kl`` (nq, d, d, d, d); one point's ``F_dd``, ``P``
(d, d) and ``A`` (d, d, d, d).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from fe2qc.errors import InputError, is_interrupt

__all__ = [
    "MaterialPoint",
    "DelegatingMaterial",
    "PointResult",
    "PointModel",
    "PointBatch",
    "PointHistory",
    "PointMaterial",
    "StatelessPointMixin",
    "check_deformation_gradients",
    "check_point_deformation_gradient",
    "evaluate_point_batch",
]


@runtime_checkable
class MaterialPoint(Protocol):
    """Batched hyperelastic material point with trial/commit semantics."""

    dim: int

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P_qij, A_qijkl)`` at trial deformation gradients ``F_qij``."""
        ...

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return the strain energy per reference volume W (eV/Å³) at each point."""
        ...

    def commit(self) -> None:
        """Accept the last evaluated trial state as converged."""
        ...

    def revert(self) -> None:
        """Discard the trial state (the load step is cut back)."""
        ...


class DelegatingMaterial:
    """A :class:`MaterialPoint` that passes every call to an inner material point.

    The base of wrappers that change or watch one part of a material: a subclass overrides
    what it changes (usually :meth:`evaluate`, e.g. to replace the tangent or record the
    stresses) and inherits the rest, so the trial/commit semantics stay the inner point's.

    Args:
        inner: the material point the calls go to.

    Attributes:
        inner: the wrapped material point.
        dim: its dimension (``inner.dim``).
    """

    def __init__(self, inner: MaterialPoint) -> None:
        self.inner = inner
        self.dim = inner.dim

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the inner point's ``(P_qij, A_qijkl)`` at ``F_qij``."""
        return self.inner.evaluate(F_qij)

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return the inner point's energy density W (eV/Å³) at each point."""
        return self.inner.energy_density(F_qij)

    def commit(self) -> None:
        """Commit the inner point's trial state."""
        self.inner.commit()

    def revert(self) -> None:
        """Revert the inner point to its committed state."""
        self.inner.revert()


def check_deformation_gradients(F_qij: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate a batch of deformation gradients and return it as a float array.

    Raises:
        fe2qc.errors.InputError: wrong shape, NaN/inf entries or entries beyond
            ``fe2qc.checks.MAX_F_ENTRY`` (the message names the first offending entry,
            ``F_qij[q, i, j]``), or det F <= 0 (naming the point).
    """
    F = np.asarray(F_qij, dtype=float)
    if F.ndim == 2:
        F = F[None]
    if F.ndim != 3 or F.shape[1] != F.shape[2] or (dim is not None and F.shape[1] != dim):
        want = f"(nq, {dim}, {dim})" if dim else "(nq, d, d)"
        raise InputError(f"deformation gradients must have shape {want}, got {F.shape}")
    from fe2qc.checks import MAX_F_ENTRY, require_finite

    if np.ndim(F_qij) == 2:  # one F: name its entries F[i, J]
        require_finite("F", F[0], bound=MAX_F_ENTRY)
    require_finite("F_qij", F, bound=MAX_F_ENTRY,
                   hint="(deformation gradients: the first index is the point)")
    J = np.linalg.det(F)
    if (J <= 0).any():
        q = int(np.flatnonzero(J <= 0)[0])
        raise InputError(
            f"det F = {J[q]:.6g} <= 0 at point {q}: the deformation inverts or flattens the "
            "material; reduce the load increment (the solver cuts the step back) or check the "
            "boundary conditions"
        )
    return F


def check_point_deformation_gradient(F_dd: np.ndarray, dim: int) -> np.ndarray:
    """Validate one (dim, dim) deformation gradient and return it as a float array.

    Raises:
        fe2qc.errors.InputError: wrong shape, non-finite or absurd entries (naming ``F[i, J]``),
            or det F <= 0.
    """
    F = np.asarray(F_dd, dtype=float)
    if F.shape != (dim, dim):
        raise InputError(f"a point's deformation gradient must have shape ({dim}, {dim}), "
                         f"got {F.shape}")
    return check_deformation_gradients(F, dim)[0]


# ---------------------------------------------------------------------------------------------
# One point: state in, state out


@dataclass
class PointResult:
    """What one material-point evaluation returns.

    ``A`` is zeros when the evaluation was asked for no tangent.
    """

    P: np.ndarray  # (d, d) first Piola-Kirchhoff stress, eV/Å³
    A: np.ndarray  # (d, d, d, d) dP/dF, eV/Å³
    W: float  # energy per reference volume, eV/Å³
    state: np.ndarray  # the trial state after this evaluation (1D, may be empty)
    work: float = 0.0  # e.g. relaxation iterations


@runtime_checkable
class PointModel(Protocol):
    """One material point whose history is passed in and returned, never stored."""

    dim: int

    def initial_state(self) -> np.ndarray:
        """Return the state of a point that has not been loaded yet (1D array, may be empty)."""
        ...

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """Return P, A, W at the (dim, dim) deformation gradient ``F_dd``, from ``state``."""
        ...


class StatelessPointMixin:
    """:class:`PointModel` methods for a batched law without history (an analytic law).

    The class provides ``dim`` and the batched ``evaluate(F_qij)`` and
    ``energy_density(F_qij)``; one point is a batch of one, its state is empty.
    """

    dim: int

    def initial_state(self) -> np.ndarray:
        """Return the empty state: the law has no history."""
        return np.zeros(0)

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """Return P, A (zeros without ``tangent``) and W at one deformation gradient."""
        F = check_point_deformation_gradient(F_dd, self.dim)[None]
        P, A = self.evaluate(F)
        A = np.array(A[0]) if tangent else np.zeros((self.dim,) * 4)
        W = float(self.energy_density(F)[0]) if hasattr(self, "energy_density") \
            else float("nan")
        return PointResult(np.array(P[0]), A, W, np.zeros(0), 0.0)


# ---------------------------------------------------------------------------------------------
# A batch of points


@dataclass
class PointBatch:
    """Results of consecutive points, packed as arrays (``states``: one 1D array per point)."""

    P: np.ndarray  # (n, d, d)
    A: np.ndarray  # (n, d, d, d, d)
    W: np.ndarray  # (n,)
    work: np.ndarray  # (n,)
    seconds: np.ndarray  # (n,) compute seconds of each point
    states: list = field(default_factory=list)

    @classmethod
    def empty(cls, n: int, d: int) -> PointBatch:
        """Return a batch of ``n`` zero results in dimension ``d`` (states None)."""
        return cls(np.zeros((n, d, d)), np.zeros((n, d, d, d, d)), np.zeros(n), np.zeros(n),
                   np.zeros(n), [None] * n)

    @classmethod
    def concatenate(cls, batches: Sequence[PointBatch], d: int) -> PointBatch:
        """Return the batches one after the other as one batch."""
        if not batches:
            return cls.empty(0, d)
        if len(batches) == 1:
            return batches[0]
        return cls(*(np.concatenate([getattr(b, k) for b in batches])
                     for k in ("P", "A", "W", "work", "seconds")),
                   [s for b in batches for s in b.states])

    def __len__(self) -> int:
        """Return the number of points."""
        return len(self.W)

    def put(self, start: int, other: PointBatch) -> None:
        """Copy ``other`` into points ``start, start + 1, ...`` of this batch."""
        stop = start + len(other)
        self.P[start:stop] = other.P
        self.A[start:stop] = other.A
        self.W[start:stop] = other.W
        self.work[start:stop] = other.work
        self.seconds[start:stop] = other.seconds
        self.states[start:stop] = other.states

    def take(self, start: int, stop: int) -> PointBatch:
        """Return points ``start .. stop - 1`` (array views)."""
        return PointBatch(self.P[start:stop], self.A[start:stop], self.W[start:stop],
                          self.work[start:stop], self.seconds[start:stop],
                          self.states[start:stop])


def evaluate_point_batch(model: PointModel, F_qij: np.ndarray, states: Sequence[np.ndarray], *,
                         tangent: bool = True, dim: int | None = None
                         ) -> tuple[PointBatch, tuple[int, Exception] | None]:
    """Evaluate consecutive points one by one; stop at the first failure.

    Args:
        model: the point model.
        F_qij: (n, d, d) deformation gradients.
        states: the state each point starts from.
        tangent: also compute A (else A is zeros).
        dim: d (default ``model.dim``).

    Returns:
        ``(batch of the points done, (index, exception) of the failed point or None)``.

    Raises:
        KeyboardInterrupt: for an interrupt, also one numba wraps in a ``SystemError``
            (:func:`fe2qc.errors.is_interrupt`): an interrupt is never a failed point.
    """
    n = len(F_qij)
    out = PointBatch.empty(n, int(model.dim if dim is None else dim))
    for i in range(n):
        t0 = time.perf_counter()
        try:
            r = model.evaluate_point(F_qij[i], states[i], tangent=tangent)
            out.P[i] = r.P
            out.A[i] = r.A
            out.W[i] = r.W
            out.work[i] = r.work
            out.states[i] = np.asarray(r.state, dtype=float)
        except Exception as exc:  # noqa: BLE001 - returned to the caller, who decides
            if is_interrupt(exc):  # Ctrl-C inside numba: SystemError around the interrupt
                raise KeyboardInterrupt from None
            return out.take(0, i), (i, exc)
        out.seconds[i] = time.perf_counter() - t0
    return out, None


# ---------------------------------------------------------------------------------------------
# History


class PointHistory:
    """The committed and the trial state of every point of a batch.

    The committed states are the reference of the next evaluation (the warm start of an RVE's
    relaxation); an evaluation makes trial states (:meth:`set_trial`), which :meth:`commit`
    makes the committed ones once the load step converged and :meth:`revert` forgets.

    Args:
        initial_state: returns the state of an unloaded point (1D array), e.g.
            ``PointModel.initial_state``; called when the number of points changes.
    """

    def __init__(self, initial_state: Callable[[], np.ndarray]) -> None:
        self._initial = initial_state
        self._committed: list[np.ndarray] | None = None
        self._trial: list[np.ndarray] | None = None

    @property
    def committed(self) -> list[np.ndarray] | None:
        """The committed state of each point (None before the first evaluation).

        The list itself: a state changed or replaced in it is what the next evaluation starts
        from. Assigning a list (e.g. from a checkpoint) replaces the states and forgets the
        trial.
        """
        return self._committed

    @committed.setter
    def committed(self, states: Sequence[np.ndarray] | None) -> None:
        self._committed = (None if states is None
                           else [np.array(s, dtype=float).reshape(-1) for s in states])
        self._trial = None

    @property
    def trial(self) -> list[np.ndarray] | None:
        """The states of the last evaluation, until :meth:`commit` or :meth:`revert`."""
        return self._trial

    def states(self, nq: int) -> list[np.ndarray]:
        """Return the committed states of ``nq`` points; initial states when ``nq`` changed."""
        if self._committed is None or len(self._committed) != nq:
            init = np.asarray(self._initial(), dtype=float)
            self._committed = [init.copy() for _ in range(nq)]
        return self._committed

    def set_trial(self, states: Sequence[np.ndarray]) -> None:
        """Record the states of the last evaluation (one per point)."""
        self._trial = list(states)

    def commit(self) -> None:
        """Make the trial states the committed ones (nothing happens without a trial)."""
        if self._trial is not None:
            self._committed = self._trial
            self._trial = None

    def revert(self) -> None:
        """Forget the trial states."""
        self._trial = None

    def as_array(self) -> np.ndarray | None:
        """Return the committed states stacked (nq, state size), e.g. for a checkpoint.

        None before the first evaluation, for no points, or when the states differ in size.
        """
        s = self._committed
        if not s:
            return None
        try:
            return np.stack(s)
        except ValueError:
            return None


# ---------------------------------------------------------------------------------------------
# The batched material of a point model


class PointMaterial:
    """The :class:`MaterialPoint` of a :class:`PointModel`, evaluated point by point here.

    It owns the :class:`PointHistory` of the batch: each evaluation starts every point from its
    committed state and records the returned states as the trial. It also keeps what a driver
    reports. A dispatcher evaluates the batch elsewhere by overriding :meth:`evaluate_batch`.

    Args:
        point_model: the model of one point (``dim``, ``initial_state()``,
            ``evaluate_point()``).

    Attributes:
        point_model: the model.
        history: the committed and trial states (:class:`PointHistory`).
        last_work: ``work`` of each point in the last evaluation (e.g. relaxation iterations).
        last_seconds: compute seconds of each point in the last evaluation.
        step_work_q: ``work`` of each point summed over the evaluations of the last converged
            load step (set by :meth:`commit`; None before it).
        step_seconds_q: compute seconds of each point, summed likewise.
        F_qij: the deformation gradients of the last evaluation (None before it).
        P_qij: the stresses of the last evaluation.
        A_qijkl: the tangents of the last evaluation.
        calls: number of :meth:`evaluate` calls.
    """

    def __init__(self, point_model: PointModel) -> None:
        self.point_model = point_model
        self.dim = int(point_model.dim)
        self.history = PointHistory(point_model.initial_state)
        self.last_work = np.zeros(0)
        self.last_seconds = np.zeros(0)
        self.step_work_q: np.ndarray | None = None
        self.step_seconds_q: np.ndarray | None = None
        self._step_sums: tuple[np.ndarray, np.ndarray] | None = None  # this trial step
        self.F_qij: np.ndarray | None = None
        self.P_qij: np.ndarray | None = None
        self.A_qijkl: np.ndarray | None = None
        self.calls = 0

    @property
    def committed_states(self) -> list[np.ndarray] | None:
        """The committed state of each point (``history.committed``; None before evaluation)."""
        return self.history.committed

    def evaluate_batch(self, F_qij: np.ndarray, *, tangent: bool = True) -> PointBatch:
        """Evaluate every point from its committed state; the history is not changed.

        The one method a dispatcher overrides.

        Raises:
            InputError: bad deformation gradients; CalculationFailed, or whatever the point
                model raised, for a failed point (with ``point_index`` set and a note naming
                the point).
        """
        F = check_deformation_gradients(F_qij, self.dim)
        states = self.history.states(len(F))
        batch, failure = evaluate_point_batch(self.point_model, F, states, tangent=tangent,
                                              dim=self.dim)
        if failure is not None:
            q, exc = failure
            try:
                exc.point_index = q
            except AttributeError:  # an exception type without a __dict__
                pass
            exc.add_note(f"(material point {q} of {len(F)}, {self.point_model!r})")
            raise exc
        return batch

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P_qij, A_qijkl)``; each point starts from its committed state."""
        batch = self.evaluate_batch(F_qij, tangent=True)
        self.history.set_trial(batch.states)
        self.calls += 1
        self.last_work = np.array(batch.work, dtype=float)
        self.last_seconds = np.array(batch.seconds, dtype=float)
        sums = self._step_sums
        if sums is None or len(sums[0]) != len(batch):
            self._step_sums = (self.last_work.copy(), self.last_seconds.copy())
        else:
            self._step_sums = (sums[0] + self.last_work, sums[1] + self.last_seconds)
        self.F_qij = np.array(F_qij, dtype=float)
        self.P_qij, self.A_qijkl = batch.P, batch.A
        return batch.P, batch.A

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return W (eV/Å³) at each point from its committed state; the history is unchanged."""
        return self.evaluate_batch(F_qij, tangent=False).W

    def commit(self) -> None:
        """Make the last trial states the committed ones; the step's sums become ``step_*``."""
        self.history.commit()
        if self._step_sums is not None:
            self.step_work_q, self.step_seconds_q = self._step_sums
        else:
            self.step_work_q = self.step_seconds_q = None
        self._step_sums = None

    def revert(self) -> None:
        """Forget the last trial states and the step's sums."""
        self.history.revert()
        self._step_sums = None

    def __repr__(self) -> str:
        """Return the class and the point model."""
        return f"{type(self).__name__}({self.point_model!r})"
