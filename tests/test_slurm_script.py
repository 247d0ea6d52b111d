"""scripts/slurm_fe2qc.sh: the srun line it builds (a stand-in `srun` records it)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_fe2qc.sh"


def _submit(tmp_path, *args, **env) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "srun"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    fake.chmod(0o755)
    record = tmp_path / "srun_args.txt"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FE2QC_"))}
    full.update(PATH=f"{bin_dir}:{os.environ['PATH']}", SRUN_ARGS=str(record), **env)
    out = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=full,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return record.read_text().splitlines()


def test_slurm_script_runs_fe2qc_under_srun_and_restarts_from_a_checkpoint(tmp_path):
    args = _submit(tmp_path, "p.toml", SLURM_NTASKS="64", SLURM_JOB_ID="7",
                   SLURM_CPUS_PER_TASK="1")
    assert args == ["--mpi=pmi2", "--cpu-bind=cores", "fe2qc", "run", "p.toml", "--workers",
                    "60", "--outdir", "results/p_7"]
    out = tmp_path / "results" / "p_7"
    out.mkdir(parents=True)
    (out / "checkpoint.npz").write_bytes(b"x")
    args = _submit(tmp_path, "p.toml", "8", SLURM_NTASKS="64", SLURM_JOB_ID="7",
                   FE2QC_CONTAINER="fe2qc.sif")
    assert args[2:5] == ["apptainer", "exec", "--bind"] and args[6] == "fe2qc.sif"
    assert args[-5:] == ["p.toml", "--workers", "8", "--restart", "results/p_7"]
    outside = subprocess.run(["bash", str(SCRIPT), "p.toml"], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items()
                                  if not k.startswith("SLURM_")})
    assert outside.returncode != 0 and "not inside a SLURM allocation" in outside.stderr
