"""Lattices: coordination shells, densities of rotated cells, primitive cells, clusters."""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.lattice import LATTICES, cluster, crystal, get_lattice, primitive_cell
from atomistic.neighbors import NeighborList
from fe2qc.errors import InputError

# (lattice, a0, nearest-neighbour distance, coordination)
SHELLS = [("fcc", 4.05, 4.05 / np.sqrt(2), 12), ("bcc", 2.87, 2.87 * np.sqrt(3) / 2, 8),
          ("sc", 2.5, 2.5, 6), ("triangular", 2.7, 2.7, 6)]
ORIENTATIONS = [None, [[1, 0, 0], [0, 1, -1], [0, 1, 1]], [[1, 1, -2], [1, 1, 1], [1, -1, 0]],
                [[1, 1, 0], [-1, 1, 0], [0, 0, 1]], [[1, 2, 0], [-2, 1, 0], [0, 0, 1]]]


def _coordination(config, rcut):
    nl = NeighborList(config, rcut, skin=0.0, multiple_images=True)
    d, r = nl.distances(config.positions_nc, config.cell_cc)
    count = np.bincount(np.r_[nl.i_p, nl.j_p], minlength=len(config))
    return count, r


@pytest.mark.parametrize("name, a0, dnn, z", SHELLS)
def test_every_atom_has_the_lattice_coordination_at_the_nearest_neighbour_distance(
        name, a0, dnn, z):
    size = (3, 2, 1) if name == "triangular" else (3, 3, 3)
    config = crystal(name, a0, size=size)
    count, r = _coordination(config, 1.05 * dnn)
    assert (count == z).all()
    assert np.allclose(r, dnn)
    assert get_lattice(name).nearest_neighbor_distance * a0 == pytest.approx(dnn)


@pytest.mark.parametrize("name", ["fcc", "bcc", "sc"])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_cells_are_orthogonal_with_the_lattice_density_and_coordination(
        name, orientation):
    a0 = 3.0
    lat = get_lattice(name)
    config = crystal(name, a0, size=(2, 2, 2), orientation=orientation)
    cell = config.cell_cc
    assert np.allclose(cell, np.diag(np.diag(cell)))  # orthogonal, along x, y, z
    assert len(config) / config.volume == pytest.approx(lat.atoms_per_volume / a0**3)
    dnn = lat.nearest_neighbor_distance * a0
    count, r = _coordination(config, 1.05 * dnn)
    assert (count == {"fcc": 12, "bcc": 8, "sc": 6}[name]).all()
    assert r.min() == pytest.approx(dnn)
    if orientation is not None:  # x, y, z are the requested directions
        R = config.info["rotation"]
        o = np.asarray(orientation, float)
        assert np.allclose(R, o / np.linalg.norm(o, axis=1)[:, None])


def test_oriented_cells_are_the_smallest_periodic_ones():
    # fcc [1-10] repeats every a/sqrt2, [11-2] every a sqrt6/2, [111] every a sqrt3
    c = crystal("fcc", 1.0, orientation=[[1, 1, -2], [1, 1, 1], [1, -1, 0]])
    assert np.allclose(np.diag(c.cell_cc), [np.sqrt(6) / 2, np.sqrt(3), np.sqrt(2) / 2])
    assert len(c) == 6
    c = crystal("bcc", 1.0, orientation=[[1, 1, -2], [1, 1, 1], [1, -1, 0]])
    assert np.allclose(np.diag(c.cell_cc), [np.sqrt(6), np.sqrt(3) / 2, np.sqrt(2)])
    assert len(c) == 6


def test_non_orthogonal_or_left_handed_orientations_are_refused():
    with pytest.raises(InputError, match="orthogonal"):
        crystal("fcc", 4.0, orientation=[[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="left-handed"):
        crystal("fcc", 4.0, orientation=[[1, 0, 0], [0, 1, 0], [0, 0, -1]])
    with pytest.raises(InputError, match="integer"):
        crystal("fcc", 4.0, orientation=[[1, 0, 0], [0, 0.5, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="zero"):
        crystal("fcc", 4.0, orientation=[[0, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="cubic"):
        crystal("triangular", 4.0, orientation=np.eye(3))


def test_unknown_lattice_and_bad_parameters_are_refused():
    with pytest.raises(InputError, match=", ".join(LATTICES)):
        crystal("hcp", 3.0)
    with pytest.raises(InputError, match="a0"):
        crystal("fcc", -1.0)
    with pytest.raises(InputError, match="size"):
        crystal("fcc", 4.0, size=(0, 1, 1))
    with pytest.raises(InputError, match="types"):
        crystal("fcc", 4.0, types=[0, 1, 2])


@pytest.mark.parametrize("name, a0, dnn, z", SHELLS)
def test_primitive_cell_has_one_atom_and_the_lattice_volume(name, a0, dnn, z):
    p = primitive_cell(name, a0)
    lat = get_lattice(name)
    assert len(p) == 1 and all(p.pbc)
    assert p.volume == pytest.approx(a0**3 / lat.atoms_per_volume)
    count, r = _coordination(p, 1.05 * dnn)
    assert count[0] == z  # z/2 stored self-image pairs, each counted at both ends
    assert np.allclose(r, dnn)


def test_clusters_contain_the_coordination_shells():
    c = cluster("fcc", 4.0, 4.0 / np.sqrt(2) * 1.01)
    assert len(c) == 13 and not any(c.pbc)
    assert np.allclose(c.positions_nc[0], 0.0)
    c = cluster("fcc", 4.0, 6.0)  # 1 + 12 + 6 + 24 + 12
    assert len(c) == 55
    c = cluster("bcc", 2.87, 2.87 * 1.01)  # 1 + 8 + 6
    assert len(c) == 15
    c = cluster("triangular", 1.0, 1.01)
    assert len(c) == 7 and np.allclose(c.positions_nc[:, 2], 0.0)


def test_types_per_basis_atom_make_b2_ordering():
    c = crystal("bcc", 3.0, size=(2, 2, 2), types=[0, 1])
    assert np.bincount(c.types_n).tolist() == [8, 8]
    # every nearest neighbour of a type-0 atom is of type 1
    nl = NeighborList(c, 3.0 * np.sqrt(3) / 2 * 1.05, skin=0.0)
    assert (c.types_n[nl.i_p] != c.types_n[nl.j_p]).all()


def test_triangular_layer_is_flat_with_a_large_periodic_height():
    c = crystal("triangular", 2.0, size=(4, 3, 1), height=12.0)
    assert np.allclose(c.positions_nc[:, 2], 0.0)
    assert c.cell_cc[2, 2] == pytest.approx(24.0)
    open_z = crystal("triangular", 2.0, size=(4, 3, 1), pbc=(True, True, False))
    assert open_z.pbc == (True, True, False)
    assert len(c) / (c.volume / c.cell_cc[2, 2]) == pytest.approx(2 / (np.sqrt(3) * 4.0))
