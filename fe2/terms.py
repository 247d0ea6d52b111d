"""Terms of the macro residual: R(u; v) and its Jacobian as a sum of contributions.

:class:`fe2.solver.Problem` assembles ``R = sum_t R_t`` and ``J = sum_t J_t`` over its terms,
each compiled into one form. A term:

* builds its UFL residual form (linear in the test function ``v``) and its Jacobian form
  (bilinear in ``v`` and the trial function ``du``; None when it does not depend on u);
* owns its quadrature data (quadrature Functions, constants, history);
* is updated at the current u before every assembly (:meth:`Term.update`, local to the rank,
  may raise a recoverable failure such as :class:`~fe2qc.errors.CalculationFailed`), then,
  once every rank's update succeeded, writes its data (:meth:`Term.assign`, collective);
* follows the load factor (:meth:`Term.set_load`) and is committed after a converged
  increment or reverted after a failed one (:meth:`Term.commit`, :meth:`Term.revert`).

Terms here: :class:`BulkMaterial` (``∫ P(F) : grad v dX`` with P and A = dP/dF from a batched
material point at the Gauss points), :class:`BodyForce` and :class:`TractionLoad` (dead loads,
scaled by the load factor). A cohesive interface or a phase-field coupling is another
:class:`Term` passed to ``Problem(..., terms=[...])``.

A term never keeps a reference to the Problem (its PETSc objects must be freed
deterministically, see :meth:`fe2.solver.Problem.destroy`): every method that needs it gets it
as an argument.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import numpy as np  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem  # noqa: E402

from fe2qc.errors import CalculationFailed, InputError  # noqa: E402

__all__ = ["Term", "BulkMaterial", "BodyForce", "TractionLoad"]


def _vector(value, d: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.shape != (d,) or not np.isfinite(arr).all():
        raise InputError(f"{what} must be a finite vector of length {d}, got {value!r}")
    return arr


class Term:
    """One contribution to the residual and Jacobian of a :class:`fe2.solver.Problem`.

    Subclass it and override what the term needs; every method has a do-nothing default.
    The Problem calls, in this order: :meth:`setup` once; then :meth:`residual` and
    :meth:`jacobian` once each (their forms are summed over the terms and compiled once);
    per trial increment :meth:`set_load`; per Newton iteration :meth:`update` and, when
    :meth:`update` succeeded on every rank, :meth:`assign`; after the increment
    :meth:`commit` (converged) or :meth:`revert` (failed, before the increment is retried
    smaller).

    Attributes:
        name: names the term in error messages.
    """

    name = "term"

    def setup(self, problem) -> None:
        """Create the term's Functions/Constants and claim boundary parts; called once.

        Boundary integrals use ``problem.ds(marker)`` with a marker from
        ``problem.mark_boundary(where, name)`` (one facet tag set for all terms).
        """

    def residual(self, problem, v):
        """The UFL residual form, linear in the test function ``v`` (or None)."""
        return None

    def jacobian(self, problem, v, du):
        """The UFL Jacobian form (derivative of :meth:`residual` along ``du``) or None."""
        return None

    def set_load(self, lam: float) -> None:
        """Scale the term's loads to the load factor ``lam``."""

    def update(self, problem) -> None:
        """Evaluate the term's data at the current ``problem.u`` (this rank only).

        Raises:
            InputError, CalculationFailed, numpy.linalg.LinAlgError, FloatingPointError: a
                failure a smaller load increment may cure (the Problem cuts back). Any other
                exception stops the solve.
        """

    def assign(self, problem) -> None:
        """Write the data computed by :meth:`update` into the form's Functions.

        Collective: called on every rank after every rank's :meth:`update` succeeded.
        """

    def describe_failure(self, problem, exc: BaseException) -> str:
        """Text appended to the message of a failure ``exc`` raised by :meth:`update`."""
        return ""

    def commit(self) -> None:
        """The increment converged: the trial state becomes the committed state."""

    def revert(self) -> None:
        """The increment failed: return to the committed state."""


