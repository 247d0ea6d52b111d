"""Elastic constants at finite temperature from molecular dynamics, with error bars.

Two independent routes, both isothermal (canonical sampling at temperature T):

* **Stress fluctuations** (:func:`fluctuation_elastic`), in NVT at a fixed cell::

      C_ijkl = <C^B_ijkl> - (V / kT) cov(s_ij, s_kl) + (N kT / V)(δ_ik δ_jl + δ_il δ_jk)

  with ``C^B`` the Born tensor of each frame (LAMMPS's ``born/matrix`` definition), ``s``
  the configurational (virial) stress, ``N`` atoms in volume ``V`` (Squire, Holder &
  Ray, Physica 42, 388 (1969); Lutsko, J. Appl. Phys. 65, 2991 (1989); the formula of LAMMPS's
  ``examples/ELASTIC_T/BORN_MATRIX``). ``T`` is the thermostat's target temperature.
* **Direct deformation** (:func:`deformation_elastic`): the mean Cauchy stress (virial +
  kinetic) of NVT runs at strains ``±ε`` of the cell, ``C_IJ = (σ_I(+ε_J) - σ_I(-ε_J)) / 2ε``.

**Error bars.** The fluctuation estimate is a function of averages; its standard error comes
from the per-sample series whose mean it is (the delta method: ``y_t = C^B_t - (V/kT)
(s_t - s̄) ⊗ (s_t - s̄)``, whose mean is the first two terms), blocked and with its statistical
inefficiency (:func:`fe2qc.statistics.mean_error`), so the correlation between the Born and
the fluctuation terms is included. Any linear function of the tensor (cubic averages, a
symmetry projection) gets its error bar from the same series mapped linearly
(:meth:`TensorEstimate.linear`). Two safeguards for runs only tens of stress correlation
times long: the covariance is corrected for its bias ``g/m`` (``m/(m - g)`` in place of
``m/(m - 1)``, g the stress components' statistical inefficiency), and the standard errors
have a floor, the spread of the whole estimator recomputed on 8 contiguous batches; a run with
fewer than 100 independent stress samples carries a warning (measured on Cu_u3: with 34 such
samples the spread of independent runs was 1.5-1.7 times the error bars of C11 and C12, with
100 it matched them).

**Adiabatic constants** (:func:`adiabatic`, a conversion from the same NVT run):
``C^S = C^T + (T V / C_V) λ ⊗ λ`` with ``λ_ij = (∂σ_ij/∂T)_strain`` and ``C_V`` the heat
capacity at fixed cell, both measured from the canonical fluctuations: ``λ = cov(s, U) / (k
T²) - (f k / 3V) δ`` (``f`` kinetic degrees of freedom, kinetic stress ``-(f kT/3V) δ``) and
``C_V = f k / 2 + var(U) / (k T²)``. Their error is propagated through the same series.

**The lattice at temperature** (:func:`lattice_at_temperature`): the cubic supercell is
scaled to the cell whose mean NVT pressure is the target pressure (Newton estimates from
several runs, averaged, with the secant bulk modulus), the mean cell of the
isothermal-isobaric ensemble to O(1/N); or :func:`lattice_by_npt`, the mean cell of an NPT
run.

:func:`elastic_at_temperature` runs the whole recipe on either engine (:mod:`atomistic.md.engine`).
Units inside: Å, eV, ps, K, eV/Å³ (GPa only at the user boundary).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from atomistic.lattice import crystal
from atomistic.md.integrators import LangevinBAOAB
from atomistic.md.run import Thermo
from atomistic.md.state import MDState
from atomistic.md.velocities import initial_velocities
from atomistic.structure import perpendicular_widths
from fe2qc.checks import require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.statistics import (
    covariance_error,
    covariance_series,
    detect_equilibration,
    mean_error,
    statistical_inefficiency,
)
from fe2qc.symmetry import detect_laue_class
from fe2qc.tensors import VOIGT_PAIRS, from_voigt_stiffness, to_voigt_stiffness
from fe2qc.units import EV_PER_A3_IN_GPA, KB

__all__ = [
    "TensorEstimate",
    "fluctuation_elastic",
    "deformation_elastic",
    "lattice_at_temperature",
    "lattice_by_npt",
    "elastic_at_temperature",
    "ElasticAtTemperature",
    "cubic_constants",
    "adiabatic",
]

#: effective samples below which an elastic result carries a "run too short" warning
MIN_EFFECTIVE_ELASTIC = 50.0


def _kinetic_term(n_atoms: int, kT: float, volume: float) -> np.ndarray:
    d = np.eye(3)
    return (n_atoms * kT / volume) * (np.einsum("ik,jl->ijkl", d, d)
                                      + np.einsum("il,jk->ijkl", d, d))


def _compact_warning(what: str, n_eff: np.ndarray, plateau: np.ndarray, t0: int, n_total: int,
                     min_effective: float) -> str | None:
    msgs = []
    worst = float(np.min(n_eff))
    if worst < min_effective:
        msgs.append(f"{what}: run too short: N_eff = {worst:.0f} < {min_effective:g} "
                    f"effective samples for the worst component; run about "
                    f"{min_effective / max(worst, 1e-300):.1f}x longer")
    if not np.all(plateau):
        msgs.append(f"{what}: run too short: no blocking plateau for "
                    f"{int(np.size(plateau) - np.count_nonzero(plateau))} component(s); the "
                    "error bars may be too small")
    if t0 > n_total // 2:
        msgs.append(f"{what}: run too short: equilibration took {t0} of {n_total} samples")
    return "; ".join(msgs) if msgs else None


@dataclass(frozen=True)
class TensorEstimate:
    """A 4th-order tensor estimated from samples, with standard errors (eV/Å³).

    ``value_ijkl = offset_ijkl + mean_t(series_tijkl)``: the per-sample series carries every
    sampled part, so that the error of any linear function ``f`` of the tensor is the
    standard error of the mean of ``f(series_t)`` (:meth:`linear`).

    Attributes:
        value_ijkl: the estimate.
        stderr_ijkl: one standard error per component.
        series_tijkl: the per-sample series (production samples only).
        offset_ijkl: the non-sampled part (e.g. the kinetic term).
        temperature: T (K).
        volume: V (Å³).
        n_atoms: N.
        t0: samples discarded as equilibration.
        n_eff: smallest effective sample count over the components.
        isothermal: True for C^T, False for C^S.
        warning: None, or why the error bars are not to be trusted.
        parts: named terms (e.g. ``born``, ``fluctuation``, ``kinetic``), each (3, 3, 3, 3).
        batches_bijkl: the estimate recomputed on each of :data:`N_BATCHES` contiguous
            batches of the production run (the nonlinear estimator, means and covariances
            per batch); the standard error of their mean is a floor under the delta-method
            error bars (shape (0, 3, 3, 3, 3) when the run is too short to batch).
    """

    value_ijkl: np.ndarray
    stderr_ijkl: np.ndarray
    series_tijkl: np.ndarray
    offset_ijkl: np.ndarray
    temperature: float
    volume: float
    n_atoms: int
    t0: int
    n_eff: float
    isothermal: bool = True
    warning: str | None = None
    parts: dict = field(default_factory=dict)
    min_effective: float = MIN_EFFECTIVE_ELASTIC
    extras: dict = field(default_factory=dict)
    batches_bijkl: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3, 3, 3)))

    @property
    def voigt(self) -> np.ndarray:
        """6×6 Voigt matrix (eV/Å³), order xx yy zz yz xz xy."""
        return to_voigt_stiffness(self.value_ijkl)

    @property
    def voigt_stderr(self) -> np.ndarray:
        """6×6 standard errors (eV/Å³)."""
        return to_voigt_stiffness(self.stderr_ijkl)

    def linear(self, f: Callable[[np.ndarray], np.ndarray], label: str = "") -> tuple:
        """Value and standard error of a linear function ``f`` of the tensor.

        Args:
            f: maps an array ``(..., 3, 3, 3, 3)`` to ``(..., k)`` (vectorised, linear).
            label: a name for warnings.

        Returns:
            ``(value (k,), stderr (k,), warning or None)``.
        """
        y = np.asarray(f(self.series_tijkl), float)
        y = y.reshape(len(self.series_tijkl), -1)
        off = np.asarray(f(self.offset_ijkl[None]), float).reshape(-1)
        me = mean_error(y, equilibrate=False, min_effective=self.min_effective, label=label)
        err = np.atleast_1d(me.stderr)
        if len(self.batches_bijkl) > 1:
            fb = np.asarray(f(self.batches_bijkl), float).reshape(len(self.batches_bijkl), -1)
            err = np.maximum(err, fb.std(axis=0, ddof=1) / np.sqrt(len(fb)))
        return (off + np.atleast_1d(me.mean), err,
                _compact_warning(label or "estimate", np.atleast_1d(me.n_eff),
                                 np.atleast_1d(me.blocking.plateau), 0, len(y),
                                 self.min_effective))


def _estimate(series_tijkl: np.ndarray, offset_ijkl: np.ndarray, *, what: str, t0: int,
              n_total: int, min_effective: float, batches=None, **kw) -> TensorEstimate:
    # the 21 independent components of a tensor with minor and major symmetry carry all
    # information; blocking them (not 81) keeps warnings and cost small
    cols = [(i, j, k, l) for I, (i, j) in enumerate(VOIGT_PAIRS)
            for J, (k, l) in enumerate(VOIGT_PAIRS) if J >= I]
    y = np.stack([series_tijkl[:, i, j, k, l] for i, j, k, l in cols], axis=1)
    me = mean_error(y, equilibrate=False, min_effective=min_effective)
    V = np.zeros((6, 6))
    E = np.zeros((6, 6))
    c = 0
    for I in range(6):
        for J in range(I, 6):
            V[I, J] = V[J, I] = me.mean[c]
            E[I, J] = E[J, I] = me.stderr[c]
            c += 1
    value = offset_ijkl + from_voigt_stiffness(V)
    err = from_voigt_stiffness(E)
    if batches is None:
        batches = np.zeros((0, 3, 3, 3, 3))
    if len(batches) > 1:
        err = np.maximum(err, batches.std(axis=0, ddof=1) / np.sqrt(len(batches)))
    return TensorEstimate(
        value_ijkl=value, stderr_ijkl=err, series_tijkl=series_tijkl,
        offset_ijkl=offset_ijkl, t0=t0, n_eff=float(np.min(me.n_eff)),
        warning=_compact_warning(what, me.n_eff, me.blocking.plateau, t0, n_total,
                                 min_effective), min_effective=min_effective,
        batches_bijkl=batches, **kw)


def _production_start(samples: Thermo) -> int:
    """Equilibration cut: the largest of Chodera's t0 over energy and stress components."""
    s = samples.virial_stress_ccc.reshape(len(samples), 9)[:, [0, 4, 8, 5, 2, 1]]
    x = np.column_stack([samples.potential_energy, s])
    return int(np.max(detect_equilibration(x).t0))


