"""Coupled relaxation of atoms and nodes: safeguarded Newton with sparse direct solves.

The Jacobian is the atomistic Hessian (mapped to the nodes through the interpolation) plus
the Cauchy-Born finite-element tangent. Linear systems go to MUMPS through petsc4py when it
is installed (LDLᵀ for the energy-based schemes, whose inertia tells a minimum from a
saddle), else to SuperLU. Where the Hessian is not positive definite on the free dofs a
diagonal shift is added until it is (a Levenberg-Marquardt / trust-region safeguard), and a
backtracking line search on the energy (on the residual norm for ``qcf``, which has no
energy) makes every step a descent step. ``gfc`` wraps this in its fixed-point loop over the
ghost-force dead load.

The continuum material's history (an atomistic RVE's warm-start states) follows the FE²
solver's rule: every evaluation is a trial from the committed states; a converged
relaxation commits the states of its last evaluation, which is at the converged
displacements, and a failed one reverts them (``commit=True``, the default; with
``commit=False`` the caller does either, e.g. a driver that may still reject a converged
state). A model without ``commit``/``revert`` (the atomistic reference) is left alone. The
residual at an accepted displacement and the Jacobian there share one material evaluation
(:class:`coupling.qc.continuum.DolfinxContinuum` keeps the tangent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fe2qc.errors import CalculationFailed

__all__ = ["RelaxReport", "relax", "newton", "linear_solve", "max_node_force"]


@dataclass
class RelaxReport:
    """How a relaxation went."""

    converged: bool
    iterations: int  # Newton iterations (summed over gfc's outer loop)
    max_force: float  # eV/Å, largest force norm on a free node
    energy: float | None
    outer_iterations: int = 0  # gfc only
    shifts: int = 0  # Newton steps that needed a positive-definite shift
    wall_time: float = 0.0
    history: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report's scalar fields as a JSON-ready dict (without ``history``)."""
        return {k: getattr(self, k) for k in ("converged", "iterations", "max_force", "energy",
                                              "outer_iterations", "shifts", "wall_time")}


def max_node_force(r: np.ndarray, free: np.ndarray, ncomp: int) -> float:
    """Largest Euclidean norm of the per-node residual over free dofs."""
    rr = np.where(free, r, 0.0).reshape(-1, ncomp)
    return float(np.sqrt((rr * rr).sum(axis=1).max())) if len(rr) else 0.0


def _petsc():
    try:
        import fe2qc.mpi

        fe2qc.mpi.bootstrap()
        from petsc4py import PETSc
    except Exception:  # pragma: no cover - an install without PETSc
        return None
    return PETSc


def linear_solve(J: sp.csr_matrix, b: np.ndarray, *, symmetric: bool):
    """Solve ``J x = b``; returns ``(x, negative_pivots)`` (None when not known)."""
    PETSc = _petsc()
    J = J.tocsr()
    J.sort_indices()
    if PETSc is None:
        x = spla.splu(J.tocsc()).solve(b)
        return x, None
    comm = PETSc.COMM_SELF
    A = PETSc.Mat().createAIJ(size=J.shape, csr=(J.indptr.astype(PETSc.IntType),
                                                 J.indices.astype(PETSc.IntType), J.data),
                              comm=comm)
    ksp = PETSc.KSP().create(comm)
    try:
        ksp.setOperators(A)
        ksp.setType("preonly")
        pc = ksp.getPC()
        if symmetric:
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
            pc.setType("cholesky")
        else:
            pc.setType("lu")
        pc.setFactorSolverType("mumps")
        ksp.setUp()
        neg = None
        if symmetric:
            neg = int(pc.getFactorMatrix().getMumpsInfog(12))
        bv = A.createVecLeft()
        bv.array[:] = b
        xv = A.createVecRight()
        ksp.solve(bv, xv)
        x = xv.array.copy()
        for v in (bv, xv):
            v.destroy()
    finally:
        ksp.destroy()
        A.destroy()
    return x, neg


