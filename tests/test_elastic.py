"""Equilibrium lattice constant, cohesive energy and elastic constants against LAMMPS and
published values."""

import json
import subprocess
import sys

import numpy as np
import pytest

from atomistic.elastic import elastic_constants
from atomistic.potentials import load_potential
from fe2qc.errors import InputError

# Published values (0 K, as fitted/reported by the potential's authors):
# Mishin et al., Phys. Rev. B 63, 224106 (2001), Table: a0 = 3.615 Å, Ec = 3.54 eV,
# C11 = 169.9, C12 = 122.6, C44 = 76.2 GPa.
MISHIN_CU = {"a0": 3.615, "ecoh": 3.54, "C11": 169.9, "C12": 122.6, "C44": 76.2}
# Foiles, Baskes & Daw, Phys. Rev. B 33, 7983 (1986): Cu a0 = 3.615 Å, Esub = 3.54 eV (fitted).
FBD_CU = {"a0": 3.615, "ecoh": 3.54}


@pytest.mark.lammps
@pytest.mark.parametrize("name", ["Cu_u3.eam", "Cu_mishin1.eam.alloy"])
def test_cu_elastic_constants_match_lammps_within_0p1_percent(name):
    from tests.lammps_helpers import lammps_cubic_elastic

    pot = load_potential(name)
    ours = elastic_constants(pot, "fcc")
    ref = lammps_cubic_elastic(pot.lammps_commands(), 3.6)
    for key in ("a0", "ecoh", "C11", "C12", "C44"):
        got = ours.as_dict()[key]
        assert got == pytest.approx(ref[key], rel=1e-3), (key, got, ref[key])
    # the two agree much better than the 0.1 % the issue asks for
    assert ours.a0 == pytest.approx(ref["a0"], rel=1e-7)
    assert ours.ecoh == pytest.approx(ref["ecoh"], rel=1e-9)
    for key in ("C11", "C12", "C44"):
        assert ours.as_dict()[key] == pytest.approx(ref[key], rel=1e-6), key


def test_mishin_cu_matches_published_values():
    res = elastic_constants(load_potential("Cu_mishin1.eam.alloy"), "fcc").as_dict()
    for key, value in MISHIN_CU.items():
        assert res[key] == pytest.approx(value, rel=1e-3), key


def test_cu_u3_matches_published_lattice_constant_and_cohesive_energy():
    res = elastic_constants(load_potential("Cu_u3.eam"), "fcc").as_dict()
    for key, value in FBD_CU.items():
        assert res[key] == pytest.approx(value, rel=1e-3), key
    # cubic symmetry and Born stability
    C = np.array(res["C"])
    assert np.allclose(C[:3, :3][~np.eye(3, dtype=bool)], res["C12"])
    assert res["C11"] > abs(res["C12"]) and res["C44"] > 0


def test_lj_fcc_obeys_cauchy_relation():
    pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.3, cutoff=6.0)
    res = elastic_constants(pot, "fcc")
    assert res.C[0, 1] == pytest.approx(res.C[3, 3], rel=1e-10)  # C12 = C44 for pairs at p = 0


def test_cli_elastic_json_has_the_documented_keys():
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "elastic", "--potential",
                          "Cu_u3.eam", "--lattice", "fcc", "--json"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("a0", "ecoh", "C", "C11", "C12", "C44"):
        assert key in data
    assert np.array(data["C"]).shape == (6, 6)
    assert data["ecoh"] > 0


def test_cli_elastic_reports_bad_input_clearly():
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "elastic", "--potential",
                          "no_such_file.eam", "--lattice", "fcc"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "no_such_file.eam" in out.stderr
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "elastic", "--potential",
                          "Cu_u3.eam", "--lattice", "hcp"], capture_output=True, text=True)
    assert out.returncode == 2 and "hcp" in out.stderr


def test_unknown_lattice_is_refused():
    with pytest.raises(InputError, match="unknown lattice"):
        elastic_constants(load_potential("Cu_u3.eam"), "diamond")
