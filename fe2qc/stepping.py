"""Load stepping with cut-back: the trial values of a load parameter on the way to a target.

One rule, shared by the FE² solver (:meth:`fe2.solver.Problem.solve`, load factor) and the QC
lattice-trapping scan (:func:`coupling.qc.trapping.trapping_scan`, K/K_G):

* the first trial is ``start + increment`` (the increment points towards ``target``);
* a trial that would reach ``target`` (or come within ``tol`` of it) or pass it is clipped to
  ``target`` exactly, and the increment becomes that remaining distance;
* a failed trial halves the increment (:meth:`LoadStepper.cut_back`); below ``min_increment``
  the stepper is exhausted and the caller stops with its own message;
* after a success (:meth:`LoadStepper.accept`) the increment grows by ``grow``, up to
  ``max_increment``;
* stepping ends when the value is ``target`` (within ``tol``).

The caller keeps control of what a trial is and when it fails (collective reductions,
interrupts, leaving early), for example::

    stepper = LoadStepper(lam, target, min_increment=1e-4)
    for trial in stepper:
        try:
            solve_at(trial)
        except StepFailed as exc:
            if not stepper.cut_back(str(exc)):
                raise CalculationFailed(f"stuck at {stepper.value}") from None
            continue
        stepper.accept()

Standard library only.
"""

from __future__ import annotations

__all__ = ["LoadStepper"]


class LoadStepper:
    """Trial values of a load parameter from ``start`` to ``target``, with cut-back on failure.

    Iterate it to get trial values; after each trial call :meth:`accept` (the trial converged)
    or :meth:`cut_back` (it failed). Both directions work: the sign of ``target - start``
    decides it, and increments are returned with that sign.

    Args:
        start: the current (converged) value of the parameter.
        target: the value to reach. ``start`` and ``target`` are kept as given (a numpy
            scalar stays one), so the last trial is ``target`` itself.
        increment: the size of the first step (its sign is ignored); default: the whole
            distance ``|target - start|``.
        min_increment: a cut-back that leaves the increment below this size exhausts the
            stepper.
        max_increment: the largest increment growth may reach; default: the first increment.
        grow: factor applied to the increment after each accepted trial.
        tol: a trial within ``tol`` of ``target`` (or past it) is clipped to ``target``, and a
            ``start`` within ``tol`` of ``target`` counts as finished.

    Attributes:
        value: the last accepted value (``start`` before any).
        target: the value to reach.
        direction: +1.0 or -1.0 (+1.0 when ``start == target``).
        failures: the reasons given to :meth:`cut_back` since the last accepted trial.
        cutbacks: the number of cut-backs since the last accepted trial (``len(failures)``).
        total_cutbacks: the number of cut-backs since the start.
        accepted: the number of accepted trials.
    """

    def __init__(self, start: float, target: float, increment: float | None = None, *,
                 min_increment: float, max_increment: float | None = None, grow: float = 2.0,
                 tol: float = 0.0):
        self.value = start
        self.target = target
        distance = self.target - self.value
        self.direction = -1.0 if distance < 0 else 1.0
        size = abs(distance) if increment is None else abs(float(increment))
        self._increment = self.direction * size  # signed
        self.max_increment = size if max_increment is None else abs(float(max_increment))
        self.min_increment = float(min_increment)
        self.grow = float(grow)
        self.tol = float(tol)
        if not (self.grow >= 1.0 and self.tol >= 0.0 and self.min_increment >= 0.0):
            raise ValueError(f"need grow >= 1, tol >= 0 and min_increment >= 0, got grow="
                             f"{grow}, tol={tol}, min_increment={min_increment}")
        self.failures: list[str] = []
        self.total_cutbacks = 0
        self.accepted = 0
        self.exhausted = False
        self._trial: float | None = None

    # -- state ----------------------------------------------------------------------------------
    @property
    def increment(self) -> float:
        """The signed increment the next trial uses (before clipping to the target)."""
        return self._increment

    @property
    def cutbacks(self) -> int:
        """Cut-backs since the last accepted trial."""
        return len(self.failures)

    @property
    def finished(self) -> bool:
        """True once the value is at the target (within ``tol``)."""
        return self.direction * (self.target - self.value) <= self.tol

    @property
    def pending(self) -> float | None:
        """The trial value handed out and not yet accepted or cut back, or None."""
        return self._trial

    def state(self) -> dict[str, float]:
        """What a restart needs to continue exactly as this stepper would (JSON-ready).

        ``value``, ``target``, the signed ``increment`` of the next trial and ``max_increment``;
        :meth:`resume` makes a stepper that hands out the same trials from here on. Call it
        between trials (not while one is pending).
        """
        return {"value": float(self.value), "target": float(self.target),
                "increment": float(self._increment), "max_increment": float(self.max_increment)}

    @classmethod
    def resume(cls, state: dict[str, float], *, min_increment: float, grow: float = 2.0,
               tol: float = 0.0) -> LoadStepper:
        """A stepper continuing from :meth:`state` (e.g. read back from a checkpoint).

        The other arguments are those of the constructor and must be the ones the saved
        stepper had for its trials to be the same.
        """
        return cls(state["value"], state["target"], state["increment"],
                   min_increment=min_increment, max_increment=state["max_increment"],
                   grow=grow, tol=tol)

    # -- stepping -------------------------------------------------------------------------------
    def trial(self) -> float:
        """The next trial value (clipped to the target); call accept() or cut_back() after it.

        Raises:
            RuntimeError: the stepper is finished or exhausted, or the last trial is pending.
        """
        if self._trial is not None:
            raise RuntimeError("the last trial was neither accepted nor cut back")
        if self.exhausted or self.finished:
            raise RuntimeError("no further trial: the stepper is "
                               + ("exhausted" if self.exhausted else "finished"))
        remaining = self.target - self.value
        if abs(self._increment) >= abs(remaining) - self.tol:
            self._increment = remaining
            self._trial = self.target
        else:
            self._trial = self.value + self._increment
        return self._trial

    def __iter__(self):
        return self

    def __next__(self) -> float:
        if self.exhausted or self.finished:
            raise StopIteration
        return self.trial()

    def accept(self) -> float:
        """The pending trial converged: make it the value, grow the increment; returns it."""
        if self._trial is None:
            raise RuntimeError("accept() without a pending trial")
        self.value, self._trial = self._trial, None
        self.accepted += 1
        self.failures = []
        grown = self._increment * self.grow
        self._increment = (grown if abs(grown) <= self.max_increment
                           else self.direction * self.max_increment)
        return self.value

    def cut_back(self, reason: str = "") -> bool:
        """The pending trial failed: halve the increment.

        Args:
            reason: why the trial failed (kept in :attr:`failures`).

        Returns:
            False when the halved increment is below ``min_increment`` (the stepper is then
            exhausted and yields no further trials), True otherwise.
        """
        if self._trial is None:
            raise RuntimeError("cut_back() without a pending trial")
        self._trial = None
        self.failures.append(reason)
        self.total_cutbacks += 1
        self._increment /= 2.0
        if abs(self._increment) < self.min_increment:
            self.exhausted = True
        return not self.exhausted
