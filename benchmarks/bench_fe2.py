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
* a crude cost model: time per Newton iteration for 1e5 Gauss points on N workers,
  t(N) = 1e5 t_rve / N + 1e5 t_dispatch, with t_rve the measured material seconds per RVE
  evaluation on one rank and
  t_dispatch the measured dispatch seconds per point of the 2-rank run;
* the discrete-event model of :mod:`coupling.costmodel`, driven by parameters measured here
  (``model_parameters``): under ``mpirun -n 2`` a ping-pong of the farm's own pickled
  payloads (one Gauss point's task and result) and of arrays of 0 B .. 1 MB (latency and
  seconds per byte), and a round of the real farm (1 mesh rank + 1 worker) with an RVE that
  does nothing (the per-point dispatch cost: the mesh rank's share outside the farm, the
  leader's book-keeping per task); on one rank the RVE seconds of every Gauss point of the
  run (the demo's cost distribution) and of a vacancy RVE at the same deformation gradients
  (``vacancy_cost_ratio``). The model then predicts the material time of three 2-rank
  layouts from the RVE seconds they measured (2 mesh ranks each running its points; 1 mesh
  rank + 1 worker; 2 mesh ranks in 2 groups sharing points by cost): ``model_error_2_ranks``
  holds predicted / measured; and projects the parallel efficiency of a material round to
  10^4 ranks for the new layout (groups) and the old one (the root funnel):
  ``model_efficiency_1e4``, ``model_efficiency_1e4_root``, the series ``model_scaling``, the
  ranks where the old layout falls below 0.9 and 0.5 (``model_root_below``), under the
  assumptions ``model_assumptions`` (weak scaling, 64 Gauss points per worker, 31 workers
  per mesh rank, costs dealt to the mesh ranks sorted: the expensive ones together). The
  plot ``fe2_scaling_model.png`` (efficiency against ranks, both layouts, the measured
  2-rank points) goes to the output folder (``--outdir``, default ``results/bench_fe2``
  under the working directory) and, with ``--docs``, to ``docs/fe2_scaling_model.png``;
* restart: ``restart_overhead_s``, the extra wall time of a 2-step run (``fe2qc run``,
  the quick mesh) SIGKILLed once its first step is checkpointed and continued with
  ``--restart`` over the same run uninterrupted (``restart_same_result``: the same final
  displacement norm), and ``checkpoint_write_s``, seconds per checkpoint write.

    python benchmarks/bench_fe2.py [--quick] [--json] [--outdir DIR] [--docs]

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
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


def _record_rounds(material) -> list[dict]:
    """Wrap ``material.farm.run`` to record each round: RVE seconds per point, costs, wall.

    Returns:
        The list the rounds are appended to (on this mesh rank).
    """
    import numpy as np

    rounds: list[dict] = []
    farm = material.farm
    inner = farm.run

    def run(tasks, *, error=None, costs=None):
        t0 = time.perf_counter()
        out = inner(tasks, error=error, costs=costs)
        wall = time.perf_counter() - t0
        secs = [np.asarray(r.seconds, dtype=float) for r in out.results if r is not None]
        rounds.append({
            "farm_s": wall,
            "point_seconds": np.concatenate(secs).tolist() if secs else [],
            "predicted": None if costs is None else [float(c) for c in costs],
            "task_seconds": [float(x) for x in out.seconds],
            "F": np.concatenate([t[2] for t in tasks]).tolist() if tasks else [],
        })
        return out

    farm.run = run
    return rounds


def _rve_costs_at(cfg, F_list, vacancy: bool) -> list[float]:
    """Seconds of one RVE relaxation from its initial state at each F (one warm-up first)."""
    import copy

    import numpy as np

    from coupling.materials import make_point_model

    c = copy.deepcopy(cfg)
    c.material.vacancy = vacancy
    model = make_point_model(c, 2)
    model.evaluate_point(np.asarray(F_list[0]), model.initial_state(), tangent=True)
    out = []
    for F in F_list:
        t0 = time.perf_counter()
        model.evaluate_point(np.asarray(F), model.initial_state(), tangent=True)
        out.append(time.perf_counter() - t0)
    return out


def child(args) -> dict | None:
    """Run the benchmark problem once in this process (one ``--child`` variant).

    Returns:
        The figures of the run on rank 0 (None elsewhere): ranks, Gauss points, Newton
        iterations, evaluations and rates, dispatch seconds and share, seconds per phase and
        iteration, wall time, and for the consistent tangent each material round's RVE
        seconds per point (``rounds``; with ``--extras`` also checkpoint-write seconds and
        perfect and vacancy RVE seconds at the last round's deformation gradients).
    """
    import fe2qc.mpi

    MPI = fe2qc.mpi.mpi()
    from coupling.driver import Simulation

    comm = MPI.COMM_WORLD
    cfg = _config(args.quick, args.tmp, fd_mesh=args.child in ("fd", "secant"))
    cfg.mpi.workers = args.workers
    cfg.mpi.groups = args.groups
    if args.child == "secant":
        cfg.solver.max_iterations = 200
    sim = Simulation(cfg, comm, log=None)
    if sim.is_worker:
        sim._worker()
        comm.gather(None, root=0)
        return None
    mc = sim.mesh_comm
    rounds = _record_rounds(sim.material) if args.child == "consistent" else None
    if args.child == "fd":
        sim.problem.material = FiniteDifferenceTangent(sim.material)
    elif args.child == "secant":
        sim.problem.material = FrozenTangent(sim.material)
    t0 = time.perf_counter()
    reports = sim.problem.solve(cfg.loading.load_factors())
    wall = mc.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    timings = getattr(sim.material, "timings", {})
    its = [r.iterations for r in reports]
    evals = sum(i + 1 for i in its) * sim.problem.num_global_points
    phases = {}
    for r in reports:
        for k, v in r.timings.items():
            phases[k] = phases.get(k, 0.0) + v
    phases = {k: mc.allreduce(v, op=MPI.MAX) for k, v in phases.items()}
    mat_wall = phases.get("material", 0.0)
    newton = sum(its) + len(its)  # material evaluations = iterations + 1 per increment
    out = {
        "ranks": comm.size,
        "workers": args.workers,
        "groups": sim.material.layout.groups,
        "gauss_points": sim.problem.num_global_points,
        "newton_iterations": its,
        "evaluations": evals,
        "gauss_points_per_s": evals / mat_wall if mat_wall > 0 else 0.0,
        "seconds_per_rve": (mc.allreduce(timings.get("compute", 0.0)) / evals
                            if timings else mat_wall * comm.size / evals),
        "dispatch_seconds": mc.allreduce(timings.get("dispatch", 0.0), op=MPI.MAX),
        "dispatch_share": (mc.allreduce(timings.get("dispatch", 0.0), op=MPI.MAX)
                           / max(mc.allreduce(timings.get("wall", 0.0), op=MPI.MAX), 1e-30)),
        "seconds_by_phase_per_iteration": {k: v / newton for k, v in sorted(phases.items())},
        "material_s": mat_wall,
        "wall_s": wall,
    }
    if args.extras and comm.size == 1:
        writes = []
        for _ in range(3):
            t1 = time.perf_counter()
            sim._checkpoint(reports[-1])
            writes.append(time.perf_counter() - t1)
        out["checkpoint_write_s"] = sorted(writes)[1]
        F_last = rounds[-1]["F"]
        pick = F_last[:: max(1, len(F_last) // (8 if args.quick else 24))]
        out["rve_seconds_perfect"] = _rve_costs_at(cfg, pick, vacancy=False)
        out["rve_seconds_vacancy"] = _rve_costs_at(cfg, pick, vacancy=True)
    sim._close()
    if rounds is not None:
        for r in rounds:
            del r["F"]
    every = comm.gather(rounds, root=0)
    if comm.rank == 0 and rounds is not None:
        out["rounds"] = [r for r in every if r is not None]  # per mesh rank
    return out if comm.rank == 0 else None


class _SyntheticRVE:
    """A point model that only spends time: busy for ``F[1, 0]`` seconds, P and A zero.

    The state (of the real RVE's size) is returned unchanged; ``F[1, 0] = 0`` is a point that
    costs nothing (what dispatching alone costs).
    """

    def __init__(self, state_size: int) -> None:
        self.dim = 2
        self.n = int(state_size)

    def initial_state(self):
        """Return zeros of the RVE state's size."""
        import numpy as np

        return np.zeros(self.n)

    def evaluate_point(self, F_dd, state, *, tangent=True):
        """Spin for ``F_dd[1, 0]`` seconds; return zero stress and tangent, the same state."""
        import numpy as np

        from fe2qc.material import PointResult

        end = time.perf_counter() + float(F_dd[1, 0])
        while time.perf_counter() < end:
            pass
        return PointResult(np.zeros((2, 2)), np.zeros((2, 2, 2, 2)), 0.0, np.array(state), 0.0)


def params_child(args) -> dict | None:
    """Measure the model's message and dispatch parameters under ``mpirun -n 2``.

    A ping-pong of the farm's own messages (one point's task ``(k, (start, tangent, F,
    [state]))`` and result ``(k, PointBatch, None, seconds)``, pickled by mpi4py), of arrays
    of 0 B .. 1 MB (a straight-line fit: latency and seconds per byte), and rounds of the real
    farm (1 mesh rank + 1 worker) with :class:`_SyntheticRVE` points: points that cost
    nothing (the per-point dispatch cost) and points that spin for 20 ms like an RVE (the
    hand-off delay when the two ranks share their cores with others: a rank waiting in a
    receive is not always on a core when its message arrives).

    Returns:
        On rank 0: ``latency``, ``per_byte``, ``task_bytes``, ``result_bytes``,
        ``round_trip_s`` (one task and its result), ``dispatch`` (a mesh rank's seconds per
        point outside the farm), ``leader_task`` (the farm's seconds per task beyond the two
        messages) and ``handoff`` (a worker's extra wait per task with busy points).
    """
    import numpy as np

    import fe2qc.mpi

    MPI = fe2qc.mpi.mpi()
    from coupling.dispatch import DispatchedMaterial, run_worker, split_world
    from coupling.materials import make_point_model
    from fe2qc.material import evaluate_point_batch

    comm = MPI.COMM_WORLD
    assert comm.size == 2, "params: run under mpirun -n 2"
    cfg = _config(args.quick, args.tmp)
    model = make_point_model(cfg, 2)
    F = np.array([[1.004, 0.002], [0.001, 0.997]])
    block, _ = evaluate_point_batch(model, F[None], [model.initial_state()], tangent=True, dim=2)
    state = np.asarray(block.states[0])
    task = (0, (0, True, F[None], [state]))
    result = (0, block, None, 0.0123)
    bt = len(pickle.dumps(task, pickle.HIGHEST_PROTOCOL))
    br = len(pickle.dumps(result, pickle.HIGHEST_PROTOCOL))

    def exchange(a, b, reps):
        for _ in range(reps):
            if comm.rank == 0:
                comm.send(a, dest=1)
                comm.recv(source=1)
            else:
                comm.recv(source=0)
                comm.send(b, dest=0)

    def pingpong(a, b, reps):
        exchange(a, b, 10)  # warm-up
        comm.Barrier()
        t0 = time.perf_counter()
        exchange(a, b, reps)
        return comm.bcast((time.perf_counter() - t0) / reps, root=0)

    reps = 300 if args.quick else 2000
    rtt = min(pingpong(task, result, reps) for _ in range(3))
    sizes = [0, 1000, 10000, 100000, 1000000]
    one_way = [min(pingpong(np.zeros(n // 8), np.zeros(n // 8), max(reps // (1 + n // 100000),
                                                                     20)) for _ in range(3)) / 2
               for n in sizes]
    per_byte, lat0 = np.polyfit(np.asarray(sizes, dtype=float), np.asarray(one_way), 1)
    per_byte = max(float(per_byte), 0.0)
    latency = max((rtt - per_byte * (bt + br)) / 2, 0.0)
    # the real farm with synthetic points: what dispatching a point costs
    layout = split_world(comm, 1)
    synthetic = _SyntheticRVE(len(state))
    n, rounds = 112, (20 if args.quick else 60)
    n_busy, busy_s, busy_rounds = (40, 0.02, 2) if args.quick else (112, 0.02, 3)
    out = None
    if layout.is_worker:
        run_worker(layout, synthetic)
    else:
        mat = DispatchedMaterial(layout, synthetic)
        farm_s, task_s = [], []
        inner = mat.farm.run

        def timed(tasks, **kw):
            t1 = time.perf_counter()
            o = inner(tasks, **kw)
            farm_s.append(time.perf_counter() - t1)
            task_s.append(float(sum(o.seconds)))
            return o

        mat.farm.run = timed
        walls = []
        F0 = F.copy()
        F0[1, 0] = 0.0  # no time
        for _ in range(rounds):
            t1 = time.perf_counter()
            mat.evaluate(np.repeat(F0[None], n, axis=0))
            walls.append(time.perf_counter() - t1)
        # the least disturbed round (the machine is shared; a cluster node is not)
        best = int(np.argmin(walls))
        wall, farm = walls[best], farm_s[best]
        dispatch, leader_task = (wall - farm) / n, max(farm / n - rtt, 0.0)
        Fb = F.copy()
        Fb[1, 0] = busy_s
        gaps = []
        for _ in range(busy_rounds):
            mat.evaluate(np.repeat(Fb[None], n_busy, axis=0))
            gaps.append((farm_s[-1] - task_s[-1]) / n_busy - rtt - leader_task)
        mat.close()
        out = {"latency": latency, "per_byte": per_byte, "task_bytes": bt, "result_bytes": br,
               "round_trip_s": rtt, "fit_latency": float(lat0),
               "message_seconds": dict(zip(map(str, sizes), one_way, strict=True)),
               "dispatch": dispatch, "leader_task": leader_task,
               "handoff": max(float(np.median(gaps)), 0.0), "null_round_s": wall}
    layout.free()
    return out


def _spawn(cmd, tmp) -> dict:
    cmd = cmd + ["--tmp", tempfile.mkdtemp(dir=tmp)]  # a fresh output folder per run
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _increments(folder: Path) -> int:
    """Converged increments in a run folder's checkpoint (0 while there is none)."""
    import numpy as np

    try:
        with np.load(folder / "checkpoint.npz") as d:
            return int(json.loads(str(d["meta"]))["increments"])
    except (OSError, KeyError, ValueError, EOFError):
        return 0


def restart_overhead(tmp: str) -> dict:
    """Wall seconds of a 2-step ``fe2qc run``, and of the same run killed after step 1 + restart.

    The quick crack mesh (112 Gauss points), load steps 0.2 and 0.4, serial; every run is a
    fresh process (``python -m coupling.cli run``), timed from start to exit.
    """
    text = (ROOT / "demos" / "fe2_crack_quick.toml").read_text()
    text = text.replace("steps = [0.4]", "steps = [0.2, 0.4]").replace("vtx = true",
                                                                        "vtx = false")
    assert "steps = [0.2, 0.4]" in text and "vtx = false" in text
    work = Path(tempfile.mkdtemp(dir=tmp))
    toml = work / "problem.toml"
    toml.write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "coupling.cli", "run", str(toml), "--json"]

    def timed(extra):
        t0 = time.perf_counter()
        p = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, cwd=work,
                           timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f"fe2qc run {extra} failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        return time.perf_counter() - t0, json.loads(p.stdout.strip().splitlines()[-1])

    t_ref, ref = timed(["--outdir", "reference"])
    killed = work / "killed"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd + ["--outdir", "killed"], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while _increments(killed) < 1 and proc.poll() is None and time.perf_counter() - t0 < 600:
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    t_killed = time.perf_counter() - t0
    done = _increments(killed)
    if done != 1:
        raise RuntimeError(f"the run to kill had {done} increments checkpointed, expected 1")
    t_restart, got = timed(["--restart", str(killed)])
    return {"restart_overhead_s": t_killed + t_restart - t_ref,
            # what the restarted process spent before its first step (start-up, mesh, RVE
            # set-up, reading the checkpoint): the overhead without the run-to-run noise
            "restart_setup_s": t_restart - got["wall_time_s"],
            "run_setup_s": t_ref - ref["wall_time_s"],
            "restart_wall_s": {"uninterrupted": t_ref, "killed_after_step_1": t_killed,
                               "restarted": t_restart},
            "restart_same_result": got["displacement_norm"] == ref["displacement_norm"]
            and got["newton_iterations"] == ref["newton_iterations"]}


def _round_costs(run: dict) -> list[tuple[list, list | None]]:
    """Per material round of a run: per mesh rank the RVE seconds and predicted costs."""
    per_rank = run["rounds"]
    n = len(per_rank[0])
    assert all(len(r) == n for r in per_rank), "mesh ranks recorded different round counts"
    out = []
    for i in range(n):
        costs = [r[i]["point_seconds"] for r in per_rank]
        preds = [r[i]["predicted"] for r in per_rank]
        if any(p is None for p in preds):  # the first round: the farm counts 1 per task
            preds = [[1.0] * len(c) for c in costs]
        out.append((costs, preds))
    return out


def validate(run: dict, machine) -> dict:
    """The model's material seconds for a measured run, from the RVE seconds it measured."""
    from coupling.costmodel import simulate_round

    pred = 0.0
    compute = 0.0
    for costs, preds in _round_costs(run):
        r = simulate_round(costs, machine, workers=run["workers"], groups=run["groups"],
                           predicted=preds)
        pred += r.time
        compute += r.compute
    measured = run["material_s"]
    return {"predicted_s": pred, "measured_s": measured, "ratio": pred / measured,
            "efficiency_measured": compute / run["ranks"] / measured,
            "efficiency_predicted": compute / run["ranks"] / pred}


def _crossing(ps, effs, threshold) -> float | None:
    """The first ranks after the peak where ``effs`` drops below ``threshold`` (log-linear)."""
    import numpy as np

    k0 = int(np.argmax(effs))
    for k in range(k0 + 1, len(ps)):
        if effs[k] < threshold <= effs[k - 1]:
            x0, x1 = np.log(ps[k - 1]), np.log(ps[k])
            f = (effs[k - 1] - threshold) / (effs[k - 1] - effs[k])
            return float(np.exp(x0 + f * (x1 - x0)))
    return None


def scaling(machine, costs, outdir: Path, measured: dict, docs: bool, defect_costs) -> dict:
    """Project both layouts to 10^4 ranks, find where the old one stops, draw the plot."""
    import numpy as np

    from coupling.costmodel import assumptions, project

    ranks = sorted({int(round(x)) for x in np.geomspace(2, 10000, 33)} | {10000})
    new = [project(p, machine=machine, costs=costs).efficiency for p in ranks]
    old = [project(p, machine=machine, costs=costs, old=True).efficiency for p in ranks]
    res = {
        "model_efficiency_1e4": new[-1],
        "model_efficiency_1e4_root": old[-1],
        "model_efficiency_1e4_defects": project(10000, machine=machine,
                                                costs=defect_costs).efficiency,
        "model_efficiency_1e4_random_costs": project(10000, machine=machine, costs=costs,
                                                     clustered=False).efficiency,
        "model_efficiency_1e4_16_points_per_worker": project(
            10000, machine=machine, costs=costs, points_per_worker=16).efficiency,
        # scripts/slurm_fe2qc.sh's default: 7 of every 8 ranks workers (ceiling 7/8)
        "model_efficiency_1e4_7_workers_per_mesh_rank": project(
            10000, machine=machine, costs=costs, workers_per_mesh_rank=7).efficiency,
        "model_root_below": {"0.9": _crossing(ranks, old, 0.9), "0.5": _crossing(ranks, old, 0.5)},
        "model_new_min_efficiency_from_64_ranks": min(e for p, e in zip(ranks, new, strict=True)
                                                      if p >= 64),
        "model_scaling": {"ranks": ranks, "new": new, "root": old},
        "model_assumptions": dict(
            assumptions(machine, costs=costs),
            efficiency="sum of RVE seconds / all ranks / predicted round time (one Newton "
                       "iteration's material evaluations; the macro solve not counted)",
            ranks_layout="mesh ranks = ranks // 32 (at least 1), the rest workers; groups = "
                         "mesh ranks (new), 1 (old)",
            defects="model_efficiency_1e4_defects: 10 % of the points vacancy RVEs "
                    "(vacancy_cost_ratio times the perfect RVE's seconds)",
            cores="every rank on a core of its own: no hand-off delay (handoff 0); "
                  "model_efficiency_1e4_shared_cores uses the hand-off measured here, where "
                  "the 2 ranks share 2 cores with other work",
            costs="the demo's RVE seconds: every evaluation of the 1-rank run but the first"),
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 6), dpi=120)
    ax.semilogx(ranks, new, "-", color="tab:blue", lw=2.2,
                label="model, new layout (groups = mesh ranks)")
    ax.semilogx(ranks, old, "-", color="tab:red", lw=2.2,
                label="model, old layout (one root serves every worker)")
    ax.semilogx(ranks, [(p - max(1, p // 32)) / p for p in ranks], ":", color="gray", lw=1.2,
                label="ceiling: workers / ranks (mesh ranks idle in the RVE round)")
    marks = {"local": ("s", 1.85, "2 mesh ranks, own points"),
             "worker": ("o", 2.0, "1 mesh rank + 1 worker"),
             "groups": ("^", 2.16, "2 mesh ranks, 2 groups")}
    for key, (m, x, label) in marks.items():  # drawn side by side: all at 2 ranks
        v = measured[key]
        ax.plot([x], [v["efficiency_measured"]], m, color="black", ms=8, ls="none",
                label=f"measured at 2 ranks: {label}")
        ax.plot([x], [v["efficiency_predicted"]], m, mfc="none", mec="tab:green", mew=1.6,
                ms=13, ls="none")
    ax.plot([], [], "o", mfc="none", mec="tab:green", mew=1.6, ms=11, ls="none",
            label="model of those runs (their RVE seconds, cores shared: hand-off measured)")
    for thr in (0.9, 0.5):
        ax.axhline(thr, color="gray", lw=0.8, ls="--")
        x = res["model_root_below"][str(thr)]
        if x:
            ax.plot([x], [thr], "|", color="tab:red", ms=14, mew=2)
            ax.annotate(f"old < {thr} from ~{x:.0f} ranks", (x, thr),
                        xytext=(-150, -16) if thr > 0.7 else (8, -14),
                        textcoords="offset points", color="tab:red", fontsize=9)
    ax.annotate(f"new layout at 10^4 ranks: {new[-1]:.2f}", (10000, new[-1]),
                xytext=(-165, -36), textcoords="offset points", color="tab:blue", fontsize=9)
    ax.annotate(f"old layout at 10^4 ranks: {old[-1]:.3f}", (10000, old[-1]),
                xytext=(-120, 48), textcoords="offset points", color="tab:red", fontsize=9)
    ax.set_xlabel("ranks (mesh ranks + RVE workers)")
    ax.set_ylabel("parallel efficiency of a material round")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(1.6, 1.3e4)
    c = np.asarray(costs)
    ax.set_title("FE² material round (one Newton iteration's RVEs), model and measurements\n"
                 "weak scaling: 64 Gauss points per worker, 31 workers per mesh rank, a core "
                 "per rank;\nRVE "
                 f"{c.mean() * 1e3:.1f} ms mean ({c.min() * 1e3:.1f}–{c.max() * 1e3:.1f} ms, "
                 "expensive ones together), a leader's time per point "
                 f"{machine.per_task() * 1e6:.0f} µs", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    png = outdir / "fe2_scaling_model.png"
    fig.savefig(png)
    plt.close(fig)
    res["model_plot"] = str(png)
    if docs:
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(png, ROOT / "docs" / "fe2_scaling_model.png")
        res["model_plot_docs"] = "docs/fe2_scaling_model.png"
    return res


def main() -> int:
    """Run the benchmark (with ``--child``: one run of it, in this process); return 0.

    The benchmark runs each variant in a child process (``mpirun -n 2`` for the 2-rank runs)
    and prints the figures, the last line one JSON object with ``--json``.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--outdir", default="results/bench_fe2",
                   help="folder of the plot (relative to the working directory)")
    p.add_argument("--docs", action="store_true",
                   help="also copy the plot to docs/fe2_scaling_model.png in the repository")
    p.add_argument("--child", choices=["consistent", "fd", "secant", "params"], default=None,
                   help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--groups", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--extras", action="store_true", help=argparse.SUPPRESS)
    # the children's (unused) output folder: a temporary one, never inside the source tree
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.tmp = args.tmp or os.path.join(tempfile.gettempdir(), "fe2qc_bench_fe2")
        out = params_child(args) if args.child == "params" else child(args)
        if out is not None:
            print(json.dumps(out))
        return 0

    from dataclasses import replace

    import numpy as np

    from coupling.costmodel import Machine, project

    me = [sys.executable, str(Path(__file__).resolve())] + (["--quick"] if args.quick else [])
    mpirun = [str(Path(sys.executable).parent / "mpirun"), "-n", "2"]
    if args.tmp is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="fe2qc_bench_fe2_")
        args.tmp = tmpdir.name
    runs = {1: _spawn(me + ["--child", "consistent", "--extras"], args.tmp)}
    runs[2] = _spawn(mpirun + me + ["--child", "consistent"], args.tmp)
    # the parameters just before the runs they predict (this machine's load changes)
    params = _spawn(mpirun + me + ["--child", "params"], args.tmp)
    run_worker = _spawn(mpirun + me + ["--child", "consistent", "--workers", "1"], args.tmp)
    run_groups = _spawn(mpirun + me + ["--child", "consistent", "--groups", "2"], args.tmp)
    fd_cons = _spawn(me + ["--child", "consistent", "--quick"], args.tmp) if not args.quick \
        else runs[1]
    fd = _spawn(me + ["--child", "fd"], args.tmp)
    secant = _spawn(me + ["--child", "secant"], args.tmp)
    restart = restart_overhead(args.tmp)
    gps = {str(n): r["gauss_points_per_s"] for n, r in runs.items()}
    eff = gps["2"] / (2 * gps["1"])
    t_rve = 1.0 / gps["1"]  # material wall seconds per evaluation on one rank
    t_disp = runs[2]["dispatch_seconds"] / runs[2]["evaluations"]
    model = {str(n): 1e5 * t_rve / n + 1e5 * t_disp for n in (1, 2, 16, 128, 1024)}

    # the discrete-event model: measured parameters, 2-rank validation, projection
    machine = Machine(**{k: float(params[k]) for k in ("latency", "per_byte", "task_bytes",
                                                       "result_bytes", "dispatch",
                                                       "leader_task", "handoff")})
    checks = {"local": validate(runs[2], machine), "worker": validate(run_worker, machine),
              "groups": validate(run_groups, machine)}
    # the demo's RVE seconds: every evaluation of the 1-rank run but its first (a warm-up)
    costs = np.array([c for r in runs[1]["rounds"][0] for c in r["point_seconds"]][1:])
    vac_ratio = float(np.mean(runs[1]["rve_seconds_vacancy"])
                      / np.mean(runs[1]["rve_seconds_perfect"]))
    defect_costs = np.concatenate([np.repeat(costs, 9), costs * vac_ratio])  # 10 % vacancies
    outdir = Path(args.outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / "bench_fe2_raw.json", "w") as fh:  # every child's figures, as measured
        json.dump({"runs": {"1": runs[1], "2": runs[2], "2_worker": run_worker,
                            "2_groups": run_groups}, "params": params}, fh)
    # the projection: ranks on cores of their own (no hand-off delay), see model_assumptions
    cluster = replace(machine, handoff=0.0)
    proj = scaling(cluster, costs, outdir, checks, args.docs, defect_costs)
    proj["model_efficiency_1e4_shared_cores"] = project(10000, machine=machine,
                                                        costs=costs).efficiency
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
        "model_parameters": {k: params[k] for k in ("latency", "per_byte", "task_bytes",
                                                    "result_bytes", "round_trip_s", "dispatch",
                                                    "leader_task", "handoff",
                                                    "message_seconds")},
        "rve_seconds": {"mean": float(costs.mean()), "min": float(costs.min()),
                        "max": float(costs.max()), "samples": int(len(costs)),
                        "quantiles_10_50_90": [float(q) for q in
                                               np.quantile(costs, [0.1, 0.5, 0.9])]},
        "vacancy_cost_ratio": vac_ratio,
        "rve_seconds_at_last_F": {"perfect": float(np.mean(runs[1]["rve_seconds_perfect"])),
                                  "vacancy": float(np.mean(runs[1]["rve_seconds_vacancy"]))},
        "model_error_2_ranks": {k: v["ratio"] for k, v in checks.items()},
        "model_error_2_ranks_max": max(abs(v["ratio"] - 1) for v in checks.values()),
        "model_validation_2_ranks": checks,
        "parallel_efficiency_2_layouts": {k: v["efficiency_measured"] for k, v in checks.items()},
        "dispatch_2_layouts": {"worker": {"groups": run_worker["groups"],
                                          "dispatch_share": run_worker["dispatch_share"]},
                               "groups": {"groups": run_groups["groups"],
                                          "dispatch_share": run_groups["dispatch_share"]}},
        **proj,
        **restart,
        "checkpoint_write_s": runs[1]["checkpoint_write_s"],
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
    print(f"measured: message {machine.latency * 1e6:.1f} us + {machine.per_byte * 1e9:.2f} "
          f"ns/B (task {machine.task_bytes:.0f} B, result {machine.result_bytes:.0f} B, round "
          f"trip {params['round_trip_s'] * 1e6:.0f} us), dispatch {machine.dispatch * 1e6:.1f} "
          f"us/point, leader book-keeping {machine.leader_task * 1e6:.1f} us/task; RVE "
          f"{costs.mean() * 1e3:.1f} ms mean, vacancy/perfect {vac_ratio:.2f}")
    print("model / measured material time, 2 ranks: " + ", ".join(
        f"{k} {v['ratio']:.3f} (efficiency {v['efficiency_measured']:.2f})"
        for k, v in checks.items()))
    print(f"projected efficiency at 10^4 ranks: new layout {proj['model_efficiency_1e4']:.3f}, "
          f"old layout {proj['model_efficiency_1e4_root']:.3f}; old below 0.9 from "
          f"{proj['model_root_below']['0.9']} ranks, below 0.5 from "
          f"{proj['model_root_below']['0.5']}; plot {proj['model_plot']}")
    print(f"restart: {restart['restart_overhead_s']:.1f} s extra for a kill + restart, the "
          f"restarted process's set-up {restart['restart_setup_s']:.1f} s (a fresh run's "
          f"{restart['run_setup_s']:.1f} s) "
          f"(same result: {restart['restart_same_result']}); checkpoint write "
          f"{result['checkpoint_write_s'] * 1e3:.1f} ms")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
