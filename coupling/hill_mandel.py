"""Hill-Mandel (macro-homogeneity) check of a material point.

The FE² scale transition is energetically consistent when the macroscopic stress power equals
the volume average of the microscopic one, ``P : dF = <p : df>``. For an atomistic RVE with
periodic boundary conditions, relaxed to equilibrium, the volume-averaged micro power along a
deformation increment is the rate of the RVE energy per reference volume along the *relaxed*
path, ``dW/dt`` with ``W(F) = (e(F, u*(F)) - e_ref) / V0``: the internal displacements relax
with F and, at equilibrium, do no work (the forces on them vanish). Two checks follow:

(a) *power*: ``P : dF`` against ``[W(F + h dF) - W(F - h dF)] / (2h)``, each W relaxed
    (warm-started from the relaxed state at F);
(b) *stress*: P against the finite-difference gradient ``dW/dF_kl`` component by component, and
    its contraction with dF.

Relative mismatches are divided by the natural scale ``s |dF|`` (Frobenius norms) for (a) and
by ``s`` for (b), with the stress scale ``s = max(|P|, floor_strain |A|)`` (``max |P_ij|`` in
(b)): near zero stress (zero load, a perfect lattice at its lattice constant) the mismatches are
measured against the stress of a small strain (``floor_strain`` = 1e-3 by default, with A the
point's tangent) instead of against P ~ 1e-16, which would turn the finite-difference round-off
of ~1e-10 eV/Å³ into a "relative" error of 1e6. They measure the relaxation tolerance, the
finite-difference error (O(h²) plus round-off of W / h) and any inconsistency between the
stress and the energy (e.g. an unrelaxed stress or a virial missing a term).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fe2qc.errors import InputError

__all__ = ["hill_mandel_report", "hill_mandel_check", "default_direction"]

_TINY = 1e-300


def default_direction(F: np.ndarray) -> np.ndarray:
    """A unit increment direction: along ``F - I`` if nonzero, else a fixed mixed shear/stretch."""
    F = np.asarray(F, dtype=float)
    d = F.shape[0]
    dF = F - np.eye(d)
    if np.linalg.norm(dF) < 1e-12:
        dF = np.zeros((d, d))
        dF[0, 0], dF[0, 1], dF[1, 0], dF[1, 1] = 1.0, 0.5, 0.25, -0.5
    return dF / np.linalg.norm(dF)


def hill_mandel_report(point_model, F: np.ndarray, state: np.ndarray | None = None,
                       dF: np.ndarray | None = None, h: float = 1e-6, *,
                       components: bool = True, floor_strain: float = 1e-3) -> dict:
    """Hill-Mandel check at one point of a :class:`~fe2qc.material.PointModel`.

    Args:
        point_model: the point (RVE, Cauchy-Born or analytic).
        F: (d, d) deformation gradient.
        state: its committed state (None: ``point_model.initial_state()``).
        dF: (d, d) increment direction (None: :func:`default_direction`).
        h: finite-difference step (in units of dF).
        components: also compute the full finite-difference dW/dF (2 d² relaxations).
        floor_strain: the stress scale of the relative mismatches is at least
            ``floor_strain * |A|`` (the stress of that strain), so that they stay meaningful at
            zero stress.

    Returns:
        A dict with ``macro_power`` (P:dF), ``micro_power`` (relaxed dW/dt),
        ``power_mismatch`` (relative, (a)), ``stress_mismatch`` (relative max-norm of
        P - dW/dF, (b), NaN without ``components``), ``contracted_mismatch`` ((dW/dF):dF vs
        P:dF, relative), ``stress_scale`` (the floor ``floor_strain |A|``, eV/Å³), ``P``,
        ``dW_dF``, ``W`` and ``work``.
    """
    d = point_model.dim
    F = np.asarray(F, dtype=float)
    if F.shape != (d, d):
        raise InputError(f"F must have shape ({d}, {d}), got {F.shape}")
    if not h > 0:
        raise InputError(f"finite-difference step h must be > 0, got {h}")
    if not (np.isfinite(floor_strain) and floor_strain >= 0):
        raise InputError(f"floor_strain must be finite and >= 0, got {floor_strain}")
    dF = default_direction(F) if dF is None else np.asarray(dF, dtype=float)
    if dF.shape != (d, d) or not np.isfinite(dF).all():
        raise InputError(f"dF must be a finite ({d}, {d}) array, got {dF!r}")
    state = point_model.initial_state() if state is None else np.asarray(state, dtype=float)

    r = point_model.evaluate_point(F, state, tangent=True)
    s = r.state  # relaxed at F: warm start of the perturbed relaxations

    def W(Fx):
        return point_model.evaluate_point(Fx, s, tangent=False).W

    macro = float(np.tensordot(r.P, dF))
    micro = (W(F + h * dF) - W(F - h * dF)) / (2 * h)
    A = getattr(r, "A", None)
    floor = floor_strain * float(np.linalg.norm(A)) if A is not None else 0.0
    scale = max(max(np.linalg.norm(r.P), floor) * np.linalg.norm(dF), _TINY)
    out = {
        "macro_power": macro,
        "micro_power": float(micro),
        "power_mismatch": float(abs(macro - micro) / scale),
        "stress_scale": floor,
        "P": r.P,
        "W": r.W,
        "work": r.work,
        "h": h,
    }
    dW = np.full((d, d), np.nan)
    if components:
        for k in range(d):
            for L in range(d):
                E = np.zeros((d, d))
                E[k, L] = h
                dW[k, L] = (W(F + E) - W(F - E)) / (2 * h)
        pmax = max(np.abs(r.P).max(), floor, _TINY)
        out["stress_mismatch"] = float(np.abs(r.P - dW).max() / pmax)
        out["contracted_mismatch"] = float(abs(np.tensordot(dW, dF) - macro) / scale)
    else:
        out["stress_mismatch"] = out["contracted_mismatch"] = float("nan")
    out["dW_dF"] = dW
    return out


def hill_mandel_check(point_model, F_qij: np.ndarray,
                      states: Sequence[np.ndarray] | None = None,
                      dF_qij: np.ndarray | None = None, *, points: Sequence[int] | None = None,
                      h: float = 1e-6, components: bool = False,
                      floor_strain: float = 1e-3) -> dict:
    """Hill-Mandel reports at several points (e.g. once per load step, on a few Gauss points).

    Runs locally (no MPI): call it on one rank with the points it owns, e.g. with
    ``material.history.committed`` of a :class:`~fe2qc.material.PointMaterial` (e.g. the
    ``DispatchedMaterial``) and its last ``F_qij``.

    Args:
        point_model: the point (a :class:`~fe2qc.material.PointModel`).
        F_qij: (nq, d, d) deformation gradients.
        states: the committed state of each point (None: initial states).
        dF_qij: (nq, d, d) increment directions (None: :func:`default_direction`).
        points: indices into ``F_qij`` to check (None: all).
        h: finite-difference step (in units of dF).
        components: also the component-wise stress check (2 d² extra evaluations per point).
        floor_strain: see :func:`hill_mandel_report`.

    Returns:
        ``{"points": [...], "reports": [...], "max_power_mismatch": ...,
        "max_stress_mismatch": ..., "worst_point": index}``.
    """
    F_qij = np.asarray(F_qij, dtype=float)
    idx = list(range(len(F_qij))) if points is None else [int(q) for q in points]
    reports = []
    for q in idx:
        if not 0 <= q < len(F_qij):
            raise InputError(f"point {q} is not in 0..{len(F_qij) - 1}")
        state = None if states is None else states[q]
        dF = None if dF_qij is None else dF_qij[q]
        reports.append(hill_mandel_report(point_model, F_qij[q], state, dF, h,
                                          components=components, floor_strain=floor_strain))
    pm = [r["power_mismatch"] for r in reports]
    sm = [r["stress_mismatch"] for r in reports]
    return {
        "points": idx,
        "reports": reports,
        "max_power_mismatch": max(pm, default=0.0),
        "max_stress_mismatch": max(sm, default=0.0) if components else float("nan"),
        "worst_point": idx[int(np.argmax(pm))] if pm else None,
    }
