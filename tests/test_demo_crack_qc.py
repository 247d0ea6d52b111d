"""The crack-tip QC demo (lattice trapping) runs in its quick form and reports consistent data.

Only physically necessary relations are checked: K_G = sqrt(2 γ E') from the reported γ and E'
(to round-off), K_- <= K_+ for each lattice, and, for the triangular lattice, that Griffith's
K_G lies inside the trapping range (K_- <= K_G <= K_+: thermodynamics forbids the crack to
advance below K_G or to heal above it). The outputs must be readable: the extxyz file by ASE
with one frame per relaxation, the VTX folder, the PNG.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demos" / "crack_tip_qc.py"

pytestmark = pytest.mark.dolfinx

KEYS = {"K_G", "gamma", "E_prime", "K_plus", "K_minus", "K_plus_over_KG", "K_minus_over_KG",
        "trapping_range_over_KG", "tip_history", "sites", "nodes", "dofs", "wall_time",
        "frames", "status_up", "status_down"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crack_qc")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--json", "--outdir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_json_and_griffith(quick_run):
    _, data, out = quick_run
    assert set(data) == {"triangular", "fcc"}
    for lat, r in data.items():
        assert KEYS <= set(r), (lat, KEYS - set(r))
        assert r["K_G"] == pytest.approx(math.sqrt(2 * r["gamma"] * r["E_prime"]), rel=1e-12)
        assert r["gamma"] > 0 and r["E_prime"] > 0
        if r["K_plus"] is not None and r["K_minus"] is not None:
            assert r["K_minus"] <= r["K_plus"]
        assert "K_G = sqrt(2 γ E')" in out
    tri = data["triangular"]
    assert tri["K_plus"] is not None and tri["K_minus"] is not None, tri["status_up"]
    assert tri["K_minus"] <= tri["K_G"] <= tri["K_plus"]


def test_output_files(quick_run):
    import ase.io

    outdir, data, _ = quick_run
    for lat, r in data.items():
        frames = ase.io.read(outdir / f"{lat}_atoms.extxyz", index=":")
        assert len(frames) == r["frames"] == len(r["tip_history"])
        assert "displacement" in frames[0].arrays and "region" in frames[0].arrays
        assert (outdir / f"{lat}_continuum.bp").is_dir()
        assert (outdir / f"{lat}_trapping.png").stat().st_size > 10_000
