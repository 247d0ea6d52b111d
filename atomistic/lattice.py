"""Crystal lattices and the configurations built from them: oriented supercells, clusters.

A :class:`Lattice` is described in units of its lattice parameter ``a0``: a conventional
cell (rows), the fractional positions of its basis atoms, and primitive vectors. Cubic
lattices (``fcc``, ``bcc``, ``sc``) take ``a0`` = cube edge; the ``triangular`` lattice is
a 2D close-packed layer in the xy plane with nearest-neighbour distance ``a0``, stacked
periodically along z with a large spacing ``height`` (in units of ``a0``) so that the
layers do not interact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import gcd

import numpy as np

from atomistic.structure import Configuration, check_repetitions
from fe2qc.checks import require_nonnegative, require_positive
from fe2qc.errors import InputError

__all__ = ["Lattice", "LATTICES", "get_lattice", "crystal", "primitive_cell", "cluster"]

LATTICES = ("fcc", "bcc", "sc", "triangular", "diamond")


@dataclass(frozen=True)
class Lattice:
    """A Bravais lattice with a basis, in units of the lattice parameter.

    Attributes:
        name: lattice name.
        conventional_cc: conventional cell vectors as rows (units of a0).
        basis_nc: fractional coordinates of the basis atoms in the conventional cell.
        primitive_cc: primitive cell vectors as rows (units of a0).
        dimension: 3, or 2 for a layer in the xy plane.
    """

    name: str
    conventional_cc: np.ndarray
    basis_nc: np.ndarray
    primitive_cc: np.ndarray
    dimension: int = 3

    @property
    def atoms_per_volume(self) -> float:
        """Number density in units of 1/a0³ (per conventional cell volume)."""
        return len(self.basis_nc) / abs(np.linalg.det(self.conventional_cc))

    @property
    def bravais(self) -> bool:
        """True when every site is a lattice point (one atom per primitive cell)."""
        per_primitive = self.atoms_per_volume * abs(np.linalg.det(self.primitive_cc))
        return bool(abs(per_primitive - 1.0) < 1e-9)

    @property
    def nearest_neighbor_distance(self) -> float:
        """Nearest-neighbour distance in units of a0."""
        P = self.primitive_cc
        k = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)
        d = np.linalg.norm(k @ P, axis=1)
        if not self.bravais:  # also the distances between the basis sites
            sites = self.basis_nc @ self.conventional_cc
            shifts = (k @ self.conventional_cc)[:, None, None, :]
            diff = sites[None, :, None, :] - sites[None, None, :, :] + shifts
            d = np.linalg.norm(diff, axis=-1).ravel()
        return float(d[d > 1e-12].min())


def get_lattice(name: str | Lattice, *, height: float = 10.0) -> Lattice:
    """Return the lattice called ``name`` (one of :data:`LATTICES`).

    Args:
        name: lattice name, or a :class:`Lattice` (returned as is).
        height: layer spacing of the ``triangular`` lattice along z, in units of a0.
    """
    if isinstance(name, Lattice):
        return name
    key = str(name).strip().lower()
    if key == "fcc":
        return Lattice("fcc", np.eye(3),
                       np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
                       0.5 * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    if key == "bcc":
        return Lattice("bcc", np.eye(3), np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
                       0.5 * np.array([[-1.0, 1, 1], [1, -1, 1], [1, 1, -1]]))
    if key == "sc":
        return Lattice("sc", np.eye(3), np.zeros((1, 3)), np.eye(3))
    if key == "diamond":  # fcc with a two-atom basis (not a Bravais lattice)
        fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
        return Lattice("diamond", np.eye(3), np.vstack([fcc, fcc + 0.25]),
                       0.5 * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    if key == "triangular":
        if not (np.isfinite(height) and height > 0):
            raise InputError(f"triangular layer height must be positive (units of a0), got "
                             f"{height}")
        s3 = np.sqrt(3.0)
        return Lattice("triangular", np.diag([1.0, s3, height]),
                       np.array([[0, 0, 0], [0.5, 0.5, 0]]),
                       np.array([[1.0, 0, 0], [0.5, s3 / 2, 0], [0, 0, height]]), dimension=2)
    raise InputError(f"unknown lattice {name!r}: allowed names are {', '.join(LATTICES)}")


def _check_a0(a0: float) -> float:
    return require_positive("lattice parameter a0", a0, unit="Å")


def _types(types, sub_n: np.ndarray, nbasis: int, n: int) -> np.ndarray:
    """Types per atom from None, an int, one type per basis atom, or one per atom."""
    if types is None:
        return np.zeros(n, np.int64)
    t = np.atleast_1d(np.asarray(types))
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer) or (t < 0).any():
        raise InputError(f"types must be non-negative integers, got {types!r}")
    if t.size == 1:
        return np.full(n, int(t[0]), np.int64)
    if t.size == nbasis:
        return t[sub_n].astype(np.int64)
    if t.size == n:
        return t.astype(np.int64)
    raise InputError(f"types must be one int, one per basis atom ({nbasis}) or one per atom "
                     f"({n}); got {t.size} values")


def _lattice_points(lat: Lattice, corners_c: np.ndarray):
    """Cartesian sites (units of a0) of conventional cells covering the box spanned by corners.

    Each site comes with its basis index.
    """
    inv = np.linalg.inv(lat.conventional_cc)
    f = corners_c @ inv
    lo = np.floor(f.min(axis=0)).astype(int) - 1
    hi = np.ceil(f.max(axis=0)).astype(int) + 1
    grid = np.stack(np.meshgrid(*[np.arange(lo[c], hi[c] + 1) for c in range(3)],
                                indexing="ij"), -1).reshape(-1, 3)
    frac = (grid[:, None, :] + lat.basis_nc[None, :, :]).reshape(-1, 3)
    sub = np.tile(np.arange(len(lat.basis_nc)), len(grid))
    return frac @ lat.conventional_cc, sub


def _period(lat: Lattice, v: np.ndarray) -> float:
    """Smallest t > 0 with t v a lattice translation (v integer, in units of a0)."""
    invP = np.linalg.inv(lat.primitive_cc)
    for k in range(1, 13):  # lattices here have translations in (1/2) Z^3
        c = (k / 12) * v @ invP
        if np.allclose(c, np.round(c), atol=1e-9):
            return k / 12
    raise InputError(f"direction {v.tolist()} is not a lattice direction of {lat.name}")


def crystal(lattice: str | Lattice, a0: float, *, size=(1, 1, 1), orientation=None,
            pbc=(True, True, True), types=None, height: float = 10.0) -> Configuration:
    """A periodic supercell of ``lattice``, optionally rotated.

    Args:
        lattice: lattice name (see :data:`LATTICES`) or :class:`Lattice`.
        a0: lattice parameter (Å): cube edge, or nearest-neighbour distance for triangular.
        size: repetitions of the (oriented) orthogonal unit cell along x, y, z.
        orientation: three mutually orthogonal Miller directions as rows, e.g.
            ``[[1, 1, -2], [1, 1, 1], [1, -1, 0]]``; they become x, y, z. The unit cell is the
            smallest periodic orthogonal cell with those edges. Cubic lattices only.
        pbc: periodicity along x, y, z (the cell stays the same; non-periodic directions are
            simply open).
        types: None (all 0), one int, one type per basis atom, or one per atom.
        height: z spacing of the triangular layer, in units of a0.

    Returns:
        The configuration, with ``info["lattice"]``, ``info["a0"]``, ``info["orientation"]``.
    """
    lat = get_lattice(lattice, height=height)
    a0 = _check_a0(a0)
    size = check_repetitions(size)
    if orientation is None:
        R = np.eye(3)
        cell = lat.conventional_cc.copy()
        pos = lat.basis_nc @ lat.conventional_cc
        sub = np.arange(len(lat.basis_nc))
        orient = np.eye(3, dtype=int)
    else:
        if lat.dimension != 3:
            raise InputError(f"orientation is supported for the cubic lattices only, not for "
                             f"{lat.name!r}")
        O = np.asarray(orientation, dtype=float)
        if O.shape != (3, 3) or not np.allclose(O, np.round(O)):
            raise InputError(f"orientation must be three integer Miller directions as rows, got "
                             f"{orientation!r}")
        orient = np.round(O).astype(int)
        for a in range(3):
            g = reduce(gcd, (abs(int(x)) for x in orient[a]))
            if g == 0:
                raise InputError(f"orientation row {a} is the zero vector")
            orient[a] //= g
        G = orient @ orient.T
        if np.abs(G - np.diag(np.diag(G))).max() != 0:
            bad = [(a, b) for a in range(3) for b in range(a + 1, 3) if G[a, b] != 0]
            raise InputError(
                f"orientation rows must be mutually orthogonal; rows {bad} are not "
                f"(dot products {[int(G[a, b]) for a, b in bad]}) in {orient.tolist()}")
        if np.linalg.det(orient) < 0:
            raise InputError(f"orientation {orient.tolist()} is left-handed: flip the sign of "
                             f"one row (e.g. the last)")
        R = orient / np.linalg.norm(orient, axis=1)[:, None]  # rows: new axes in lattice frame
        edges = np.array([_period(lat, orient[a]) * np.linalg.norm(orient[a]) for a in range(3)])
        cell = np.diag(edges)
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * edges
        sites, sub = _lattice_points(lat, corners @ R)  # corners in the lattice frame
        x = sites @ R.T  # rotated into the new frame
        s = x / edges
        tol = 1e-8
        keep = np.all((s > -tol) & (s < 1 - tol), axis=1)
        pos = np.where(np.abs(x[keep]) < tol * edges, 0.0, x[keep])
        sub = sub[keep]
        expected = lat.atoms_per_volume * np.prod(edges)
        if abs(len(pos) - expected) > 1e-6:  # pragma: no cover - a bug, not a user error
            raise RuntimeError(f"oriented cell has {len(pos)} atoms, expected {expected}")
    n0 = len(pos)
    unit = Configuration(pos * a0, cell * a0, pbc, np.zeros(n0, np.int64))
    out = unit.repeat(size)
    sub_n = np.tile(sub, int(np.prod(size)))
    out.types_n = _types(types, sub_n, len(lat.basis_nc), len(out))
    out.info.update(lattice=lat.name, a0=a0, orientation=np.asarray(orient).tolist(),
                    rotation=R)
    return out


def primitive_cell(lattice: str | Lattice, a0: float, *, height: float = 10.0,
                   types=None) -> Configuration:
    """One atom at the origin in the (triclinic) primitive cell, periodic in 3D.

    Raises:
        InputError: the lattice is not a Bravais lattice (e.g. diamond: two atoms per
            primitive cell, which the Cauchy-Born rule without inner relaxation cannot treat).
    """
    lat = get_lattice(lattice, height=height)
    if not lat.bravais:
        raise InputError(f"the {lat.name} lattice has {len(lat.basis_nc)} atoms per "
                         "conventional cell and is not a Bravais lattice: one-atom primitive "
                         "cells (Cauchy-Born, QC) need fcc, bcc, sc or triangular; use "
                         "crystal() for periodic supercells")
    a0 = _check_a0(a0)
    t = _types(types, np.zeros(1, np.int64), 1, 1)
    return Configuration(np.zeros((1, 3)), lat.primitive_cc * a0, (True, True, True), t,
                         info={"lattice": lat.name, "a0": a0})


def cluster(lattice: str | Lattice, a0: float, radius: float, *, types=None) -> Configuration:
    """An open cluster of the sites within ``radius`` (Å) of a site at the origin.

    For the triangular lattice this is a disk in the xy plane. The cell is a box enclosing
    the cluster (for output only); ``pbc`` is False along every direction.
    """
    lat = get_lattice(lattice)
    a0 = _check_a0(a0)
    radius = require_nonnegative("cluster radius", radius, unit="Å")
    R = radius / a0
    corners = np.array([[i, j, k] for i in (-R, R) for j in (-R, R) for k in (-R, R)])
    if lat.dimension == 2:
        corners[:, 2] = 0.0
    sites, sub = _lattice_points(lat, corners)
    if lat.dimension == 2:
        keep2 = np.abs(sites[:, 2]) < 1e-9
        sites, sub = sites[keep2], sub[keep2]
    r = np.linalg.norm(sites, axis=1)
    keep = r <= R * (1 + 1e-12) + 1e-12
    order = np.lexsort((sites[keep][:, 2], sites[keep][:, 1], sites[keep][:, 0], r[keep]))
    pos = sites[keep][order] * a0
    sub = sub[keep][order]
    box = np.eye(3) * (2 * radius + 10.0)
    t = _types(types, sub, len(lat.basis_nc), len(pos))
    return Configuration(pos, box, (False, False, False), t,
                         info={"lattice": lat.name, "a0": a0, "radius": radius})