class BulkMaterial(Term):
    """``∫ P(F) : grad v dX`` with ``P, A = material.evaluate(F_qij)`` at the Gauss points.

    P and A = dP/dF live in quadrature Functions on ``problem.layout`` and are written for
    the owned points only, then scattered to the ghosts. The Jacobian is
    ``∫ (A : grad du) : grad v dX`` (consistent when A is the material's exact tangent).

    Args:
        material: anything with ``evaluate(F_qij) -> (P_qij, A_qijkl)``, ``commit()`` and
            ``revert()`` (see :class:`fe2qc.material.MaterialPoint`), called with the owned
            Gauss points of the rank in the order of ``problem.quadrature_point_ids``. An
            exception it raises may carry ``point_index`` (index into that batch) to name the
            failing point.

    Attributes:
        P, A: the quadrature Functions (None before :meth:`setup`).
        F_qij, P_qij: F and P at the owned points of the last successful evaluation.
        num_calls: number of ``material.evaluate`` calls that returned.
    """

    name = "bulk material"

    def __init__(self, material):
        self.material = material
        self.P = self.A = None
        self.F_qij: np.ndarray | None = None
        self.P_qij: np.ndarray | None = None
        self.num_calls = 0
        self._trial = None
        self._F_trial = None

    def setup(self, problem) -> None:
        """Create the quadrature Functions P (d, d) and A (d, d, d, d)."""
        d, layout = problem.dim, problem.layout
        QP = layout.space((d, d))
        QA = layout.space((d, d, d, d))
        self.P = fem.Function(QP, name="P")
        self.A = fem.Function(QA, name="A")
        self._dofs_P = layout.owned_dofs(QP)
        self._dofs_A = layout.owned_dofs(QA)
        self._dx = layout.measure()
        self._nq, self._d = problem.num_owned_points, d

    def residual(self, problem, v):
        """``∫ P : grad v dX`` at the layout's Gauss points."""
        return ufl.inner(self.P, ufl.grad(v)) * self._dx

    def jacobian(self, problem, v, du):
        """``∫ (A : grad du) : grad v dX`` at the layout's Gauss points."""
        i, j, k, l = ufl.indices(4)
        A_grad_du = ufl.as_tensor(self.A[i, j, k, l] * ufl.grad(du)[k, l], (i, j))
        return ufl.inner(A_grad_du, ufl.grad(v)) * self._dx

    def update(self, problem) -> None:
        """Evaluate the material at F = I + grad u on the owned points; check what it returns.

        Raises:
            TypeError: P or A has the wrong shape (a bug: the solve stops).
            CalculationFailed: P or A is not finite (names the first such point).
        """
        self._trial = self._F_trial = None
        t0 = time.perf_counter()
        F_qij = problem.deformation_gradients()
        problem.add_timing("kinematics", t0)
        self._F_trial = F_qij
        t0 = time.perf_counter()
        try:
            P_qij, A_qijkl = self.material.evaluate(F_qij)
            self.num_calls += 1
            P_qij = np.asarray(P_qij, dtype=float)
            A_qijkl = np.asarray(A_qijkl, dtype=float)
            nq, d = self._nq, self._d
            if P_qij.shape != (nq, d, d) or A_qijkl.shape != (nq, d, d, d, d):
                raise TypeError(
                    f"material returned P {P_qij.shape} and A {A_qijkl.shape}, expected "
                    f"{(nq, d, d)} and {(nq, d, d, d, d)}"
                )
            if not (np.isfinite(P_qij).all() and np.isfinite(A_qijkl).all()):
                q = int(np.flatnonzero(~np.isfinite(P_qij.reshape(nq, -1)).all(axis=1)
                                       | ~np.isfinite(A_qijkl.reshape(nq, -1)).all(axis=1))[0])
                raise CalculationFailed(
                    f"material returned NaN/inf stress or tangent at {problem.describe_point(q)}"
                )
        finally:
            problem.add_timing("material", t0)
        self._trial = (F_qij, P_qij, A_qijkl)

    def describe_failure(self, problem, exc: BaseException) -> str:
        """Name the failing Gauss point: `` [Gauss point ...]``, or an empty string.

        The point is ``exc.point_index`` when the exception carries it, else the one with the
        smallest det F when some det F <= 0.
        """
        q = getattr(exc, "point_index", None)
        F_qij = self._F_trial
        if q is None and F_qij is not None:
            J_q = np.linalg.det(F_qij) if len(F_qij) else np.ones(0)
            q = int(np.argmin(J_q)) if len(J_q) and J_q.min() <= 0 else None
        if q is not None and 0 <= q < problem.num_owned_points:
            return f" [{problem.describe_point(int(q))}]"
        return ""

    def assign(self, problem) -> None:
        """Write P and A into the owned points, then scatter to the ghosts (collective)."""
        t0 = time.perf_counter()
        F_qij, P_qij, A_qijkl = self._trial
        self.F_qij, self.P_qij = F_qij, P_qij
        bsP, bsA = self._d**2, self._d**4
        self.P.x.array.reshape(-1, bsP)[self._dofs_P] = P_qij.reshape(-1, bsP)
        self.A.x.array.reshape(-1, bsA)[self._dofs_A] = A_qijkl.reshape(-1, bsA)
        self.P.x.scatter_forward()
        self.A.x.scatter_forward()
        problem.add_timing("assembly", t0)

    def commit(self) -> None:
        """Commit the material's history (``material.commit()``)."""
        self.material.commit()

    def revert(self) -> None:
        """Revert the material's history (``material.revert()``)."""
        self.material.revert()


class BodyForce(Term):
    """Dead body force per reference volume: ``-λ ∫ B · v dX``.

    Args:
        value: B at full load, a vector of length d.
    """

    name = "body force"

    def __init__(self, value: Sequence[float]):
        self.value = value

    def setup(self, problem) -> None:
        """Check the vector; create the Constant ``λ B``."""
        self._B0 = _vector(self.value, problem.dim, "body_force")
        self._B = fem.Constant(problem.mesh, np.zeros(problem.dim))

    def residual(self, problem, v):
        """``-∫ λ B · v dX``."""
        return -(ufl.dot(self._B, v) * ufl.dx(domain=problem.mesh))

    def set_load(self, lam: float) -> None:
        """``λ B``."""
        self._B.value[:] = lam * self._B0


class TractionLoad(Term):
    """Dead nominal (first Piola) traction on a boundary part: ``-λ ∫ T · v dS``.

    Args:
        where: the boundary part (as for :class:`fe2.solver.Dirichlet`).
        value: T at full load, force per reference area, a vector of length d.
    """

    name = "traction"

    def __init__(self, where, value: Sequence[float]):
        self.where = where
        self.value = value

    def setup(self, problem) -> None:
        """Claim the boundary part; check the vector; create the Constant ``λ T``."""
        self._marker = problem.mark_boundary(self.where, self.name)
        self._T = fem.Constant(problem.mesh, np.zeros(problem.dim))
        self._T0 = _vector(self.value, problem.dim, "traction")

    def residual(self, problem, v):
        """``-∫ λ T · v dS`` over the claimed part."""
        return -(ufl.dot(self._T, v) * problem.ds(self._marker))

    def set_load(self, lam: float) -> None:
        """``λ T``."""
        self._T.value[:] = lam * self._T0
