# %% [markdown]
# # Elastic constants of copper from 0 K to 900 K, with error bars
#
# Cu (EAM, `Cu_u3.eam`) in a periodic fcc supercell: at each temperature the lattice is
# scaled to zero mean pressure by NVT runs, then NVT (Langevin BAOAB) samples are turned into
# the isothermal elastic constants by two independent routes:
#
# * the **stress-fluctuation formula** `C = <C_Born> - (V/kT) cov(σ, σ) + kinetic term` (one
#   run; the adiabatic constants follow from the same run's thermal stress and heat capacity);
# * **direct deformation**: mean stresses at ±1 % strain, central differences (four runs).
#
# Both engines at 300 K: fe2qc's own and LAMMPS (`pair_style eam`, the same file; Born term by
# `compute born/matrix numdiff`). Every number carries one standard error from blocking /
# statistical inefficiency (`fe2qc.statistics`); the 0 K constants (Cauchy-Born at the
# zero-pressure lattice) are the T = 0 points. The full run also reproduces LAMMPS's
# `examples/ELASTIC_T/BORN_MATRIX/Argon` (LJ argon at 60 K, 500 atoms, 12 Å cutoff), whose
# published short-run output is C11 = 2.457, C12 = 1.300, C44 = 1.443 GPa, with a longer run.
#
# Run: `python demos/elastic_temperature.py` (about 15 minutes), `--quick` (about a minute;
# what the tests run), `--outdir DIR`, `--json` (the summary as one JSON object on the last
# line). Outputs: `summary.json`, `elastic_temperature.png` in `results/elastic_temperature`
# (`results/elastic_temperature_quick` with `--quick`).

# %%
"""Elastic constants of Cu_u3 from 0 K to 900 K: two routes, two engines, error bars."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atomistic.elastic import elastic_constants  # noqa: E402
from atomistic.md.elastic import elastic_at_temperature  # noqa: E402
from atomistic.md.engine import NativeEngine  # noqa: E402
from atomistic.potentials import load_potential  # noqa: E402
from atomistic.potentials.factory import pair_potential_from_lammps  # noqa: E402
from fe2qc.units import EV_PER_A3_IN_GPA  # noqa: E402

parser = argparse.ArgumentParser(
    description="Elastic constants of Cu_u3 from 0 K to 900 K (fluctuation and deformation "
                "routes, native and LAMMPS engines) and the LAMMPS Argon example")
parser.add_argument("--quick", action="store_true", help="short runs, fewer temperatures "
                    "(about a minute)")
parser.add_argument("--outdir", default=None,
                    help="output folder, relative to the working directory (default "
                         "results/elastic_temperature, with --quick "
                         "results/elastic_temperature_quick)")
parser.add_argument("--json", action="store_true",
                    help="print the summary as one JSON object on the last line")
args = parser.parse_args()
outdir = Path(args.outdir or ("results/elastic_temperature_quick" if args.quick
                              else "results/elastic_temperature"))
outdir.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Set-up
# Full: 4³ cells (256 atoms), 40 ps of sampling per run, T = 100 ... 900 K, deformation at
# every T. Quick: 3³ cells (108 atoms), 4 ps, T = 300 and 900 K, deformation at 300 K. Time
# step 1 fs, Langevin friction 5/ps, a sample every 10 steps.

# %%
if args.quick:
    TEMPS, CELLS, TIME, DEFORM_AT, ARGON = (300.0, 900.0), 3, 4.0, (300.0,), False
else:
    TEMPS, CELLS, TIME, DEFORM_AT, ARGON = (100.0, 300.0, 500.0, 700.0, 900.0), 4, 40.0, \
        (100.0, 300.0, 500.0, 700.0, 900.0), True
pot = load_potential("Cu_u3.eam")
mass = float(pot.masses[0])
zero = elastic_constants(pot, "fcc")
bulk0 = (zero.C[0, 0] + 2 * zero.C[0, 1]) / 3 / EV_PER_A3_IN_GPA
t_start = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr (stdout keeps the table and the JSON)."""
    print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", file=sys.stderr, flush=True)


def point(engine, T: float, method: str, seed: int, a_T: float | None = None) -> dict:
    """One temperature by one route on one engine: the JSON-ready result (GPa).

    ``a_T``: the lattice constant at T found by an earlier run (the cell is then kept, so
    that routes and engines are compared at one volume); None: search it (zero pressure).
    """
    t0 = time.perf_counter()
    r = elastic_at_temperature(engine, "fcc", a_T or zero.a0, mass, T, cells=CELLS,
                               time_ps=TIME, method=method, seed=seed, bulk_guess=bulk0,
                               fixed_cell=a_T is not None, lattice_time_ps=max(1.0, TIME / 5))
    d = r.as_dict()
    d["seconds"] = time.perf_counter() - t0
    log(f"{engine.name:7s} {method:11s} T = {T:5.0f} K: a0 = {d['a0']:.4f} Å, "
        f"C11 = {d['C11']:.1f} ± {d['C11_err']:.1f}, C12 = {d['C12']:.1f} ± "
        f"{d['C12_err']:.1f}, C44 = {d['C44']:.1f} ± {d['C44_err']:.1f} GPa "
        f"({d['seconds']:.0f} s)")
    return d


