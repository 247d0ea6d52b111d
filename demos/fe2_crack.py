# %% [markdown]
# # FE² crack: a mode-I crack in copper whose Gauss points are atomistic RVEs
#
# A centre crack of length 2a in a plate of Cu under remote tension sigma. By symmetry we
# mesh one quarter (`meshes.crack.cracked_plate`): u_y = 0 on the ligament ahead of the tip,
# u_x = 0 on the centre line, the crack face free, a nominal traction (0, sigma) on the top.
# Every Gauss point is a periodic atomistic RVE: 2x2x2 conventional fcc cells (32 atoms), Cu_u3
# EAM, plane strain with x = [100], y = [010], z = [001]. A perfect lattice needs no internal
# relaxation (0 Newton iterations; the relaxed tangent is the Born tangent), so this is the
# cheapest atomistic RVE there is, and still the full nonlinear 0 K crystal response.
#
# **Reference number.** For a crack along an axis of cubic symmetry the stress on the crack line
# of an infinite plate does not depend on the elastic constants:
# sigma_yy(x, 0) = sigma x / sqrt(x^2 - a^2), i.e. sigma_yy = K_I / sqrt(2 pi r) g(r) with
# g(r) = (1 + r/a) / sqrt(1 + r/2a) and K_I = sigma sqrt(pi a) (times Feddersen's finite-width
# factor sqrt(sec(pi a / 2W)), 1.006 here). We fit K from the FE² stress at the Gauss points in
# a thin wedge ahead of the tip (polar angle < 12 deg) with 5 h_tip < r < a, as the median of
# sigma_yy sqrt(2 pi r) / g(r), and print K_fit / K_applied at the first (smallest) load.
#
# **Material stability.** At each Gauss point we scan the acoustic tensor
# Q_ik(N) = A_iJkL N_J N_L over 180 in-plane directions N; a point whose smallest eigenvalue is
# <= 0 has lost strong ellipticity (a localisation band or a lattice instability could form
# there). Their number is printed and they are marked in the plot and in the VTX field
# `ellipticity_loss`.
#
# Run: `mpirun -n 2 python demos/fe2_crack.py` (or serially; `--quick` for a coarse mesh and
# one load step, `--outdir DIR`). The problem itself is `demos/fe2_crack.toml` (`--quick`:
# `demos/fe2_crack_quick.toml`), which `fe2qc run demos/fe2_crack.toml` runs without the
# post-processing. Every output (VTX, steps.jsonl, checkpoints, near_tip_stress.png,
# summary.json) goes to one folder, by default `results/fe2_crack` (`--quick`:
# `results/fe2_crack_quick`) under the working directory.

