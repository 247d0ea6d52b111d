# %% [markdown]
# # Lattice trapping of a crack tip, with the quasicontinuum method
#
# A straight crack on the plane y = 0 runs along -x with its tip at the origin, between two
# atomic rows. Near the tip every atom is explicit (the atomistic region, a disc); farther
# out the lattice is coarse-grained by P1 finite elements with the Cauchy-Born energy of the
# same potential, coupled by the blended ghost-force-corrected scheme (`bgfc`). On the outer
# boundary the mode-I K-field of linear elasticity is imposed: isotropic for the 2D
# triangular lattice (smoothed Lennard-Jones), anisotropic (Sih-Paris-Irwin) for the cubic Cu
# slab (Cu_u3 EAM, x = [100], y = [010], z = [001] periodic with one lattice period).
#
# **Griffith.** A crack in an elastic continuum is in equilibrium when the energy release rate
# G = K²/E' equals 2γ, i.e. at K_G = sqrt(2 γ E'). Both γ (relaxed surface energy of the
# cleavage plane) and E' (plane-strain modulus of the crack frame; for cubic Cu the
# anisotropic one) are computed from the potential by `atomistic.fracture`, not typed in.
#
# **Lattice trapping.** In a crystal the energy is not a smooth function of the tip position:
# bonds break one by one, so a tip stays put over a range of K. It advances only at
# K_+ >= K_G and heals only at K_- <= K_G (Thomson, Hsieh and Rana 1971). We raise K in small
# steps, relaxing each time (Newton, MUMPS), until the tip has moved forward by one lattice
# period along x (K_+), then return to the last un-advanced state and lower K until the tip
# has receded by one period (K_-). The tip is the largest x-midpoint of a broken
# nearest-neighbour bond across the crack plane; "broken" means longer than the bond length
# at the peak of the rigid-cleavage traction of the same crystal (`coupling.qc.trapping`).
#
# **Output** (in `--outdir`): `<lattice>_atoms.extxyz` (atomistic region and its padding, one
# frame per K, with `displacement`, `region` and `beta`; open with OVITO),
# `<lattice>_continuum.bp` (nodal displacements as VTX, open with ParaView; time = frame),
# `<lattice>_trapping.png` (tip position against K/K_G), `summary.json`.
#
# Run: `python demos/crack_tip_qc.py` (both lattices, full size), `--quick` for a reduced
# run of about a minute, `--lattice triangular|fcc|both`, `--json` to print one JSON object
# as the last line.

# %%
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from coupling.qc.crack import crack_system  # noqa: E402
from coupling.qc.mesh import QCMesh  # noqa: E402
from coupling.qc.model import SCHEMES  # noqa: E402
from coupling.qc.reference import site_displacements  # noqa: E402
from coupling.qc.trapping import trapping_scan  # noqa: E402

# %% [markdown]
# ## Sizes and load steps
#
# Radii are in units of a0 (the nearest-neighbour distance of the triangular lattice, the
# cube edge of Cu). K steps are in units of K_G. The trapping range of these potentials is
# narrow (a few per cent of K_G), so the steps are small; the bracket printed with K_+ and
# K_- is the resolution of the answer.

# %%
CASES = {
    "triangular": {
        "dim": 2,
        "full": {"radius": 80.0, "atomistic_radius": 15.0, "K_step": 0.002},
        "quick": {"radius": 35.0, "atomistic_radius": 8.0, "K_step": 0.02},
    },
    "fcc": {
        "dim": 3,
        "full": {"radius": 25.0, "atomistic_radius": 6.0, "K_step": 0.005},
        "quick": {"radius": 16.0, "atomistic_radius": 4.0, "K_step": 0.05},
    },
}
K_START, K_MAX, K_MIN = 1.0, 1.6, 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__ or "crack-tip lattice trapping with QC")
    p.add_argument("--quick", action="store_true", help="reduced sizes and coarse K steps "
                   "(about a minute for both lattices)")
    p.add_argument("--lattice", choices=["triangular", "fcc", "both"], default="both")
    p.add_argument("--scheme", choices=SCHEMES, default="bgfc")
    p.add_argument("--outdir", default="crack_tip_qc_out")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with all results as the last line")
    return p.parse_args(argv)


# %% [markdown]
# ## Output writers
#
# The atoms written are those of the atomistic region plus the padding the coupled energy
# needs (sites within one cutoff of the region); positions are reference + QC displacement
# (interpolated for padding sites that are not nodes). `region` is 1 for atomistic atoms, 0
# for padding.