#: independent stress samples below which a fluctuation estimate carries a warning (error
#: bars of C11 and C12 from 10 ps of 108 Cu atoms, 34 such samples, were 1.5-1.7 times too
#: small against the spread of 10 independent runs; from 30 ps, 100 samples, right)
MIN_STRESS_SAMPLES = 100

#: contiguous batches for the batch-means floor under the error bars
N_BATCHES = 8
#: fewest samples per batch for batch means
MIN_BATCH = 50


def _covariance_scale(m: int, g_ab: np.ndarray) -> np.ndarray:
    """Bias correction of a covariance from m correlated samples: ``m / (m - g)``.

    For a stationary series with statistical inefficiency g the mean of the centred
    products is ``σ² (1 - g/m)`` to first order (Bayley & Hammersley, J. R. Stat. Soc. B 8,
    184 (1946); for g = 1 this is the usual m/(m - 1)).
    """
    return m / np.maximum(m - g_ab, 1.0)


def _fluctuation_value(born, s, V: float, kT: float, g_ab: np.ndarray) -> np.ndarray:
    """``<C^B> - (V/kT) cov(s, s)`` of one set of samples (no kinetic term)."""
    m = len(s)
    ds = s - s.mean(axis=0)
    cov = np.einsum("ta,tb->ab", ds, ds) / m * _covariance_scale(m, g_ab)
    return born.mean(axis=0) - (V / kT) * cov.reshape(3, 3, 3, 3)


