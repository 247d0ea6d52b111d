"""FE² with atomistic RVEs: throughput, parallel efficiency, phases, tangent quality, cost model.

Runs the crack problem of ``demos/fe2_crack.toml`` on a coarse mesh (one load step) with Cu EAM
RVEs (32 atoms) at every Gauss point, on 1 and 2 ranks (the 2-rank case re-launches this
script under ``mpirun -n 2``), and reports

* Gauss-point evaluations per second (evaluations / wall time in the material, slowest rank),
  the parallel efficiency on 2 ranks and the dispatch share (``DispatchedMaterial.timings``:
  the part of the material wall time not spent relaxing RVEs);
* seconds per Newton iteration by phase (``StepReport.timings``);
* Newton iterations of the step (one load step, so one integer each) with the consistent
  (relaxed, analytic) tangent, with a finite-difference tangent (A by central differences of
  P, step 1e-6) and with the initial-stiffness tangent (modified Newton), and the wall-time
  ratio of the finite-difference run to the consistent one on the same mesh
  (``fd_tangent_time_ratio``);
* a cost model: time per Newton iteration for 1e5 Gauss points on N workers,
  t(N) = 1e5 t_rve / N + 1e5 t_dispatch, with t_rve the measured material seconds per RVE
  evaluation on one rank and
  t_dispatch the measured dispatch seconds per point of the 2-rank run.

    python benchmarks/bench_fe2.py [--quick] [--json]

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fe2qc.material import DelegatingMaterial  # noqa: E402


def _config(quick: bool, outdir: str, fd_mesh: bool = False):
    from coupling.config import parse_config

    with open(ROOT / "demos" / "fe2_crack.toml", "rb") as fh:
        data = tomllib.load(fh)
    tip = 16.0 if (quick or fd_mesh) else 8.0
    data["mesh"].update(tip_size=tip, far_size=1000.0 if (quick or fd_mesh) else 800.0,
                        grading=0.6 if (quick or fd_mesh) else 0.5)
    data["solver"]["degree"] = 1
    data["loading"]["steps"] = [0.4]
    data["output"].update(directory=outdir, vtx=False, checkpoint=False)
    return parse_config(data, base_dir=ROOT / "demos")


class FiniteDifferenceTangent(DelegatingMaterial):
    """A material point whose tangent is central differences of its stress (8 extra calls)."""

    def __init__(self, inner, h: float = 1e-6):
        super().__init__(inner)
        self.h = h

    def evaluate(self, F_qij):
        """Return the inner point's P and the central-difference tangent of it at ``F_qij``."""
        import numpy as np

        P, _ = self.inner.evaluate(F_qij)
        d = self.dim
        A = np.zeros((len(F_qij), d, d, d, d))
        for k in range(d):
            for l in range(d):
                E = np.zeros((d, d))
                E[k, l] = self.h
                Pp, _ = self.inner.evaluate(F_qij + E)
                Pm, _ = self.inner.evaluate(F_qij - E)
                A[..., k, l] = (Pp - Pm) / (2 * self.h)
        self.inner.evaluate(F_qij)  # leave the trial state at F
        return P, A


class FrozenTangent(DelegatingMaterial):
    """Modified Newton: the tangent of the first evaluation (the initial stiffness) is kept."""

    def __init__(self, inner):
        super().__init__(inner)
        self.A = None

    def evaluate(self, F_qij):
        """Return the inner point's P at ``F_qij`` and the tangent of the first evaluation."""
        P, A = self.inner.evaluate(F_qij)
        if self.A is None or self.A.shape != A.shape:
            self.A = A
        return P, self.A


def child(args) -> dict:
    """Run the benchmark problem once in this process (one ``--child`` variant).

    Returns:
        The figures of the run: ranks, Gauss points, Newton iterations, evaluations and rates,
        dispatch seconds and share, seconds per phase and iteration, wall time.
    """
    import fe2qc.mpi

    MPI = fe2qc.mpi.mpi()
    from coupling.driver import Simulation

    comm = MPI.COMM_WORLD
    cfg = _config(args.quick, args.tmp, fd_mesh=args.child in ("fd", "secant"))
    if args.child == "secant":
        cfg.solver.max_iterations = 200
    sim = Simulation(cfg, comm, log=None)
    if args.child == "fd":
        sim.problem.material = FiniteDifferenceTangent(sim.material)
    elif args.child == "secant":
        sim.problem.material = FrozenTangent(sim.material)
    t0 = time.perf_counter()
    reports = sim.problem.solve(cfg.loading.load_factors())
    wall = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    timings = getattr(sim.material, "timings", {})
    its = [r.iterations for r in reports]
    evals = sum(i + 1 for i in its) * sim.problem.num_global_points
    phases = {}
    for r in reports:
        for k, v in r.timings.items():
            phases[k] = phases.get(k, 0.0) + v
    phases = {k: comm.allreduce(v, op=MPI.MAX) for k, v in phases.items()}
    mat_wall = phases.get("material", 0.0)
    newton = sum(its) + len(its)  # material evaluations = iterations + 1 per increment
    out = {
        "ranks": comm.size,
        "gauss_points": sim.problem.num_global_points,
        "newton_iterations": its,
        "evaluations": evals,
        "gauss_points_per_s": evals / mat_wall if mat_wall > 0 else 0.0,
        "seconds_per_rve": (comm.allreduce(timings.get("compute", 0.0)) / evals
                            if timings else mat_wall * comm.size / evals),
        "dispatch_seconds": comm.allreduce(timings.get("dispatch", 0.0), op=MPI.MAX),
        "dispatch_share": (comm.allreduce(timings.get("dispatch", 0.0), op=MPI.MAX)
                           / max(comm.allreduce(timings.get("wall", 0.0), op=MPI.MAX), 1e-30)),
        "seconds_by_phase_per_iteration": {k: v / newton for k, v in sorted(phases.items())},
        "wall_s": wall,
    }
    sim._close()
    return out


