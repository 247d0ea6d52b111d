"""`fe2qc run` hygiene: interrupts, dead ranks, clean stdout, output folders, errors once.

Ctrl-C and dead ranks end every rank promptly (exit 130, one message, the last converged
checkpoint intact), `--json` keeps stdout to the one JSON object, a non-empty output folder is
refused unless `--overwrite`, and errors under `mpirun -n 2` print once.

The interrupt tests start `fe2qc run` (serially, and `mpirun -n 2 ... --workers 1`) on a coarse
RVE problem in a subprocess of its own session, wait until the first load step is checkpointed
(its Hill-Mandel line), let the next step's RVE relaxations start, and send SIGINT to the
process group, as a terminal's Ctrl-C does (or SIGINT / SIGKILL to one rank only).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from coupling.checkpoint import load_checkpoint
from coupling.driver import RUN_FILE_PATTERNS, prepare_output_dir, previous_run_files
from fe2qc.errors import CalculationFailed, InputError, is_interrupt

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MPIRUN = BIN / "mpirun"

# the demo's problem (demos/fe2_crack.toml: Cu_u3 RVEs of 32 atoms) on a coarse P1 mesh with
# many small load steps, so that a run lasts long enough to be interrupted (the sections of
# the cu_plate_toml fixture)
RVE_PROBLEM = {
    "mesh": {"width": 2000.0, "height": 2000.0, "tip_size": 100.0, "far_size": 800.0,
             "grading": 0.8},
    "material": {"fmax": 1e-9},
    "loading": {"mode": "K", "value": 0.5, "steps": 50},
    "solver": {"degree": 1, "rtol": 1e-8, "max_iterations": 25, "min_increment": 0.01},
    "output": {"directory": "out"},
}

# a fast neo-Hookean problem; with value = -3000 Å the plate inverts and the load stepping
# gives up (CalculationFailed, exit 3)
NEO_PROBLEM = """
[mesh]
generator = "cracked_plate"
crack_length = 200.0
width = 1000.0
height = 1000.0
tip_size = 100.0
far_size = 600.0
grading = 0.8

[material]
type = "neo-hookean"
mu = 40.0
lmbda = 60.0

[loading]
mode = "displacement"
value = {value}
steps = 2

[solver]
degree = 1
min_increment = 0.2
"""

FORBIDDEN = ("PointEvaluationError", "SystemError", "Traceback", "returned a result with an "
             "exception set")


def _cmd(toml, outdir, ranks=1, workers=0, *extra):
    cmd = [str(BIN / "fe2qc"), "run", str(toml), "--outdir", str(outdir), "--workers",
           str(workers), *extra]
    return [str(MPIRUN), "-n", str(ranks), *cmd] if ranks > 1 else cmd


def _run(cmd, cwd, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)


# -- interrupts: unit level ---------------------------------------------------------------------
def _numba_style_interrupt() -> SystemError:
    """What a SIGINT inside a numba function raises: SystemError around the interrupt."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(<function _hessian_coo at 0x0>) returned a result "
                              "with an exception set") from None
    except SystemError as exc:
        return exc


def test_is_interrupt_sees_through_numba_system_error():
    assert is_interrupt(KeyboardInterrupt()) and is_interrupt(SystemExit(1))
    assert is_interrupt(_numba_style_interrupt())  # via __context__ (even with `from None`)
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = _numba_style_interrupt()
    assert is_interrupt(wrapped)
    assert not is_interrupt(SystemError("returned a result with an exception set"))
    assert not is_interrupt(CalculationFailed("relaxation did not converge"))
    assert not is_interrupt(None)


class _Model:
    """A point model that fails on its second point with ``exc``."""

    dim = 2

    def __init__(self, exc):
        self.exc, self.calls = exc, 0

    def initial_state(self):
        return np.zeros(1)

    def evaluate_point(self, F, state, tangent=True):
        self.calls += 1
        if self.calls == 2:
            raise self.exc
        from types import SimpleNamespace

        return SimpleNamespace(P=np.zeros((2, 2)), A=np.zeros((2, 2, 2, 2)), W=0.0, work=0.0,
                               state=state)


def test_dispatch_raises_interrupts_instead_of_failure_records():
    from coupling.dispatch import evaluate_points

    F = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    states = [np.zeros(1)] * 3
    for exc in (_numba_style_interrupt(), KeyboardInterrupt()):
        with pytest.raises(KeyboardInterrupt):
            evaluate_points(_Model(exc), F, states, True, 0, 2)
    # a failed calculation is still a record (the solver cuts back), naming the point
    block, err, _ = evaluate_points(_Model(CalculationFailed("no")), F, states, True, 10, 2)
    assert len(block.W) == 1 and err["kind"] == "CalculationFailed" and err["index"] == 11


