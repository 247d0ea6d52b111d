"""Neighbour lists against brute force.

Triclinic periodic cells (several images, an atom's own images), open clusters, mixed
periodicity, unwrapped positions, and rebuild-on-move.
"""

import itertools

import numpy as np
import pytest

from atomistic.lattice import crystal
from atomistic.neighbors import NeighborList, pair_vectors
from atomistic.structure import Configuration, perpendicular_widths
from fe2qc.errors import InputError

PBCS = list(itertools.product((False, True), repeat=3))


def brute_pairs(x, cell, pbc, rc, margin=0.0):
    """All (i <= j, shift) with |x_j - x_i + shift @ cell| < rc, by brute force.

    For i == j only shift > 0 (lexicographically). Returns (sure, borderline): pairs closer
    than rc - margin, and pairs within margin of rc, which either answer may contain.
    """
    x = np.asarray(x, float)
    n = len(x)
    sure, border = set(), set()
    if n == 0:
        return sure, border
    periodic = any(pbc)
    if periodic:
        s = x @ np.linalg.inv(cell)
        h = perpendicular_widths(cell)
        ranges = []
        for c in range(3):
            if pbc[c]:
                k = int(np.ceil(rc / h[c] + np.ptp(s[:, c]))) + 1
                ranges.append(range(-k, k + 1))
            else:
                ranges.append(range(0, 1))
        shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64)
    else:
        shifts = np.zeros((1, 3), np.int64)
    sv = shifts @ cell if periodic else np.zeros((1, 3))
    for i in range(n):
        d = x[None, i:, :] - x[i] + sv[:, None, :]  # (shift, j - i, 3)
        r = np.sqrt((d * d).sum(-1))
        for a, b in zip(*np.nonzero(r < rc + margin), strict=True):
            j = i + b
            f = tuple(int(v) for v in shifts[a])
            if j == i and f <= (0, 0, 0):
                continue
            (border if r[a, b] >= rc - margin else sure).add((i, j, f))
    return sure, border


def list_pairs(nl):
    pairs = list(zip(nl.i_p.tolist(), nl.j_p.tolist(), map(tuple, nl.s_pc.tolist()),
                     strict=True))
    assert len(set(pairs)) == len(pairs), "duplicate pairs"
    return set(pairs)