def _history(model, what: str) -> None:
    """Call ``model.commit()`` or ``model.revert()`` if the model has it."""
    call = getattr(model, what, None)
    if callable(call):
        call()


def _with_history(solve, model, commit: bool):
    """Run ``solve() -> (U, report)``; commit if converged, else (or if it raised) revert."""
    if not commit:
        return solve()
    try:
        U, rep = solve()
    except BaseException:
        _history(model, "revert")
        raise
    _history(model, "commit" if rep.converged else "revert")
    return U, rep


def newton(model, U: np.ndarray, *, tol: float = 1e-8, max_iter: int = 60,
           max_step: float = 0.5, log=None, raise_on_failure: bool = True,
           commit: bool = True) -> tuple[np.ndarray, RelaxReport]:
    """Relax the free dofs of ``U`` (fixed ones are kept) with Newton's method.

    Iterates until the largest node force is at most ``tol`` (eV/Å). ``max_step`` (Å) caps the
    largest node move per iteration. ``commit``: commit the model's material history after
    convergence, revert it after a failure (see the module); False leaves both to the caller.

    Raises:
        CalculationFailed: no convergence (with ``raise_on_failure``), no descent direction,
            or a failed evaluation at the start.
    """
    return _with_history(lambda: _newton(model, U, tol=tol, max_iter=max_iter,
                                         max_step=max_step, log=log,
                                         raise_on_failure=raise_on_failure), model, commit)


def _newton(model, U, *, tol, max_iter, max_step, log, raise_on_failure):
    t0 = time.perf_counter()
    s = model.system
    c = s.ncomp
    free = s.free_dofs()
    fidx = np.flatnonzero(free)
    U = np.array(U, float).reshape(s.n_nodes, c)
    energy_based = model.energy_based
    # the model's continuum can evaluate its tangent with the residual and keep it for the
    # Jacobian at the same U: asked where a Jacobian is likely to follow (the start and the
    # line search's first trial, the step usually taken)
    hint = bool(getattr(model, "residual_keeps_tangent", False))

    def evaluate(Uc, tangent=False):
        kw = {"tangent": True} if (hint and tangent) else {}
        if energy_based:
            return model.energy_residual(Uc, **kw)
        return None, model.qcf_residual(Uc, **kw)

    E, r = evaluate(U, tangent=True)
    fmax = max_node_force(r, free, c)
    rep = RelaxReport(False, 0, fmax, E)
    for it in range(1, max_iter + 1):
        if fmax <= tol:
            rep.converged = True
            break
        J = model.jacobian(U)[fidx][:, fidx].tocsr()
        rf = r[fidx]
        shift = 0.0
        diag = float(np.abs(J.diagonal()).mean()) if J.shape[0] else 1.0
        for _attempt in range(30):
            Js = J if shift == 0.0 else (J + shift * sp.identity(J.shape[0], format="csr"))
            try:
                dx, neg = linear_solve(Js, -rf, symmetric=energy_based)
                ok = np.isfinite(dx).all()
            except Exception:  # singular factorisation
                ok, neg, dx = False, None, None
            if ok and energy_based:
                ok = (neg == 0 if neg is not None else True) and float(dx @ rf) < 0
            if ok:
                break
            shift = max(4.0 * shift, 1e-4 * diag)
        else:
            raise CalculationFailed("Newton: no descent direction even with a large shift; "
                                    "the configuration is unstable or the mesh is tangled")
        if shift > 0:
            rep.shifts += 1
        step = np.zeros(s.n_dofs)
        step[fidx] = dx
        big = float(np.sqrt((step.reshape(-1, c) ** 2).sum(axis=1).max()))
        alpha = min(1.0, max_step / big) if big > 0 else 1.0
        slope = float(dx @ rf)
        rnorm0 = float(np.linalg.norm(rf))
        for _ls in range(40):
            Ut = U + alpha * step.reshape(-1, c)
            try:
                Et, rt = evaluate(Ut, tangent=_ls == 0)
            except CalculationFailed:
                alpha *= 0.5
                continue
            ft = max_node_force(rt, free, c)
            if energy_based:
                tiny = abs(Et - E) < 1e-12 * max(1.0, abs(E))
                accept = Et <= E + 1e-4 * alpha * slope or (tiny and ft < fmax)
            else:
                accept = float(np.linalg.norm(rt[fidx])) <= (1 - 1e-4 * alpha) * rnorm0
            if accept:
                break
            alpha *= 0.5
        else:
            rep.iterations = it
            break  # line search failed: report below
        U, E, r, fmax = Ut, Et, rt, ft
        rep.history.append({"iteration": it, "max_force": fmax, "energy": E, "alpha": alpha,
                            "shift": shift})
        if log is not None:
            log(f"    newton {it:3d}: max force {fmax:.3e} eV/Å  step {alpha:.3g}"
                + (f"  shift {shift:.2e}" if shift else ""))
        rep.iterations = it
    rep.max_force, rep.energy = fmax, E
    rep.converged = fmax <= tol
    rep.wall_time = time.perf_counter() - t0
    if not rep.converged and raise_on_failure:
        raise CalculationFailed(
            f"QC relaxation ({model.scheme}) stopped at max force {fmax:.3e} eV/Å after "
            f"{rep.iterations} Newton iterations (tolerance {tol:.1e}); reduce the load "
            "increment or raise max_iter")
    return U, rep


