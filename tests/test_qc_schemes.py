"""Quasicontinuum schemes: patch test, ghost forces against a hand calculation, derivatives.

The patch test is the defining property of a consistent coupling: under a homogeneous
deformation every atom and node must feel zero force. ``qcf`` (and ``gfc`` at its fixed
point) pass because atoms get exact atomistic forces and nodes exact Cauchy-Born forces of
the same potential (through the same kernels); ``bgfc`` passes because its correction is the
blended energy's gradient at the homogeneous state. ``qce`` must fail, with forces only near
the interface, and in 1D exactly as the hand calculation says.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.patch import chain_ghost_forces, patch_test
from coupling.qc.setups import default_setup
from coupling.qc.system import SCHEMES, build_system


@pytest.mark.parametrize("scheme", ["gfc", "qcf", "bgfc"])
@pytest.mark.parametrize("dim", [2, 3])
def test_corrected_schemes_pass_the_patch_test_under_random_F(scheme, dim):
    out = patch_test(scheme, dim, seed=7)
    assert out["max_force"] <= 1e-10
    assert all(c["nodes_with_force_above_1e-10"] == 0 for c in out["cases"])
    assert not np.allclose(out["cases"][1]["F"], np.eye(3))


@pytest.mark.parametrize("dim", [2, 3])
def test_qce_has_ghost_forces_only_near_the_interface(dim):
    out = patch_test("qce", dim)
    pot, _, _ = default_setup(dim)
    for case in out["cases"]:
        assert case["max_force"] > 1e-3  # O(1) ghost forces
        lo, hi = case["carriers_distance_range"]
        # within two cutoffs of the interface on either side (EAM: density of neighbours)
        assert -2 * pot.cutoff - 1e-6 <= lo and hi <= 2 * pot.cutoff + 1e-6


@pytest.mark.parametrize("F", [1.0, 1.03, 0.98])
def test_chain_qce_ghost_forces_equal_the_hand_calculation(F):
    out = chain_ghost_forces(F)
    assert out["max_difference"] < 1e-12
    # exactly four interface atoms per interface: -1, 0, 1, 2 (and the mirror -19..-22)
    assert sorted(out["carriers"]) == [-22, -21, -20, -19, -1, 0, 1, 2]
    assert abs(out["b=phi'(2Fa)"]) > 1e-3  # the check is not vacuous


def _system(scheme, dim=2):
    pot, lat, a0 = default_setup(dim)
    R, rA = (16 * a0, 3.01 * a0) if dim == 2 else (36.0, 6.0)
    return build_system(pot, lat, a0, domain=Disc(0, 0, R), atomistic=Disc(0, 0, rA),
                        scheme=scheme, vacancies=[[0.0, 0.0]], handshake=pot.cutoff * (
                            1.5 if scheme.startswith("b") else 1.0))


def _check_jacobian_columns(model, U, rng, n):
    """Check n random free columns of the Jacobian against central differences of the residual."""
    J = model.jacobian(U)
    h = 1e-6
    for dof in rng.choice(np.flatnonzero(model.system.free_dofs()), n, replace=False):
        Up, Um = U.copy().ravel(), U.copy().ravel()
        Up[dof] += h
        Um[dof] -= h
        col = (model.residual(Up) - model.residual(Um)) / (2 * h)
        scale = max(1.0, np.abs(col).max())
        assert np.abs(J[:, dof].toarray().ravel() - col).max() < 1e-6 * scale


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jacobian_matches_finite_differences_of_the_residual(scheme):
    system = _system(scheme)
    F = np.diag([1.01, 0.99, 1.0])
    model = QCModel(system, scheme, F_ref=F)
    rng = np.random.default_rng(2)
    U = system.homogeneous(F) + 0.02 * rng.standard_normal((system.n_nodes, system.ncomp))
    if scheme == "gfc":
        model.dead_load = model.ghost_force(U)
    _check_jacobian_columns(model, U, rng, 8)


@pytest.mark.parametrize("scheme", ["qce", "bqce", "bgfc"])
def test_energy_based_residual_is_the_gradient_of_the_energy(scheme):
    system = _system(scheme)
    model = QCModel(system, scheme)
    rng = np.random.default_rng(5)
    U = 0.02 * rng.standard_normal((system.n_nodes, system.ncomp))
    r = model.residual(U)
    h = 1e-5
    for dof in rng.choice(np.flatnonzero(system.free_dofs()), 6, replace=False):
        Up, Um = U.copy().ravel(), U.copy().ravel()
        Up[dof] += h
        Um[dof] -= h
        fd = (model.energy(Up) - model.energy(Um)) / (2 * h)
        assert abs(fd - r[dof]) < 1e-6 * max(1.0, abs(r[dof]))


def test_slab_jacobian_matches_finite_differences_for_eam():
    system = _system("bgfc", dim=3)
    model = QCModel(system, "bgfc")
    rng = np.random.default_rng(4)
    U = 0.02 * rng.standard_normal((system.n_nodes, system.ncomp))
    _check_jacobian_columns(model, U, rng, 6)


def test_cli_patch_test_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "coupling.cli", "qc", "patch-test", "--scheme",
                          "qcf", "--dim", "2", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["max_force"] <= 1e-10 and data["scheme"] == "qcf"
    assert data["cases"][0]["near_interface"], "per-atom forces near the interface"
    bad = subprocess.run([sys.executable, "-m", "coupling.cli", "qc", "patch-test", "--scheme",
                          "qc-magic"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown QC scheme" in bad.stderr
