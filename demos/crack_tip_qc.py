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
# K_+ >= K_G and heals only at K_- <= K_G (Thomson, Hsieh and Rana 1971). Starting one step
# below K_G, we raise K in small steps, relaxing each time (Newton, MUMPS), until the tip has
# moved forward by one lattice period along x (K_+), then return to the last un-advanced
# state and lower K until the tip has receded by one period (K_-). The tip is the largest
# x-midpoint of a broken nearest-neighbour bond across the crack plane; "broken" means longer
# than the bond length at the peak of the rigid-cleavage traction of the same crystal
# (`coupling.qc.trapping`).
#
# **Output** (in `--outdir`, default `results/crack_tip_qc`, with `--quick`
# `results/crack_tip_qc_quick`, under the working directory): `<lattice>_atoms.extxyz`
# (atomistic region and its padding, one frame per K, with `displacement`, `region` and
# `beta`; open with OVITO),
# `<lattice>_continuum.bp` (nodal displacements as VTX, open with ParaView; time = frame),
# `<lattice>_trapping.png` (tip position against K/K_G), `summary.json`.
#
# Run: `python demos/crack_tip_qc.py` (both lattices, full size), `--quick` for a reduced
# run of about a minute, `--lattice triangular|fcc|both`, `--json` to print one JSON object
# as the last line.