# %%
"""FE² crack: a mode-I crack in copper whose Gauss points are atomistic RVEs."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fe2qc.mpi  # noqa: E402

MPI = fe2qc.mpi.mpi()

import numpy as np  # noqa: E402

from coupling.config import parse_config  # noqa: E402
from coupling.driver import Simulation  # noqa: E402
from coupling.interrupts import InterruptGuard, is_interrupt  # noqa: E402
from fe2qc.errors import InputError  # noqa: E402
from fe2qc.tensors import acoustic_min_eigenvalue, cauchy_stress  # noqa: E402
from fe2qc.units import EV_PER_A3_IN_GPA, MPA_SQRT_M_IN_EV_A3_SQRT_A  # noqa: E402

HERE = Path(__file__).resolve().parent
#: the near-tip snapshots of the converged steps so far (what a restart's plot needs)
SNAPSHOTS = "near_tip_snapshots.npz"

# %% [markdown]
# ## Problem set-up
# The TOML file holds the full problem; `--quick` runs `demos/fe2_crack_quick.toml` instead,
# the same problem on a coarse mesh (P1, 8 Å at the tip) with a single load step, so the demo
# runs in seconds (it is what the tests run).

# %%
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--quick", action="store_true",
                    help="coarse mesh, one load step (runs demos/fe2_crack_quick.toml)")
parser.add_argument("--outdir", default=None,
                    help="output folder, relative to the working directory (default "
                         "results/fe2_crack, with --quick results/fe2_crack_quick)")
parser.add_argument("--problem", default=None,
                    help="TOML problem file (default demos/fe2_crack.toml)")
parser.add_argument("--overwrite", action="store_true",
                    help="replace the files of an earlier run in the output folder (without "
                         "it a non-empty folder is refused)")
parser.add_argument("--restart", default=None, metavar="DIR",
                    help="continue the killed or interrupted run whose output folder is DIR "
                         "from its checkpoint (same problem: same --quick/--problem), writing "
                         "into DIR")
args = parser.parse_args()
if args.quick and args.problem:
    parser.error("give --quick (demos/fe2_crack_quick.toml) or --problem FILE, not both")
if args.restart and (args.overwrite or (args.outdir and Path(args.outdir).resolve()
                                        != Path(args.restart).resolve())):
    parser.error("--restart DIR writes into DIR: leave out --overwrite and --outdir")
problem = Path(args.problem or HERE / ("fe2_crack_quick.toml" if args.quick
                                       else "fe2_crack.toml"))

comm = MPI.COMM_WORLD
with open(problem, "rb") as fh:
    data = tomllib.load(fh)
# one folder for everything the demo writes, relative to the working directory (the TOML's
# own [output] directory is what `fe2qc run` uses)
outdir = Path(args.restart or args.outdir
              or ("results/fe2_crack_quick" if args.quick else "results/fe2_crack"))
data.setdefault("output", {})["directory"] = str(outdir)
cfg = parse_config(data, base_dir=problem.parent, source=problem)

t0 = time.perf_counter()
# Ctrl-C: one message, every rank ends (comm.Abort), exit 130 (see coupling/interrupts.py)
guard = InterruptGuard(comm, prog="fe2_crack.py").install()
try:
    sim = Simulation(cfg, comm, overwrite=args.overwrite, restart=args.restart,
                     extra_outputs=("near_tip_stress.png", "summary.json", SNAPSHOTS))
except InputError as exc:  # raised on every rank alike (e.g. a non-empty output folder)
    if comm.rank == 0:
        print(f"fe2_crack.py: error: {exc}", file=sys.stderr, flush=True)
    sys.exit(2)

# %% [markdown]
# ## Near-tip stress after each converged step
# The Cauchy stress at the Gauss points, from the last (converged) material evaluation, is
# gathered on rank 0 together with the points' coordinates and whether the tangent there is
# still strongly elliptic.

# %%
a = cfg.mesh.crack_length
h_tip = cfg.mesh.tip_size
snapshots = []
if sim.resume_meta is not None and comm.rank == 0:  # the steps before the restart
    with np.load(outdir / SNAPSHOTS) as saved:
        # the callback runs before the checkpoint: a snapshot too many is dropped
        for i in range(sim.resume_meta["increments"]):
            snapshots.append((float(saved[f"lam{i}"]), saved[f"X{i}"], saved[f"s_yy{i}"],
                              saved[f"lost{i}"]))


def save_snapshots():
    """Write every snapshot so far to SNAPSHOTS (rank 0; replaced atomically)."""
    arrays = {f"{k}{i}": v for i, snap in enumerate(snapshots)
              for k, v in zip(("lam", "X", "s_yy", "lost"), snap, strict=True)}
    tmp = outdir / (SNAPSHOTS + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(outdir / SNAPSHOTS)


def near_tip(report):
    """Store a snapshot of the Gauss points' positions, sigma_yy and ellipticity loss.

    Called after each converged load step; the snapshot is gathered on rank 0 of the mesh.
    """
    pb, mat = sim.problem, sim.material
    X = pb.quadrature_points_x
    s_yy = cauchy_stress(mat.F_qij, mat.P_qij)[:, 1, 1]
    lam = acoustic_min_eigenvalue(mat.A_qijkl)
    lost = lam <= 1e-10 * np.abs(mat.A_qijkl).max() if len(lam) else np.zeros(0, bool)
    parts = sim.mesh_comm.gather((X, s_yy, lost), root=0)
    if sim.mesh_comm.rank == 0:
        X, s_yy, lost = (np.concatenate(p) for p in zip(*parts, strict=True))
        snapshots.append((report.load_factor, X, s_yy, lost))
        save_snapshots()


guard.describe = sim.progress_note
try:
    summary = sim.run(callback=near_tip) if not sim.is_worker else sim.run()
except BaseException as exc:
    if is_interrupt(exc) and not isinstance(exc, SystemExit):
        sys.exit(guard.finish())
    sim.destroy()  # collective (MUMPS) clean-up on every rank now, not at each rank's GC
    raise

# %% [markdown]
# ## K from the near-tip field
# r and theta are measured from the tip (a, 0). Only the thin wedge ahead of the tip is used,
# where the angular factor of sigma_yy is 1 within 1 % for any orthotropy.


# %%
def fit_K(X, s_yy, K_applied):
    """Fit K from sigma_yy in the wedge ahead of the tip.

    Returns:
        ``(K_fit, n_fit, r, theta)``: the median of sigma_yy sqrt(2 pi r) / g(r) over the wedge
        (nan when empty), the number of points in it, and every point's r and theta (deg).
    """
    dx, dy = X[:, 0] - a, X[:, 1]
    r = np.hypot(dx, dy)
    theta = np.degrees(np.arctan2(dy, dx))
    g = (1 + r / a) / np.sqrt(1 + r / (2 * a))
    sel = (theta < 12.0) & (r > 5 * h_tip) & (r < a)
    K_q = s_yy[sel] * np.sqrt(2 * np.pi * r[sel]) / g[sel]
    return float(np.median(K_q)) if sel.any() else float("nan"), int(sel.sum()), r, theta


if comm.rank == 0 and snapshots:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    K1 = cfg.loading.value * MPA_SQRT_M_IN_EV_A3_SQRT_A  # K_I at load factor 1, eV/Å³ √Å
    fig, ax = plt.subplots(figsize=(6, 4.5))
    results = []
    lost_wedge = lost_all = 0
    for lam, X, s_yy, lost in snapshots:
        K_app = lam * K1
        K_fit, n_fit, r, theta = fit_K(X, s_yy, K_app)
        results.append({"load_factor": lam, "K_applied_MPa_sqrt_m": lam * cfg.loading.value,
                        "K_fit_MPa_sqrt_m": K_fit / MPA_SQRT_M_IN_EV_A3_SQRT_A,
                        "K_ratio": K_fit / K_app, "fit_points": n_fit,
                        "ellipticity_loss_points": int(lost.sum())})
        wedge = (theta < 12.0) & (r > 0) & (r < 2 * a)
        order = np.argsort(r[wedge])
        line = ax.loglog(r[wedge][order], s_yy[wedge][order] * EV_PER_A3_IN_GPA, "o", ms=3,
                         label=f"FE² RVE, K = {lam * cfg.loading.value:.2f} MPa√m")[0]
        rr = np.geomspace(max(r[wedge].min(), 0.5), 2 * a, 100)
        ax.loglog(rr, K_app / np.sqrt(2 * np.pi * rr) * EV_PER_A3_IN_GPA, "-",
                  color=line.get_color(), lw=1)
        # the full centre-crack field along the ligament, K g(r) / sqrt(2 pi r), which the fit
        # uses: the singular term alone underestimates sigma_yy once r is a fraction of a
        g = (1 + rr / a) / np.sqrt(1 + rr / (2 * a))
        ax.loglog(rr, K_app * g / np.sqrt(2 * np.pi * rr) * EV_PER_A3_IN_GPA, "--",
                  color=line.get_color(), lw=1)
        # only the wedge's points are plotted (like the circles); the legend counts the rest
        m = lost & wedge
        lost_wedge, lost_all = int(m.sum()), int(lost.sum())
        if m.any():
            ax.loglog(np.maximum(r[m], 0.5), np.abs(s_yy[m]) * EV_PER_A3_IN_GPA, "x", color="k",
                      ms=7)
    ax.plot([], [], "x", color="k", label=f"lost strong ellipticity ({lost_wedge} in the wedge, "
            f"{lost_all} in all, last step)")
    ax.plot([], [], "-", color="gray", label=r"$K_I/\sqrt{2\pi r}$ (singular term)")
    ax.plot([], [], "--", color="gray", label=r"$K_I\,g(r)/\sqrt{2\pi r}$ (centre crack, "
            r"$g = (1+r/a)/\sqrt{1+r/2a}$)")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.axvspan(5 * h_tip, a, color="0.9", zorder=-1,
               label=rf"K fit window: $5\,h_{{tip}}$ < r < a ({5 * h_tip:g}-{a:g} Å)")
    sep = summary.get("scale_separation") or {}
    if sep.get("rve_edge_A"):
        ax.axvline(sep["rve_edge_A"], color="0.4", ls=":", lw=1,
                   label=f"r = RVE edge ({sep['rve_edge_A']:.1f} Å)")
    ax.set_xlabel("distance from the tip r (Å)")
    ax.set_ylabel(r"$\sigma_{yy}$ (GPa) at Gauss points with polar angle < 12°")
    ax.set_title("Cu, Cu_u3 EAM RVEs (32 atoms) at every Gauss point")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = outdir / "near_tip_stress.png"
    fig.savefig(png, dpi=120)

    # %% [markdown]
    # ## Reference numbers

    # %%
    first, last = results[0], results[-1]
    print(f"Gauss points: {summary['gauss_points']}, ranks: {comm.size}, "
          f"wall {time.perf_counter() - t0:.1f} s (solve {summary['wall_time_s']:.1f} s)")
    for res in results:
        print(f"load {res['load_factor']:.3g}: K_applied = {res['K_applied_MPa_sqrt_m']:.4f} "
              f"MPa sqrt(m), K_fit = {res['K_fit_MPa_sqrt_m']:.4f} ({res['fit_points']} points), "
              f"ratio {res['K_ratio']:.4f}; lost strong ellipticity at "
              f"{res['ellipticity_loss_points']} Gauss points")
    print(f"K ratio (fit/applied, first load step): {first['K_ratio']:.4f}")
    print(f"ellipticity loss points (last step): {last['ellipticity_loss_points']}")
    print(f"plot: {png}")
    (outdir / "summary.json").write_text(json.dumps({"run": summary, "steps": results},
                                                    indent=1))
    assert np.isfinite(first["K_ratio"]), "no Gauss points in the fitting window"
