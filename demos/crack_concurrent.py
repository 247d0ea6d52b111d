# %% [markdown]
# # A concurrent crack: explicit atoms at the tip, atomistic RVEs in the far field
#
# A mode-I crack in the Cu slab (Cu_u3 EAM; x = [100], y = [010], z = [001] periodic, one
# period thick; a pre-cut crack on y = 0 along -x, tip at the origin) is loaded by the
# anisotropic K-field on its clamped outer boundary, K raised in steps below Griffith's K_G.
# Around the tip every atom is explicit (quasicontinuum, blended ghost-force-corrected `bgfc`
# coupling); the continuum is assembled by DOLFINx from material points: Cauchy-Born of the
# same potential in the handshake band, and beyond it (r >= rve radius) an atomistic RVE per
# Gauss point, evaluated on MPI worker ranks (`coupling.dispatch`). Four runs on one mesh:
#
# 1. `perfect`: RVEs of the perfect lattice (1x1x1 cubic cell, 4 atoms);
# 2. `vacancy`: RVEs with one vacancy (2x2x2 cells, 31 atoms), clamped with the K-field of the
#    vacancy RVE's own stiffness (softer: larger displacements at the same K);
# 3. `cauchy_born`: the same with the Cauchy-Born continuum everywhere;
# 4. `no_atoms`: no atoms at all, every cell a continuum cell (perfect RVEs beyond the rve
#    radius, Cauchy-Born inside it): the pure FE² comparison on the same mesh.
#
# Checks (in `summary.json`): the perfect-RVE run equals the Cauchy-Born run to the RVE
# relaxation tolerance (a perfect Bravais RVE relaxes nothing); the vacancy run's far field
# follows the K-field of the vacancy RVE's own elastic constants: its displacements, fitted with
# the perfect crystal's unit-K field (relative to the perfect run's fit), come out larger by
# the ratio the two LEFM fields predict (about E'/E'_vac), see `coupling/qc/concurrent.py`.
#
# Run: `mpirun -n 2 python demos/crack_concurrent.py [--quick]` (rank 0 solves, the other
# ranks evaluate RVEs); `python demos/crack_concurrent.py --quick` gives the same numbers
# bitwise without workers. Outputs in `results/crack_concurrent` (`_quick` with --quick)
# under the working directory: `summary.json`, `opening.png`, `sigma_yy.png`,
# `<run>_atoms.extxyz` (atoms and padding, one frame per K, with `sigma_yy_GPa` per atom) and
# `<run>_continuum.bp` (VTX nodal displacements, one time per K).

