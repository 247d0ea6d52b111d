"""`fe2qc run` end to end: the same answer serially, on 2 ranks, with 0 or 1 RVE worker ranks.

The same problem gives the same answer in each of these runs (history travels with the Gauss
point, so the worker count cannot change the result).

The RVEs carry a vacancy (2x2x2 cells, 31 atoms): their relaxed internal displacements are the
history that must travel with each Gauss point between load steps. The runs are compared on the
full displacement vector (every dof, matched by its node's coordinates, since the dof numbering
depends on the partition) and on every Gauss point's committed RVE state (matched by original
cell index and point index), both read from the checkpoints. Measured differences: u 3e-14
relative to max |u|, states 4e-15 Å; tolerance 1e-12.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coupling.config import load_config

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = Path(sys.executable).parent / "mpirun"

# the cracked plate of 2×2×2 Cu_u3 RVEs with a vacancy (the sections of ``cu_plate_toml``)
PROBLEM = {
    "mesh": {"width": 1000.0, "height": 1000.0, "tip_size": 60.0, "far_size": 600.0,
             "grading": 0.6},
    "material": {"vacancy": True},
    "loading": {"mode": "K", "value": 0.3, "steps": [0.5, 1.0]},
    "solver": {"degree": 1, "rtol": 1e-9},
    "mpi": {"workers": 0},
    "output": {"directory": "out", "vtx": True, "checkpoint": True},
}


def _run(tmp_path, problem, name, ranks, workers):
    toml = tmp_path / "problem.toml"
    toml.write_text(problem)
    cmd = [sys.executable, "-m", "coupling.cli", "run", str(toml), "--json",
           "--workers", str(workers), "--outdir", str(tmp_path / name)]
    if ranks > 1:
        cmd = [str(MPIRUN), "-n", str(ranks)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gather(outdir: Path):
    """Return the whole solution of a run from its checkpoint.

    In an order that does not depend on the partition (coupling.checkpoint sorts it): nodes
    by coordinates, Gauss points by (original cell index, point index).
    """
    with np.load(outdir / "checkpoint.npz") as d:
        x, u, ids, states = d["x_dofs"][:, :2], d["u"], d["point_ids"], d["material_state"]
    assert len(np.unique(ids, axis=0)) == len(ids), "a Gauss point is owned twice"
    assert len(np.unique(np.round(x, 6), axis=0)) == len(x), "a node is written twice"
    return x, u, ids, states


# In `make test-slow` (runs of ~20-40 s each). `make test` checks the same answers for other
# layouts on a smaller problem under mpirun -n 2 (tests/test_fe2_layouts.py: bitwise), after a
# restart on 2 ranks with a worker (tests/test_restart.py), for the QC
# (tests/test_qc_dispatch.py) and the concurrent crack (tests/test_run_concurrent.py); the
# serial run's own checks (Hill-Mandel, VTX names, scale separation) on the demo's quick run
# (tests/test_demo_fe2.py) and in tests/test_fe2_outputs.py
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("layouts", [[], [("one_worker", 2, 1)], [("two_ranks", 2, 0)]],
                         ids=["serial", "one_worker", "two_ranks"])
def test_same_answer_for_one_and_two_ranks_and_zero_or_one_worker(tmp_path, cu_plate_toml,
                                                                   layouts):
    problem = cu_plate_toml(**PROBLEM)
    ref = _run(tmp_path, problem, "serial", 1, 0)
    assert ref["load_factor"] == pytest.approx(1.0)
    out = tmp_path / "serial"
    # the per-step log carries the Newton history and a Hill-Mandel check of every step
    steps = [json.loads(line) for line in (out / "steps.jsonl").open()]
    assert len(steps) == ref["increments"] == 2
    for st in steps:
        assert st["residual_norms"][-1] < 1e-9 * st["residual_norms"][0]
        assert st["hill_mandel"]["power_mismatch"] < 1e-6
        assert st["hill_mandel"]["stress_mismatch"] < 1e-6
        # 60 Å elements, 7.23 Å RVEs (2 a0): scale separation holds everywhere
        assert st["scale_separation"]["rve_edge_A"] == pytest.approx(2 * 3.615, rel=1e-6)
        assert st["scale_separation"]["points_in_elements_below_rve_edge"] == 0
    # the output folder: two VTX files, no stutter, stresses named with their unit
    assert sorted(p.name for p in out.glob("*.bp")) == ["fe2_cells.bp", "fe2_displacement.bp"]
    meta = (out / "fe2_cells.bp" / "md.0").read_bytes()
    for name in ("P_GPa", "von_mises_GPa", "det_F", "rve_relaxation_iterations", "rve_seconds",
                 "ellipticity_loss"):
        assert f'Name="{name}"'.encode() in meta, name
    x0, u0, ids0, s0 = _gather(out)
    assert np.abs(s0).max() > 1e-3  # the vacancy relaxes: there is history to carry
    scale = np.abs(u0).max()
    for name, ranks, workers in layouts:
        got = _run(tmp_path, problem, name, ranks, workers)
        assert got["newton_iterations"] == ref["newton_iterations"], name
        x, u, ids, s = _gather(tmp_path / name)
        assert x.shape == x0.shape and np.allclose(x, x0, rtol=0, atol=1e-9), name
        assert np.abs(u - u0).max() <= 1e-12 * scale, name
        assert np.array_equal(ids, ids0), name
        assert np.abs(s - s0).max() <= 1e-12, name


@pytest.mark.parametrize("toml", sorted((ROOT / "demos").glob("fe2_*.toml")),
                         ids=lambda p: p.name)
def test_demo_problem_files_validate(toml):
    """The shipped problem files pass the same validation as `fe2qc run` (missing files too)."""
    cfg = load_config(toml)
    assert cfg.material.type == "rve" and cfg.material.potential.endswith("Cu_u3.eam")
    assert cfg.material.size == (2, 2, 2) and cfg.loading.mode == "K"
    assert cfg.mesh.crack_length == 200.0 and cfg.loading.value == 0.5
    if toml.name == "fe2_crack.toml":  # the full demo the README describes
        assert cfg.mesh.tip_size == 4.0 and cfg.solver.degree == 2
        assert cfg.loading.load_factors() == [0.4, 0.7, 1.0]


def test_run_refuses_an_unknown_key_before_any_work(tmp_path, cu_plate_toml):
    toml = tmp_path / "bad.toml"
    toml.write_text(cu_plate_toml(**{**PROBLEM, "mesh": {**PROBLEM["mesh"], "refine": 3}}))
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "run", str(toml)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "refine" in out.stderr and "[mesh]" in out.stderr
