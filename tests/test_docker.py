"""Static checks of the container files (docker/); `make docker-test` builds and runs the image.

These read the Dockerfile, the stand-in base recipe and the scripts only (no engine is needed; a
few milliseconds in all): what they promise each other (the base image's name, the venv's
setup stamp and mpirun) and that the image gets every source folder.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
OFFICIAL = "ghcr.io/fenics/dolfinx/dolfinx:stable"
SCRIPTS = ("engine.sh", "build_base.sh", "docker_test.sh")


def _code(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def test_dockerfile_uses_the_image_dolfinx_and_copies_every_package():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    froms = [ln for ln in text.splitlines() if ln.startswith("FROM ")]
    assert froms and "dolfinx/dolfinx" in froms[0]
    # the pip DOLFINx wheel would bring a second MPI and PETSc into the image
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "fenics" not in code.replace("ghcr.io/fenics", "") and "dolfinx-solver" not in code
    for pkg in ("fe2qc", "fe2", "atomistic", "coupling", "meshes", "demos"):
        assert f"COPY {pkg} ./{pkg}" in text, pkg
        assert (ROOT / pkg).is_dir()
    assert "pyproject.toml" in text


def test_dockerfile_copies_every_source_folder_and_what_make_test_reads():
    text = (DOCKER / "Dockerfile").read_text()
    ignored = {"build", "results", "out"}
    folders = [d.name for d in ROOT.iterdir()
               if d.is_dir() and not d.name.startswith(".") and d.name not in ignored
               and not d.name.endswith(".egg-info")
               and any(f.suffix in (".py", ".sh", ".geo", ".toml") for f in d.rglob("*"))]
    assert {"tests", "scripts", "docker", "benchmarks"} <= set(folders)
    for d in folders:
        assert f"COPY {d} ./{d}" in text, f"{d}/ is not copied into the image"
    copied_files = " ".join(ln for ln in text.splitlines() if ln.startswith("COPY ") and "./" in ln)
    for f in ("pyproject.toml", "README.md", "Makefile", ".gitignore", ".dockerignore"):
        assert f in copied_files, f
    # nothing the image needs is left out of the build context
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore
    for d in folders + ["pyproject.toml", "README.md", "Makefile", ".gitignore"]:
        assert d not in ignore, d


def test_the_image_venv_is_marked_set_up_for_the_makefile_with_mpirun_beside_python():
    code = _code((DOCKER / "Dockerfile").read_text())
    make = (ROOT / "Makefile").read_text()
    # `make test VENV=<image venv>` must find its stamp (or it would pip-install the `fenics`
    # extra into the image) and mpirun where the Makefile and the tests look for it
    assert "STAMP := $(VENV)/.setup-stamp" in make
    assert "MPIRUN ?= $(VENV)/bin/mpirun" in make
    assert re.search(r'touch "\$env/\.setup-stamp"', code)
    assert re.search(r'ln -s "\$\(command -v mpirun\)" "\$env/bin/mpirun"', code)
    assert 'env=$(python3 -c "import sys; print(sys.prefix)")' in code
    # the Makefile's target runs the script, which runs `make ... VENV=` inside
    assert re.search(r"^\.PHONY:.*\bdocker-test\b", make, re.M)
    assert re.search(r"^docker-test:\n\tbash docker/docker_test\.sh$", make, re.M)
    assert 'make -k $TARGET VENV=$VENV_IN' in (DOCKER / "docker_test.sh").read_text()


def test_the_stand_in_base_is_tagged_with_the_official_name_and_mimics_its_venv():
    froms = [ln.split()[1] for ln in (DOCKER / "Dockerfile").read_text().splitlines()
             if ln.startswith("FROM ")]
    assert froms == [OFFICIAL]
    build = (DOCKER / "build_base.sh").read_text()
    assert f"BASE={OFFICIAL}" in build and '-t "$BASE"' in build
    assert "mmdebstrap --quiet --variant=minbase" in build
    stand_in = _code((DOCKER / "standin-base.Containerfile").read_text())
    assert "python3 -m venv /dolfinx-env" in stand_in
    assert re.search(r"PATH=/dolfinx-env/bin:", stand_in)
    assert "dolfinx-solver-real" in stand_in
    # the run says when its base is a stand-in
    assert "BASE IMAGE IS A STAND-IN" in build
    assert "the base was a STAND-IN" in (DOCKER / "docker_test.sh").read_text()


@pytest.mark.parametrize("name", SCRIPTS)
def test_container_scripts_parse_and_leave_etc_alone(name):
    path = DOCKER / name
    subprocess.run(["bash", "-n", str(path)], check=True)
    code = _code(path.read_text())
    # nothing is written under /etc (podman's settings go through $CONTAINERS_CONF)
    assert not re.search(r"(>>?|\btee( -a)?)\s*\"?/etc/|\bsed -i", code), name
    for ln in code.splitlines():
        if re.match(r"\s*(cp|mv|install|ln)\b", ln):
            assert not ln.split()[-1].strip('"').startswith("/etc"), ln
    if name == "engine.sh":
        assert 'export CONTAINERS_CONF="$DT_BUILD/containers.conf"' in code
        assert 'runtime = "runc"' in code and "default_ulimits" in code