# %%
"""A concurrent crack: explicit atoms at the tip, atomistic RVEs (dispatched) in the far field."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fe2qc.mpi  # noqa: E402

MPI = fe2qc.mpi.mpi()

# PETSc (DOLFINx's linear algebra, the QC solver's MUMPS) initialises collectively over
# COMM_WORLD when first imported: every rank imports it and the QC library here, workers
# included, or rank 0 would wait for the workers at its first linear solve
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402, F401

from coupling.dispatch import DispatchedMaterial, run_worker, split_world  # noqa: E402
from coupling.qc.concurrent import (  # noqa: E402
    ConcurrentCrack,
    concurrent_crack_system,
    far_field_check,
    fingerprint,
    rve_stiffness,
    stiffness_field,
)
from fe2qc.errors import is_interrupt  # noqa: E402
from fe2qc.units import EV_PER_A3_IN_GPA  # noqa: E402

# %% [markdown]
# ## Sizes
# Radii in units of a0 = 3.615 Å; K in units of the perfect crystal's K_G. Each RVE Gauss
# point costs a relaxation and a tangent per Newton iteration (about 3 ms for the 4-atom
# perfect cell, 20-50 ms for the 31-atom vacancy cell), so the quick form keeps the RVE zone
# small: the vacancy RVEs sit beyond `vacancy_rve_radius` (Å) only (quick: 26 Å, 46 Gauss
# points and 7 free nodes for the far-field fit; full: the default, atomistic radius plus two
# cutoffs, 340 Gauss points).

# %%
SIZES = {
    "quick": {"radius": 12.0, "atomistic_radius": 3.0, "growth": 1.5, "K": [0.5, 0.8],
              "vacancy_rve_radius": 26.0, "tol": 1e-7},
    "full": {"radius": 24.0, "atomistic_radius": 4.0, "growth": 1.0, "K": [0.3, 0.6, 0.9],
             "vacancy_rve_radius": None, "tol": 1e-8},
}
PERFECT_SIZE, VACANCY_SIZE = (1, 1, 1), (2, 2, 2)
#: the largest displacement difference (Å) perfect-RVE vs Cauchy-Born that counts as equal:
#: the RVE relaxes nothing, so only round-off differs (measured ~1e-15 Å)
PERFECT_TOL = 1e-9
#: runs whose material points are dispatched, in the order the workers serve them
PHASES = ("perfect", "perfect", "vacancy")
CONTROL_TAG = 7411


def parse_args(argv=None):
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small domain, two K steps (~1 min)")
    p.add_argument("--outdir", default=None, help="output folder, relative to the working "
                   "directory (default results/crack_concurrent, with --quick "
                   "results/crack_concurrent_quick)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return p.parse_args(argv)


def say(line: str) -> None:
    """Progress on stderr (rank 0 only calls it)."""
    print(line, file=sys.stderr, flush=True)


def rve_models():
    """The perfect and the vacancy RVE point models (built alike on every rank)."""
    from atomistic.rve import AtomisticRVE
    from coupling.qc.setups import default_setup

    pot, lattice, a0 = default_setup(3)
    return {"perfect": AtomisticRVE.from_lattice(pot, lattice, a0, size=PERFECT_SIZE, dim=3,
                                                 multiple_images=True),
            "vacancy": AtomisticRVE.from_lattice(pot, lattice, a0, size=VACANCY_SIZE, dim=3,
                                                 multiple_images=True, vacancy=True)}


# %% [markdown]
# ## Worker ranks and the phases
# Each dispatched run opens a `DispatchedMaterial` (a context manager: leaving it stops the
# workers' `run_worker`); after each phase rank 0 tells every worker whether another follows
# (point-to-point on a private duplicate of COMM_WORLD, so no library message can cross it),
# so the workers also end when a run fails.

# %%
class Phases:
    """Open one dispatched material per phase on rank 0; tell the workers what comes next."""

    def __init__(self, layout, control, models):
        self.layout, self.control, self.models = layout, control, models
        self.done = 0
        self.stopped = layout.n_workers == 0

    def _signal(self, more: bool) -> None:
        if not self.stopped:
            for rank in range(self.layout.n_macro, self.layout.size):
                self.control.send(bool(more), dest=rank, tag=CONTROL_TAG)
            self.stopped = not more

    @contextlib.contextmanager
    def material(self, name: str):
        """The dispatched material of the next phase (must be ``PHASES[done]``)."""
        assert PHASES[self.done] == name, (PHASES, self.done, name)
        mat = DispatchedMaterial(self.layout, self.models[name], chunk_size=8,
                                 poll_interval=1e-3 if self.layout.n_workers else 0.0)
        try:
            with mat:
                yield mat
        except BaseException:
            self.done += 1
            self._signal(False)
            raise
        self.done += 1
        self._signal(self.done < len(PHASES))

    def abandon(self) -> None:
        """After a failure outside a phase: stop the workers waiting for the next one."""
        if self.stopped:
            return
        DispatchedMaterial(self.layout, self.models["perfect"]).close()
        self._signal(False)


def worker_loop(layout, control, models) -> None:
    """Serve the phases' RVE evaluations until rank 0 says stop."""
    for name in PHASES:
        run_worker(layout, models[name])
        if not control.recv(source=0, tag=CONTROL_TAG):
            break


# %% [markdown]
# ## The runs

