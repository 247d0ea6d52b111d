"""The QC continuum's material point must be the atoms' crystal; bad set-ups are refused early.

:func:`coupling.qc.points.rve_point_model` builds the RVE of a system's own crystal: its
stress equals the Cauchy-Born stress of the system's own kernel (an independent calculation:
the lattice sum of :mod:`atomistic.cb_batch`, not the RVE's relaxation). Everything else is
refused before any material evaluation, with a message that names the problem and the fix: a
misoriented RVE (cell vectors that are not lattice vectors, or, in a coincidence-site cell
whose vectors are, atoms off the lattice), a different potential or species (unless a
material interface is allowed on purpose, with a warning), an atomistic region whose
handshake and padding reach the clamped outer layer, and a handshake narrower than the
cutoff.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from atomistic.lattice import crystal
from atomistic.potentials import load_potential
from atomistic.rve import AtomisticRVE
from atomistic.structure import Configuration
from coupling.dispatch import DispatchedMaterial, split_world
from coupling.qc.continuum import LatticeCauchyBorn, qc_site_volume
from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.points import (
    MaterialInterfaceWarning,
    check_material,
    potential_fingerprint,
    rve_point_model,
)
from coupling.qc.setups import default_setup
from coupling.qc.system import build_system
from fe2qc.errors import InputError
from fe2qc.material import PointMaterial
from fe2qc.mpi import mpi

_SYSTEMS = {}


def _small_system(dim):
    """A small system per lattice (chain, triangular layer, Cu slab), built once."""
    if dim not in _SYSTEMS:
        pot, lattice, a0 = default_setup(dim)
        R, Ra = {1: (30 * a0, 3 * a0), 2: (11 * a0, 2.01 * a0), 3: (26.0, 3.7)}[dim]
        _SYSTEMS[dim] = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R),
                                     atomistic=Disc(0.0, 0.0, Ra), scheme="qcf",
                                     resolve_clamp=False, clamp_width=pot.cutoff, growth=0.8)
    return _SYSTEMS[dim]


def _F(system, seed=1, amplitude=0.02):
    """A deformation gradient the QC can impose: the c x d block of F - I (rest identity)."""
    c, d = system.ncomp, system.mesh.dim
    F = np.eye(3)
    F[:c, :d] += amplitude * np.random.default_rng(seed).uniform(-1, 1, (c, d))
    return F


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_rve_of_the_system_has_its_cauchy_born_stress_and_passes_the_checks(dim):
    system = _small_system(dim)
    rve = rve_point_model(system)
    assert rve.site_volume == pytest.approx(qc_site_volume(system), rel=1e-14)
    F = _F(system)
    P_cb = LatticeCauchyBorn.of_system(system).evaluate(F[None])[0][0]
    P_rve = rve.evaluate_one(F).P
    assert np.abs(P_rve - P_cb).max() <= 1e-10 * np.abs(P_cb).max()
    # accepted by the checks, as the point model of a PointMaterial and of a dispatcher
    material = PointMaterial(rve)
    t = check_material(system, material)
    assert t == pytest.approx(qc_site_volume(system) / system.omega, rel=1e-14)
    with DispatchedMaterial(split_world(mpi().COMM_SELF, 0), rve) as dispatched:
        assert check_material(system, dispatched) == t
    if dim > 1:  # a relaxed vacancy RVE still sits on the QC lattice
        check_material(system, PointMaterial(rve_point_model(system, vacancy=True)))


class _Zoned:
    """A material made of others (as a continuum zoned near/far from the atoms)."""

    dim = 3

    def __init__(self, *parts):
        self.parts = parts


def test_misoriented_fcc_rve_is_refused_before_any_evaluation():
    system = _small_system(3)
    pot, lattice, a0 = default_setup(3)
    # the same crystal turned 45 degrees about z: same volume per site, wrong frame
    turned = AtomisticRVE.from_lattice(pot, lattice, a0, size=(1, 1, 1), multiple_images=True,
                                       orientation=[[1, -1, 0], [1, 1, 0], [0, 0, 1]])
    material = PointMaterial(turned)
    with pytest.raises(InputError, match=r"does not match the QC lattice 'fcc' .*\[100\].*"
                                         r"cell vector 0 .*rve_point_model"):
        QCModel(system, "qcf", material=material)
    assert material.calls == 0
    with DispatchedMaterial(split_world(mpi().COMM_SELF, 0), turned) as dispatched:
        with pytest.raises(InputError, match="does not match the QC lattice"):
            QCModel(system, "qcf", material=dispatched)
    # a material made of others (near the atoms, far away) has each part checked
    zoned = _Zoned(LatticeCauchyBorn.of_system(system), PointMaterial(turned))
    with pytest.raises(InputError, match="does not match the QC lattice"):
        check_material(system, zoned)
    # a turn by 90 degrees about z is a symmetry of the cube: the same crystal, accepted
    same = AtomisticRVE.from_lattice(pot, lattice, a0, size=(1, 1, 1), multiple_images=True,
                                     orientation=[[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    check_material(system, PointMaterial(same))


def _coincidence_site_cell(a0, *, rotated):
    """The 7-site coincidence cell of the triangular lattice (Sigma 7, 21.79 degrees).

    Its cell vectors are lattice vectors of both the lattice and the lattice turned by the
    Sigma-7 angle; ``rotated`` fills it with the turned lattice's sites.
    """
    a1, a2 = np.array([1.0, 0.0]), np.array([0.5, np.sqrt(3) / 2])
    v, w = 2 * a1 + a2, a1 + 2 * a2  # |v|^2 = |w|^2 = 7
    theta = np.arctan2(v[1], v[0]) - np.arctan2(w[1], w[0]) if rotated else 0.0
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    c60 = np.array([[0.5, -np.sqrt(3) / 2], [np.sqrt(3) / 2, 0.5]])
    cell2 = np.array([v, c60 @ v])  # rows
    ij = np.stack(np.meshgrid(np.arange(-6, 7), np.arange(-6, 7)), -1).reshape(-1, 2)
    sites = (ij @ np.array([a1, a2])) @ R.T
    frac = np.mod(np.round(sites @ np.linalg.inv(cell2), 9), 1.0)
    frac = np.unique(np.round(frac, 6), axis=0)
    assert len(frac) == 7
    H = 10.0 * a0
    cell = np.zeros((3, 3))
    cell[:2, :2] = cell2 * a0
    cell[2, 2] = H
    pos = np.zeros((7, 3))
    pos[:, :2] = frac @ cell2 * a0
    return Configuration(pos, cell, (True, True, True))


def test_coincidence_site_rve_of_a_turned_layer_is_refused_on_its_atoms():
    system = _small_system(2)
    pot, _, a0 = default_setup(2)
    good = AtomisticRVE(pot, _coincidence_site_cell(a0, rotated=False), thickness=1.0,
                        multiple_images=True)
    check_material(system, PointMaterial(good))  # the lattice itself in a 7-site cell
    turned = AtomisticRVE(pot, _coincidence_site_cell(a0, rotated=True), thickness=1.0,
                          multiple_images=True)
    assert turned.site_volume == pytest.approx(qc_site_volume(system), rel=1e-12)
    with pytest.raises(InputError, match=r"does not match .*triangular.*only 14% of its atoms"):
        check_material(system, PointMaterial(turned))


def test_rve_of_another_potential_is_refused_or_allowed_as_an_interface_with_a_warning():
    system = _small_system(2)
    _, lattice, a0 = default_setup(2)
    # another object with the same parameters is the same potential
    twin = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
    assert twin is not system.potential
    assert potential_fingerprint(twin) == potential_fingerprint(system.potential)
    check_material(system, PointMaterial(AtomisticRVE.from_lattice(
        twin, lattice, a0, size=(2, 1, 1), multiple_images=True)))
    other = load_potential("lj/smooth", epsilon=0.41, sigma=2.2, cutoff=5.5)
    rve = AtomisticRVE.from_lattice(other, lattice, a0, size=(2, 1, 1), multiple_images=True)
    material = PointMaterial(rve)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refusal does not warn
        with pytest.raises(InputError, match=r"epsilon=0.41.* is not the atoms' .*"
                                             r"allow_interface=True"):
            QCModel(system, "qcf", material=material)
    assert material.calls == 0
    with pytest.warns(MaterialInterfaceWarning, match="material interface .*patch test"):
        model = QCModel(system, "qcf", material=material, allow_interface=True)
    assert model.material is material


def test_eam_of_another_file_or_species_is_refused():
    system = _small_system(3)
    _, lattice, a0 = default_setup(3)
    # the same file loaded again is the same potential
    check_material(system, PointMaterial(AtomisticRVE.from_lattice(
        load_potential("Cu_u3.eam"), lattice, a0, size=(1, 1, 1), multiple_images=True)))
    u6 = load_potential("Cu_u6.eam")  # another Cu EAM (at the system's a0: same V0)
    with pytest.raises(InputError, match=r"Cu_u6.eam.* is not the atoms' .*Cu_u3.eam"):
        check_material(system, PointMaterial(AtomisticRVE.from_lattice(
            u6, lattice, a0, size=(1, 1, 1), multiple_images=True)))
    # the atoms' potential, the other element of an alloy file
    cuni = load_potential("CuNi.eam.alloy")
    alloy = build_system(cuni, lattice, a0, domain=Disc(0.0, 0.0, 26.0),
                         atomistic=Disc(0.0, 0.0, 3.7), scheme="qcf", resolve_clamp=False,
                         clamp_width=cuni.cutoff, growth=0.8)
    ni = AtomisticRVE(cuni, crystal(lattice, a0, size=(1, 1, 1), types=1), multiple_images=True)
    with pytest.raises(InputError, match=r"species \[1\], the QC atoms of \[0\]"):
        check_material(alloy, PointMaterial(ni))


def test_materials_without_a_crystal_are_checked_for_their_volume_per_site_only():
    from fe2.materials import NeoHookean

    system = _small_system(2)
    t = check_material(system, NeoHookean(0.3, 0.5, 3))
    assert t == check_material(system, LatticeCauchyBorn.of_system(system))
    with pytest.raises(InputError, match="volume per site"):
        check_material(system, LatticeCauchyBorn(system.cauchy_born,
                                                 1.01 * qc_site_volume(system)))


def test_rve_point_model_refuses_what_cannot_match_the_system():
    with pytest.raises(InputError, match="size along the others must be 1"):
        rve_point_model(_small_system(2), size=(2, 1, 2))
    with pytest.raises(InputError, match="do not pass orientation"):
        rve_point_model(_small_system(3), orientation=[[1, -1, 0], [1, 1, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="dim must be 3"):
        rve_point_model(_small_system(3), dim=2)
    with pytest.raises(InputError, match="chain ends"):
        rve_point_model(_small_system(1), vacancy=True)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_atomistic_region_whose_band_and_padding_reach_the_clamped_layer_is_refused(dim):
    """Refused iff the region's band comes within clamp + cutoff of the boundary.

    The band is the handshake (the blended schemes': handshake + cutoff); one lattice spacing
    either side of that limit decides.
    """
    pot, lattice, a0 = default_setup(dim)
    rc = pot.cutoff
    R = 30 * a0 if dim < 3 else 60.0
    spacing = a0 if dim < 3 else a0 / 2
    for scheme, band in (("qcf", rc), ("bgfc", 3 * rc)):  # defaults: rc and 2 rc + rc
        limit = R - 2 * rc - rc - band  # default clamp layer 2 rc, plus the cutoff
        build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R),
                     atomistic=Disc(0.0, 0.0, limit - 1.5 * spacing), scheme=scheme,
                     resolve_clamp=False, growth=0.8)
        with pytest.raises(InputError, match="reaches the clamped outer boundary .*shrink the "
                                             "atomistic region or enlarge the domain"):
            build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R),
                         atomistic=Disc(0.0, 0.0, limit + 1.5 * spacing), scheme=scheme,
                         resolve_clamp=False, growth=0.8)


@pytest.mark.parametrize("scheme", ["qcf", "bgfc"])
def test_handshake_narrower_than_the_cutoff_is_refused_and_the_cutoff_is_accepted(scheme):
    pot, lattice, a0 = default_setup(2)
    kw = dict(domain=Disc(0.0, 0.0, 20 * a0), atomistic=Disc(0.0, 0.0, 3 * a0), scheme=scheme,
              resolve_clamp=False, growth=0.8)
    with pytest.raises(InputError, match="handshake width .* narrower than the potential "
                                         "cutoff.*set handshake >= the cutoff"):
        build_system(pot, lattice, a0, handshake=0.99 * pot.cutoff, **kw)
    system = build_system(pot, lattice, a0, handshake=pot.cutoff, **kw)
    assert system.info["handshake"] == pot.cutoff


def test_a_zoned_material_has_each_part_checked():
    """The zoned material of the concurrent crack: a misoriented far RVE is refused."""
    from coupling.qc.concurrent import ZonedMaterial, concurrent_crack_system

    system, _ = concurrent_crack_system(radius=8, atomistic_radius=2.5)
    near = LatticeCauchyBorn.of_system(system)
    far_points = np.ones(system.mesh.n_cells, bool)
    far = PointMaterial(rve_point_model(system, size=(1, 1, 1)))
    QCModel(system, "bgfc", material=ZonedMaterial(near, far, far_points))
    R = [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]
    bad = PointMaterial(AtomisticRVE.from_lattice(system.potential, "fcc", system.info["a0"],
                                                  size=(1, 1, 1), dim=3, multiple_images=True,
                                                  orientation=R))
    with pytest.raises(InputError, match="does not match the QC lattice"):
        QCModel(system, "bgfc", material=ZonedMaterial(near, bad, far_points))
