"""`fe2qc run` end to end: the same problem gives the same answer serially, on 2 ranks, and with
0 or 1 RVE worker ranks (history travels with the Gauss point, so the worker count cannot change
the result)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = Path(sys.executable).parent / "mpirun"

PROBLEM = """
[mesh]
generator = "cracked_plate"
crack_length = 200.0
width = 1000.0
height = 1000.0
tip_size = 60.0
far_size = 600.0
grading = 0.6

[material]
type = "rve"
potential = "Cu_u3.eam"
lattice = "fcc"
size = [2, 2, 2]

[loading]
mode = "K"
value = 0.3
steps = [0.5, 1.0]

[solver]
degree = 1
rtol = 1e-9

[mpi]
workers = 0

[output]
directory = "out"
vtx = true
checkpoint = true
"""


def _run(tmp_path, name, ranks, workers):
    toml = tmp_path / "problem.toml"
    toml.write_text(PROBLEM)
    cmd = [sys.executable, "-m", "coupling.cli", "run", str(toml), "--json",
           "--workers", str(workers), "--outdir", str(tmp_path / name)]
    if ranks > 1:
        cmd = [str(MPIRUN), "-n", str(ranks)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(900)
def test_same_answer_for_one_and_two_ranks_and_zero_or_one_worker(tmp_path):
    ref = _run(tmp_path, "serial", 1, 0)
    assert ref["load_factor"] == pytest.approx(1.0)
    assert (tmp_path / "serial").is_dir() and any((tmp_path / "serial").iterdir())
    # the per-step log carries the Newton history and a Hill-Mandel check of every step
    steps = [json.loads(line) for line in (tmp_path / "serial" / "steps.jsonl").open()]
    assert len(steps) == ref["increments"]
    for st in steps:
        assert st["residual_norms"][-1] < 1e-9 * st["residual_norms"][0]
        assert st["hill_mandel"]["power_mismatch"] < 1e-6
        assert st["hill_mandel"]["stress_mismatch"] < 1e-6
    assert (tmp_path / "serial" / "checkpoint_rank0.npz").exists()
    for name, ranks, workers in [("two_ranks", 2, 0), ("one_worker", 2, 1)]:
        got = _run(tmp_path, name, ranks, workers)
        assert got["newton_iterations"] == ref["newton_iterations"], name
        assert got["displacement_norm"] == pytest.approx(ref["displacement_norm"], rel=1e-10)


def test_run_refuses_an_unknown_key_before_any_work(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text(PROBLEM.replace("grading = 0.6", "grading = 0.6\nrefine = 3"))
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "run", str(toml)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "refine" in out.stderr and "[mesh]" in out.stderr
