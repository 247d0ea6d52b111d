"""Half neighbour lists with cell lists (numba), for triclinic periodic and open cells.

A pair ``p`` is stored once as ``(i_p, j_p, shift_pc)``; its vector is
``d_pc = x[j] - x[i] + shift_pc @ cell`` (``shift`` counts cell vectors, rows of
``cell``). Positions need not be wrapped: shifts refer to the positions the
list was built from, so atoms may keep moving (up to half the skin) without a
rebuild. Any number of periodic images is handled, including an atom and its
own images (needed by Cauchy-Born on a one-atom cell); by default a cutoff
reaching more than half-way across a periodic cell is refused, because most
users who do that made their supercell too small by mistake.
"""

from __future__ import annotations

import numba
import numpy as np

from atomistic.structure import Configuration, perpendicular_widths
from fe2qc.errors import InputError

__all__ = ["NeighborList", "pair_vectors"]


@numba.njit(cache=True)
def _bin_atoms(s_nc, pbc, nb, lo, binfrac):
    n = s_nc.shape[0]
    bin_n = np.empty(n, np.int64)
    for a in range(n):
        idx = 0
        for c in range(3):
            b = int(np.floor((s_nc[a, c] - lo[c]) / binfrac[c]))
            if b < 0:
                b = 0
            if b >= nb[c]:
                b = nb[c] - 1
            idx = idx * nb[c] + b
        bin_n[a] = idx
    return bin_n


