"""`fe2qc run --restart DIR`: a run killed with SIGKILL continues to the uninterrupted answer.

The problem: a 100 Å square of 2×2×2 Cu_u3 RVEs with a vacancy (4 Gauss points, P1) pulled by
a traction in four load steps; the RVEs' relaxed internal displacements are the history a
restart must restore. A run is started in its own session, SIGKILLed (the whole process group,
as a batch system does) once its checkpoint holds one or more converged steps, and restarted;
its final checkpoint (displacement of every node, committed state of every Gauss point, both
sorted, so independent of the partition) is compared with that of an uninterrupted run:
bitwise on the same ranks, to 1e-12 on another rank count (measured: 0 and ~1e-15).

In `make test`: serial kill, serial restart (bitwise) and the same checkpoint restarted under
`mpirun -n 2` with one RVE worker (1e-12). `make test-slow`: a 2-rank run killed and restarted
on 2 ranks (bitwise against an uninterrupted 2-rank run) and on 1 rank (1e-12).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from coupling.checkpoint import (
    FILE_NAME,
    FORMAT,
    VERSION,
    Checkpoint,
    check_checkpoint,
    identity_differences,
)
from fe2qc.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = Path(sys.executable).parent / "mpirun"
STEPS = 4

PROBLEM = f"""
[mesh]
generator = "rectangle"
width = 100.0
height = 100.0
nx = 2
ny = 1

[material]
type = "rve"
potential = "Cu_u3.eam"
lattice = "fcc"
size = [2, 2, 2]
vacancy = true

[loading]
mode = "traction"
value = 2.0
steps = {STEPS}