def check(x, cell, pbc, cutoff, skin=0.0):
    conf = Configuration(x, cell, pbc)
    nl = NeighborList(conf, cutoff, skin, multiple_images=True)
    got = list_pairs(nl)
    sure, border = brute_pairs(x, cell, pbc, cutoff + skin, margin=1e-9)
    missing = sure - got
    extra = got - sure - border
    assert not missing, f"missing {sorted(missing)[:5]}"
    assert not extra, f"extra {sorted(extra)[:5]}"
    assert np.all(nl.i_p <= nl.j_p)
    self_p = nl.i_p == nl.j_p
    assert all(tuple(s) > (0, 0, 0) for s in nl.s_pc[self_p].tolist())
    for a in range(3):
        if not pbc[a]:
            assert not nl.s_pc[:, a].any()
    d, r = pair_vectors(conf.positions_nc, conf.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
    assert np.all(r < cutoff + skin + 1e-9)
    assert nl.i_p.dtype == nl.j_p.dtype == nl.s_pc.dtype == np.int64
    assert nl.s_pc.shape == (len(nl), 3)
    return nl


def random_cell(rng, lo=1.5, hi=6.0):
    while True:
        cell = np.diag(rng.uniform(lo, hi, 3)) + rng.normal(scale=0.3 * hi, size=(3, 3))
        if abs(np.linalg.det(cell)) > 0.2 * np.prod(np.linalg.norm(cell, axis=1)):
            return cell


@pytest.mark.parametrize("pbc", PBCS)
def test_random_triclinic_cells_with_many_images(pbc):
    rng = np.random.default_rng(sum(1 << k for k in range(3) if pbc[k]))
    for _ in range(25):
        cell = random_cell(rng)
        n = int(rng.integers(1, 12))
        # positions not wrapped into the cell: shifts must refer to the input positions
        x = rng.uniform(-1.0, 2.0, (n, 3)) @ cell
        cutoff = rng.uniform(0.3, 1.6) * perpendicular_widths(cell).max()
        check(x, cell, pbc, cutoff, skin=rng.uniform(0.0, 0.5))


def test_one_atom_cell_sees_its_own_images():
    cell = np.array([[2.0, 0.0, 0.0], [0.7, 1.9, 0.0], [0.4, -0.6, 2.2]])
    nl = check(np.zeros((1, 3)), cell, (True, True, True), 4.5)
    assert len(nl) > 10 and np.all(nl.i_p == 0) and np.all(nl.j_p == 0)
    # an image and its negative are one pair
    s = {tuple(v) for v in nl.s_pc.tolist()}
    assert not any(tuple(-np.array(v)) in s for v in s)


@pytest.mark.parametrize("pbc", [(True, True, False), (False, True, True), (True, False, False)])
def test_mixed_periodicity_slab(pbc):
    rng = np.random.default_rng(7)
    c = crystal("fcc", 3.615, size=(3, 3, 4))
    x = c.positions_nc + rng.normal(scale=0.05, size=c.positions_nc.shape)
    check(x, c.cell_cc, pbc, 4.95, skin=1.0)
    # a triclinic slab with atoms far outside the cell along the open direction
    cell = random_cell(rng, 3.0, 8.0)
    x = rng.uniform(-0.5, 1.5, (40, 3)) @ cell
    check(x, cell, pbc, 3.3, skin=0.4)


def test_open_clusters_any_cell():
    rng = np.random.default_rng(3)
    x = rng.normal(scale=4.0, size=(150, 3))
    # the cell does not matter without periodicity, even a degenerate one
    for cell in (np.eye(3) * 10.0, random_cell(rng), np.zeros((3, 3))):
        check(x, cell, (False, False, False), 3.1, skin=0.5)
    # flat and linear clusters, a single atom, no atom
    flat = x.copy()
    flat[:, 2] = 0.0
    check(flat, np.eye(3), (False, False, False), 3.0)
    line = np.zeros((30, 3))
    line[:, 0] = np.linspace(0.0, 29.0, 30)
    nl = check(line, np.eye(3), (False, False, False), 2.5)
    assert len(nl) == 29 + 28
    check(np.zeros((1, 3)), np.eye(3), (False, False, False), 2.0)
    check(np.zeros((0, 3)), np.eye(3), (False, False, False), 2.0)
    check(np.zeros((0, 3)), np.eye(3) * 3, (True, True, True), 2.0)


def test_larger_crystal_all_boundary_kinds():
    rng = np.random.default_rng(11)
    c = crystal("fcc", 3.615, size=(4, 5, 6))
    x = c.positions_nc + rng.normal(scale=0.1, size=c.positions_nc.shape)
    cell = c.cell_cc.copy()
    cell[1, 0] = 2.1  # make it triclinic
    cell[2, :2] = (-1.3, 3.0)
    for pbc in [(True, True, True), (True, True, False), (False, False, False)]:
        check(x, cell, pbc, 4.95, skin=1.0)


def test_cutoff_beyond_half_cell_needs_multiple_images():
    c = crystal("fcc", 3.615, size=(2, 2, 2))
    with pytest.raises(InputError, match="multiple_images"):
        NeighborList(c, 4.0, 0.0)
    NeighborList(c, 3.5, 0.0)  # below half the width 7.23 Å
    with pytest.raises(InputError):
        NeighborList(c, -1.0)
    with pytest.raises(InputError):
        NeighborList(c, 2.0, skin=-0.1)


def test_rebuild_on_move_and_on_strain():
    rng = np.random.default_rng(5)
    c = crystal("fcc", 3.615, size=(3, 3, 3))
    cutoff, skin = 4.0, 1.0
    nl = NeighborList(c, cutoff, skin)
    assert nl.builds == 1
    x0, cell0 = c.positions_nc.copy(), c.cell_cc.copy()
    # every atom moves by less than skin/2: no rebuild, and the list still holds every pair
    # within the cutoff
    x = x0.copy()
    for _ in range(4):
        step = rng.normal(size=x.shape)
        step *= 0.11 / np.linalg.norm(step, axis=1, keepdims=True)
        if np.linalg.norm(x + step - x0, axis=1).max() >= skin / 2:
            break
        x = x + step
        assert nl.update(x, cell0) is False
        sure, _ = brute_pairs(x, cell0, c.pbc, cutoff - 1e-9)
        assert sure <= list_pairs(nl)
    assert nl.builds == 1
    # one atom beyond skin/2: rebuild, from the new positions
    x1 = x0.copy()
    x1[7] += [0.4, 0.4, 0.0]  # 0.57 Å > skin/2
    assert nl.update(x1, cell0) is True
    assert nl.builds == 2
    assert nl.update(x1, cell0) is False
    sure, border = brute_pairs(x1, cell0, c.pbc, cutoff + skin, margin=1e-9)
    assert sure <= list_pairs(nl) <= sure | border
    # a small homogeneous strain keeps the list, a large one rebuilds it
    F = np.eye(3) + 1e-3 * np.array([[1.0, 0.5, 0.0], [0.0, -1.0, 0.0], [0.2, 0.0, 0.5]])
    assert nl.update(x1 @ F.T, cell0 @ F.T) is False
    F = np.eye(3) + 0.08 * np.array([[1.0, 0.5, 0.0], [0.0, -1.0, 0.0], [0.2, 0.0, 0.5]])
    assert nl.update(x1 @ F.T, cell0 @ F.T) is True
    assert nl.builds == 3
    sure, border = brute_pairs(x1 @ F.T, cell0 @ F.T, c.pbc, cutoff + skin, margin=1e-9)
    assert sure <= list_pairs(nl) <= sure | border
    # without skin any cell change rebuilds
    nl0 = NeighborList(c, cutoff, 0.0)
    assert nl0.update(x0, cell0) is False
    assert nl0.update(x0, cell0 * (1 + 1e-9)) is True


def test_moved_atoms_keep_their_shifts():
    """Atoms that cross the cell boundary after a build keep correct pair vectors."""
    rng = np.random.default_rng(9)
    cell = random_cell(rng, 7.0, 9.0)
    x = rng.uniform(0.0, 1.0, (30, 3)) @ cell
    conf = Configuration(x, cell)
    nl = NeighborList(conf, 2.0, 1.0, multiple_images=True)
    # shift some atoms by whole cell vectors: pair vectors must not change
    y = x.copy()
    y[::3] += np.array([1, -2, 1]) @ cell
    d0, r0 = nl.distances(x, cell)
    d1, r1 = nl.distances(y, cell)
    assert not np.allclose(d0, d1) or len(d0) == 0
    nl.build(y, cell)
    d2, r2 = nl.distances(y, cell)
    assert np.allclose(np.sort(r2), np.sort(r0))
    check(y, cell, (True, True, True), 2.0, skin=1.0)
