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
    :meth:`PointMaterial.energy_stress_tangent` gives W, P and A from one trial evaluation
    (the QC continuum's call); ``points=`` keys a batch's points in a numbering shared by
    several callers (several continua on different cell subsets of one mesh, one material).

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

from fe2qc.errors import InputError, raise_if_interrupt

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
    "check_points",
    "evaluate_point_batch",
]


@runtime_checkable
class MaterialPoint(Protocol):
    """Batched hyperelastic material point with trial/commit semantics.

    Optional members (not part of the ``isinstance`` check; callers test ``hasattr``):

    ``energy_stress_tangent(F_qij, *, tangent=True) -> (W_q, P_qij, A_qijkl or None)``
        W, P and A (None without ``tangent``) from ONE evaluation of the batch, a trial
        evaluation exactly as :meth:`evaluate` (its states are what :meth:`commit` accepts).
        The QC continuum (``coupling.qc.continuum.DolfinxContinuum``) calls it when present,
        else :meth:`energy_density` and :meth:`evaluate`: twice the work (two relaxations per
        RVE point), with W from the committed states. :class:`PointMaterial` (so the
        dispatcher's material), ``atomistic.cauchy_born.CauchyBorn`` and
        ``coupling.qc.continuum.LatticeCauchyBorn`` have it. :class:`PointMaterial`'s also
        takes ``points=`` (the batch's indices in a numbering shared by several callers, so
        that one material serves continua on different cell subsets).
    ``site_volume`` (float, Å³)
        The reference volume per lattice site of a lattice material, so that the energy per
        site is ``W * site_volume``: the primitive cell's volume for Cauchy-Born, the cell's
        volume over its lattice sites (vacant ones included) for an atomistic RVE. The QC
        continuum checks it against the volume per site of its lattice.
    """

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


