"""Atomistic RVE material points in the QC continuum (issue 11): perfect-lattice RVEs.

A perfect Bravais RVE relaxes nothing under a homogeneous F, so as the continuum's material
point it must reproduce the Cauchy-Born continuum: the patch test of the consistent schemes
holds (forces at round-off under uniform F), and at a non-uniform displacement the residual and
the Jacobian equal those of the Cauchy-Born continuum of the same lattice. An RVE of another
lattice constant is refused before any work (its volume per site is not the QC lattice's).
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.rve import AtomisticRVE
from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.patch import PATCH_TOLERANCE
from coupling.qc.setups import default_setup
from coupling.qc.system import build_system
from fe2qc.errors import InputError
from fe2qc.material import PointMaterial

#: (domain radius, atomistic radius) in units of a0 for the 2D lattice, in Å for the slab
_SIZES = {2: (20.0, 4.01, (2, 1, 1)), 3: (42.0, 8.0, (2, 2, 2))}


def _system(dim, scheme):
    pot, lattice, a0 = default_setup(dim)
    R, Ra, size = _SIZES[dim]
    scale = a0 if dim == 2 else 1.0
    system = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R * scale),
                          atomistic=Disc(0.0, 0.0, Ra * scale), scheme=scheme)
    return system, pot, lattice, a0, size


def _rve(pot, lattice, a0, size):
    return AtomisticRVE.from_lattice(pot, lattice, a0, size=size, dim=3, multiple_images=True)


def _uniform_F(dim, seed=7, amplitude=0.02):
    rng = np.random.default_rng(seed)
    F = np.eye(3)
    k = 2 if dim == 2 else 3
    F[:k, :k] += amplitude * rng.uniform(-1, 1, (k, k))
    if dim == 3:  # the slab is one period thick: keep the z column of F at identity
        F[:, 2] = [0.0, 0.0, 1.0]
    return F


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", ["qcf", "gfc", "bgfc"])
def test_patch_test_with_perfect_lattice_rve_points(dim, scheme):
    system, pot, lattice, a0, size = _system(dim, scheme)
    rve = _rve(pot, lattice, a0, size)
    for F in (np.eye(3), _uniform_F(dim)):
        material = PointMaterial(rve)
        model = QCModel(system, scheme, F_ref=F, material=material)
        U = system.homogeneous(F)
        if scheme == "gfc":
            model.dead_load = model.ghost_force(U)
        f = model.node_forces(U)
        assert np.linalg.norm(f, axis=1).max() <= PATCH_TOLERANCE
        assert material.last_work.sum() == 0  # a perfect lattice relaxes nothing


@pytest.mark.parametrize("dim", [2])  # the slab: 35 s here, covered by its patch test
def test_perfect_rve_continuum_equals_cauchy_born(dim):
    system, pot, lattice, a0, size = _system(dim, "bqce")
    rve_model = QCModel(system, "bqce", material=PointMaterial(_rve(pot, lattice, a0, size)))
    cb_model = QCModel(system, "bqce")
    rng = np.random.default_rng(3)
    U = system.homogeneous(_uniform_F(dim)) + 0.01 * rng.standard_normal(
        (system.n_nodes, system.ncomp))
    g_rve, g_cb = rve_model.residual(U), cb_model.residual(U)
    assert np.abs(g_rve - g_cb).max() <= 1e-10 * np.abs(g_cb).max()
    K_rve, K_cb = rve_model.jacobian(U), cb_model.jacobian(U)
    assert abs(K_rve - K_cb).max() <= 1e-10 * abs(K_cb).max()


def test_rve_of_another_lattice_constant_is_refused():
    system, pot, lattice, a0, size = _system(2, "bgfc")
    rve = _rve(pot, lattice, 1.01 * a0, size)
    with pytest.raises(InputError, match="volume per site"):
        QCModel(system, "bgfc", material=PointMaterial(rve))
