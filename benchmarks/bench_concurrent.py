"""The concurrent crack: what RVE material points cost, and what the replicated QC costs on 2 ranks.

Runs the crack_disc problem of ``demos/crack_concurrent.toml`` through ``fe2qc run`` (atoms
around the tip, ``bgfc``, Cauchy-Born in the handshake band, an atomistic RVE per Gauss point
beyond it), K raised in two steps, in four layouts, each ``--repeats`` times:

* ``cauchy_born``: the same concurrent solve with the crystal's Cauchy-Born continuum, one
  rank: the peer, the cost of the solve without RVEs;
* ``rve_1``: RVE points, one rank (``[mpi] workers = 0``);
* ``rve_2_replicated``: ``mpirun -n 2`` without workers: both ranks run the whole QC (atoms,
  DOLFINx assembly, Newton: replicated) and share the RVE points (``DispatchedMaterial(...,
  replicated=True)``, one block each);
* ``rve_2_worker``: ``mpirun -n 2`` with one worker: rank 0 runs the QC, rank 1 relaxes every
  RVE.

Reported (wall times of the solve, ``wall_time_s`` of each run's ``summary.json``; median,
min and max over the repeats):

* ``rve_cost_ratio = t(rve_1) / t(cauchy_born)``: what RVE points cost over Cauchy-Born;
* ``rve_share``: the fraction of ``t(rve_1)`` spent in the RVE evaluations
  (``rve_timings_s.wall``), ``f``;
* ``speedup_replicated = t(rve_1) / t(rve_2_replicated)`` against Amdahl's bound for a
  replicated serial part, ``1 / ((1 - f) + f / 2)``, and ``replicated_s``: the seconds each
  rank spends outside the RVE evaluations in the 2-rank run (the work both ranks repeat);
* ``speedup_worker = t(rve_1) / t(rve_2_worker)``: one worker relaxes every RVE while rank 0
  waits for it, so the bound is 1 (the layout, not speed, is the point on 2 ranks);
* ``bitwise``: every RVE run gives the same displacements (SHA-256).

``--quick`` (the tests): the perfect 1×1×1 RVE (4 atoms, cheap: the RVE share is small), one
repeat. Default: the 2×2×2 RVE with a vacancy (31 atoms, ~50 ms per relaxation), two
repeats. Runs ``fe2qc run`` in child processes from a temporary folder (writes nothing here).

    python benchmarks/bench_concurrent.py [--quick] [--repeats N] [--json]

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEMO = ROOT / "demos" / "crack_concurrent.toml"

#: (name, material type, ranks, workers)
CASES = (("cauchy_born", "cauchy-born", 1, 0), ("rve_1", "rve", 1, 0),
         ("rve_2_replicated", "rve", 2, 0), ("rve_2_worker", "rve", 2, 1))


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_problem(path: Path, material: str, workers: int, quick: bool, outdir: Path) -> None:
    """The demo's problem with the case's material and workers, outputs in ``outdir``."""
    with open(DEMO, "rb") as fh:
        data = tomllib.load(fh)
    mat = data["material"]
    if material == "cauchy-born":
        data["material"] = {"type": "cauchy-born", "potential": mat["potential"],
                            "lattice": mat["lattice"]}
    elif not quick:
        mat.update(size=[2, 2, 2], vacancy=True)
    data["mpi"] = {"workers": workers}
    data["output"] = {"directory": str(outdir), "vtx": False}
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")


def run_case(tmp: Path, name: str, material: str, ranks: int, workers: int, quick: bool,
             k: int) -> dict:
    """One ``fe2qc run`` of a case; its summary."""
    problem = tmp / f"{name}_{k}.toml"
    outdir = tmp / f"{name}_{k}"
    write_problem(problem, material, workers, quick, outdir)
    cmd = [str(BIN / "fe2qc"), "run", str(problem), "--json"]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-n", str(ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"bench_concurrent: `{' '.join(cmd)}` failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def main(argv=None) -> int:
    """Run the cases, print the table (and the JSON line); return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="perfect 1x1x1 RVE, one repeat")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs of each case (default 1 with --quick, else 2)")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    if repeats < 1:
        ap.error("--repeats must be >= 1")
    say = (lambda s: print(s, file=sys.stderr)) if args.json else print
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_concurrent_") as tmp:
        for k in range(repeats):  # interleaved: a slow spell of the machine hits every case
            for name, material, ranks, workers in CASES:
                s = run_case(Path(tmp), name, material, ranks, workers, args.quick, k)
                c = cases.setdefault(name, {"ranks": ranks, "workers": workers, "runs": []})
                rve = s["rve_timings_s"] or {}
                c["runs"].append({"wall_s": s["wall_time_s"], "rve_wall_s": rve.get("wall", 0.0),
                                  "newton_iterations": s["newton_iterations"],
                                  "U_sha256": s["U_sha256"]})
                c.update(gauss_points=s["gauss_points"], rve_points=s["rve_points"],
                         atomistic_sites=s["atomistic_sites"])
                say(f"  {name} (run {k + 1}/{repeats}): {s['wall_time_s']:.2f} s, RVE "
                    f"evaluations {rve.get('wall', 0.0):.2f} s")
    for c in cases.values():
        c["wall_s"] = _spread([r["wall_s"] for r in c["runs"]])
        c["rve_wall_s"] = _spread([r["rve_wall_s"] for r in c["runs"]])
    t = {name: c["wall_s"]["median"] for name, c in cases.items()}
    f = cases["rve_1"]["rve_wall_s"]["median"] / t["rve_1"]
    rep = cases["rve_2_replicated"]
    hashes = {r["U_sha256"] for name in ("rve_1", "rve_2_replicated", "rve_2_worker")
              for r in cases[name]["runs"]}
    out = {
        "quick": bool(args.quick), "repeats": repeats,
        "rve": "perfect 1x1x1" if args.quick else "2x2x2 with a vacancy",
        "rve_cost_ratio": t["rve_1"] / t["cauchy_born"],
        "rve_share": f,
        "speedup_replicated": t["rve_1"] / t["rve_2_replicated"],
        "amdahl_replicated": 1.0 / ((1.0 - f) + f / 2.0),
        "replicated_s": rep["wall_s"]["median"] - rep["rve_wall_s"]["median"],
        "speedup_worker": t["rve_1"] / t["rve_2_worker"],
        "bitwise": len(hashes) == 1,
        "cases": cases,
    }
    say(f"concurrent crack ({out['rve']} RVEs, {cases['rve_1']['rve_points']} RVE points of "
        f"{cases['rve_1']['gauss_points']} Gauss points, {cases['rve_1']['atomistic_sites']} "
        f"atoms), median of {repeats}:")
    say(f"  {'case':18s} {'ranks':>5s} {'workers':>7s} {'wall s':>8s} {'[min, max]':>16s} "
        f"{'RVE s':>7s}")
    for name, c in cases.items():
        w = c["wall_s"]
        say(f"  {name:18s} {c['ranks']:5d} {c['workers']:7d} {w['median']:8.2f} "
            f"[{w['min']:6.2f}, {w['max']:6.2f}] {c['rve_wall_s']['median']:7.2f}")
    say(f"  RVE points cost {out['rve_cost_ratio']:.2f}x the Cauchy-Born solve; RVE share "
        f"{f:.2f}; 2 ranks replicated: speedup {out['speedup_replicated']:.2f} (Amdahl "
        f"{out['amdahl_replicated']:.2f}), {out['replicated_s']:.2f} s repeated per rank; "
        f"1 worker: {out['speedup_worker']:.2f}; bitwise: {out['bitwise']}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
