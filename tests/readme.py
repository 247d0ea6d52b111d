"""The README's commands, run once per test session from a copy of the repository.

The table :data:`OUTPUTS` says what each command of README.md's fenced ``bash`` blocks must
write; :class:`ReadmeRunner` runs a command as written (``[--quick]`` as ``--quick``) with
``bash -c`` from a copy of the repository root, with the venv's ``bin`` first on ``PATH``, and
keeps the result, so that ``tests/test_readme_commands.py`` (exit status, promised outputs,
nothing written in the source tree) and the tests of a demo's numbers (e.g.
``tests/test_demo_crack_qc.py``) share one run of each command instead of running the demo
twice. See ``tests/test_readme_commands.py`` for what is checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV = Path(sys.prefix)  # the environment running the tests (`make setup`'s .venv)
OUT_ROOT = "results"  # where every command writes by default (README, Conventions)
FAST_TIMEOUT = 600  # s per command


@dataclass
class Spec:
    """What a README command must leave behind (globs relative to the working directory)."""

    outputs: list[str] = field(default_factory=list)
    json: tuple[str, ...] | None = None  # keys of the JSON object on the last stdout line
    stdout: str | None = None  # a regular expression stdout must match
    slow: bool = False
    run: str | None = None  # how it is run, only where it cannot be run as written (say why)
    activated: bool = True  # run with the venv first on PATH (False: the user's plain PATH)
    why: str | None = None  # not run from the suite: the reason
    after: str | None = None  # a command that must run first (e.g. the run a restart continues)


_FE2_RUN = ["steps.jsonl", "checkpoint.npz", "*.bp"]
_CRACK_QC = ["summary.json", "triangular_trapping.png", "fcc_trapping.png",
             "triangular_atoms.extxyz", "fcc_atoms.extxyz", "triangular_continuum.bp",
             "fcc_continuum.bp"]


def _in(folder: str, names: list[str]) -> list[str]:
    return [f"{OUT_ROOT}/{folder}/{n}" for n in names]


OUTPUTS: dict[str, Spec] = {
    # -- Set up and test --
    "make setup": Spec(why="builds the venv these tests run in; .ci/run runs it on a clean clone"),
    "make test": Spec(why="the suite this test is part of (.ci/run runs it)"),
    "make demo": Spec(
        outputs=(_in("fe2_crack", ["near_tip_stress.png", "summary.json", *_FE2_RUN])
                 + _in("crack_tip_qc", _CRACK_QC)),
        slow=True,
        # The venv is shared with the real checkout: re-running `setup` from a temporary copy
        # would re-point its editable install at the copy, so `setup` is taken as done.
        run="make -o .venv/.setup-stamp demo"),
    "source .venv/bin/activate": Spec(
        run="source .venv/bin/activate && command -v fe2qc python mpirun", activated=False,
        stdout="(?s)" + ".*".join(re.escape(f"{VENV / 'bin' / n}\n")
                                  for n in ("fe2qc", "python", "mpirun")),
        why=None if (VENV / "bin" / "activate").is_file() else "not a venv (no bin/activate)"),
    "python -c \"import fe2qc, dolfinx; print(dolfinx.__version__)\"": Spec(stdout=r"\d+\.\d+"),
    "make docker-test": Spec(
        why="builds a container image with podman and runs make test inside it (~20 min); "
        "run by hand, its last log summarised in the README"),
    "sbatch scripts/slurm_fe2qc.sh demos/fe2_crack.toml": Spec(
        why="needs a SLURM cluster; tests/test_slurm_script.py runs the script with a "
        "stand-in srun and checks the command line it builds"),
    # -- Command line --
    "fe2qc --help": Spec(stdout=r"usage: fe2qc"),
    "fe2qc elastic --potential Cu_u3.eam --lattice fcc --json": Spec(json=("a0", "C11", "C")),
    "fe2qc elastic --potential CuNi.eam.alloy --element Ni --lattice fcc": Spec(
        stdout=r"C11"),
    'fe2qc elastic --pair-style "lj/cut 5.5" --pair-coeff "0.4 2.2" --lattice fcc': Spec(
        stdout=r"C11"),
    "fe2qc run demos/fe2_crack_quick.toml": Spec(outputs=_in("fe2_crack_quick_run", _FE2_RUN)),
    "fe2qc run demos/fe2_crack_quick.toml --restart results/fe2_crack_quick_run": Spec(
        # the quick run has one load step: the restart finds it done and continues nothing
        outputs=_in("fe2_crack_quick_run", ["fe2_restart1_displacement.bp",
                                            "fe2_restart1_cells.bp"]),
        after="fe2qc run demos/fe2_crack_quick.toml"),
    "fe2qc qc patch-test --scheme gfc --dim 2 --json": Spec(json=("max_force",)),
    # -- FE² --
    "mpirun -n 2 fe2qc run demos/fe2_crack_quick.toml --workers 1 "
    "--outdir results/fe2_crack_workers": Spec(outputs=_in("fe2_crack_workers", _FE2_RUN)),
    "mpirun -n 2 python demos/fe2_crack.py [--quick]": Spec(
        outputs=_in("fe2_crack_quick", ["near_tip_stress.png", "summary.json", *_FE2_RUN])),
    # -- Quasicontinuum --
    "fe2qc qc patch-test --scheme qce --dim 1": Spec(),
    "fe2qc qc patch-test --scheme bgfc --dim 3 --json": Spec(json=("max_force",)),
    "python demos/crack_tip_qc.py [--quick]": Spec(outputs=_in("crack_tip_qc_quick", _CRACK_QC)),
    "python demos/qc_convergence.py [--quick]": Spec(
        outputs=_in("qc_convergence_quick", ["qc_convergence.png", "qc_convergence.json"])),
    "mpirun -n 2 python demos/crack_concurrent.py [--quick]": Spec(
        outputs=_in("crack_concurrent_quick", [
            "summary.json", "opening.png", "sigma_yy.png", "cauchy_born_atoms.extxyz",
            "perfect_atoms.extxyz", "vacancy_atoms.extxyz", "perfect_continuum.bp",
            "no_atoms_continuum.bp"])),
    "fe2qc run demos/crack_concurrent.toml": Spec(outputs=_in("crack_concurrent_run", [
        "summary.json", "steps.jsonl", "crack_atoms.extxyz", "crack_continuum.bp"])),
    # a benchmark (timings): `make test-slow`; the layouts' bitwise agreement it also checks is
    # tested in `make test` by tests/test_run_concurrent.py
    "python benchmarks/bench_concurrent.py [--quick] --json": Spec(
        json=("rve_cost_ratio", "speedup_replicated", "bitwise"), slow=True),
    "python benchmarks/bench_qc_crack.py [--quick] --json": Spec(
        json=("sites", "speedup", "relative_error")),
    # a benchmark (timings; the MD's agreement with LAMMPS is tests/test_lammps_md.py):
    # `make test-slow`
    "python benchmarks/bench_md.py [--quick] --json": Spec(slow=True,
        json=("atoms", "time_per_atom_step_s", "lammps_time_per_atom_step_s",
              "time_ratio_vs_lammps", "born_sample_s", "lammps_born_sample_s",
              "bytes_per_atom")),
    # -- Finite temperature --
    "fe2qc elastic --potential Cu_u3.eam --lattice fcc --temperature 300 --cells 3 --time 4 "
    "--json": Spec(json=("T", "a0", "C11", "C12", "C44", "C11_err", "C12_err", "C44_err", "C",
                         "method", "ensemble", "isothermal")),
    "python demos/elastic_temperature.py [--quick]": Spec(
        outputs=_in("elastic_temperature_quick", ["summary.json", "elastic_temperature.png"])),
}


# -- extracting the commands ---------------------------------------------------------------

def _strip_comment(line: str) -> str:
    """The line without a trailing shell comment (a '#' outside quotes after a blank)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def readme_commands(text: str | None = None) -> list[str]:
    """Every command of the README's fenced shell blocks, in order, each once."""
    text = README.read_text(encoding="utf-8") if text is None else text
    cmds = []
    # a fence may be indented (a block inside a list item)
    for block in re.findall(r"^[ \t]*```(?:bash|sh|shell|console)[ \t]*\n(.*?)^[ \t]*```",
                            text, re.S | re.M):
        block = re.sub(r"\\\n\s*", " ", block)  # line continuations
        for line in block.splitlines():
            cmd = " ".join(_strip_comment(line).split())
            if cmd:
                cmds.append(cmd.removeprefix("$ "))
    return list(dict.fromkeys(cmds))


