"""Relaxation of atomic positions at a fixed cell: FIRE, L-BFGS and Newton (sparse Hessian).

Each method stops when the largest force norm is below ``fmax`` (eV/Å) and raises
:class:`~fe2qc.errors.CalculationFailed` after ``max_iter`` iterations (unless
``raise_on_failure=False``, in which case the caller must check ``converged``).
Atoms flagged in ``fixed_n`` do not move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse.linalg as spla

from atomistic.calculator import Calculator
from atomistic.structure import Configuration, check_coordinates
from fe2qc.checks import require_positive
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["RelaxResult", "relax", "fire", "lbfgs", "newton", "check_iterations"]


@dataclass
class RelaxResult:
    """Outcome of a relaxation: the relaxed configuration and how it got there."""

    config: Configuration
    energy: float
    max_force: float
    iterations: int
    converged: bool
    method: str


def _max_force(f: np.ndarray) -> float:
    return float(np.sqrt((f * f).sum(axis=1).max())) if len(f) else 0.0


def _finish(method, config, energy, forces, it, fmax, raise_on_failure):
    mf = _max_force(forces)
    ok = mf <= fmax
    if not ok and raise_on_failure:
        raise CalculationFailed(
            f"{method} relaxation did not reach fmax = {fmax:.3g} eV/Å in {it} iterations "
            f"(max force {mf:.3g} eV/Å); raise max_iter, loosen fmax, or check that the "
            "configuration is mechanically stable")
    return RelaxResult(config, energy, mf, it, ok, method)


def check_iterations(name: str, value) -> int:
    """An iteration limit: an integer >= 1 (InputError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_options(config: Configuration, fmax, max_iter) -> tuple[float, int]:
    """Refuse bad tolerances and non-finite input before any kernel runs."""
    check_coordinates(config.positions_nc, config.cell_cc)
    return require_positive("fmax", fmax, unit="eV/Å"), check_iterations("max_iter", max_iter)


def _free_mask(n: int, fixed_n: np.ndarray | None) -> np.ndarray:
    if fixed_n is None:
        return np.ones(n, dtype=bool)
    fixed = np.asarray(fixed_n, dtype=bool)
    if fixed.shape != (n,):
        raise InputError(f"fixed_n must have one entry per atom ({n}), got {fixed.shape}")
    return ~fixed


def fire(config: Configuration, calc: Calculator, *, fmax: float = 1e-6, max_iter: int = 5000,
         dt: float = 0.05, dt_max: float = 0.5, max_step: float = 0.1,
         fixed_n: np.ndarray | None = None, raise_on_failure: bool = True) -> RelaxResult:
    """FIRE (Bitzek et al., PRL 97, 170201 (2006)) with unit masses and a step cap (Å)."""
    fmax, max_iter = _check_options(config, fmax, max_iter)
    dt = require_positive("dt", dt, unit="ps")
    dt_max = require_positive("dt_max", dt_max, unit="ps")
    max_step = require_positive("max_step", max_step, unit="Å")
    conf = config.copy()
    free = _free_mask(len(conf), fixed_n)[:, None]
    v = np.zeros_like(conf.positions_nc)
    alpha, n_pos = 0.1, 0
    res = calc.compute(conf)
    f = res.forces_nc * free
    for it in range(1, max_iter + 1):
        if _max_force(f) <= fmax:
            return _finish("FIRE", conf, res.energy, f, it - 1, fmax, raise_on_failure)
        power = (f * v).sum()
        if power > 0:
            fn = np.linalg.norm(f)
            v = (1 - alpha) * v + alpha * np.linalg.norm(v) * f / max(fn, 1e-300)
            n_pos += 1
            if n_pos > 5:
                dt, alpha = min(dt * 1.1, dt_max), alpha * 0.99
        else:
            v[:] = 0.0
            dt, alpha, n_pos = dt * 0.5, 0.1, 0
        v += dt * f
        step = dt * v
        norm = np.sqrt((step * step).sum(axis=1).max())
        if norm > max_step:
            step *= max_step / norm
        conf.positions_nc = conf.positions_nc + step
        res = calc.compute(conf)
        f = res.forces_nc * free
    return _finish("FIRE", conf, res.energy, f, max_iter, fmax, raise_on_failure)


def lbfgs(config: Configuration, calc: Calculator, *, fmax: float = 1e-6, max_iter: int = 5000,
          fixed_n: np.ndarray | None = None, raise_on_failure: bool = True) -> RelaxResult:
    """L-BFGS (scipy) on the energy; stops on the force criterion."""
    fmax, max_iter = _check_options(config, fmax, max_iter)
    conf = config.copy()
    free = _free_mask(len(conf), fixed_n)
    x0 = conf.positions_nc.copy()

    def fun(y):
        conf.positions_nc = x0.copy()
        conf.positions_nc[free] = y.reshape(-1, 3)
        r = calc.compute(conf)
        return r.energy, -r.forces_nc[free].ravel()

    out = scipy.optimize.minimize(fun, x0[free].ravel(), jac=True, method="L-BFGS-B",
                                  options={"maxiter": max_iter, "gtol": fmax / 4, "ftol": 0.0,
                                           "maxcor": 30})
    conf.positions_nc = x0.copy()
    conf.positions_nc[free] = out.x.reshape(-1, 3)
    r = calc.compute(conf)
    return _finish("L-BFGS", conf, r.energy, r.forces_nc * free[:, None], int(out.nit), fmax,
                   raise_on_failure)


def newton(config: Configuration, calc: Calculator, *, fmax: float = 1e-10, max_iter: int = 100,
           fixed_n: np.ndarray | None = None, raise_on_failure: bool = True) -> RelaxResult:
    """Newton's method with the analytic sparse Hessian and a backtracking line search.

    For a periodic cell without fixed atoms, atom 0 is pinned to remove the three translation
    modes. Where the Hessian is not positive definite along the Newton direction, a FIRE
    phase takes over until the configuration is in the convex basin.
    """
    fmax, max_iter = _check_options(config, fmax, max_iter)
    conf = config.copy()
    n = len(conf)
    free = _free_mask(n, fixed_n)
    if fixed_n is None and n:
        free[0] = False
    dof = np.repeat(free, 3)
    res = calc.compute(conf)
    f = res.forces_nc * free[:, None]
    for it in range(1, max_iter + 1):
        if _max_force(f) <= fmax:
            return _finish("Newton", conf, res.energy, f, it - 1, fmax, raise_on_failure)
        H = calc.hessian(conf)[dof][:, dof].tocsc()
        rhs = f.ravel()[dof]
        try:
            step = spla.splu(H).solve(rhs)
            descent = float(step @ rhs) > 0 and np.isfinite(step).all()
        except RuntimeError:  # singular
            descent = False
        if not descent:
            fr = fire(conf, calc, fmax=max(fmax, 1e-3), max_iter=2000, fixed_n=~free,
                      raise_on_failure=False)
            conf, res = fr.config, calc.compute(fr.config)
            f = res.forces_nc * free[:, None]
            continue
        full = np.zeros(3 * n)
        full[dof] = step
        full = full.reshape(n, 3)
        big = np.sqrt((full * full).sum(axis=1).max())
        lam = min(1.0, 0.5 / big) if big > 0 else 1.0
        x0, e0, f0 = conf.positions_nc.copy(), res.energy, _max_force(f)
        for _ in range(30):
            conf.positions_nc = x0 + lam * full
            res = calc.compute(conf)
            f = res.forces_nc * free[:, None]
            # accept on energy decrease, or on force decrease once energy differences are
            # at round-off level
            if res.energy < e0 - 1e-4 * lam * float(step @ rhs) or (
                    abs(res.energy - e0) < 1e-10 * max(1.0, abs(e0)) and _max_force(f) < f0):
                break
            lam *= 0.5
    return _finish("Newton", conf, res.energy, f, max_iter, fmax, raise_on_failure)


def relax(config: Configuration, calc: Calculator, *, method: str = "newton", **kwargs
          ) -> RelaxResult:
    """Relax positions with ``method`` in ``{"newton", "lbfgs", "fire"}``."""
    methods = {"newton": newton, "lbfgs": lbfgs, "fire": fire}
    if method not in methods:
        raise InputError(f"unknown relaxation method {method!r}; choose one of {sorted(methods)}")
    return methods[method](config, calc, **kwargs)