# %%
def run_all(args, phases: Phases, outdir: Path) -> dict:
    """The four runs, the checks and the plots; returns the summary."""
    size = SIZES["quick" if args.quick else "full"]
    t0 = time.perf_counter()
    system, field = concurrent_crack_system(radius=size["radius"],
                                            atomistic_radius=size["atomistic_radius"],
                                            growth=size["growth"])
    a0 = float(system.info["a0"])
    say(f"crack_concurrent: Cu slab, radius {size['radius']} a0, atomistic radius "
        f"{size['atomistic_radius']} a0: {system.info['atomistic_sites']} atoms, "
        f"{system.n_nodes} nodes, {system.mesh.n_cells} cells; K_G = {field.K_G:.5f} eV/Å^2.5 "
        f"({field.griffith['K_G_MPa_sqrt_m']:.4f} MPa√m); K/K_G = {size['K']}; "
        f"{phases.layout.n_workers} RVE worker(s)")
    common = {"log": say, "outdir": outdir, "tol": size["tol"]}
    runs = {}

    def solve(name, **kw):
        t = time.perf_counter()
        say(f"  run {name}")
        run = ConcurrentCrack(system, field, size["K"], name=name, **common,
                              bond_cut=runs["cauchy_born"].bond_cut if runs else None, **kw)
        run.solve()
        run.wall = time.perf_counter() - t
        runs[name] = run
        say(f"  run {name}: {run.n_gauss_points} Gauss points ({run.n_far_points} RVE points), "
            f"{run.wall:.1f} s")
        return run

    solve("cauchy_born")
    with phases.material("perfect") as mat:
        solve("perfect", far=mat)
    with phases.material("perfect") as mat:
        solve("no_atoms", far=mat, atoms=False)
    C_vac = rve_stiffness(phases.models["vacancy"])
    vac_field = stiffness_field(field, C_vac)
    with phases.material("vacancy") as mat:
        solve("vacancy", far=mat, clamp_field=vac_field, rve_radius=size["vacancy_rve_radius"])
    wall = time.perf_counter() - t0

    # -- checks --
    dU = max(float(np.abs(np.asarray(runs["perfect"].U) - runs["cauchy_born"].U).max()), 0.0)
    vac = runs["vacancy"].records[-1].far_field
    # the perfect run measured on the vacancy run's far-field nodes (same geometry and
    # nonlinearity, perfect material): the softening is the ratio of the two fits
    perf_ref = far_field_check(system, runs["perfect"].U, size["K"][-1] * field.K_G, field,
                               field, vac["r_min"])
    measured = vac["K_fit_perfect_over_K"] / perf_ref["K_fit_perfect_over_K"]
    expected = vac["expected_perfect_over_K"]
    checks = {
        "perfect_equals_cauchy_born": {"max_dU": dU, "tolerance": PERFECT_TOL,
                                       "passed": bool(dU <= PERFECT_TOL)},
        "vacancy_far_field": {
            "E_prime_perfect": vac["E_prime_perfect"], "E_prime_vacancy_rve": vac["E_prime_own"],
            "compliance_ratio": vac["compliance_ratio"],
            "softening_measured": measured, "softening_expected": expected,
            "relative_error": measured / expected - 1.0,
            "K_fit_own_over_K": vac["K_fit_own_over_K"],
            "perfect_run_K_fit_over_K": perf_ref["K_fit_perfect_over_K"],
            "nodes": vac["nodes"], "r_min": vac["r_min"],
            "passed": bool(abs(measured / expected - 1.0) < 0.25 * (expected - 1.0)),
        },
    }
    say(f"  perfect RVE vs Cauchy-Born: max |dU| = {dU:.2e} Å (tolerance {PERFECT_TOL:.0e})")
    say(f"  vacancy RVE: E' = {vac['E_prime_own']:.4f} vs perfect {vac['E_prime_perfect']:.4f} "
        f"eV/Å³ (ratio {vac['compliance_ratio']:.4f}); far-field softening measured "
        f"{measured:.4f}, LEFM of the RVE's own C predicts {expected:.4f}")
    plot(runs, field, vac_field, outdir, size["K"][-1])
    out = {
        "quick": bool(args.quick), "workers": phases.layout.n_workers,
        "radius_a0": size["radius"], "atomistic_radius_a0": size["atomistic_radius"],
        "a0": a0, "K_G": field.K_G, "K_over_KG": size["K"], "wall_time": wall,
        "rve_sizes": {"perfect": list(PERFECT_SIZE), "vacancy": list(VACANCY_SIZE)},
        "checks": checks,
        "runs": {k: dict(r.summary(), wall_time=r.wall, U_sha256=fingerprint(r.U))
                 for k, r in runs.items()},
        "units": {"length": "Å", "stress": "GPa", "E_prime": "eV/Å³", "K": "eV/Å^(5/2)"},
        "stress_measures": {"atoms": "per-atom virial stress over a0^3/4 (pair derivatives of "
                                     "the potential, half per atom)",
                            "continuum": "Gauss-point Cauchy stress P F^T / det F of the "
                                         "converged material evaluation"},
    }
    return out