# %%
"""Lattice trapping of a crack tip, with the quasicontinuum method."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from coupling.qc.crack import crack_system  # noqa: E402
from coupling.qc.reference import site_displacements  # noqa: E402
from coupling.qc.system import SCHEMES  # noqa: E402
from coupling.qc.trapping import trapping_scan  # noqa: E402

# %% [markdown]
# ## Sizes and load steps
#
# Radii are in units of a0 (the nearest-neighbour distance of the triangular lattice, the
# cube edge of Cu). K steps are in units of K_G. The trapping range of these potentials is
# narrow (a few per cent of K_G), so the steps are small, also in the quick form (0.01 K_G:
# a coarser step could not resolve Cu's ±2 % and would start the scan at its K_-); the
# bracket printed with K_+ and K_- is the resolution of the answer.

# %%
CASES = {
    "triangular": {
        "dim": 2,
        "full": {"radius": 80.0, "atomistic_radius": 15.0, "K_step": 0.002},
        "quick": {"radius": 35.0, "atomistic_radius": 8.0, "K_step": 0.01},
    },
    "fcc": {
        "dim": 3,
        "full": {"radius": 25.0, "atomistic_radius": 6.0, "K_step": 0.005},
        "quick": {"radius": 16.0, "atomistic_radius": 4.0, "K_step": 0.01},
    },
}
# The scan starts one K step below K_G (K_start = 1 - K_step), so that K_G lies on the loading
# branch and K_+ >= K_G is a result, not a consequence of where the scan starts.
K_MAX, K_MIN = 1.6, 0.5
# One unit convention for both lattices (atomistic.fracture): the 2D triangular lattice is a
# layer 1 Å thick, so its γ is eV/Å² (energy per crack-face length per 1 Å), its moduli
# eV/Å³ and K_G = sqrt(2 γ E') eV/Å^(5/2), like the Cu slab's.
UNITS = {"gamma": "eV/Å²", "E_prime": "eV/Å³", "K": "eV/Å^(5/2)", "length": "Å"}
TRIANGULAR_UNITS = ("2D layer of thickness 1 Å: γ, E' and K are per 1 Å of thickness "
                    "(numerically the pure-2D eV/Å, eV/Å², eV/Å^(3/2))")


def parse_args(argv=None):
    """Parse the command line of the demo."""
    p = argparse.ArgumentParser(description=__doc__ or "crack-tip lattice trapping with QC")
    p.add_argument("--quick", action="store_true", help="reduced sizes and coarse K steps "
                   "(about a minute for both lattices)")
    p.add_argument("--lattice", choices=["triangular", "fcc", "both"], default="both")
    p.add_argument("--scheme", choices=SCHEMES, default="bgfc")
    p.add_argument("--outdir", default=None,
                   help="output folder, relative to the working directory (default "
                        "results/crack_tip_qc, with --quick results/crack_tip_qc_quick)")
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
    """Write each frame of a trapping scan: atoms as extended XYZ, nodal displacements as VTX.

    Called with each converged state's record and displacements; :meth:`close` it at the end.
    """

    def __init__(self, system, outdir: Path, lattice: str):
        from atomistic.extxyz import write_extxyz
        from coupling.qc.output import QCVTXWriter

        self.system = system
        self._write_extxyz = write_extxyz
        A = system.atomistic_s & system.present_s
        near = system.neighbours_within(A, system.potential.cutoff)
        self.sites = np.flatnonzero(A | near)
        self.region = A[self.sites].astype(np.int8)
        self.beta = system.beta_s[self.sites]
        ref = system.reference
        self.X = ref.positions_nc[self.sites]
        # a box 5 Å larger than the written atoms on every open side; extxyz has no cell
        # origin, so positions are written relative to its corner (write_extxyz's origin=,
        # stored as the frame's `frame_origin`: add it back for the crack-tip frame)
        lo, hi = self.X.min(axis=0), self.X.max(axis=0)
        cell = np.diag(hi - lo + 10.0)
        self.origin = lo - 5.0
        if ref.pbc[2]:
            cell[2, 2] = ref.cell_cc[2, 2]
            self.origin[2] = 0.0
        self.cell, self.pbc = cell, ref.pbc
        # the element the potential names (the pair potentials' default is "X", the dummy)
        from ase.data import chemical_symbols

        names = [e if e in chemical_symbols else "X" for e in system.potential.elements]
        self.symbols = [names[t] for t in ref.types_n[self.sites]]
        self.xyz = outdir / f"{lattice}_atoms.extxyz"
        if self.xyz.exists():
            self.xyz.unlink()
        self.vtx = QCVTXWriter(outdir / f"{lattice}_continuum.bp", system.mesh,
                               ncomp=system.ncomp)
        self.frames = 0

    def __call__(self, rec: dict, U: np.ndarray) -> None:
        """Append the state ``U`` of the scan record ``rec`` to both files."""
        u = np.zeros((len(self.sites), 3))
        u[:, :self.system.ncomp] = site_displacements(self.system, U, self.sites)
        info = {"frame": rec["frame"], "stage": rec["stage"], "K_over_KG": rec["K_over_KG"],
                "tip_x": rec["tip_x"] if rec["tip_x"] is not None else float("nan")}
        self._write_extxyz(self.xyz, self.X + u, cell=self.cell, pbc=self.pbc,
                           arrays={"displacement": u, "region": self.region,
                                   "beta": self.beta},
                           info=info, symbols=self.symbols, append=self.frames > 0,
                           origin=self.origin)
        self.vtx.write(rec["frame"], U)
        self.frames += 1

    def close(self):
        """Close the VTX file."""
        self.vtx.close()


# %% [markdown]
# ## The plot: tip position against K/K_G
#
# The tip position only changes in jumps (bond by bond), so each branch is drawn as a
# staircase. A jump happened somewhere between the K at which the tip was last seen unmoved
# and the next K of the scan; it is drawn halfway between them, so that without hysteresis
# the two branches jump at the same place. Loading (raising K, filled circles) and healing
# (lowering K, larger open squares, drawn underneath so that coinciding points show both) are
# separate branches. Griffith's K_G is the black line at 1; the shaded bands are the
# brackets of K_+ (red) and K_- (green): the last K at which the tip had not moved one period
# and the first at which it had. The dotted lines are the tip positions that count as advance
# and as healing (start ± one period).

# %%
def plot(result: dict, path: Path, title: str) -> None:
    """Plot the tip position against K/K_G of a trapping scan to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    h = result["history"]
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    load = [r for r in h if r["stage"] in ("start", "load")]
    K0 = result["unloaded_from"]
    heal = [r for r in load if r["K_over_KG"] == K0][-1:] + [r for r in h if r["stage"] == "heal"]
    for pts, kw in (
            (heal, dict(color="C2", marker="s", ms=9, mfc="none", mew=1.5, ls="--", lw=1.5,
                        label="lowering K (healing branch)", zorder=2)),
            (load, dict(color="C3", marker="o", ms=4.5, ls="-", lw=1.2,
                        label="raising K (loading branch)", zorder=3))):
        pts = [r for r in pts if r["tip_x"] is not None]
        if pts:
            ax.step([r["K_over_KG"] for r in pts], [r["tip_x"] for r in pts], where="mid",
                    **kw)
    ax.axvline(1.0, color="k", lw=1.2, label="Griffith K_G", zorder=1)
    for key, color, name in (("K_plus", "C3", "K+"), ("K_minus", "C2", "K-")):
        br = result[key + "_bracket"]
        if result[key] is not None and br is not None:
            ax.axvspan(br[0], br[1], color=color, alpha=0.18, lw=0, zorder=0,
                       label=f"{name} in [{br[0]:.3f}, {br[1]:.3f}] K_G")
    tip0, per = result["tip0"], result["advance"]
    for k, y in enumerate((tip0 + per, tip0 - per)):
        ax.axhline(y, color="0.45", ls=":", lw=1.2, zorder=1,
                   label="start tip ± 1 period (advance / healed)" if k == 0 else None)
    ax.margins(x=0.04, y=0.08)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel("K / K_G")
    ax.set_ylabel("crack tip x (Å)")
    ax.set_title(title)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# %% [markdown]