[solver]
degree = 1
rtol = 1e-10
"""


def _cmd(toml: Path, ranks: int, workers: int, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "coupling.cli", "run", str(toml), "--json",
           "--workers", str(workers), *args]
    return ([str(MPIRUN), "-n", str(ranks)] + cmd) if ranks > 1 else cmd


def _run(cmd, cwd) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _increments(folder: Path) -> int:
    try:
        with np.load(folder / FILE_NAME) as d:
            return json.loads(str(d["meta"]))["increments"]
    except (OSError, KeyError, ValueError, EOFError):
        return 0


def _killed_run(tmp: Path, toml: Path, name: str, ranks: int) -> Path:
    """Start a run, SIGKILL its process group once a step is checkpointed; its folder."""
    out = tmp / name
    proc = subprocess.Popen(_cmd(toml, ranks, 0, "--outdir", name), cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    t0 = time.monotonic()
    while _increments(out) < 1 and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    err = proc.communicate(timeout=60)[1]
    done = _increments(out)
    assert 1 <= done < STEPS, f"killed after {done} of {STEPS} steps:\n{err[-2000:]}"
    return out


def _solution(folder: Path):
    with np.load(folder / FILE_NAME) as d:
        return {k: d[k] for k in ("x_dofs", "u", "point_ids", "material_state")}


def _compare(got: Path, ref: Path, bitwise: bool) -> None:
    a, b = _solution(got), _solution(ref)
    for key in ("x_dofs", "point_ids"):
        assert np.array_equal(a[key], b[key]), key
    assert np.abs(b["material_state"]).max() > 1e-3  # the vacancy relaxes: history to carry
    if bitwise:
        assert np.array_equal(a["u"], b["u"]) and np.array_equal(
            a["material_state"], b["material_state"])
    else:
        assert np.abs(a["u"] - b["u"]).max() <= 1e-12 * np.abs(b["u"]).max()
        assert np.abs(a["material_state"] - b["material_state"]).max() <= 1e-12


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory):
    """An uninterrupted serial run: ``(work folder, problem file, summary)``."""
    tmp = tmp_path_factory.mktemp("restart")
    toml = tmp / "problem.toml"
    toml.write_text(PROBLEM)
    return tmp, toml, _run(_cmd(toml, 1, 0, "--outdir", "reference"), tmp)


@pytest.mark.timeout(600)
def test_sigkill_then_restart_serially_is_bitwise_and_on_two_ranks_to_1e12(serial_reference):
    tmp, toml, ref = serial_reference
    killed = _killed_run(tmp, toml, "killed", 1)
    done = _increments(killed)
    other = tmp / "killed_copy"
    shutil.copytree(killed, other)

    got = _run(_cmd(toml, 1, 0, "--restart", "killed"), tmp)
    _compare(killed, tmp / "reference", bitwise=True)
    assert got["newton_iterations"] == ref["newton_iterations"]
    assert got["increments"] == ref["increments"] == STEPS and got["restarts"] == 1
    # the log: every increment once, the resumed ones marked; the VTX series continue
    steps = [json.loads(ln) for ln in (killed / "steps.jsonl").read_text().splitlines()]
    assert [s["load_factor"] for s in steps] == [(i + 1) / STEPS for i in range(STEPS)]
    assert [s["restart"] for s in steps] == [0] * done + [1] * (STEPS - done)
    for name in ("fe2_displacement.bp", "fe2_restart1_displacement.bp", "fe2_cells.bp",
                 "fe2_restart1_cells.bp"):
        assert (killed / name).is_dir(), name

    # the same checkpoint continued on 2 ranks, one of them an RVE worker
    got2 = _run(_cmd(toml, 2, 1, "--restart", "killed_copy"), tmp)
    assert got2["newton_iterations"] == ref["newton_iterations"]
    _compare(other, tmp / "reference", bitwise=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_under_mpirun_then_restart_on_two_ranks_bitwise_and_on_one_to_1e12(
        serial_reference):
    tmp, toml, _ = serial_reference
    ref2 = _run(_cmd(toml, 2, 0, "--outdir", "reference2"), tmp)
    killed = _killed_run(tmp, toml, "killed2", 2)
    shutil.copytree(killed, tmp / "killed2_copy")
    got = _run(_cmd(toml, 2, 0, "--restart", "killed2"), tmp)
    assert got["newton_iterations"] == ref2["newton_iterations"]
    _compare(killed, tmp / "reference2", bitwise=True)
    _run(_cmd(toml, 1, 0, "--restart", "killed2_copy"), tmp)
    _compare(tmp / "killed2_copy", tmp / "reference", bitwise=False)


def test_restart_refuses_another_problem_a_missing_or_foreign_checkpoint(serial_reference,
                                                                        capsys):
    """Refused with exit status 2 and one message naming the problem, before any work."""
    from coupling.cli import main

    tmp, toml, _ = serial_reference
    ref = tmp / "reference"
    other = tmp / "other.toml"
    other.write_text(PROBLEM.replace("vacancy = true", "vacancy = false")
                     .replace("width = 100.0", "width = 120.0"))
    cases = [
        ([str(other), "--restart", str(ref)],
         ["belongs to another problem", "material.vacancy: True in the checkpoint, False now",
          "mesh.parameters.width: 100.0 in the checkpoint, 120.0 now"]),
        ([str(toml), "--restart", str(tmp / "nowhere")], ["no checkpoint to restart from"]),
        ([str(toml), "--restart", str(ref), "--overwrite"], ["cannot be combined"]),
        ([str(toml), "--restart", str(ref), "--outdir", str(tmp)], ["leave --outdir out"]),
    ]
    for argv, words in cases:
        assert main(["run", *argv]) == 2, argv
        err = capsys.readouterr().err
        for w in words:
            assert w in err, (w, err)
    # another format version, and a file that is not a checkpoint
    import fe2qc.mpi

    comm = fe2qc.mpi.mpi().COMM_SELF
    with np.load(ref / FILE_NAME) as d:
        arrays = dict(d)
    meta = json.loads(str(arrays["meta"]))
    bad = tmp / "future"
    bad.mkdir()
    np.savez(bad / FILE_NAME, **dict(arrays, meta=np.array(json.dumps(dict(meta, version=99)))))
    with pytest.raises(InputError, match=f"format version 99; this fe2qc reads version {VERSION}"):
        check_checkpoint(bad / FILE_NAME, comm, meta["identity"])
    (bad / FILE_NAME).write_bytes(b"PK not a zip")
    with pytest.raises(InputError, match="not a readable fe2qc checkpoint"):
        check_checkpoint(bad / FILE_NAME, comm, meta["identity"])
    assert check_checkpoint(ref / FILE_NAME, comm, meta["identity"])["format"] == FORMAT


def test_checkpoint_tables_refuse_points_and_nodes_of_another_mesh():
    ck = Checkpoint(meta={}, x_dofs=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]),
                    u=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
                    point_ids=np.array([[0, 0], [0, 1], [7, 0]]),
                    material_state=np.array([[10.0], [11.0], [12.0]]))
    # any order, ghosts repeated: rows by coordinates and ids
    got = ck.displacement_for(np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    assert got.tolist() == [[5.0, 6.0], [1.0, 2.0], [5.0, 6.0]]
    assert ck.states_for(np.array([[7, 0], [0, 1]])).ravel().tolist() == [12.0, 11.0]
    with pytest.raises(InputError, match="mesh differs: 1 nodes"):
        ck.displacement_for(np.array([[0.5, 0.0]]))
    with pytest.raises(InputError, match=r"no state for 1 Gauss points .*cell 7, point 1"):
        ck.states_for(np.array([[0, 0], [7, 1]]))
    assert identity_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 4}) == [
        "a.c: 2 in the checkpoint, 3 now", "d: '<absent>' in the checkpoint, 4 now"]


def test_checkpoint_rows_are_in_the_same_order_whatever_the_last_bits(tmp_path):
    """Coordinates that differ at round-off between partitions (±4e-15 for 0) sort alike."""
    import fe2qc.mpi
    from coupling.checkpoint import load_checkpoint, write_checkpoint

    comm = fe2qc.mpi.mpi().COMM_SELF
    x = np.array([[5e-15, 6.0], [0.0, 3.0], [1000.0, 4e-15], [1000.0, 9.0]])
    y = np.array([[-2e-15, 6.0], [-1e-15, 3.0], [1000.0, -4e-15], [1000.0, 9.0]])
    u = np.arange(8.0).reshape(4, 2)
    ids = np.array([[0, 0]])
    for name, xx in (("a", x), ("b", y)):
        write_checkpoint(tmp_path / name, comm, x_dofs=xx, u=u, point_ids=ids,
                         material_state=None, meta={})
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert np.array_equal(a.u, b.u) and a.u[:, 0].tolist() == [2.0, 0.0, 4.0, 6.0]