def runnable(cmd: str) -> str:
    """The form that is run: the README's ``[--quick]`` as ``--quick``, nothing else changed."""
    out = cmd.replace("[--quick]", "--quick")
    if re.search(r"\[-", out):
        raise AssertionError(f"README command `{cmd}` has an optional part other than "
                             "[--quick]; teach tests/test_readme_commands.py how to run it")
    return out


# -- running them ----------------------------------------------------------------------------

def _copy_repository(dest: Path) -> Path:
    """The working tree's tracked and untracked-not-ignored files (mtimes kept), and `.venv`."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the source files from build outputs")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a tracked file someone deleted in the working tree is skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(VENV, target_is_directory=True)
    return dest


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"
                       and not (Path(dirpath) == root and d == ".venv")]
        for name in filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            files[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return files


def _env(repo: Path, activated: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "HYDRA_", "HYDI_", "MPIR_", "OMPI_", "PMIX_"))}
    env.pop("PYTHONHOME", None)
    env.pop("VIRTUAL_ENV", None)
    path = [p for p in env.get("PATH", "").split(os.pathsep)
            if p and Path(p).resolve() != (VENV / "bin").resolve()]
    if activated:
        env["VIRTUAL_ENV"] = str(VENV)
        path.insert(0, str(VENV / "bin"))
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONPATH"] = str(repo)
    env["MPLBACKEND"] = "Agg"
    return env


@dataclass
class ReadmeRun:
    """One README command's run: what ran, its process, wall time and the files it wrote."""

    cmd: str
    line: str
    proc: subprocess.CompletedProcess
    wall: float
    written: list[str]  # paths relative to the copy that this run created or changed
    repo: Path

    @property
    def tail(self) -> str:
        """The end of stdout and stderr, for failure messages."""
        return (f"\n--- stdout ---\n{self.proc.stdout[-3000:]}\n--- stderr ---\n"
                f"{self.proc.stderr[-3000:]}")

    def ok(self) -> ReadmeRun:
        """Fail the calling test unless the command exited 0; return the run."""
        assert self.proc.returncode == 0, (f"`{self.line}` exited with "
                                           f"{self.proc.returncode}{self.tail}")
        return self

    def output(self, folder: str) -> Path:
        """The folder ``results/<folder>`` this command writes to (under the copy)."""
        return self.repo / OUT_ROOT / folder

    def last_json(self) -> dict:
        """The JSON object on the last line of stdout."""
        lines = self.proc.stdout.strip().splitlines()
        assert lines, f"`{self.line}` printed nothing{self.tail}"
        return json.loads(lines[-1])