def test_solver_does_not_cut_back_on_an_interrupt():
    import fe2qc.mpi

    MPI = fe2qc.mpi.mpi()
    fe2qc.mpi.dolfinx()
    from dolfinx import mesh

    from fe2.materials import NeoHookean
    from fe2.solver import Dirichlet, Problem

    class Interrupted(NeoHookean):
        calls = reverts = 0

        def evaluate(self, F_qij):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise _numba_style_interrupt()
            return super().evaluate(F_qij)

        def revert(self):
            Interrupted.reverts += 1

    msh = mesh.create_unit_square(MPI.COMM_SELF, 2, 2)
    bcs = [Dirichlet(lambda x: np.isclose(x[0], 0.0), np.zeros(2)),
           Dirichlet(lambda x: np.isclose(x[0], 1.0), 0.1, component=0)]
    pb = Problem(msh, Interrupted(1.0, 1.0, 2), degree=1, bcs=bcs, log=None)
    with pytest.raises(KeyboardInterrupt):
        pb.solve(4)
    assert Interrupted.calls == 3 and Interrupted.reverts == 0  # no cut-back, no retry


def test_checkpoint_block_holds_sigint_back_until_it_ends():
    from coupling.interrupts import EXIT_INTERRUPTED, InterruptGuard, deferred_interrupts

    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():  # no guard: library use
        signal.raise_signal(signal.SIGINT)
        done.append("rest of the block")
    assert done == ["rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    guard = InterruptGuard(None, prog="test", describe=lambda: "last step 3").install()
    try:
        done.clear()
        with pytest.raises(KeyboardInterrupt), deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
            done.append("rest of the block")
        assert done == ["rest of the block"]
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C while the first is handled
        assert guard.message() == "test: interrupted (SIGINT); last step 3"
        assert guard.finish() == EXIT_INTERRUPTED  # one rank: returns the status
    finally:
        guard.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- interrupts and dead ranks: end to end ------------------------------------------------------
class _Run:
    """`fe2qc run --json` in its own session; stderr is read line by line."""

    def __init__(self, tmp_path, problem, ranks, workers):
        toml = tmp_path / "problem.toml"
        toml.write_text(problem)
        self.outdir = tmp_path / "out"
        self.proc = subprocess.Popen(_cmd(toml, self.outdir, ranks, workers, "--json"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=tmp_path, start_new_session=True)
        self.lines: list[str] = []
        self.step_done = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if "Hill-Mandel" in line:  # printed after the step's checkpoint and log line
                self.step_done.set()

    def wait_for_rve_work(self):
        if not self.step_done.wait(120):
            self.proc.kill()
            pytest.fail("no converged step within 120 s:\n" + "".join(self.lines))
        time.sleep(1.0)  # inside the next step's RVE relaxations

    def rank_pids(self) -> list[int]:
        """Return the pids of the ranks (descendants of mpirun running fe2qc), in rank order."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        todo, ranks = [self.proc.pid], {}
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            rank = [e for e in env if e.startswith(b"PMI_RANK=")]
            if pid != self.proc.pid and b"fe2qc" in cmd and rank:
                ranks[int(rank[0].split(b"=")[1])] = pid
        return [ranks[k] for k in sorted(ranks)]

    def signal(self, sig, rank=None):
        """Send ``sig`` to the run, or to one rank of a 2-rank run; return :meth:`finish`.

        With ``rank=None`` it goes to the process group (mpirun forwards it to every rank); the
        run then has 30 s to end.
        """
        if rank is None:
            os.killpg(self.proc.pid, sig)
        else:
            pids = self.rank_pids()
            assert len(pids) == 2, pids
            os.kill(pids[rank], sig)
        return self.finish(30)

    def finish(self, timeout):
        t0 = time.monotonic()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"the run did not end within {timeout} s of the signal:\n"
                        + "".join(self.lines))
        self.reader.join(10)
        return time.monotonic() - t0, "".join(self.lines)


@pytest.fixture
def rve_run(tmp_path, cu_plate_toml):
    """``rve_run(ranks, workers)``: :data:`RVE_PROBLEM` running, inside its RVE relaxations."""

    def start(ranks, workers):
        run = _Run(tmp_path, cu_plate_toml(**RVE_PROBLEM), ranks, workers)
        run.wait_for_rve_work()
        return run

    return start


def _check_interrupted(run, stderr, elapsed, rank_note):
    assert run.proc.returncode == 130, stderr
    assert elapsed < 20, elapsed
    msgs = [line for line in stderr.splitlines() if "interrupted (SIGINT" in line]
    assert len(msgs) == 1, stderr
    assert rank_note in msgs[0], msgs[0]
    for bad in FORBIDDEN:
        assert bad not in stderr, stderr
    # the last converged step's checkpoint is complete and is the step the message names
    ck = load_checkpoint(run.outdir / "checkpoint.npz")
    assert ck.u.size > 0 and np.isfinite(ck.u).all()
    steps = [json.loads(line) for line in (run.outdir / "steps.jsonl").read_text().splitlines()]
    # the step's log line is written before its checkpoint: the checkpointed step or the one
    # after it
    assert steps[ck.meta["increments"] - 1]["load_factor"] == ck.meta["load_factor"]
    assert len(steps) - ck.meta["increments"] in (0, 1)
    assert not list(run.outdir.glob("*.tmp"))
    m = re.search(r"load factor ([0-9.e+-]+)", msgs[0])
    if m:  # rank 0 knows the step; another rank names the folder only
        assert float(m.group(1)) == pytest.approx(ck.meta["load_factor"], rel=1e-6)
    else:
        assert str(run.outdir) in msgs[0]


@pytest.mark.timeout(180)
def test_ctrl_c_serial_ends_with_130_and_keeps_the_checkpoint(rve_run):
    run = rve_run(1, 0)
    elapsed, stderr = run.signal(signal.SIGINT)
    _check_interrupted(run, stderr, elapsed, "fe2qc run: interrupted (SIGINT);")
    assert "last converged step: load factor" in stderr
    assert run.proc.stdout.read() == ""  # no summary for an interrupted run


@pytest.mark.timeout(180)
def test_ctrl_c_under_mpirun_with_a_worker_ends_every_rank(rve_run):
    run = rve_run(2, 1)
    elapsed, stderr = run.signal(signal.SIGINT)  # mpirun forwards it to both ranks
    _check_interrupted(run, stderr, elapsed, "on rank 0 of 2); last converged step")


@pytest.mark.slow  # ~12 s: it waits out the 5 s rank 0 gets to end the run
@pytest.mark.timeout(180)
def test_sigint_to_the_worker_alone_ends_the_run(rve_run):
    run = rve_run(2, 1)
    elapsed, stderr = run.signal(signal.SIGINT, rank=1)
    _check_interrupted(run, stderr, elapsed, "on rank 1 of 2)")


@pytest.mark.timeout(180)
def test_a_killed_worker_ends_the_run_instead_of_hanging(rve_run):
    run = rve_run(2, 1)
    elapsed, stderr = run.signal(signal.SIGKILL, rank=1)
    assert run.proc.returncode != 0 and elapsed < 20, (run.proc.returncode, elapsed)
    assert load_checkpoint(run.outdir / "checkpoint.npz").u.size > 0


# -- --json, the output folder, errors printed once ---------------------------------------------
def test_json_stdout_is_one_object_and_rerun_needs_overwrite(tmp_path):
    toml = tmp_path / "neo.toml"
    toml.write_text(NEO_PROBLEM.format(value=20.0))
    out = tmp_path / "res"
    first = _run(_cmd(toml, out, 2, 0, "--json"), tmp_path)  # 2 mesh ranks, one checkpoint
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)  # the whole of stdout is one JSON object
    assert summary["increments"] == 2 and summary["ranks"] == 2
    assert "step   0" in first.stderr and "fe2qc run: done" in first.stderr
    written = sorted(p.name for p in out.iterdir())
    assert {"checkpoint.npz", "steps.jsonl"} <= set(written)
    # every file a run writes is one --overwrite deletes (RUN_FILE_PATTERNS stays in sync)
    assert sorted(p.name for p in previous_run_files(out)) == written, RUN_FILE_PATTERNS
    log = (out / "steps.jsonl").read_text()
    (out / "notes.txt").write_text("mine")
    (out / "checkpoint_rank1.npz").write_text("x")  # a per-rank checkpoint of earlier versions

    again = _run(_cmd(toml, out, 1, 0, "--json"), tmp_path)
    assert again.returncode == 2 and again.stdout == ""
    err = again.stderr.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--overwrite" in err[0], again.stderr
    assert (out / "steps.jsonl").read_text() == log  # nothing touched

    over = _run(_cmd(toml, out, 1, 0, "--json", "--overwrite"), tmp_path)
    assert over.returncode == 0, over.stderr
    assert json.loads(over.stdout)["ranks"] == 1
    # the stale checkpoint_rank1.npz is gone; a file the run does not write stays
    assert not (out / "checkpoint_rank1.npz").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert len((out / "steps.jsonl").read_text().splitlines()) == 2


def test_prepare_output_dir_refuses_or_clears_only_run_files(tmp_path):
    import fe2qc.mpi

    comm = fe2qc.mpi.mpi().COMM_SELF
    d = tmp_path / "a" / "b"
    assert prepare_output_dir(d, comm) == d and d.is_dir()  # created, parents too
    prepare_output_dir(d, comm)  # empty: fine
    for name in ("steps.jsonl", "checkpoint_rank3.npz", "checkpoint_rank0.tmp.npz",
                 "keep.csv", "plot.png"):
        (d / name).write_text("x")
    (d / "fe2_cells.bp").mkdir()
    (d / "fe2_cells.bp" / "data.0").write_text("x")
    with pytest.raises(InputError, match=r"not empty .*--overwrite"):
        prepare_output_dir(d, comm)
    assert len(list(d.iterdir())) == 6
    prepare_output_dir(d, comm, overwrite=True)
    assert sorted(p.name for p in d.iterdir()) == ["keep.csv", "plot.png"]
    prepare_output_dir(d, comm, overwrite=True, extra=("*.png",))  # a demo's own files
    assert [p.name for p in d.iterdir()] == ["keep.csv"]
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        prepare_output_dir(f, comm, overwrite=True)


def test_overwrite_key_in_output_section(tmp_path):
    from coupling.config import load_config

    toml = tmp_path / "p.toml"
    toml.write_text(NEO_PROBLEM.format(value=1.0) + "\n[output]\noverwrite = true\n")
    assert load_config(toml).output.overwrite is True
    toml.write_text(NEO_PROBLEM.format(value=1.0) + "\n[output]\noverwrite = 1\n")
    with pytest.raises(InputError, match="overwrite"):
        load_config(toml)


@pytest.mark.parametrize("workers", [0, 1])
def test_errors_under_mpirun_print_once(tmp_path, workers):
    bad = tmp_path / "bad.toml"
    bad.write_text("[material]\nxyz = 1\n")
    r = _run(_cmd(bad, tmp_path / "o_bad", 2, workers), tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and "unknown key 'xyz'" in lines[0], r.stderr

    fail = tmp_path / "fail.toml"
    fail.write_text(NEO_PROBLEM.format(value=-3000.0))
    r = _run(_cmd(fail, tmp_path / "o_fail", 2, workers), tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "calculation failed" in ln]
    assert len(lines) == 1, r.stderr
    assert "load stepping failed" in lines[0] and "det F" in lines[0]
    if workers:  # the failing RVE's worker is named, and who reported it
        assert "on worker rank 1" in lines[0] and "[reported by rank 0 of 2]" in lines[0]
    else:  # both mesh ranks report the same error; the Gauss point's rank is in the text
        assert re.search(r"rank \d: InputError", lines[0])
    for bad_text in FORBIDDEN:
        assert bad_text not in r.stderr

    full = tmp_path / "full"  # a non-empty output folder: refused once, by rank 0
    full.mkdir()
    (full / "steps.jsonl").write_text("{}\n")
    r = _run(_cmd(fail, full, 2, workers), tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and "is not empty" in lines[0] and "--overwrite" in lines[0]
    assert (full / "steps.jsonl").read_text() == "{}\n"


_ONE_RANK_SCRIPT = """
import sys, time
import fe2qc.mpi
import coupling.cli as cli
comm = fe2qc.mpi.mpi().COMM_WORLD
mode = sys.argv[1]
if mode == "agree":  # rank 1 never reaches the end of the run
    if comm.rank == 0:
        sys.exit(cli._agree(comm, 2, ("error", "only rank 0 failed"), timeout=2))
    time.sleep(120)

def fake_run(args, guard):
    guard.attach(comm)
    if comm.rank == 1:
        raise RuntimeError("a bug on rank 1")
    comm.barrier()  # rank 0 would wait here forever

cli._cmd_run = fake_run
sys.exit(cli.main(["run", "unused.toml"]))
"""


@pytest.mark.parametrize("mode", ["agree", "bug"])
def test_a_rank_that_fails_alone_does_not_leave_the_others_hanging(tmp_path, mode):
    script = tmp_path / "one_rank.py"
    script.write_text(_ONE_RANK_SCRIPT)
    t0 = time.monotonic()
    r = _run([str(MPIRUN), "-n", "2", sys.executable, str(script), mode], ROOT, timeout=60)
    assert time.monotonic() - t0 < 30
    if mode == "agree":
        assert r.returncode == 2
        assert r.stderr.count("only rank 0 failed") == 1
        assert "[rank 0 of 2; other ranks did not finish within 2 s" in r.stderr
    else:
        assert r.returncode == 1
        assert r.stderr.count("RuntimeError: a bug on rank 1") == 1  # its traceback, once
        assert "unexpected RuntimeError on rank 1 of 2; aborting every rank" in r.stderr