# %%
class FrameWriter:
    def __init__(self, system, outdir: Path, lattice: str):
        from coupling.qc.output import QCVTXWriter, write_extxyz

        self.system = system
        self._write_extxyz = write_extxyz
        A = system.atomistic_s & system.present_s
        near = system.neighbours_within(A, system.potential.cutoff)
        self.sites = np.flatnonzero(A | near)
        self.region = A[self.sites].astype(np.int8)
        self.beta = system.beta_s[self.sites]
        ref = system.reference
        self.X = ref.positions_nc[self.sites]
        lo, hi = self.X.min(axis=0), self.X.max(axis=0)
        cell = np.diag(hi - lo + 10.0)
        if ref.pbc[2]:
            cell[2, 2] = ref.cell_cc[2, 2]
        self.cell, self.pbc = cell, ref.pbc
        self.symbol = "Cu" if lattice == "fcc" else "Ar"
        self.xyz = outdir / f"{lattice}_atoms.extxyz"
        if self.xyz.exists():
            self.xyz.unlink()
        mesh = QCMesh(system.points_md, system.node_site_m, system.cells_kv,
                      len(system.reference))
        self.vtx = QCVTXWriter(outdir / f"{lattice}_continuum.bp", mesh, ncomp=system.ncomp)
        self.frames = 0

    def __call__(self, rec: dict, U: np.ndarray) -> None:
        u = np.zeros((len(self.sites), 3))
        u[:, :self.system.ncomp] = site_displacements(self.system, U, self.sites)
        info = {"frame": rec["frame"], "stage": rec["stage"], "K_over_KG": rec["K_over_KG"],
                "tip_x": rec["tip_x"] if rec["tip_x"] is not None else float("nan")}
        self._write_extxyz(self.xyz, self.X + u, cell=self.cell, pbc=self.pbc,
                           arrays={"displacement": u, "region": self.region,
                                   "beta": self.beta},
                           info=info, symbols=self.symbol, append=self.frames > 0)
        self.vtx.write(rec["frame"], U)
        self.frames += 1

    def close(self):
        self.vtx.close()


# %% [markdown]
# ## The plot: tip position against K/K_G
#
# Loading (raising K) and healing (lowering K) are drawn separately; Griffith's K_G is the
# vertical line at 1, K_+ and K_- are marked where the tip first moved by one period.