class ReadmeRunner:
    """Runs README commands from one copy of the repository, each command once."""

    def __init__(self, tmp_path_factory) -> None:
        self._factory = tmp_path_factory
        self._repo: Path | None = None
        self._runs: dict[str, ReadmeRun] = {}

    @property
    def repo(self) -> Path:
        """The copy of the repository the commands run in (made on first use)."""
        if self._repo is None:
            self._repo = _copy_repository(self._factory.mktemp("readme") / "fe2qc")
        return self._repo

    def run(self, cmd: str) -> ReadmeRun:
        """Run the README command ``cmd`` (a key of :data:`OUTPUTS`) once; later calls reuse it.

        Skips the calling test for a command the table says is not run from the suite.
        """
        spec = OUTPUTS.get(cmd)
        assert spec is not None, (f"README shows `{cmd}`, which tests/readme.py does not know: "
                                  "add its promised outputs to OUTPUTS")
        if spec.why:
            pytest.skip(f"`{cmd}`: {spec.why}")
        if spec.after is not None:
            self.run(spec.after).ok()
        if cmd not in self._runs:
            repo = self.repo
            line = spec.run or runnable(cmd)
            before = _snapshot(repo)
            t0 = time.perf_counter()
            proc = subprocess.run(["bash", "-c", line], cwd=repo, env=_env(repo, spec.activated),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=2400 if spec.slow else FAST_TIMEOUT)
            wall = time.perf_counter() - t0
            after = _snapshot(repo)
            written = sorted(p for p in after if before.get(p) != after[p])
            self._runs[cmd] = ReadmeRun(cmd, line, proc, wall, written, repo)
        return self._runs[cmd]