def _adiabatic_parts(s, u, V: float, T: float, dof: int):
    """``(correction, λ, C_V)`` of the adiabatic conversion from one set of samples."""
    kT = KB * T
    m = len(u)
    ds, du = s - s.mean(axis=0), u - u.mean()
    a = np.einsum("tij,t->ij", ds, du) / (m - 1)  # cov(s, U)
    b = float(du @ du) / (m - 1)  # var(U)
    lam = a / (kT * T) - (dof * KB / (3.0 * V)) * np.eye(3)
    cv = 0.5 * dof * KB + b / (kT * T)
    return (T * V / cv) * np.einsum("ij,kl->ijkl", lam, lam), lam, cv, a, b


def _batches(m: int) -> list[slice]:
    """N_BATCHES contiguous slices of m samples, or none when batches would be too short."""
    if m < N_BATCHES * MIN_BATCH:
        return []
    edges = np.linspace(0, m, N_BATCHES + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def fluctuation_elastic(samples: Thermo, temperature: float, *, equilibrate: bool = True,
                        min_effective: float = MIN_EFFECTIVE_ELASTIC) -> TensorEstimate:
    """Isothermal elastic tensor from NVT samples by the stress-fluctuation formula.

    Args:
        samples: a canonical run's samples with the Born tensor (``born=True``), at fixed cell.
        temperature: the thermostat's target temperature (K).
        equilibrate: discard the detected equilibration (Chodera) before averaging.
        min_effective: effective samples below which the result carries a warning.

    Returns:
        The :class:`TensorEstimate` (parts ``born``, ``fluctuation``, ``kinetic``; the
        ``extras`` hold what :meth:`adiabatic` needs).

    Raises:
        InputError: no Born samples, too few samples, bad temperature, no volume.
    """
    T = require_positive("temperature", temperature, unit="K")
    n_total = len(samples)
    if len(samples.born_ccccc) != n_total:
        raise InputError("the samples carry no Born tensor: run the MD with born=True")
    if not (math.isfinite(samples.volume) and samples.volume > 0):
        raise InputError("the samples have no volume: the fluctuation formula needs a fully "
                         "periodic cell")
    if len(samples.cell_ccc) and np.ptp(samples.cell_ccc, axis=0).max() > 0.0:
        raise InputError("the samples' cell changes (a barostat run): the fluctuation formula "
                         "needs NVT samples at a fixed cell (run NPT to find the cell, then "
                         "NVT at its mean)")
    t0 = _production_start(samples) if equilibrate else 0
    prod = samples.tail(t0)
    m = len(prod)
    if m < 8:
        raise InputError(f"only {m} production samples: run longer (thousands of samples)")
    V, N, kT = prod.volume, prod.n_atoms, KB * T
    s = prod.virial_stress_ccc.reshape(m, 9)
    # statistical inefficiency of each stress component; sqrt(g_a g_b) for the pair (a, b)
    g = np.array([statistical_inefficiency(s[:, a]) if np.ptp(s[:, a]) > 0 else 1.0
                  for a in range(9)])
    g_ab = np.sqrt(np.outer(g, g))
    p = covariance_series(s).reshape(m, 81) * _covariance_scale(m, g_ab).reshape(81)
    p = p.reshape(m, 3, 3, 3, 3)
    born = prod.born_ccccc
    series = born - (V / kT) * p
    kin = _kinetic_term(N, kT, V)
    u = prod.potential_energy
    s3 = s.reshape(m, 3, 3)
    cuts = _batches(m)
    batches = np.array([_fluctuation_value(born[c], s[c], V, kT, g_ab)
                        for c in cuts]).reshape(-1, 3, 3, 3, 3)
    corr_batches = np.array([_adiabatic_parts(s3[c], u[c], V, T, prod.dof)[0]
                             for c in cuts]).reshape(-1, 3, 3, 3, 3)
    extras = {"stress_tcc": s3, "energy_t": u, "dof": prod.dof,
              "adiabatic_batches": corr_batches}
    n_stress = m / float(g[[0, 4, 8]].max())
    est = _estimate(series, kin, what="elastic tensor", t0=t0, n_total=n_total,
                    min_effective=min_effective, temperature=T, volume=V, n_atoms=N,
                    isothermal=True, batches=batches,
                    parts={"born": born.mean(axis=0),
                           "fluctuation": -(V / kT) * p.mean(axis=0), "kinetic": kin},
                    extras=extras)
    if n_stress < MIN_STRESS_SAMPLES:
        msg = (f"elastic tensor: run too short: the stress covariance rests on "
               f"{n_stress:.0f} < {MIN_STRESS_SAMPLES} independent stress samples "
               f"(statistical inefficiency {g[[0, 4, 8]].max():.0f} samples); error bars "
               f"of C11 and C12 can then be too small (1.5-1.7x for 34 samples, measured); "
               f"run about {MIN_STRESS_SAMPLES / n_stress:.1f}x longer")
        est = replace(est, warning="; ".join(w for w in (est.warning, msg) if w))
    est.extras["stress_samples"] = n_stress
    return est


def adiabatic(est: TensorEstimate) -> TensorEstimate:
    """The adiabatic tensor ``C^S = C^T + (T V / C_V) λ ⊗ λ`` from the same NVT samples.

    ``λ_ij = (∂σ_ij/∂T)_strain = cov(s_ij, U)/(kT²) - (f k / 3V) δ_ij`` and
    ``C_V = f k/2 + var(U)/(kT²)`` (canonical fluctuation identities; ``s`` configurational
    stress, ``U`` potential energy, ``f`` kinetic degrees of freedom). The correction's error
    is propagated by its per-sample influence series.

    Args:
        est: an isothermal estimate from :func:`fluctuation_elastic`.

    Returns:
        The adiabatic :class:`TensorEstimate` (``isothermal=False``); ``extras`` gain
        ``lambda_cc`` (eV/Å³/K) and ``heat_capacity`` (eV/K, the whole cell).
    """
    if not est.isothermal or "stress_tcc" not in est.extras:
        raise InputError("adiabatic() needs an isothermal estimate from fluctuation_elastic")
    T, V = est.temperature, est.volume
    kT = KB * T
    s, u, f = est.extras["stress_tcc"], est.extras["energy_t"], est.extras["dof"]
    m = len(u)
    ds, du = s - s.mean(axis=0), u - u.mean()
    corr, lam, cv, a, b = _adiabatic_parts(s, u, V, T, f)
    # influence series (delta method): d lambda_t = (ds du - a)/(kT T), d Cv_t = (du² - b)/(kT T)
    dlam = (ds * du[:, None, None] - a) / (kT * T)
    dcv = (du * du - b) / (kT * T)
    infl = (T * V / cv) * (np.einsum("tij,kl->tijkl", dlam, lam)
                           + np.einsum("ij,tkl->tijkl", lam, dlam)) \
        - (corr / cv)[None] * dcv[:, None, None, None, None]
    series = est.series_tijkl + infl
    value = est.value_ijkl + corr
    offset = value - series.mean(axis=0)
    batches = est.batches_bijkl + est.extras.get("adiabatic_batches", 0.0) \
        if len(est.batches_bijkl) else None
    out = _estimate(series, offset, what="adiabatic elastic tensor", t0=est.t0,
                    n_total=est.t0 + m, min_effective=est.min_effective, batches=batches,
                    temperature=T,
                    volume=V, n_atoms=est.n_atoms, isothermal=False,
                    parts={**est.parts, "adiabatic_correction": corr},
                    extras={**est.extras, "lambda_cc": lam, "heat_capacity": cv})
    return replace(out, value_ijkl=value)


def cubic_constants(est: TensorEstimate) -> dict:
    """C11, C12, C44 of a cubic crystal (averages over the equivalent components) with errors.

    Returns:
        dict with ``C11``, ``C12``, ``C44`` and ``C11_err``, ``C12_err``, ``C44_err`` (eV/Å³)
        and ``warning``.
    """
    def f(C):
        c11 = (C[..., 0, 0, 0, 0] + C[..., 1, 1, 1, 1] + C[..., 2, 2, 2, 2]) / 3.0
        c12 = (C[..., 0, 0, 1, 1] + C[..., 0, 0, 2, 2] + C[..., 1, 1, 2, 2]) / 3.0
        c44 = (C[..., 1, 2, 1, 2] + C[..., 0, 2, 0, 2] + C[..., 0, 1, 0, 1]) / 3.0
        return np.stack([c11, c12, c44], axis=-1)

    if "cubic" in est.extras:  # the direct route measured the cubic constants themselves
        return {**{k: float(v) for k, v in est.extras["cubic"].items()}, "warning": est.warning}
    if len(est.series_tijkl) == 0:  # a full matrix without series: independent components
        v = f(est.value_ijkl)
        e = np.sqrt(f(est.stderr_ijkl ** 2) / 3.0)
        w = est.warning
    else:
        v, e, w = est.linear(f, "cubic constants")
    out = {k: float(v[i]) for i, k in enumerate(("C11", "C12", "C44"))}
    out.update({f"{k}_err": float(e[i]) for i, k in enumerate(("C11", "C12", "C44"))})
    out["warning"] = w
    return out


# ----------------------------------------------------------------------------- running MD


@dataclass(frozen=True)
class RunSettings:
    """How the MD runs of the recipe are made.

    Attributes:
        temperature: T (K).
        dt: time step (ps).
        friction: Langevin friction (1/ps).
        thermo_every: steps between samples.
        progress: seconds between progress lines on stderr, or None.
    """

    temperature: float
    dt: float = 0.001
    friction: float = 5.0
    thermo_every: int = 10
    progress: float | None = None

    def integrator(self):
        """The canonical (NVT) integrator the recipe uses: Langevin BAOAB."""
        return LangevinBAOAB(self.dt, self.temperature, self.friction)

    def steps(self, time_ps: float) -> int:
        """Whole sampling intervals covering ``time_ps``."""
        k = max(1, int(round(time_ps / (self.dt * self.thermo_every))))
        return k * self.thermo_every


def _scale_state(state: MDState, F: np.ndarray) -> None:
    """Deform the state affinely by F (positions and cell; velocities unchanged)."""
    state.positions_nc[:] = state.positions_nc @ F.T
    state.cell_cc[:] = state.cell_cc @ F.T
    state.neighbor_positions_nc = state.neighbor_cell_cc = None


def _batch_floor(x: np.ndarray) -> np.ndarray:
    """Standard error of the mean from :data:`N_BATCHES` batch means (0 if too short)."""
    cuts = _batches(len(x))
    if not cuts:
        return np.zeros(np.shape(x)[1:])
    means = np.array([x[c].mean(axis=0) for c in cuts])
    return means.std(axis=0, ddof=1) / np.sqrt(len(cuts))


def _mean_pressure(samples: Thermo) -> tuple[float, float]:
    """Mean pressure after the equilibration cut, with the batch-means floor on its error."""
    t0 = int(detect_equilibration(samples.pressure).t0)
    x = samples.pressure[t0:]
    me = mean_error(x, equilibrate=False)
    return float(me.mean), float(max(me.stderr, _batch_floor(x)))


def lattice_at_temperature(engine, state: MDState, settings: RunSettings, *,
                           pressure: float = 0.0, time_ps: float = 5.0, iterations: int = 4,
                           bulk_guess: float | None = None, log=print) -> dict:
    """Scale a cubic supercell to the cell whose NVT mean pressure is the target pressure.

    Each of ``iterations`` NVT runs of ``time_ps`` measures the mean pressure P_k (virial +
    kinetic) at the current scale s_k, which gives an estimate of the target scale,
    ``s*_k = s_k (1 + (P_k - P0) / (3K))`` (K: ``bulk_guess``, e.g. the 0 K bulk modulus,
    replaced by the secant of the last two runs where their pressure difference is resolved:
    a soft crystal near melting, LJ argon at 60 K, has half its 0 K bulk modulus). The cell
    moves to the weighted mean of the estimates so far (the first run, which starts from the
    perfect lattice, is left out once there are others; each estimate's error includes 20 %
    of K times its step, so runs far from the target count little), so the result averages
    the pressure noise of the runs instead of trusting the last one. The error of the final
    scale is the larger of the formal one and the scatter of the last two estimates: a
    pressure error bar
    from a run of a few ps can be several times too small (the pressure follows the slow
    energy exchange with the thermostat, and its autocorrelation oscillates, which
    truncates the statistical inefficiency early). The state ends equilibrated there for
    half a run. This is the mean cell of the isothermal-isobaric ensemble to O(1/N) for a
    cubic crystal under hydrostatic pressure.

    Returns:
        dict with ``scale`` (final cell / initial cell, linear) and ``scale_err``,
        ``pressure`` and ``pressure_err`` (eV/Å³, the last run's mean pressure),
        ``bulk_modulus`` (the K used), ``iterations``, ``history`` ((s_k, P_k, dP_k) per
        run) and ``warning`` (None, or why the cell is uncertain).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive integer, got {iterations!r}")
    K = bulk_guess if bulk_guess is not None else 0.5  # eV/Å³ (80 GPa)
    K = require_positive("bulk_guess", K, unit="eV/Å³")
    K0 = K
    hist = []
    scale = 1.0
    integ = settings.integrator()
    steps = settings.steps(time_ps)

    def estimates():
        """(s*_k, error) of every run but the first, once there are others (see above)."""
        use = hist[1:] if len(hist) > 1 else hist
        return [(s_k * (1.0 + (p_k - pressure) / (3.0 * K)),
                 math.hypot(s_k * e_k / (3.0 * K), 0.2 * s_k * (p_k - pressure) / (3.0 * K)))
                for s_k, p_k, e_k in use]

    for it in range(iterations):
        th = engine.run(state, integ, steps, thermo_every=settings.thermo_every,
                        progress=settings.progress)
        P, dP = _mean_pressure(th)
        hist.append((scale, P, dP))
        if len(hist) >= 2:  # secant bulk modulus where the pressure change is resolved
            (s1, p1, e1), (s2, p2, e2) = hist[-2], hist[-1]
            if s2 != s1 and abs(p2 - p1) > 10.0 * math.hypot(e1, e2):
                k_est = -(p2 - p1) / (3.0 * (s2 - s1) / s1)
                if 0.2 * K0 < k_est < 1.5 * K0:  # thermal softening, up to near melting
                    K = k_est
        est = estimates()
        w = np.array([1.0 / max(e, 1e-300) ** 2 for _, e in est])
        target = float(np.dot(w, [x for x, _ in est]) / w.sum())
        if log is not None:
            log(f"lattice at T = {settings.temperature:g} K: run {it + 1}/{iterations}, scale "
                f"{scale:.6f}, P = {P * EV_PER_A3_IN_GPA:.4f} ± {dP * EV_PER_A3_IN_GPA:.4f} "
                f"GPa, next scale {target:.6f}")
        f = min(max(target / scale, 0.97), 1.03)
        _scale_state(state, f * np.eye(3))
        scale *= f
    use = estimates()
    xs = np.array([x for x, _ in use])
    formal = float(1.0 / np.sqrt(sum(1.0 / max(e, 1e-300) ** 2 for _, e in use)))
    # the scatter of the estimates nearest the target (the last two runs)
    near = xs[-2:]
    scatter = float(abs(near[1] - near[0]) / 2.0) if len(near) > 1 else 0.0
    err = max(formal, scatter)
    warning = None
    if abs(scale - xs.mean()) > 0.01 * scale:
        warning = (f"the lattice search at T = {settings.temperature:g} K hit its step limit "
                   "(3 % per run): give a better starting lattice constant")
    elif len(xs) < 2:
        warning = "lattice constant from a single run: its error bar may be too small"
    engine.run(state, integ, settings.steps(0.5 * time_ps), thermo_every=settings.thermo_every,
               progress=settings.progress)
    return {"scale": scale, "scale_err": err, "pressure": hist[-1][1],
            "pressure_err": hist[-1][2], "bulk_modulus": K, "iterations": iterations,
            "history": hist, "warning": warning}


def lattice_by_npt(engine, state: MDState, settings: RunSettings, *, pressure: float = 0.0,
                   time_ps: float = 20.0, pressure_damping: float | None = None,
                   log=print) -> dict:
    """The mean cell of an NPT run (isotropic MTK barostat, LAMMPS's ``fix npt ... iso``).

    Runs :class:`~atomistic.md.integrators.NoseHooverNPT` (``mode="iso"``: a cubic cell stays
    cubic; thermostat damping 100 dt, barostat damping ``pressure_damping``, default 1000 dt:
    a solid's volume oscillates with a period of about Pdamp / 5, and much shorter Pdamp
    inflates its fluctuations) for ``time_ps``, discards the equilibration of the volume
    (Chodera), and moves the state to the mean cell (positions scaled with it), then
    equilibrates it in NVT for a tenth of the run. The alternative to
    :func:`lattice_at_temperature`; both give the mean cell of the isothermal-isobaric
    ensemble (to O(1/N) for the NVT search).

    Returns:
        dict with ``scale`` (mean cell / starting cell, linear), ``scale_err``, ``pressure``
        and ``pressure_err`` (the NPT run's mean pressure), ``volume`` and ``volume_err``
        (Å³), ``bulk_modulus`` (kT<V>/var(V), eV/Å³, with ``bulk_modulus_err`` from the
        blocked variance), ``iterations`` (1) and ``history``.
    """
    from atomistic.md.integrators import NoseHooverNPT

    dt = settings.dt
    pdamp = pressure_damping if pressure_damping is not None else 1000.0 * dt
    integ = NoseHooverNPT(dt, settings.temperature, 100.0 * dt, pressure, pdamp, mode="iso")
    cell0 = state.cell_cc.copy()
    th = engine.run(state, integ, settings.steps(time_ps), thermo_every=settings.thermo_every,
                    progress=settings.progress)
    vols = th.volumes
    t0 = int(detect_equilibration(vols).t0)
    v = mean_error(vols[t0:], equilibrate=False, label="NPT volume")
    var = covariance_error(vols[t0:], equilibrate=False, label="NPT volume fluctuation")
    kT = KB * settings.temperature
    K = kT * v.mean / var.cov
    P, dP = _mean_pressure(th)
    scale = float(np.cbrt(v.mean / abs(np.linalg.det(cell0))))
    target = cell0 * scale
    fractional = np.linalg.solve(state.cell_cc.T, state.positions_nc.T).T
    state.cell_cc[:] = target
    state.positions_nc[:] = fractional @ target
    state.neighbor_positions_nc = state.neighbor_cell_cc = None
    state.variables = {}
    engine.run(state, settings.integrator(), settings.steps(0.1 * time_ps),
               thermo_every=settings.thermo_every, progress=settings.progress)
    if log is not None:
        log(f"lattice at T = {settings.temperature:g} K by NPT: scale {scale:.6f} ± "
            f"{scale * v.stderr / (3 * v.mean):.6f}, <P> = {P * EV_PER_A3_IN_GPA:.4f} ± "
            f"{dP * EV_PER_A3_IN_GPA:.4f} GPa, K_T = kT<V>/var(V) = "
            f"{K * EV_PER_A3_IN_GPA:.1f} GPa")
    return {"scale": scale, "scale_err": scale * float(v.stderr) / (3.0 * float(v.mean)),
            "pressure": P, "pressure_err": dP, "volume": float(v.mean),
            "volume_err": float(v.stderr), "bulk_modulus": float(K),
            "bulk_modulus_err": float(K * var.stderr / var.cov), "iterations": 1,
            "history": [(scale, P, dP)], "warning": v.warning or var.warning}


def deformation_elastic(engine, state: MDState, settings: RunSettings, *, strain: float = 0.01,
                        time_ps: float = 10.0, equilibration_ps: float = 1.0,
                        columns=(0, 3), seed: int = 0) -> TensorEstimate:
    """Isothermal elastic constants by direct deformation: mean stresses at ±strain.

    For each Voigt column J in ``columns`` the cell (and atoms) are strained by ``±strain``
    (engineering shear strain for J >= 3), equilibrated for ``equilibration_ps`` and sampled
    for ``time_ps`` of NVT; ``C_IJ = (σ_I(+) - σ_I(-)) / (2 strain)`` with the mean Cauchy
    stress (virial + kinetic) and its standard error from blocking. For a cubic crystal the
    columns (0, 3) (xx and yz strains) give C11, C12 and C44; ``range(6)`` gives the whole
    matrix (12 runs). The state is not changed.

    Returns:
        A :class:`TensorEstimate` whose measured columns (and their transposes) are filled,
        others zero; no per-sample series (``series_tijkl`` has length 0). For cubic crystals
        with columns (0, 3) the remaining cubic entries are filled by symmetry.
    """
    strain = require_positive("strain", strain)
    C = np.zeros((6, 6))
    E = np.zeros((6, 6))
    c12 = None  # (value, error) of the cubic C12 from the mean transverse stress
    warnings = []
    integ = settings.integrator()
    for J in columns:
        if not 0 <= J < 6:
            raise InputError(f"Voigt columns are 0..5, got {J}")
        means, errs = [], []
        i, j = VOIGT_PAIRS[J]
        others = [k for k in range(3) if k != i]
        for sign in (+1.0, -1.0):
            eps = np.zeros((3, 3))
            if i == j:
                eps[i, i] = sign * strain
            else:
                eps[i, j] = eps[j, i] = 0.5 * sign * strain
            st = state.fresh_copy(seed + 17 * J)  # the same noise at +ε and -ε
            _scale_state(st, np.eye(3) + eps)
            engine.run(st, integ, settings.steps(equilibration_ps),
                       thermo_every=settings.thermo_every, progress=settings.progress)
            th = engine.run(st, integ, settings.steps(time_ps),
                            thermo_every=settings.thermo_every, progress=settings.progress)
            # the six stresses and the mean transverse normal stress (one series, so that
            # the correlation of its two parts is in its error bar)
            cols = [th.stress_ccc[:, a, b] for a, b in VOIGT_PAIRS]
            cols.append(0.5 * (cols[others[0]] + cols[others[1]]))
            x = np.stack(cols, axis=1)
            me = mean_error(x, equilibrate=True, min_effective=MIN_EFFECTIVE_ELASTIC)
            means.append(me.mean)
            errs.append(np.maximum(me.stderr, _batch_floor(x[me.t0:])))
            w = _compact_warning(f"stress at strain {sign * strain:+g} (column {J})",
                                 me.n_eff, me.blocking.plateau, me.t0, len(th),
                                 MIN_EFFECTIVE_ELASTIC)
            if w:
                warnings.append(w)
        diff = (means[0] - means[1]) / (2.0 * strain)
        err = np.hypot(errs[0], errs[1]) / (2.0 * strain)
        C[:, J], E[:, J] = diff[:6], err[:6]
        if i == j:
            c12 = (diff[6], err[6])
    extras = {}
    if tuple(columns) == (0, 3):  # cubic: fill by symmetry (C11 = C22 = C33, ...)
        extras["cubic"] = {"C11": C[0, 0], "C12": c12[0], "C44": C[3, 3],
                           "C11_err": E[0, 0], "C12_err": c12[1], "C44_err": E[3, 3]}
        cub = extras["cubic"]
        C = np.zeros((6, 6))
        E = np.zeros((6, 6))
        C[:3, :3], E[:3, :3] = cub["C12"], cub["C12_err"]
        C[range(3), range(3)], E[range(3), range(3)] = cub["C11"], cub["C11_err"]
        C[range(3, 6), range(3, 6)], E[range(3, 6), range(3, 6)] = cub["C44"], cub["C44_err"]
    elif set(columns) == set(range(6)):  # both C_IJ and C_JI measured: average them
        C = 0.5 * (C + C.T)
        off = ~np.eye(6, dtype=bool)
        E = np.where(off, 0.5 * np.hypot(E, E.T), E)
    V = float(abs(np.linalg.det(state.cell_cc)))
    return TensorEstimate(
        value_ijkl=from_voigt_stiffness(C), stderr_ijkl=from_voigt_stiffness(E),
        series_tijkl=np.zeros((0, 3, 3, 3, 3)), offset_ijkl=np.zeros((3, 3, 3, 3)),
        temperature=settings.temperature, volume=V, n_atoms=len(state), t0=0,
        n_eff=math.nan, isothermal=True, warning="; ".join(warnings) or None, extras=extras)


# ----------------------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class ElasticAtTemperature:
    """The result of :func:`elastic_at_temperature` (eV/Å³ inside; :meth:`as_dict` in GPa).

    Attributes:
        temperature: T (K).
        pressure: target pressure (eV/Å³).
        a0: lattice constant at T and P (Å).
        isothermal: the estimate (C^T, fluctuation or deformation route).
        adiabatic: C^S by the conversion (fluctuation route only), else None.
        method: ``"fluctuation"`` or ``"deformation"``.
        ensemble: ``"nvt"``.
        engine: the engine's name.
        n_atoms: atoms in the supercell.
        lattice: the lattice search's record (see :func:`lattice_at_temperature`).
        pressure_mean: mean pressure and its error (eV/Å³) of the production run (of the
            last lattice iteration for the deformation route).
        warning: None or the run-too-short text.
    """

    temperature: float
    pressure: float
    a0: float
    isothermal: TensorEstimate
    adiabatic: TensorEstimate | None
    method: str
    ensemble: str
    engine: str
    n_atoms: int
    lattice: dict
    warning: str | None
    pressure_mean: tuple = (math.nan, math.nan)

    def as_dict(self, *, isothermal: bool = True) -> dict:
        """JSON-ready dict (GPa): ``T, a0, C11, C12, C44, *_err, C, C_err, method, ...``."""
        est = self.isothermal if isothermal or self.adiabatic is None else self.adiabatic
        g = EV_PER_A3_IN_GPA
        cub = cubic_constants(est)
        out = {"T": self.temperature, "P": self.pressure * g, "a0": self.a0,
               "a0_err": self.a0 * self.lattice.get("scale_err", 0.0) / self.lattice["scale"],
               "P_mean": self.pressure_mean[0] * g, "P_mean_err": self.pressure_mean[1] * g,
               **{k: (v * g if isinstance(v, float) else v) for k, v in cub.items()
                  if k != "warning"},
               "C": (est.voigt * g).tolist(), "C_err": (est.voigt_stderr * g).tolist(),
               "method": self.method, "ensemble": self.ensemble,
               "isothermal": bool(est.isothermal), "engine": self.engine,
               "atoms": self.n_atoms, "voigt_order": "xx yy zz yz xz xy",
               "units": {"C": "GPa", "a0": "Å", "T": "K", "P": "GPa"},
               "warning": self.warning}
        sym = detect_laue_class(est.value_ijkl, stderr_ijkl=est.stderr_ijkl)
        out["symmetry"] = {"laue": sym["laue"], "constants": sym["constants"],
                           "distance_to_cubic": sym["distances"]["cubic"],
                           "noise_level": sym["tolerance"]}
        if self.adiabatic is not None:
            ad = cubic_constants(self.adiabatic)
            out["adiabatic"] = {k: v * g for k, v in ad.items() if k != "warning"}
        return out


def _check_size(engine, config, cells: int) -> None:
    """Refuse, before any MD, a supercell narrower than twice the cutoff (+5 %).

    Atoms would see several images of one neighbour; the margin covers thermal expansion.
    """
    cutoff = getattr(engine, "cutoff", None)
    if cutoff is None:  # an engine that handles periodic images itself (LAMMPS)
        return
    w = float(np.min(perpendicular_widths(config.cell_cc)))
    need = 2.0 * cutoff * 1.05
    if w < need:
        raise InputError(
            f"the supercell of {cells}³ cells is too small for the cutoff "
            f"{cutoff:.3f} Å: its width {w:.3f} Å is less than {need:.3f} Å; use "
            f"more cells (cells = {math.ceil(cells * need / w)} or more)")


def elastic_at_temperature(engine, lattice: str, a0_guess: float, mass: float,
                           temperature: float, *, pressure: float = 0.0, cells: int = 4,
                           time_ps: float = 20.0, dt: float = 0.001, friction: float = 5.0,
                           seed: int = 1, method: str = "fluctuation",
                           thermo_every: int = 10, lattice_time_ps: float | None = None,
                           bulk_guess: float | None = None, fixed_cell: bool = False,
                           lattice_method: str = "nvt",
                           progress: float | None = None, log=None) -> ElasticAtTemperature:
    """Elastic constants of a cubic crystal at temperature T (and pressure P), with errors.

    Steps: the supercell (``cells``³ conventional cells at ``a0_guess``, e.g. the 0 K
    lattice constant) gets Maxwell-Boltzmann velocities at T; its cell is scaled to the
    target pressure by NVT runs (:func:`lattice_at_temperature`); then ``time_ps`` of NVT
    (Langevin BAOAB) is sampled and the tensor estimated by ``method``:
    ``"fluctuation"`` (with the adiabatic conversion) or ``"deformation"``.

    Args:
        engine: a :class:`~atomistic.md.engine.NativeEngine` or LAMMPS engine.
        lattice: ``"fcc"`` or ``"bcc"`` (or another cubic lattice of :mod:`atomistic.lattice`).
        a0_guess: starting lattice constant (Å).
        mass: atomic mass (amu).
        temperature: T (K), > 0.
        pressure: target pressure (eV/Å³).
        cells: conventional cells per edge.
        time_ps: production time (ps).
        dt: time step (ps).
        friction: Langevin friction (1/ps).
        seed: seed of the velocities and the thermostat noise.
        method: ``"fluctuation"`` or ``"deformation"``.
        thermo_every: steps between samples.
        lattice_time_ps: NVT time per lattice iteration (default: a fifth of ``time_ps``,
            at least 1 ps).
        bulk_guess: bulk modulus (eV/Å³) for the first lattice step, e.g. the 0 K one.
        fixed_cell: keep the lattice constant ``a0_guess`` (no pressure search; the
            constants are then those at that volume and the mean pressure it has, as in
            LAMMPS's ``examples/ELASTIC_T/BORN_MATRIX/Silicon``); the equilibration run
            (``lattice_time_ps``) is still made and discarded.
        lattice_method: ``"nvt"`` (:func:`lattice_at_temperature`, the default) or
            ``"npt"`` (:func:`lattice_by_npt`: the mean cell of an isotropic NPT run of
            ``lattice_time_ps``, default 4 × ``time_ps`` / 5, at least 10 ps).
        progress: seconds between progress lines on stderr (None: silent).
        log: a function taking one line of text (default: stderr when ``progress``).

    Returns:
        The :class:`ElasticAtTemperature`.

    Raises:
        InputError: bad arguments, a supercell too small for the cutoff (before any work).
        CalculationFailed: a blow-up, a melted crystal, or no pressure convergence.
    """
    T = require_positive("temperature", temperature, unit="K")
    require_positive("time_ps", time_ps, unit="ps")
    if lattice_method not in ("nvt", "npt"):
        raise InputError(f"lattice_method must be 'nvt' or 'npt', got {lattice_method!r}")
    if method not in ("fluctuation", "deformation"):
        raise InputError(f"method must be 'fluctuation' or 'deformation', got {method!r}")
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
        raise InputError(f"cells must be a positive integer, got {cells!r}")
    if not math.isfinite(pressure):
        raise InputError(f"pressure must be finite, got {pressure!r}")
    if log is None:
        log = (lambda s: print(s, file=sys.stderr, flush=True)) if progress is not None \
            else None
    settings = RunSettings(T, dt=dt, friction=friction, thermo_every=thermo_every,
                           progress=progress)
    config = crystal(lattice, a0_guess, size=(cells, cells, cells))
    _check_size(engine, config, cells)
    m = np.full(len(config), float(mass))
    state = MDState.from_configuration(config, masses_n=m,
                                       velocities_nc=initial_velocities(m, T, seed), seed=seed)
    lat_time = lattice_time_ps if lattice_time_ps is not None else max(1.0, time_ps / 5.0)
    if fixed_cell:
        th = engine.run(state, settings.integrator(), settings.steps(lat_time),
                        thermo_every=thermo_every, progress=progress)
        P, dP = _mean_pressure(th)
        lat = {"scale": 1.0, "scale_err": 0.0, "pressure": P, "pressure_err": dP,
               "iterations": 0, "history": [(1.0, P, dP)]}
    elif lattice_method == "npt":
        npt_time = lattice_time_ps if lattice_time_ps is not None else max(10.0,
                                                                           0.8 * time_ps)
        lat = lattice_by_npt(engine, state, settings, pressure=pressure, time_ps=npt_time,
                             log=log)
    else:
        lat = lattice_at_temperature(engine, state, settings, pressure=pressure,
                                     time_ps=lat_time, bulk_guess=bulk_guess, log=log)
    a_T = a0_guess * lat["scale"]
    if method == "fluctuation":
        th = engine.run(state, settings.integrator(), settings.steps(time_ps),
                        thermo_every=thermo_every, born=True, progress=progress)
        _check_crystal(state, config, T)
        iso = fluctuation_elastic(th, T)
        adia = adiabatic(iso)
        p_mean = _mean_pressure(th)
    else:
        iso = deformation_elastic(engine, state, settings, time_ps=time_ps, seed=seed + 1)
        _check_crystal(state, config, T)
        adia = None
        p_mean = (lat["pressure"], lat["pressure_err"])
    return ElasticAtTemperature(
        temperature=T, pressure=pressure, a0=a_T, isothermal=iso, adiabatic=adia,
        method=method, ensemble="nvt", engine=getattr(engine, "name", type(engine).__name__),
        n_atoms=len(state), lattice=lat,
        warning="; ".join(w for w in (lat.get("warning"), iso.warning) if w) or None,
        pressure_mean=p_mean)


def _check_crystal(state: MDState, ref, T: float) -> None:
    """Refuse a melted crystal: mean-square displacement from the lattice sites too large.

    Lindemann's criterion: a crystal melts when the root-mean-square displacement of its
    atoms from their sites reaches about 10-15 % of the nearest-neighbour distance; a liquid
    keeps diffusing. Here atoms further than half the nearest-neighbour spacing from
    their (scaled) sites on average, after removing the mean drift, mean the crystal is gone.
    """
    F = np.linalg.solve(ref.cell_cc, state.cell_cc).T
    sites = ref.positions_nc @ F.T
    d = state.positions_nc - sites
    d -= d.mean(axis=0)
    rms = float(np.sqrt(np.mean(np.sum(d * d, axis=1))))
    a = float(np.cbrt(abs(np.linalg.det(state.cell_cc)) / len(state)))
    if rms > 0.35 * a:
        raise CalculationFailed(
            f"the crystal melted (or transformed) during the run at T = {T:g} K: atoms are "
            f"on average {rms:.2f} Å from their lattice sites (limit {0.35 * a:.2f} Å); lower "
            "the temperature: the elastic constants of a liquid are not defined")
