"""The force benchmark runs and its energies agree with LAMMPS (no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lammps")

ROOT = Path(__file__).resolve().parents[1]


def test_bench_forces_quick_json():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_forces.py"),
                          "--quick", "--json"], capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    keys = {"atoms", "time_per_atom_step_s", "lammps_time_per_atom_step_s",
            "time_ratio_vs_lammps", "neighbor_build_s", "lammps_neighbor_build_s",
            "bytes_per_atom", "cases"}
    assert keys <= data.keys()
    assert data["atoms"] == 4000
    assert data["energy_check_passed"] is True
    assert len(data["cases"]) == 1
    case = data["cases"][0]
    assert keys - {"cases"} <= case.keys()
    assert case["energy_rel_diff"] < 1e-10
    for k in keys - {"cases", "atoms"}:
        assert data[k] > 0