def check_points(points, nq: int) -> np.ndarray:
    """Validate the indices of a batch's points in a shared numbering (see PointHistory).

    Args:
        points: ``nq`` distinct non-negative integers.
        nq: the batch's size.

    Returns:
        The indices as an int64 array.

    Raises:
        fe2qc.errors.InputError: not ``nq`` distinct non-negative integers.
    """
    p = np.asarray(points)
    if p.shape != (nq,) or (nq and not np.issubdtype(p.dtype, np.integer)):
        raise InputError(f"points must be {nq} integer indices (one per point of the batch), "
                         f"got shape {p.shape} and type {p.dtype}")
    p = p.astype(np.int64)
    if nq and (p.min() < 0 or len(np.unique(p)) != nq):
        raise InputError("points must be distinct non-negative indices (each point of the "
                         "batch once)")
    return p


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
            raise_if_interrupt(exc)  # Ctrl-C, also inside numba, is not a failed point
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

    A batch is either the whole set of points (``points=None``: the batch's size is the number
    of points, and a batch of another size starts over from initial states), or a subset
    named by ``points``, the points' indices in one numbering shared by every caller (e.g. the
    cells of a mesh that several continua evaluate in different subsets): a keyed batch never
    starts over, it adds initial states for indices not seen yet, and its trial states are
    merged into the trial of the step, so that :meth:`commit` accepts those of every subset
    evaluated since the last commit or revert.

    Args:
        initial_state: returns the state of an unloaded point (1D array), e.g.
            ``PointModel.initial_state``; called for new points.
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

    def states(self, nq: int, points: np.ndarray | None = None) -> list[np.ndarray]:
        """Return the committed states of a batch of ``nq`` points.

        Args:
            nq: the batch's size.
            points: None (the batch is every point: initial states when ``nq`` changed), or
                the batch's indices (:func:`check_points`; new indices get initial states).

        Returns:
            The committed list itself without ``points``, else a list of its states.
        """
        if points is None:
            if self._committed is None or len(self._committed) != nq:
                init = np.asarray(self._initial(), dtype=float)
                self._committed = [init.copy() for _ in range(nq)]
            return self._committed
        points = check_points(points, nq)
        need = int(points.max()) + 1 if len(points) else 0
        if self._committed is None:
            self._committed = []
        if len(self._committed) < need:
            init = np.asarray(self._initial(), dtype=float)
            self._committed.extend(init.copy() for _ in range(need - len(self._committed)))
        return [self._committed[p] for p in points]

    def set_trial(self, states: Sequence[np.ndarray],
                  points: np.ndarray | None = None) -> None:
        """Record the states of the last evaluation (one per point of the batch).

        With ``points`` (the batch's indices, as given to :meth:`states`) they are merged into
        the step's trial: the other points keep their trial state, or their committed one.
        """
        if points is None:
            self._trial = list(states)
            return
        points = check_points(points, len(states))
        committed = self._committed or []
        trial = self._trial
        if trial is not None and len(trial) <= len(committed):  # points added since: committed
            base = list(trial) + committed[len(trial):]
        else:
            base = list(committed)
        need = int(points.max()) + 1 if len(points) else 0
        if len(base) < need:  # pragma: no cover - states() extended the committed list first
            init = np.asarray(self._initial(), dtype=float)
            base.extend(init.copy() for _ in range(need - len(base)))
        for p, st in zip(points, states, strict=True):
            base[p] = st
        self._trial = base

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

    Every evaluation takes an optional ``points``: the batch's indices in a numbering shared by
    several callers (e.g. the cells of a mesh that two continua evaluate in different subsets,
    with one material): each point then keeps its own history whichever batch evaluates it,
    and :meth:`commit` accepts the trial states of every batch since the last commit (see
    :class:`PointHistory`). Without ``points`` the batch is every point.

    Args:
        point_model: the model of one point (``dim``, ``initial_state()``,
            ``evaluate_point()``).

    Attributes:
        point_model: the model.
        history: the committed and trial states (:class:`PointHistory`).
        last_work: ``work`` of each point in the last evaluation (e.g. relaxation iterations).
        last_seconds: compute seconds of each point in the last evaluation.
        step_work_q: ``work`` of each point summed over the evaluations of the last converged
            load step (set by :meth:`commit`; None before it); with ``points``, of every
            point of the shared numbering.
        step_seconds_q: compute seconds of each point, summed likewise.
        F_qij: the deformation gradients of the last evaluation (None before it).
        P_qij: the stresses of the last evaluation.
        A_qijkl: the tangents of the last evaluation (None when it computed none).
        W_q: the energy densities of the last evaluation.
        calls: number of trial evaluations (:meth:`evaluate`, :meth:`energy_stress_tangent`).
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
        self._step_keyed = False  # the sums are over the shared numbering of ``points``
        self.F_qij: np.ndarray | None = None
        self.P_qij: np.ndarray | None = None
        self.A_qijkl: np.ndarray | None = None
        self.W_q: np.ndarray | None = None
        self.calls = 0

    @property
    def committed_states(self) -> list[np.ndarray] | None:
        """The committed state of each point (``history.committed``; None before evaluation)."""
        return self.history.committed

    @property
    def site_volume(self) -> float | None:
        """The point model's volume per lattice site (Å³), None when it has none."""
        v = getattr(self.point_model, "site_volume", None)
        return None if v is None else float(v)

    def evaluate_batch(self, F_qij: np.ndarray, *, tangent: bool = True,
                       points: np.ndarray | None = None) -> PointBatch:
        """Evaluate every point from its committed state; the history is not changed.

        The one method a dispatcher overrides.

        Args:
            F_qij: (nq, d, d) deformation gradients.
            tangent: also compute A (else A is zeros).
            points: None, or the batch's indices in the shared numbering (see the class).

        Raises:
            InputError: bad deformation gradients; CalculationFailed, or whatever the point
                model raised, for a failed point (with ``point_index`` set and a note naming
                the point).
        """
        F = check_deformation_gradients(F_qij, self.dim)
        states = self.history.states(len(F), points)
        batch, failure = evaluate_point_batch(self.point_model, F, states, tangent=tangent,
                                              dim=self.dim)
        if failure is not None:
            q, exc = failure
            try:
                exc.point_index = q
            except AttributeError:  # an exception type without a __dict__
                pass
            key = "" if points is None else f", point {int(np.asarray(points)[q])} of the numbering"
            exc.add_note(f"(material point {q} of {len(F)}{key}, {self.point_model!r})")
            raise exc
        return batch

    def evaluate(self, F_qij: np.ndarray, *, points: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P_qij, A_qijkl)``; each point starts from its committed state.

        ``points``: None, or the batch's indices in the shared numbering (see the class).
        """
        batch = self._trial_evaluation(F_qij, tangent=True, points=points)
        return batch.P, batch.A

    def energy_stress_tangent(self, F_qij: np.ndarray, *, tangent: bool = True,
                              points: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(W_q, P_qij, A_qijkl or None)`` from one trial evaluation of the batch.

        The same evaluation as :meth:`evaluate` (one relaxation per RVE point, from the
        committed states; the states it returns become the trial that :meth:`commit`
        accepts), with W as well; the optional one-call method of :class:`MaterialPoint`
        that the QC continuum uses.

        Args:
            F_qij: (nq, d, d) deformation gradients.
            tangent: also compute A (else A is None: cheaper, e.g. for a line search).
            points: None, or the batch's indices in the shared numbering (see the class).

        Returns:
            W (nq,) eV/Å³, P (nq, d, d) eV/Å³ and A (nq, d, d, d, d) eV/Å³ or None.
        """
        batch = self._trial_evaluation(F_qij, tangent=tangent, points=points)
        return batch.W, batch.P, (batch.A if tangent else None)

    def _trial_evaluation(self, F_qij: np.ndarray, *, tangent: bool,
                          points: np.ndarray | None = None) -> PointBatch:
        """Evaluate the batch, record its states as the trial and what a driver reports."""
        batch = self.evaluate_batch(F_qij, tangent=tangent, points=points)
        if points is not None:  # valid: the evaluation checked them
            points = check_points(points, len(batch))
        self.history.set_trial(batch.states, points)
        self.calls += 1
        self.last_work = np.array(batch.work, dtype=float)
        self.last_seconds = np.array(batch.seconds, dtype=float)
        sums = self._step_sums
        if points is not None:  # sums over the shared numbering
            n = len(self.history.committed)
            if sums is None or not self._step_keyed or len(sums[0]) > n:
                sums = (np.zeros(0), np.zeros(0))
            work, seconds = (np.concatenate([x, np.zeros(n - len(x))]) for x in sums)
            work[points] += self.last_work
            seconds[points] += self.last_seconds
            self._step_sums, self._step_keyed = (work, seconds), True
        elif sums is None or self._step_keyed or len(sums[0]) != len(batch):
            self._step_sums = (self.last_work.copy(), self.last_seconds.copy())
            self._step_keyed = False
        else:
            self._step_sums = (sums[0] + self.last_work, sums[1] + self.last_seconds)
        self.F_qij = np.array(F_qij, dtype=float)
        self.P_qij, self.A_qijkl = batch.P, (batch.A if tangent else None)
        self.W_q = batch.W
        return batch

    def energy_density(self, F_qij: np.ndarray, *, points: np.ndarray | None = None
                       ) -> np.ndarray:
        """Return W (eV/Å³) at each point from its committed state; the history is unchanged.

        ``points``: None, or the batch's indices in the shared numbering (see the class).
        """
        return self.evaluate_batch(F_qij, tangent=False, points=points).W

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