def relax(model, U: np.ndarray, *, tol: float = 1e-8, max_iter: int = 60,
          max_outer: int = 100, log=None, raise_on_failure: bool = True, commit: bool = True
          ) -> tuple[np.ndarray, RelaxReport]:
    """Relax with the model's scheme; ``gfc`` iterates its dead load to a fixed point.

    ``commit``: commit the model's material history after convergence, revert it after a
    failure (see the module; ``gfc`` commits once, after its outer loop); False leaves both
    to the caller.

    Raises:
        CalculationFailed: no convergence (with ``raise_on_failure``) or a failed evaluation.
    """
    if model.scheme != "gfc":
        return newton(model, U, tol=tol, max_iter=max_iter, log=log,
                      raise_on_failure=raise_on_failure, commit=commit)
    return _with_history(lambda: _relax_gfc(model, U, tol=tol, max_iter=max_iter,
                                            max_outer=max_outer, log=log,
                                            raise_on_failure=raise_on_failure), model, commit)


def _relax_gfc(model, U, *, tol, max_iter, max_outer, log, raise_on_failure):
    t0 = time.perf_counter()
    s = model.system
    free = s.free_dofs()
    U = np.array(U, float).reshape(s.n_nodes, s.ncomp)
    total = RelaxReport(False, 0, np.inf, None)
    for k in range(1, max_outer + 1):
        model.dead_load = model.ghost_force(U)
        fq = max_node_force(model.qcf_residual(U), free, s.ncomp)
        total.history.append({"outer": k, "qcf_max_force": fq})
        if log is not None:
            log(f"  gfc outer {k}: qcf max force {fq:.3e} eV/Å")
        if fq <= tol:
            total.converged = True
            total.max_force = fq
            break
        U, rep = newton(model, U, tol=0.1 * tol, max_iter=max_iter, log=log,
                        raise_on_failure=raise_on_failure, commit=False)
        total.iterations += rep.iterations
        total.shifts += rep.shifts
        total.outer_iterations = k
        total.max_force = fq
    total.energy = model.energy(U)
    total.wall_time = time.perf_counter() - t0
    if not total.converged and raise_on_failure:
        raise CalculationFailed(f"gfc did not converge in {max_outer} ghost-force updates "
                                f"(qcf max force {total.max_force:.3e} eV/Å)")
    return U, total
