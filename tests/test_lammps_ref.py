"""Sanity checks of the LAMMPS reference wrapper itself (frames, units, boundaries)."""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.neighbors import NeighborList
from atomistic.structure import Configuration
from fe2qc.tensors import rotate4

pytestmark = pytest.mark.lammps

LJ = ["pair_style lj/cut 2.5", "pair_coeff * * 1.0 1.0"]  # eps = 1 eV, sigma = 1 Å


def lj(r):
    return 4 * (r**-12 - r**-6), 4 * (-12 * r**-13 + 6 * r**-7), 4 * (156 * r**-14 - 42 * r**-8)


def random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_lj_dimer_energy_force_virial_and_born_are_analytic():
    """The Born term is (phi'' - phi'/r) d d d d / r^2.

    (``numdiff``; see run_lammps on ``analytic``.)
    """
    from atomistic.lammps import run_lammps

    r = 1.13
    u = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    x = np.array([[0.3, 0.1, 0.2], [0.3, 0.1, 0.2]]) + np.outer([0, 1], r * u)
    c = Configuration(x, np.eye(3) * 5.0, pbc=(False, False, False))
    out = run_lammps(c, LJ, born="numdiff", born_delta=1e-6)
    phi, dphi, d2phi = lj(r)
    assert out["energy"] == pytest.approx(phi, rel=1e-13)
    np.testing.assert_allclose(out["energies_n"], [phi / 2, phi / 2], rtol=1e-13)
    np.testing.assert_allclose(out["forces_nc"], [dphi * u, -dphi * u], rtol=1e-12, atol=1e-12)
    d = r * u
    np.testing.assert_allclose(out["virial_cc"], -dphi * np.outer(d, d) / r, rtol=1e-10)
    born = (d2phi - dphi / r) * np.einsum("a,b,c,d->abcd", d, d, d, d) / r**2
    np.testing.assert_allclose(out["born_ijkl"] * out["volume"], born, rtol=1e-6,
                               atol=1e-7 * np.abs(born).max())


def lj_crystal(seed, pbc=(True, True, True)):
    rng = np.random.default_rng(seed)
    a = 1.56
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) * a
    c = Configuration(basis, np.eye(3) * a, pbc=pbc).repeat((4, 4, 4))
    return c.deformed(np.eye(3) + 0.05 * rng.standard_normal((3, 3))), rng


@pytest.mark.parametrize("left_handed", [False, True])
def test_rotating_a_triclinic_cell_rotates_forces_virial_and_born(left_handed):
    from atomistic.lammps import run_lammps

    c, rng = lj_crystal(1)
    c.positions_nc += 0.03 * rng.standard_normal(c.positions_nc.shape)
    if left_handed:
        c.cell_cc = c.cell_cc[[1, 0, 2]]
    ref = run_lammps(c, LJ, born="analytic")
    R = random_rotation(2)
    rot = Configuration(c.positions_nc @ R.T + 7.0, c.cell_cc @ R.T, c.pbc)
    out = run_lammps(rot, LJ, born="analytic")
    assert out["energy"] == pytest.approx(ref["energy"], rel=1e-12)
    np.testing.assert_allclose(out["energies_n"], ref["energies_n"], rtol=1e-10, atol=1e-12)
    f_scale = np.abs(ref["forces_nc"]).max()
    np.testing.assert_allclose(out["forces_nc"], ref["forces_nc"] @ R.T, atol=1e-10 * f_scale)
    w_scale = np.abs(ref["virial_cc"]).max()
    np.testing.assert_allclose(out["virial_cc"], R @ ref["virial_cc"] @ R.T,
                               atol=1e-10 * w_scale)
    born_rot = rotate4(ref["born_ijkl"], R)
    np.testing.assert_allclose(out["born_ijkl"], born_rot,
                               atol=1e-10 * np.abs(born_rot).max())
    assert out["volume"] == pytest.approx(c.volume, rel=1e-12)


def test_born_numdiff_of_a_stressed_triclinic_crystal_is_the_pair_born_term_per_volume():
    from atomistic.lammps import run_lammps
    from fe2qc.tensors import to_voigt_stiffness

    c, _ = lj_crystal(3)
    out = run_lammps(c, LJ, born="numdiff", born_delta=1e-6)
    nl = NeighborList(c, 2.5, 0.0)
    d, r = nl.distances(c.positions_nc, c.cell_cc)
    d, r = d[r < 2.5], r[r < 2.5]
    _, dphi, d2phi = lj(r)
    C = np.einsum("p,pa,pb,pc,pd->abcd", (d2phi - dphi / r) / r**2, d, d, d, d) / c.volume
    np.testing.assert_allclose(out["born_ijkl"], C, atol=1e-6 * np.abs(C).max())
    np.testing.assert_allclose(out["born_vv"], to_voigt_stiffness(C), atol=1e-6 * np.abs(C).max())
    np.testing.assert_allclose(out["born_vv"] * out["volume"], out["born_energy_vv"],
                               rtol=1e-14)
    assert np.abs(out["virial_cc"]).max() / c.volume > 0.5  # really stressed


def test_slab_with_open_direction_equals_periodic_cell_with_vacuum():
    from atomistic.lammps import run_lammps

    c, rng = lj_crystal(4, pbc=(True, True, False))
    c.positions_nc += 0.03 * rng.standard_normal(c.positions_nc.shape)
    slab = run_lammps(c, LJ)
    vac = c.copy()
    vac.pbc = (True, True, True)
    normal = np.cross(c.cell_cc[0], c.cell_cc[1])
    vac.cell_cc[2] = normal / np.linalg.norm(normal) * 40.0
    ref = run_lammps(vac, LJ)
    assert slab["energy"] == pytest.approx(ref["energy"], rel=1e-12)
    np.testing.assert_allclose(slab["forces_nc"], ref["forces_nc"],
                               atol=1e-10 * np.abs(ref["forces_nc"]).max())


def test_strongly_tilted_cell_gives_the_same_result_as_its_reduced_cell():
    from atomistic.lammps import run_lammps

    c, rng = lj_crystal(5)
    c.positions_nc += 0.03 * rng.standard_normal(c.positions_nc.shape)
    ref = run_lammps(c, LJ)
    a, b, cc = c.cell_cc
    tilted = Configuration(c.positions_nc, np.array([a, b + 2 * a, cc - 3 * b + a]), c.pbc)
    out = run_lammps(tilted, LJ)
    assert out["energy"] == pytest.approx(ref["energy"], rel=1e-12)
    np.testing.assert_allclose(out["forces_nc"], ref["forces_nc"],
                               atol=1e-10 * np.abs(ref["forces_nc"]).max())
    np.testing.assert_allclose(out["virial_cc"], ref["virial_cc"],
                               atol=1e-10 * np.abs(ref["virial_cc"]).max())