# %% [markdown]
# ## Runs
# The fluctuation run at each T finds the lattice constant (zero mean pressure); the
# deformation route and the LAMMPS engine then use that cell, so the comparisons are at one
# volume. The seed differs per run: the routes and engines are independent samples.

# %%
native = NativeEngine(pot)
runs = {"fluctuation": [], "deformation": [], "lammps": []}
for k, T in enumerate(TEMPS):
    fl = point(native, T, "fluctuation", seed=10 + k)
    runs["fluctuation"].append(fl)
    if T in DEFORM_AT:
        runs["deformation"].append(point(native, T, "deformation", seed=20 + k, a_T=fl["a0"]))
    if T == 300.0:
        from atomistic.lammps.md import LammpsEngine

        with LammpsEngine(pot.lammps_commands(), born_delta=1e-3) as lammps_engine:
            runs["lammps"].append(point(lammps_engine, T, "fluctuation", seed=31,
                                        a_T=fl["a0"]))

# %% [markdown]
# ## Energy conservation: 100 ps of NVE at about 300 K
# Velocity Verlet (1 fs) on the 300 K cell, started from the perfect lattice with 600 K
# velocities (equipartition brings it to about 300 K); the drift is the slope of a
# straight-line fit of the total energy against time, per atom (quick: 10 ps).

# %%
import numpy as np  # noqa: E402

from atomistic.lattice import crystal  # noqa: E402
from atomistic.md import MDState, VelocityVerlet, initial_velocities  # noqa: E402

a300 = next(d["a0"] for d in runs["fluctuation"] if d["T"] == 300.0)
cfg = crystal("fcc", a300, size=(CELLS,) * 3)
masses = np.full(len(cfg), mass)
nve_state = MDState.from_configuration(cfg, masses_n=masses,
                                       velocities_nc=initial_velocities(masses, 600.0, 5))
NVE_PS = 10.0 if args.quick else 100.0
nve = native.run(nve_state, VelocityVerlet(0.001), int(NVE_PS / 0.001), thermo_every=100)
slope = float(np.polyfit(nve.time, nve.total_energy / len(cfg), 1)[0])
nve_summary = {"atoms": len(cfg), "time_ps": NVE_PS, "dt_ps": 0.001,
               "mean_temperature": float(nve.temperature.mean()),
               "drift_eV_per_atom_per_ps": slope,
               "max_deviation_eV_per_atom": float(np.ptp(nve.total_energy) / len(cfg))}
log(f"NVE {NVE_PS:g} ps at {nve_summary['mean_temperature']:.0f} K: drift "
    f"{slope:.2e} eV/atom/ps, peak-to-peak {nve_summary['max_deviation_eV_per_atom']:.2e} "
    "eV/atom")

# %% [markdown]
# ## LAMMPS's Argon example, converged
# LJ argon (ε = 0.238067 kcal/mol, σ = 3.405 Å, lj/cut 12 Å, not shifted), 5³ fcc cells
# (500 atoms) at 60 K and zero pressure (the example's 1 atm is 1e-4 GPa), 200 ps sampled
# with a 2 fs step; the example's own output is a 100 ps run of `fix nvt`.

# %%
argon = None
if ARGON:
    eps = 0.238067 * 0.0433641  # kcal/mol -> eV (LAMMPS's real -> metal conversion)
    ar = pair_potential_from_lammps("lj/cut 12.0", f"{eps!r} 3.405", element="Ar")
    ar0 = elastic_constants(ar, "fcc", 5.3)
    t0 = time.perf_counter()
    ra = elastic_at_temperature(NativeEngine(ar), "fcc", ar0.a0, 39.948, 60.0, cells=5,
                                time_ps=200.0, dt=0.002, seed=41,
                                bulk_guess=(ar0.C[0, 0] + 2 * ar0.C[0, 1]) / 3 /
                                EV_PER_A3_IN_GPA)
    argon = ra.as_dict()
    argon["seconds"] = time.perf_counter() - t0
    argon["lammps_example"] = {"C11": 2.457, "C12": 1.300, "C44": 1.443,
                               "source": "LAMMPS examples/ELASTIC_T/BORN_MATRIX/Argon "
                                         "(numdiff, 100 ps nvt)"}
    log(f"argon 60 K: a0 = {argon['a0']:.4f} Å, C11 = {argon['C11']:.3f} ± "
        f"{argon['C11_err']:.3f}, C12 = {argon['C12']:.3f} ± {argon['C12_err']:.3f}, "
        f"C44 = {argon['C44']:.3f} ± {argon['C44_err']:.3f} GPa")