def _spawn(cmd, tmp) -> dict:
    cmd = cmd + ["--tmp", tempfile.mkdtemp(dir=tmp)]  # a fresh output folder per run
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    """Run the benchmark (with ``--child``: one run of it, in this process); return 0.

    The benchmark runs each variant in a child process (``mpirun -n 2`` for the 2-rank run) and
    prints the figures, the last line one JSON object with ``--json``.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", choices=["consistent", "fd", "secant"], default=None,
                   help=argparse.SUPPRESS)
    # the children's (unused) output folder: a temporary one, never inside the source tree
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.tmp = args.tmp or os.path.join(tempfile.gettempdir(), "fe2qc_bench_fe2")
        out = child(args)
        import fe2qc.mpi

        if fe2qc.mpi.mpi().COMM_WORLD.rank == 0:
            print(json.dumps(out))
        return 0

    me = [sys.executable, str(Path(__file__).resolve())] + (["--quick"] if args.quick else [])
    mpirun = str(Path(sys.executable).parent / "mpirun")
    if args.tmp is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="fe2qc_bench_fe2_")
        args.tmp = tmpdir.name
    runs = {1: _spawn(me + ["--child", "consistent"], args.tmp)}
    runs[2] = _spawn([mpirun, "-n", "2"] + me + ["--child", "consistent"], args.tmp)
    fd_cons = _spawn(me + ["--child", "consistent", "--quick"], args.tmp) if not args.quick \
        else runs[1]
    fd = _spawn(me + ["--child", "fd"], args.tmp)
    secant = _spawn(me + ["--child", "secant"], args.tmp)
    gps = {str(n): r["gauss_points_per_s"] for n, r in runs.items()}
    eff = gps["2"] / (2 * gps["1"])
    t_rve = 1.0 / gps["1"]  # material wall seconds per evaluation on one rank
    t_disp = runs[2]["dispatch_seconds"] / runs[2]["evaluations"]
    model = {str(n): 1e5 * t_rve / n + 1e5 * t_disp for n in (1, 2, 16, 128, 1024)}
    result = {
        "gauss_points": {str(n): r["gauss_points"] for n, r in runs.items()},
        "gauss_points_per_s": gps,
        "parallel_efficiency_2": eff,
        "dispatch_share": runs[2]["dispatch_share"],
        "dispatch_share_1": runs[1]["dispatch_share"],
        "seconds_per_rve": t_rve,
        "seconds_by_phase": runs[1]["seconds_by_phase_per_iteration"],
        "seconds_by_phase_2": runs[2]["seconds_by_phase_per_iteration"],
        # one load step: the Newton iterations of that step
        "newton_iterations_consistent": sum(fd_cons["newton_iterations"]),
        "newton_iterations_fd": sum(fd["newton_iterations"]),
        "initial_stiffness_iterations": sum(secant["newton_iterations"]),
        "wall_s_consistent": fd_cons["wall_s"],
        "wall_s_fd": fd["wall_s"],
        "wall_s_initial_stiffness": secant["wall_s"],
        "fd_tangent_time_ratio": fd["wall_s"] / fd_cons["wall_s"],
        "fd_gauss_points": fd["gauss_points"],
        "cost_model_seconds_per_iteration_1e5_points": model,
        "cpu_count": os.cpu_count(),
    }
    print(f"RVE (Cu_u3 EAM, 32 atoms) evaluations per second: 1 rank {gps['1']:.1f}, "
          f"2 ranks {gps['2']:.1f} (efficiency {eff:.2f}; dispatch share "
          f"{result['dispatch_share']:.3f})")
    print("seconds per Newton iteration by phase (1 rank): "
          + ", ".join(f"{k} {v:.3f}" for k, v in result["seconds_by_phase"].items()))
    print(f"Newton iterations: consistent tangent {result['newton_iterations_consistent']}, "
          f"finite-difference tangent {result['newton_iterations_fd']} "
          f"({fd['gauss_points']} Gauss points), initial-stiffness tangent "
          f"{result['initial_stiffness_iterations']}; wall s consistent/fd/initial stiffness "
          f"{fd_cons['wall_s']:.1f}/{fd['wall_s']:.1f}/{secant['wall_s']:.1f} (FD/consistent "
          f"{result['fd_tangent_time_ratio']:.1f}x)")
    print(f"cost model, 1e5 Gauss points per Newton iteration: t_rve = {t_rve * 1e3:.2f} ms, "
          f"dispatch {t_disp * 1e3:.3f} ms/point -> "
          + ", ".join(f"{n} workers {t:.0f} s" for n, t in model.items()))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