# %%
def plot(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result["history"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for stage, style, label in (("load", "o-", "raising K"), ("heal", "s--", "lowering K")):
        start = [r for r in h if r["stage"] == "start"]
        pts = start + [r for r in h if r["stage"] == stage]
        if stage == "heal":
            K0 = result["unloaded_from"]
            pts = [r for r in h if r["stage"] in ("start", "load") and r["K_over_KG"] == K0][-1:] \
                + [r for r in h if r["stage"] == "heal"]
        pts = [r for r in pts if r["tip_x"] is not None]
        ax.plot([r["K_over_KG"] for r in pts], [r["tip_x"] for r in pts], style, label=label)
    ax.axvline(1.0, color="k", lw=1, label="Griffith K_G")
    if result["K_plus"] is not None:
        ax.axvline(result["K_plus"], color="C3", ls=":", label=f"K+ = {result['K_plus']:.3f} K_G")
    if result["K_minus"] is not None:
        ax.axvline(result["K_minus"], color="C2", ls=":",
                   label=f"K- = {result['K_minus']:.3f} K_G")
    ax.set_xlabel("K / K_G")
    ax.set_ylabel("crack tip x (Å)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# %% [markdown]
# ## One lattice: build, scan, report

# %%
def run_lattice(lattice: str, args, outdir: Path) -> dict:
    case = CASES[lattice]
    size = case["quick" if args.quick else "full"]
    t0 = time.perf_counter()
    system, field = crack_system(case["dim"], args.scheme, radius=size["radius"],
                                 atomistic_radius=size["atomistic_radius"])
    g = field.griffith
    print(f"\n== {lattice}: {system.info['sites']} sites, {system.info['atomistic_sites']} "
          f"atomistic, {system.n_nodes} nodes, {system.n_dofs} dofs "
          f"(radius {size['radius']} a0, atomistic radius {size['atomistic_radius']} a0, "
          f"scheme {args.scheme})")
    unit = "eV/Å" if lattice == "triangular" else "eV/Å²"
    print(f"   Griffith: γ = {g['gamma']:.5f} {unit}, E' = {g['E_prime']:.4f} "
          f"{'eV/Å²' if lattice == 'triangular' else 'eV/Å³'}, "
          f"K_G = sqrt(2 γ E') = {field.K_G:.5f} eV/Å^(5/2)"
          + ("" if lattice == "triangular" else f" = {g['K_G_MPa_sqrt_m']:.4f} MPa√m"))
    writer = FrameWriter(system, outdir, lattice)
    try:
        res = trapping_scan(system, field, args.scheme, K_start=K_START, K_step=size["K_step"],
                            K_max=K_MAX, K_min=K_MIN, log=print, callback=writer)
    finally:
        writer.close()
    wall = time.perf_counter() - t0
    KG = field.K_G
    print(f"   broken bond: longer than {res['bond_cut']:.4f} Å (nearest neighbour "
          f"{res['cohesion']['d_nn']:.4f} Å, rigid-cleavage traction peak at opening "
          f"{res['cohesion']['delta_star']:.3f} Å)")
    print(f"   initial tip x = {res['tip0']:.3f} Å; advance/heal = one period "
          f"{res['advance']:.4f} Å")
    for name, key, st in (("K_+", "K_plus", "status_up"), ("K_-", "K_minus", "status_down")):
        if res[key] is None:
            print(f"   {name}: not found: {res[st]}")
        else:
            b = res[key + "_bracket"]
            print(f"   {name}/K_G = {res[key]:.4f} (bracket [{b[0]:.4f}, {b[1]:.4f}]), "
                  f"{name} = {res[key] * KG:.5f} eV/Å^(5/2): {res[st]}")
    trap = None
    if res["K_plus"] is not None and res["K_minus"] is not None:
        trap = [res["K_minus"], res["K_plus"]]
        print(f"   lattice-trapping range: {trap[0]:.4f} <= K/K_G <= {trap[1]:.4f} "
              f"(width {trap[1] - trap[0]:.4f} K_G); Griffith inside: "
              f"{trap[0] <= 1.0 <= trap[1]}")
    if res["tip_hysteresis"] is not None:
        print(f"   hysteresis: at equal K the tip on loading and on unloading differs by at most "
              f"{res['tip_hysteresis']:.3f} Å (K/K_G compared: "
              f"{', '.join(f'{k:.4f}' for k in res['hysteresis_K_compared'])})")
    print(f"   off-plane broken bonds (blunting/emission indicator): at most "
          f"{res['max_off_plane_broken']} over the scan")
    print(f"   wall time {wall:.1f} s, {writer.frames} frames")
    plot(res, outdir / f"{lattice}_trapping.png",
         f"{lattice} ({'Cu_u3 EAM' if lattice == 'fcc' else 'LJ'}), {args.scheme}")

    def K_abs(x):
        return None if x is None else x * KG

    return {
        "lattice": lattice, "scheme": args.scheme, "quick": bool(args.quick),
        "gamma": g["gamma"], "E_prime": g["E_prime"], "K_G": KG,
        "K_plus": K_abs(res["K_plus"]), "K_minus": K_abs(res["K_minus"]),
        "K_plus_over_KG": res["K_plus"], "K_minus_over_KG": res["K_minus"],
        "K_plus_bracket_over_KG": res["K_plus_bracket"],
        "K_minus_bracket_over_KG": res["K_minus_bracket"],
        "trapping_range_over_KG": trap,
        "status_up": res["status_up"], "status_down": res["status_down"],
        "tip0": res["tip0"], "advance": res["advance"], "bond_cut": res["bond_cut"],
        "cohesion": res["cohesion"], "tip_hysteresis": res["tip_hysteresis"],
        "max_off_plane_broken": res["max_off_plane_broken"],
        "tip_history": [{k: r[k] for k in ("stage", "K_over_KG", "tip_x", "energy",
                                            "iterations", "max_force",
                                            "off_plane_broken")} for r in res["history"]],
        "frames": writer.frames,
        "sites": system.info["sites"], "atomistic_sites": system.info["atomistic_sites"],
        "nodes": system.n_nodes, "dofs": system.n_dofs,
        "radius_a0": size["radius"], "atomistic_radius_a0": size["atomistic_radius"],
        "K_step_over_KG": size["K_step"], "wall_time": wall,
        "units": {"K": "eV/Å^(5/2)", "gamma": unit, "length": "Å"},
    }


# %%
def main(argv=None) -> int:
    args = parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lattices = ["triangular", "fcc"] if args.lattice == "both" else [args.lattice]
    out = {}
    for lat in lattices:
        out[lat] = run_lattice(lat, args, outdir)
    (outdir / "summary.json").write_text(json.dumps(out, indent=1))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
