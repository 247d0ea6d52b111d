"""FE² under `mpirun -n 2`: every rank layout of the dispatcher gives bitwise the same solution.

The problem: a 100 Å square (2×2 cells, 8 Gauss points) of 2×2×2 Cu_u3 RVEs with a vacancy
(relaxed internal displacements: the history that travels with each point), pulled by a
traction in two load steps. Each layout's final checkpoint (every node's displacement, every
Gauss point's committed RVE state, sorted, so independent of the partition) is compared with
that of the layout without workers on the same mesh ranks: bitwise.

* 2 mesh ranks sharing their points by cost (``groups = 2``, :class:`coupling.farm.GroupFarm`
  without workers) against 2 mesh ranks each evaluating its own (:class:`LocalFarm`);
* 1 mesh rank with 1 RVE worker (one group) against the serial run (rank 0 alone).

Three and four ranks (two groups with workers, oversubscribed; and the RVEs relaxed by LAMMPS
on a team of two worker ranks) are in ``make test-slow``
(tests/test_fe2_layouts.py::test_three_and_four_rank_layouts).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from coupling.config import parse_config
from fe2qc.mpi import mpi

ROOT = Path(__file__).resolve().parents[1]
MPI = mpi()

PROBLEM = {
    "mesh": {"generator": "rectangle", "width": 100.0, "height": 100.0, "nx": 2, "ny": 2},
    "material": {"type": "rve", "potential": "Cu_u3.eam", "lattice": "fcc", "size": [2, 2, 2],
                 "vacancy": True},
    "loading": {"mode": "traction", "value": 2.0, "steps": [0.5, 1.0]},
    "solver": {"degree": 1, "rtol": 1e-10},
    "output": {"vtx": False},
}


def _solution(folder: Path) -> dict:
    with np.load(folder / "checkpoint.npz") as d:
        meta = json.loads(str(d["meta"]))
        return {"u": d["u"], "x": d["x_dofs"], "ids": d["point_ids"],
                "state": d["material_state"], "newton": meta["newton_iterations"]}


def _same(a: dict, b: dict) -> None:
    assert a["newton"] == b["newton"]
    for key in ("x", "ids", "u", "state"):
        assert np.array_equal(a[key], b[key]), key
    assert np.abs(b["state"]).max() > 1e-3  # the vacancy relaxes: history to carry


def _run(comm, outdir: Path, workers: int, groups: int | None):
    from coupling.driver import run_problem

    data = json.loads(json.dumps(PROBLEM))
    data["output"]["directory"] = str(outdir)
    data["mpi"] = {"workers": workers} | ({"groups": groups} if groups else {})
    return run_problem(parse_config(data, base_dir=ROOT), comm, log=None)


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_grouped_and_worker_layouts_give_bitwise_the_solution_without_workers():
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("needs exactly 2 MPI ranks")
    root = Path(comm.bcast(tempfile.mkdtemp(prefix="fe2qc_layouts_") if comm.rank == 0
                           else None, root=0))
    _run(comm, root / "local", 0, None)
    shared = _run(comm, root / "groups", 0, 2)
    _run(comm, root / "worker", 1, None)
    if comm.rank == 0:
        _run(MPI.COMM_SELF, root / "serial", 0, None)
    comm.Barrier()
    if comm.rank == 0:
        _same(_solution(root / "groups"), _solution(root / "local"))
        _same(_solution(root / "worker"), _solution(root / "serial"))
    assert shared["workers"] == 0 and shared["dispatch"]["groups"] == 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_and_four_rank_layouts(tmp_path):
    """Oversubscribed: 2 groups with 2 workers, 1 group of 3 workers, 2 mesh ranks + 1 worker.

    Then the LAMMPS RVE on a team of 2 worker ranks against the native serial run.
    """
    toml = tmp_path / "p.toml"
    lines = []
    for section, keys in PROBLEM.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    toml.write_text("\n".join(lines) + "\n")
    mpirun = Path(sys.executable).parent / "mpirun"

    def run(name, ranks, workers, groups=None, rve_ranks=None):
        cmd = [str(mpirun), "-n", str(ranks), sys.executable, "-m", "coupling.cli", "run",
               str(toml), "--workers", str(workers), "--outdir", name, "--json"]
        if groups:
            cmd += ["--groups", str(groups)]
        if rve_ranks:
            cmd += ["--rve-ranks", str(rve_ranks)]
        out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return _solution(tmp_path / name)

    two = run("two", 2, 0)
    serial = subprocess.run([sys.executable, "-m", "coupling.cli", "run", str(toml), "--outdir",
                             "serial", "--json"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert serial.returncode == 0, serial.stderr[-3000:]
    one = _solution(tmp_path / "serial")
    _same(run("g2w2", 4, 2, 2), two)  # 2 mesh ranks, 2 groups of 1 mesh rank + 1 worker
    _same(run("g1w2", 4, 2, 1), two)  # the same ranks, one group: the old root funnel
    _same(run("m2w1", 3, 1), two)  # 2 mesh ranks share 1 worker
    _same(run("m1w3", 4, 3), one)  # 1 mesh rank, 3 workers
    # the RVEs relaxed by LAMMPS on teams of 2 worker ranks (3 ranks: 1 mesh rank, 1 team):
    # the native answer to the relaxation and finite-difference tolerances, the same
    # increments (the layouts above are bitwise; a LAMMPS RVE differs by its own round-off)
    toml.write_text(toml.read_text().replace('vacancy = true', 'vacancy = true\nengine = "lammps"'))
    team = run("team", 3, 2, rve_ranks=2)
    assert team["newton"] == one["newton"]
    assert np.abs(team["u"] - one["u"]).max() <= 1e-8 * np.abs(one["u"]).max()