# ## One lattice: build, scan, report

# %%
def run_lattice(lattice: str, args, outdir: Path) -> dict:
    """Build the crack system of one lattice, run the trapping scan, report and plot it.

    Returns:
        The JSON-ready summary of the lattice's scan.
    """
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
    layer = " (per 1 Å of layer thickness)" if lattice == "triangular" else ""
    print(f"   Griffith{layer}: γ = {g['gamma']:.5f} {UNITS['gamma']}, "
          f"E' = {g['E_prime']:.4f} {UNITS['E_prime']}, "
          f"K_G = sqrt(2 γ E') = {field.K_G:.5f} {UNITS['K']}"
          + ("" if lattice == "triangular" else f" = {g['K_G_MPa_sqrt_m']:.4f} MPa√m"))
    writer = FrameWriter(system, outdir, lattice)
    try:
        res = trapping_scan(system, field, args.scheme, K_start=1.0 - size["K_step"],
                            K_step=size["K_step"],
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
                  f"{name} = {res[key] * KG:.5f} {UNITS['K']}: {res[st]}")
    trap = None
    if res["K_plus"] is not None and res["K_minus"] is not None:
        trap = [res["K_minus"], res["K_plus"]]
        print(f"   lattice-trapping range: {trap[0]:.4f} <= K/K_G <= {trap[1]:.4f} "
              f"(width {trap[1] - trap[0]:.4f} K_G); K_G strictly inside at the brackets' "
              f"resolution: {res['griffith_bracketed']}")
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
        "trapping_range_over_KG": trap, "griffith_bracketed": res["griffith_bracketed"],
        "K_start_over_KG": res["K_start"],
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
        "units": dict(UNITS, **({"convention": TRIANGULAR_UNITS} if lattice == "triangular"
                                else {})),
    }


# %%
def main(argv=None) -> int:
    """Run the demo for the chosen lattices and write ``summary.json``; return 0."""
    args = parse_args(argv)
    outdir = Path(args.outdir or ("results/crack_tip_qc_quick" if args.quick
                                  else "results/crack_tip_qc"))
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
