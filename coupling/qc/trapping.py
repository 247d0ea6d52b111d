"""Lattice trapping of a QC crack: where the tip is, and the K range in which it stays put.

A sharp crack in a lattice does not move at Griffith's ``K_G = sqrt(2 γ E')``: the discrete
bonds trap it, so under a rising load it advances only at ``K_+ >= K_G`` and under a falling
load it heals only at ``K_- <= K_G`` (Thomson, Hsieh and Rana 1971). Thermodynamics only says
``K_- <= K_G <= K_+``; how wide the range is depends on the potential's range and softness.

* :func:`crack_plane_bonds`: the nearest-neighbour bonds that cross the crack plane between
  atoms of the atomistic region (reference lattice; minimum image along a periodic z).
* :func:`cohesive_bond_cut`: the default "broken" bond length, from the traction-separation
  curve of rigid cleavage of the same crystal (:func:`atomistic.fracture.traction_separation`):
  the cohesive traction across the crack plane, ``σ(δ) = dE/dδ / A``, is largest at the
  opening ``δ*``; a crack-plane bond longer than its length at ``δ*`` is past the peak of the
  traction-separation law, i.e. on the softening branch where the material has lost its
  cohesive strength. For a nearest-neighbour pair potential this is exactly the inflection
  point of φ; it applies unchanged to EAM.
* :func:`crack_tip_position`: the largest x-midpoint of a broken crack-plane bond
  (:func:`atomistic.fracture.crack_tip_x`).
* :func:`trapping_scan`: K raised step by step, from one step below ``K_G``, until the tip
  advances by one lattice period (``K_+``), then, from the last un-advanced state, lowered
  until it heals by one (``K_-``). Starting below ``K_G`` makes ``K_+ > K_G`` a result of the
  scan, not of where it starts.

With the K-field held fixed on the outer boundary and centred at the origin (not on the tip),
the tip's equilibrium position also drifts with K in a finite domain (a staircase of bond
jumps, about one period per few per cent of K_G at 35 a0); the brackets then contain that
drift as well as the lattice trapping proper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from atomistic.fracture import bonds_across_plane, crack_tip_x, traction_separation
from coupling.qc.crack import k_field
from coupling.qc.model import QCModel
from coupling.qc.reference import site_displacements
from coupling.qc.solver import relax
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.stepping import LoadStepper

__all__ = ["CrackBonds", "crack_plane_bonds", "cohesive_bond_cut", "crack_tip_position",
           "bond_lengths", "trapping_scan"]


@dataclass
class CrackBonds:
    """Crack-plane bonds and the lattice period along the crack line.

    Holds the site pairs ``(i below, j above)``, the periodic image shift of ``j``, the bonds'
    reference x-midpoints, the nearest-neighbour distance and the period.
    """

    i: np.ndarray
    j: np.ndarray
    shift_k3: np.ndarray  # periodic image shift added to x_j (Å)
    mid_x: np.ndarray
    d_nn: float
    period: float


def _z_period(system) -> float | None:
    ref = system.reference
    return float(ref.cell_cc[2, 2]) if ref.pbc[2] else None


def crack_plane_bonds(system, y_plane: float | None = None) -> CrackBonds:
    """Nearest-neighbour bonds across ``y = y_plane`` between atomistic-region atoms."""
    if y_plane is None:
        crack = system.info.get("crack")
        y_plane = 0.0 if crack is None else float(crack.y_plane)
    X = system.reference.positions_nc
    A = np.flatnonzero(system.atomistic_s & system.present_s)
    y = X[A, 1] - y_plane
    if not ((y < 0).any() and (y > 0).any()):
        raise InputError("the atomistic region does not contain atoms on both sides of the "
                         "crack plane; put the crack tip inside it")
    i_b, j_b, shift, d_nn = bonds_across_plane(X[A], y_plane, z_period=_z_period(system))
    i_b, j_b = A[i_b], A[j_b]
    below = A[np.abs(y - y[y < 0].max()) < 1e-6]  # the whole row next to the plane
    xs = np.unique(np.round(X[below, 0], 6))
    period = float(np.diff(xs).min()) if len(xs) > 1 else float("nan")
    return CrackBonds(i_b, j_b, shift, 0.5 * (X[i_b, 0] + X[j_b, 0]), d_nn, period)


def cohesive_bond_cut(system, bonds: CrackBonds | None = None, *, layers: int = 6,
                      n_open: int = 241, max_open: float | None = None) -> dict:
    """The broken-bond length from rigid cleavage of the perfect crystal (same potential).

    The traction-separation curve of :func:`atomistic.fracture.traction_separation` (the
    bulk cell with ``layers`` unit cells along y, ``n_open`` openings up to ``max_open``)
    peaks at the opening ``δ*``; the crack-plane nearest bond ``b`` then has length
    ``|b + δ* e_y|``, which is returned as ``bond_cut`` (Å), with ``delta_star``,
    ``sigma_max``, ``d_nn`` and ``gamma_rigid``.
    """
    info = system.info
    bonds = crack_plane_bonds(system) if bonds is None else bonds
    law = traction_separation(system.potential, info["lattice"], float(info["a0"]),
                              layers=layers, n_open=n_open, max_open=max_open)
    d_star = law["delta_star"]
    X = system.reference.positions_nc
    b = X[bonds.j[0]] + bonds.shift_k3[0] - X[bonds.i[0]]
    b_open = b + np.array([0.0, d_star, 0.0])
    return {"bond_cut": float(np.linalg.norm(b_open)), "delta_star": d_star,
            "sigma_max": law["sigma_max"], "d_nn": bonds.d_nn,
            "gamma_rigid": law["gamma_rigid"]}


def _bond_sites(system, U, bonds: CrackBonds):
    """Return ``(X, x, n)``: reference and current positions of the bond sites, bond count.

    The rows are the sites ``bonds.i`` then ``bonds.j``: bond k joins rows k and n + k.
    """
    X = system.reference.positions_nc
    c = system.ncomp
    sites = np.concatenate([bonds.i, bonds.j])
    u = site_displacements(system, U, sites)
    x = X[sites].copy()
    x[:, :c] += u
    return X[sites], x, len(bonds.i)


def bond_lengths(system, U, bonds: CrackBonds) -> np.ndarray:
    """Current lengths of the crack-plane bonds."""
    _, x, n = _bond_sites(system, U, bonds)
    return np.linalg.norm(x[n:] + bonds.shift_k3 - x[:n], axis=1)


def crack_tip_position(system, U, *, bond_cut: float | None = None,
                       bonds: CrackBonds | None = None) -> float:
    """Locate the crack tip: the largest x-midpoint of a broken crack-plane bond.

    ``bond_cut`` defaults to :func:`cohesive_bond_cut` (computed once per call; pass it in
    loops). Returns ``-inf`` when no crack-plane bond in the atomistic region is broken.
    """
    bonds = crack_plane_bonds(system) if bonds is None else bonds
    if bond_cut is None:
        bond_cut = cohesive_bond_cut(system, bonds)["bond_cut"]
    X, x, n = _bond_sites(system, U, bonds)
    return crack_tip_x(X, x, np.arange(n), np.arange(n, 2 * n), bond_cut, bonds.shift_k3)


def lattice_bonds(system) -> CrackBonds:
    """All nearest-neighbour bonds between atomistic-region atoms (reference lattice)."""
    from scipy.spatial import cKDTree

    X = system.reference.positions_nc
    A = np.flatnonzero(system.atomistic_s & system.present_s)
    P = X[A]
    Lz = _z_period(system)
    shifts = [0.0] if Lz is None else [0.0, Lz, -Lz]
    imgs = np.concatenate([P + np.array([0.0, 0.0, sz]) for sz in shifts])
    img_shift = np.repeat(np.array(shifts), len(P))
    d_nn = float(cKDTree(imgs).query(P, 2)[0][:, 1].min())
    ii, jj = [], []
    for i, lst in enumerate(cKDTree(imgs).query_ball_point(P, d_nn * 1.001)):
        for k in lst:
            j = k % len(P)
            if j > i:
                ii.append(i)
                jj.append(k)
    ii, jj = np.array(ii, np.int64), np.array(jj, np.int64)
    sh = np.zeros((len(ii), 3))
    sh[:, 2] = img_shift[jj]
    j_site = A[jj % len(P)]
    return CrackBonds(A[ii], j_site, sh, 0.5 * (X[A[ii], 0] + X[j_site, 0]), d_nn,
                      float("nan"))


def off_plane_broken(system, U, bonds_all: CrackBonds, y_plane: float, bond_cut: float) -> int:
    """Count the broken nearest-neighbour bonds that do not cross the crack plane.

    Zero for clean cleavage; non-zero for blunting, dislocation emission or other off-plane
    damage.
    """
    X = system.reference.positions_nc
    cross = (X[bonds_all.i, 1] - y_plane) * (X[bonds_all.j, 1] - y_plane) < 0
    return int((bond_lengths(system, U, bonds_all)[~cross] > bond_cut).sum())


def _fin(x):
    return None if x is None or not np.isfinite(x) else float(x)


def trapping_scan(system, field, scheme: str = "bgfc", *, K_start: float | None = None,
                  K_step: float = 0.02, K_max: float = 1.6, K_min: float = 0.5,
                  min_step: float | None = None, tol: float = 1e-8, max_iter: int = 60,
                  bond_cut: float | None = None, advance: float | None = None,
                  log=None, callback=None, material=None) -> dict:
    """Raise K until the tip advances, then lower it until the tip heals.

    All K values are in units of Griffith's ``K_G`` (``field.K_G``); ``K_start`` defaults to
    ``1 - K_step``, one step below Griffith. The fixed nodes always
    carry the K-field of the current K; the free nodes start from the previous relaxed state
    plus the K-field increment. A failed relaxation halves the K step (down to ``min_step``,
    default ``K_step / 16``) and retries from the last converged state. The continuum
    material's history (RVE material points) is committed for every accepted state and
    reverted for a failed one and for the one where the tip moved (the unloading starts
    from the last accepted state, history included).

    Args:
        system: The QC system holding the crack (:class:`coupling.qc.system.QCSystem`).
        field: The crack's K-field (:class:`coupling.qc.crack.CrackField`); gives ``K_G``.
        scheme: QC scheme of the relaxations (one of :data:`coupling.qc.system.SCHEMES`).
        K_start: First K (units of ``K_G``); default ``1 - K_step``.
        K_step: Largest K step (units of ``K_G``).
        K_max: Upper end of the loading scan (units of ``K_G``).
        K_min: Lower end of the healing scan (units of ``K_G``).
        min_step: Smallest K step after cut-backs (units of ``K_G``); default ``K_step / 16``.
        tol: Largest node force (eV/Å) at which a relaxation has converged.
        max_iter: Most Newton iterations per relaxation.
        bond_cut: Length (Å) beyond which a bond counts as broken; default the ``bond_cut`` of
            :func:`cohesive_bond_cut`.
        advance: tip motion (Å) that counts as advance / healing; default one lattice period
            along the crack line.
        log: ``log(line)`` gets a progress line per relaxation; default silent.
        callback: ``callback(record, U)`` after every converged relaxation.
        material: the continuum's material point (default: the system's Cauchy-Born; see
            :class:`coupling.qc.model.QCModel`).

    Returns:
        JSON-ready dict: ``K_plus``/``K_minus`` (first K where the tip moved, in K/K_G, or None),
        their brackets, ``status_up``/``status_down`` (plain words), ``history`` (one record
        per relaxation: stage, K/K_G, tip x, energy, iterations, max force, wall time),
        ``bond_cut`` details, ``tip0``.
    """
    say = log if log is not None else (lambda s: None)
    K_start = 1.0 - K_step if K_start is None else K_start
    for name, v in (("K_start", K_start), ("K_step", K_step), ("K_max", K_max),
                    ("K_min", K_min)):
        try:
            ok = bool(np.isfinite(float(v)) and float(v) > 0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{name} must be a positive finite number (units of K_G), got {v!r}")
    if not K_min < K_start < K_max:
        raise InputError(f"need K_min < K_start < K_max (units of K_G), got {K_min}, {K_start}, "
                         f"{K_max}")
    K_G = field.K_G
    model = QCModel(system, scheme, F_ref=np.eye(3), material=material)
    fixed = system.fixed_m
    kf1 = k_field(field, system, K_G)  # linear in K: the field at K/K_G = 1
    bonds = crack_plane_bonds(system)
    crack = system.info.get("crack")
    y_plane = 0.0 if crack is None else float(crack.y_plane)
    all_bonds = lattice_bonds(system)
    cut = cohesive_bond_cut(system, bonds)
    bcut = cut["bond_cut"] if bond_cut is None else float(bond_cut)
    period = bonds.period if advance is None else float(advance)
    min_step = K_step / 16 if min_step is None else float(min_step)
    history: list[dict] = []

    def solve(K, U_prev, K_prev, stage):
        U0 = kf1 * K if U_prev is None else U_prev + kf1 * (K - K_prev)
        U0[fixed] = (kf1 * K)[fixed]
        t0 = time.perf_counter()
        # the material's history is committed only once the state is accepted (below)
        U, rep = relax(model, U0, tol=tol, max_iter=max_iter, commit=False)
        tip = crack_tip_position(system, U, bond_cut=bcut, bonds=bonds)
        rec = {"stage": stage, "K_over_KG": float(K), "K": float(K * K_G), "tip_x": _fin(tip),
               "off_plane_broken": off_plane_broken(system, U, all_bonds, y_plane, bcut),
               "energy": rep.energy, "iterations": rep.iterations,
               "max_force": rep.max_force, "shifts": rep.shifts,
               "wall_time": time.perf_counter() - t0, "frame": len(history)}
        history.append(rec)
        say(f"  [{stage:>5s}] K/K_G = {K:.4f}: tip x = {tip:8.3f} Å, {rep.iterations} Newton "
            f"iterations, max force {rep.max_force:.1e} eV/Å, off-plane broken bonds "
            f"{rec['off_plane_broken']}, {rec['wall_time']:.1f} s")
        if callback is not None:
            callback(rec, U)
        return U, tip

    try:
        U_start, tip0 = solve(K_start, None, None, "start")
    except BaseException:
        model.revert()
        raise
    model.commit()
    if not np.isfinite(tip0):
        raise CalculationFailed(
            f"the crack healed completely at K/K_G = {K_start}: no broken crack-plane bond "
            f"(longer than {bcut:.3f} Å) in the atomistic region; start at a larger K")

    def walk(sign, K_lim, stage, K, U):
        # steps of K_step towards K_lim, halved when a relaxation fails and doubled again
        # (up to K_step) after one converges (fe2qc.stepping: the FE² solver's load stepping)
        target = K_lim if sign * (K_lim - K) > 0 else K  # already past the limit: stop there
        stepper = LoadStepper(K, target, K_step, min_increment=min_step, tol=1e-12)
        status, bracket, moved = "limit", None, None
        for K_try in stepper:
            try:
                U_new, tip = solve(K_try, U, stepper.value, stage)
            except CalculationFailed as err:
                model.revert()  # the continuum material's trial of the failed attempt
                say(f"  [{stage:>5s}] K/K_G = {K_try:.4f}: relaxation failed ({err}); "
                    "halving the K step")
                if not stepper.cut_back(str(err)):
                    status = "failed"
                    break
                continue
            except BaseException:
                model.revert()
                raise
            moved_by = (tip - tip0) if np.isfinite(tip) else -np.inf
            if sign * moved_by >= period - 1e-6:
                # the tip moved: the trial is not accepted; K_± lies in [K, K_try]
                model.revert()
                bracket = sorted([stepper.value, K_try])
                moved = K_try
                status = "moved"
                break
            model.commit()
            stepper.accept()
            U = U_new
        return status, bracket, moved, stepper.value, U

    t_up = time.perf_counter()
    st_up, br_up, K_plus, K_last, U_last = walk(+1, K_max, "load", K_start, U_start)
    say(f"  loading: {st_up} ({time.perf_counter() - t_up:.1f} s)")
    # back to the last un-advanced state, then unload from there
    st_dn, br_dn, K_minus, _, _ = walk(-1, K_min, "heal", K_last, U_last)
    words = {
        "up": {"moved": "tip advanced", "limit": f"no advance up to K/K_G = {K_max}",
               "failed": "relaxation failed even with the smallest K step"},
        "down": {"moved": "tip receded (healed)", "limit": f"no healing down to K/K_G = {K_min}",
                 "failed": "relaxation failed even with the smallest K step"},
    }
    # hysteresis: tip positions at the same K on the loading and the unloading branch
    up = {round(r["K_over_KG"], 9): r["tip_x"] for r in history if r["stage"] != "heal"}
    dn = {round(r["K_over_KG"], 9): r["tip_x"] for r in history if r["stage"] == "heal"}
    common = [k for k in up if k in dn and up[k] is not None and dn[k] is not None]
    hyst = max((abs(up[k] - dn[k]) for k in common), default=None)
    damage = max(r["off_plane_broken"] for r in history)
    return {
        "K_G": K_G, "tip_hysteresis": hyst, "hysteresis_K_compared": sorted(common),
        "max_off_plane_broken": damage,
        "K_start": K_start, "K_step": K_step, "K_max": K_max, "K_min": K_min,
        "tip0": float(tip0), "advance": float(period),
        "bond_cut": bcut, "cohesion": cut,
        "K_plus": K_plus, "K_plus_bracket": br_up, "status_up": words["up"][st_up],
        "K_minus": K_minus, "K_minus_bracket": br_dn, "status_down": words["down"][st_dn],
        "unloaded_from": K_last,
        # Griffith strictly inside the trapping range, at the resolution of the brackets: the
        # tip had not advanced at the last K >= K_G before K_+, nor healed at the last K <= K_G
        "griffith_bracketed": bool(br_up is not None and br_dn is not None
                                   and br_dn[1] <= 1.0 + 1e-12 and br_up[0] >= 1.0 - 1e-12),
        "history": history,
    }