@numba.njit(cache=True)
def _search(x_nc, cell, k_nc, bin_n, order, start, count, nb, m, pbc, rc2, fill, i_p, j_p, s_pc):
    """Count (fill=False) or store (fill=True) half-list pairs; returns the number of pairs."""
    n = x_nc.shape[0]
    npair = 0
    for i in range(n):
        b = bin_n[i]
        bz = b % nb[2]
        by = (b // nb[2]) % nb[1]
        bx = b // (nb[2] * nb[1])
        bi = (bx, by, bz)
        for ox in range(-m[0], m[0] + 1):
            tx = bi[0] + ox
            sx = 0
            if pbc[0]:
                sx = tx // nb[0]
                tx = tx - sx * nb[0]
            elif tx < 0 or tx >= nb[0]:
                continue
            for oy in range(-m[1], m[1] + 1):
                ty = bi[1] + oy
                sy = 0
                if pbc[1]:
                    sy = ty // nb[1]
                    ty = ty - sy * nb[1]
                elif ty < 0 or ty >= nb[1]:
                    continue
                for oz in range(-m[2], m[2] + 1):
                    tz = bi[2] + oz
                    sz = 0
                    if pbc[2]:
                        sz = tz // nb[2]
                        tz = tz - sz * nb[2]
                    elif tz < 0 or tz >= nb[2]:
                        continue
                    tb = (tx * nb[1] + ty) * nb[2] + tz
                    # image shift relative to the unwrapped input positions
                    ex = sx - 0
                    ey = sy - 0
                    ez = sz - 0
                    for q in range(start[tb], start[tb] + count[tb]):
                        j = order[q]
                        if j < i:
                            continue
                        fx = ex - k_nc[j, 0] + k_nc[i, 0]
                        fy = ey - k_nc[j, 1] + k_nc[i, 1]
                        fz = ez - k_nc[j, 2] + k_nc[i, 2]
                        if j == i:
                            # keep one of (s, -s); never the atom itself
                            if fx < 0 or (fx == 0 and (fy < 0 or (fy == 0 and fz <= 0))):
                                continue
                        dx = x_nc[j, 0] - x_nc[i, 0] + fx * cell[0, 0] + fy * cell[1, 0] + fz * cell[2, 0]
                        dy = x_nc[j, 1] - x_nc[i, 1] + fx * cell[0, 1] + fy * cell[1, 1] + fz * cell[2, 1]
                        dz = x_nc[j, 2] - x_nc[i, 2] + fx * cell[0, 2] + fy * cell[1, 2] + fz * cell[2, 2]
                        if dx * dx + dy * dy + dz * dz < rc2:
                            if fill:
                                i_p[npair] = i
                                j_p[npair] = j
                                s_pc[npair, 0] = fx
                                s_pc[npair, 1] = fy
                                s_pc[npair, 2] = fz
                            npair += 1
    return npair


@numba.njit(cache=True)
def pair_vectors(x_nc, cell, i_p, j_p, s_pc):
    """Return ``(d_pc, r_p)``: pair vectors ``x[j] - x[i] + s @ cell`` and their lengths."""
    npair = i_p.shape[0]
    d = np.empty((npair, 3))
    r = np.empty(npair)
    for p in range(npair):
        i = i_p[p]
        j = j_p[p]
        sx = s_pc[p, 0]
        sy = s_pc[p, 1]
        sz = s_pc[p, 2]
        for c in range(3):
            d[p, c] = x_nc[j, c] - x_nc[i, c] + sx * cell[0, c] + sy * cell[1, c] + sz * cell[2, c]
        r[p] = np.sqrt(d[p, 0] ** 2 + d[p, 1] ** 2 + d[p, 2] ** 2)
    return d, r


def _build(x_nc, cell_cc, pbc, rc):
    n = len(x_nc)
    pbc_arr = np.array(pbc, dtype=np.bool_)
    basis = cell_cc if abs(np.linalg.det(cell_cc)) > 1e-12 else np.eye(3) * max(1.0, rc)
    inv = np.linalg.inv(basis)
    h = perpendicular_widths(basis)
    s = x_nc @ inv
    k = np.zeros((n, 3), np.int64)
    k[:, pbc_arr] = np.floor(s[:, pbc_arr]).astype(np.int64)
    s = s - k
    x_wrapped = s @ basis
    lo = np.zeros(3)
    span = np.ones(3)
    for c in range(3):
        if not pbc[c] and n:
            lo[c] = s[:, c].min()
            span[c] = max(s[:, c].max() - lo[c], 0.0)
    nb = np.maximum(1, np.floor(span * h / rc)).astype(np.int64)
    binfrac = np.where(span > 0, span / nb, 1.0)
    width = binfrac * h
    m = np.where(width > 0, np.ceil(rc / np.maximum(width, 1e-300)), 0).astype(np.int64)
    m = np.where(~pbc_arr, np.minimum(m, nb - 1), m)
    bin_n = _bin_atoms(s, pbc_arr, nb, lo, binfrac)
    order = np.argsort(bin_n, kind="stable").astype(np.int64)
    nbins = int(np.prod(nb))
    count = np.bincount(bin_n, minlength=nbins).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    dummy_i = np.empty(0, np.int64)
    dummy_s = np.empty((0, 3), np.int64)
    rc2 = rc * rc
    npair = _search(x_wrapped, basis, np.zeros((n, 3), np.int64), bin_n, order, start, count,
                    nb, m, pbc_arr, rc2, False, dummy_i, dummy_i, dummy_s)
    i_p = np.empty(npair, np.int64)
    j_p = np.empty(npair, np.int64)
    s_pc = np.empty((npair, 3), np.int64)
    _search(x_wrapped, basis, np.zeros((n, 3), np.int64), bin_n, order, start, count, nb, m,
            pbc_arr, rc2, True, i_p, j_p, s_pc)
    # shifts found between wrapped positions -> shifts between the input positions
    s_pc += k[i_p] - k[j_p]
    return i_p, j_p, s_pc


class NeighborList:
    """Half neighbour list within ``cutoff + skin``, rebuilt when atoms moved more than skin/2.

    Args:
        config: the configuration to build from.
        cutoff: interaction cutoff (Å).
        skin: extra search distance (Å) so that the list stays valid while atoms move.
        multiple_images: allow a cutoff of half a periodic cell width or more (an atom then
            interacts with several images of one neighbour, or with its own images).
    """

    def __init__(self, config: Configuration, cutoff: float, skin: float = 1.0, *,
                 multiple_images: bool = False) -> None:
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise InputError(f"neighbour cutoff must be a positive number, got {cutoff}")
        if skin < 0:
            raise InputError(f"neighbour skin must be >= 0, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.multiple_images = multiple_images
        self.pbc = config.pbc
        self.builds = 0
        self.build(config.positions_nc, config.cell_cc)

    def _check_cell(self, cell_cc: np.ndarray) -> None:
        if self.multiple_images or not any(self.pbc):
            return
        h = perpendicular_widths(cell_cc)
        for a in range(3):
            if self.pbc[a] and self.cutoff >= 0.5 * h[a]:
                need = int(np.floor(2 * self.cutoff / h[a])) + 1
                raise InputError(
                    f"the cutoff {self.cutoff:.4g} Å is at least half the periodic cell width "
                    f"{h[a]:.4g} Å along cell vector {a}: atoms would interact with several "
                    f"images of the same neighbour. Repeat the cell at least {need} times along "
                    f"that vector, or pass multiple_images=True if that is intended."
                )

    def build(self, positions_nc: np.ndarray, cell_cc: np.ndarray) -> None:
        """Rebuild the list from scratch."""
        self._check_cell(cell_cc)
        self.i_p, self.j_p, self.s_pc = _build(
            np.ascontiguousarray(positions_nc, float), np.asarray(cell_cc, float), self.pbc,
            self.cutoff + self.skin)
        self._x0 = np.array(positions_nc, dtype=float)
        self._cell0 = np.array(cell_cc, dtype=float)
        self.builds += 1

    def update(self, positions_nc: np.ndarray, cell_cc: np.ndarray) -> bool:
        """Rebuild if needed for these positions and cell; return whether it rebuilt.

        The list stays valid while every pair vector changed by less than the skin: we rebuild
        when an atom moved more than skin/2 or the cell changed so much that an image term of
        length cutoff+skin moved by more than skin/2.
        """
        dx = positions_nc - self._x0
        moved = np.sqrt((dx * dx).sum(axis=1).max()) if len(dx) else 0.0
        dcell = np.asarray(cell_cc) - self._cell0
        strain = np.linalg.norm(np.linalg.solve(self._cell0, dcell), 2) if dcell.any() else 0.0
        if 2 * moved + strain * (self.cutoff + self.skin) * 2 > self.skin or (
                dcell.any() and self.skin == 0):
            self.build(positions_nc, cell_cc)
            return True
        return False

    def distances(self, positions_nc: np.ndarray, cell_cc: np.ndarray):
        """Return ``(d_pc, r_p)`` for the stored pairs at these positions and cell."""
        return pair_vectors(np.ascontiguousarray(positions_nc, float),
                            np.ascontiguousarray(cell_cc, float), self.i_p, self.j_p, self.s_pc)

    def __len__(self) -> int:
        return len(self.i_p)