# %% [markdown]
# ## Plots: opening behind the tip and sigma_yy ahead of it, at the last K

# %%
STYLE = {"perfect": ("C0", "o", "concurrent, perfect RVEs"),
         "vacancy": ("C3", "s", "concurrent, vacancy RVEs"),
         "cauchy_born": ("k", "x", "concurrent, Cauchy-Born"),
         "no_atoms": ("C2", "^", "no atoms (continuum), perfect RVEs")}


def plot(runs, field, vac_field, outdir: Path, K: float) -> None:
    """Write opening.png and sigma_yy.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def finish(fig, ax, xlabel, ylabel, title, path, legend_size):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=legend_size)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for name, run in runs.items():
        col, mk, label = STYLE[name]
        o = run.records[-1].opening
        ax.plot(o["x"], o["delta"], marker=mk, color=col, ms=4, lw=1,
                mfc="none" if name != "cauchy_born" else col, label=label)
    o = runs["perfect"].records[-1].opening
    ax.plot(o["x"], o["lefm"], "k--", lw=1, label="LEFM K-field, perfect crystal C")
    o = runs["vacancy"].records[-1].opening
    ax.plot(o["x"], o["lefm"], ":", color="C3", lw=1.2, label="LEFM K-field, vacancy RVE C")
    finish(fig, ax, "x (Å), behind the tip at 0", "opening u_y(+) - u_y(-) (Å)",
           f"near-tip opening at K = {K} K_G (Cu_u3)", outdir / "opening.png", 8)

    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for name, run in runs.items():
        col, mk, label = STYLE[name]
        s = run.records[-1].as_dict()["sigma_yy_GPa"]
        if "atoms" in s:
            ax.plot(s["atoms_x"], s["atoms"], marker=mk, color=col, ls="-", lw=1, ms=5,
                    mfc="none" if name != "cauchy_born" else col, label=label + " (atoms)")
        ax.plot(s["continuum_x"], s["continuum"], marker=mk, color=col, ls="", ms=6,
                alpha=0.6, label=label + " (Gauss points)")
    r = np.linspace(0.5, max(max(run.records[-1].sigma_yy["lefm_x"]) for run in runs.values()),
                    300)
    lefm = K * field.K_G / np.sqrt(2 * np.pi * r) * EV_PER_A3_IN_GPA
    ax.plot(r, lefm, "k--", lw=1, label="LEFM K/sqrt(2 pi r)")
    ax.set_ylim(0, 2.0 * K * field.K_G / np.sqrt(2 * np.pi * 2.0) * EV_PER_A3_IN_GPA)
    finish(fig, ax, "x (Å), ahead of the tip at 0", "sigma_yy (GPa)",
           f"sigma_yy ahead of the tip at K = {K} K_G", outdir / "sigma_yy.png", 7)


# %%
def main(argv=None) -> int:
    """Run the demo on every rank; rank 0 writes and prints. Returns the exit status."""
    args = parse_args(argv)
    world = MPI.COMM_WORLD
    layout = split_world(world, n_workers=world.size - 1)
    control = world.Dup()
    models = rve_models()
    if layout.is_worker:
        worker_loop(layout, control, models)
        return 0
    outdir = Path(args.outdir or ("results/crack_concurrent_quick" if args.quick
                                  else "results/crack_concurrent"))
    outdir.mkdir(parents=True, exist_ok=True)
    phases = Phases(layout, control, models)
    try:
        summary = run_all(args, phases, outdir)
    except BaseException as exc:
        if is_interrupt(exc) and world.size > 1:
            from coupling.interrupts import abort_all

            say("crack_concurrent.py: interrupted")
            abort_all(world, 130)
        phases.abandon()
        raise
    phases.abandon()  # nothing left to serve (no-op after the last phase)
    (outdir / "summary.json").write_text(json.dumps(summary, indent=1))
    say(f"crack_concurrent: done in {summary['wall_time']:.1f} s; outputs in {outdir}")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
