"""Static checks of the Dockerfile (no Docker engine runs in CI, so it is not built here)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