# %% [markdown]
# ## Table and checks
# The routes and engines must agree within their combined error bars (the numbers printed
# are the differences in units of the combined standard error).

# %%
print(f"Cu_u3 at 0 K: a0 = {zero.a0:.5f} Å, C11 = {zero.C[0, 0]:.2f}, C12 = {zero.C[0, 1]:.2f}, "
      f"C44 = {zero.C[3, 3]:.2f} GPa")
print(f"{'T (K)':>6s} {'route':12s} {'a0 (Å)':>8s} " + " ".join(
    f"{k:>14s}" for k in ("C11", "C12", "C44")) + "   (GPa, ± one standard error)")
for name in ("fluctuation", "deformation", "lammps"):
    for d in runs[name]:
        print(f"{d['T']:6.0f} {name:12s} {d['a0']:8.5f} " + " ".join(
            f"{d[k]:8.2f} ± {d[k + '_err']:4.2f}" for k in ("C11", "C12", "C44")))


def zscore(a: dict, b: dict) -> dict:
    """(a - b) / sqrt(err_a² + err_b²) for C11, C12, C44."""
    return {k: (a[k] - b[k]) / max((a[k + "_err"] ** 2 + b[k + "_err"] ** 2) ** 0.5, 1e-300)
            for k in ("C11", "C12", "C44")}


checks = {}
at300 = {name: next(d for d in runs[name] if d["T"] == 300.0) for name in runs}
checks["deformation_vs_fluctuation_300K"] = zscore(at300["deformation"], at300["fluctuation"])
checks["lammps_vs_native_300K"] = zscore(at300["lammps"], at300["fluctuation"])
for name, z in checks.items():
    print(f"{name}: " + ", ".join(f"{k} {v:+.2f} σ" for k, v in z.items()))

# %% [markdown]
# ## Plot
# C11, C12, C44 against T: fluctuation route (isothermal, filled circles; adiabatic, open),
# deformation route (squares), LAMMPS at 300 K (triangle), 0 K constants (stars).

# %%
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
for ax, (k, (I, J)) in zip(axes, (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3))),
                            strict=True):
    fl = runs["fluctuation"]
    ax.errorbar([d["T"] for d in fl], [d[k] for d in fl], [d[k + "_err"] for d in fl],
                fmt="o", color="C0", capsize=3, label="fluctuation (isothermal)")
    ts = [0.0] + [d["T"] for d in fl]  # lines from the 0 K value (C_S = C_T at 0 K)
    ax.plot(ts, [zero.C[I, J]] + [d[k] for d in fl], "-", color="C0", lw=1)
    ax.plot(ts, [zero.C[I, J]] + [d["adiabatic"][k] for d in fl], "o--", mfc="none",
            color="C0", alpha=0.7, label="fluctuation (adiabatic)", markevery=slice(1, None))
    de = runs["deformation"]
    ax.errorbar([d["T"] + 8 for d in de], [d[k] for d in de], [d[k + "_err"] for d in de],
                fmt="s", color="C1", capsize=3, label="direct deformation ±1 %")
    lm = runs["lammps"]
    ax.errorbar([d["T"] - 8 for d in lm], [d[k] for d in lm], [d[k + "_err"] for d in lm],
                fmt="^", color="C2", capsize=3, label="LAMMPS engine (numdiff Born)")
    ax.plot([0.0], [zero.C[I, J]], "*", color="k", ms=12, label="0 K (Cauchy-Born)")
    ax.set_xlabel("T (K)")
    ax.set_ylabel(f"{k} (GPa)")
    ax.set_title(f"Cu_u3 {k}")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Cu_u3 fcc, {runs['fluctuation'][0]['atoms']} atoms, {TIME:g} ps per run "
             "(one standard error)")
fig.tight_layout()
png = outdir / "elastic_temperature.png"
fig.savefig(png, dpi=120)
plt.close(fig)

# %% [markdown]
# ## Output

# %%
summary = {"quick": args.quick, "potential": "Cu_u3.eam", "cells": CELLS, "time_ps": TIME,
           "zero_K": {"a0": zero.a0, "C11": zero.C[0, 0], "C12": zero.C[0, 1],
                      "C44": zero.C[3, 3]},
           "runs": runs, "checks": checks, "argon": argon, "nve": nve_summary,
           "plot": str(png),
           "wall_time": time.perf_counter() - t_start}
(outdir / "summary.json").write_text(json.dumps(summary, indent=1))
print(f"plot: {png}\nsummary: {outdir / 'summary.json'}\n"
      f"wall time: {summary['wall_time']:.0f} s")
if args.json:
    print(json.dumps(summary))
