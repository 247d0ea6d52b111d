"""Half neighbour lists with cell lists (numba), for triclinic periodic and open cells.

A pair ``p`` is stored once as ``(i_p, j_p, shift_pc)``; its vector is
``d_pc = x[j] - x[i] + shift_pc @ cell`` (``shift`` counts cell vectors, rows of
``cell``). Positions need not be wrapped: shifts refer to the positions the
list was built from, so atoms may keep moving (up to half the skin) without a
rebuild. Any number of periodic images is handled, including an atom and its
own images (needed by Cauchy-Born on a one-atom cell); by default a cutoff
reaching more than half-way across a periodic cell is refused, because most
users who do that made their supercell too small by mistake.

Algorithm: positions are wrapped into the cell (fractional coordinates along periodic
vectors; the integer part ``k`` is folded back into the shifts at the end) and
counting-sorted into bins at least half the search radius wide, z fastest. Each pair is
found once, from the bin that comes first in a half stencil (offsets ``o > 0``
lexicographically, plus the atoms after ``i`` in its own bin); along z the bins of a stencil
column are contiguous in the sorted order, so the inner loop runs over one contiguous slice
per column and periodic image. A stencil may wrap around a periodic direction several
times (several images, an atom's own images); each wrap is its own slice with its own
shift. Pairs are stored as ``i <= j`` (an atom's own image with the shift that is positive
lexicographically), in one pass into arrays sized by the number of candidates and then
shrunk in place.
"""

from __future__ import annotations

import numba
import numpy as np

from atomistic.structure import Configuration, check_coordinates, perpendicular_widths
from fe2qc.checks import require_nonnegative, require_positive
from fe2qc.errors import InputError

__all__ = ["NeighborList", "pair_vector", "pair_vectors"]


@numba.njit(cache=True, inline="always")
def pair_vector(x_nc, cell_cc, i_p, j_p, s_pc, p):
    """Return ``(i, j, dx, dy, dz, rsq)`` of pair ``p`` of a half list.

    ``(dx, dy, dz) = x[j] - x[i] + s_pc[p] @ cell`` and ``rsq`` its squared length. The
    one place the pair loops (:func:`pair_vectors` and the potentials' fused
    ``energy_forces`` kernels) compute a pair vector; numba inlines it into each caller.
    Numba's cache does not see edits of a function in another file: after changing this one,
    delete the ``__pycache__/*.nbi``/``*.nbc`` files of :mod:`atomistic.potentials`.
    """
    i = i_p[p]
    j = j_p[p]
    sx = s_pc[p, 0]
    sy = s_pc[p, 1]
    sz = s_pc[p, 2]
    dx = x_nc[j, 0] - x_nc[i, 0] + sx * cell_cc[0, 0] + sy * cell_cc[1, 0] + sz * cell_cc[2, 0]
    dy = x_nc[j, 1] - x_nc[i, 1] + sx * cell_cc[0, 1] + sy * cell_cc[1, 1] + sz * cell_cc[2, 1]
    dz = x_nc[j, 2] - x_nc[i, 2] + sx * cell_cc[0, 2] + sy * cell_cc[1, 2] + sz * cell_cc[2, 2]
    return i, j, dx, dy, dz, dx * dx + dy * dy + dz * dz


@numba.njit(cache=True, inline="always")
def _put(a_k, b_k, s_kc, k, a, b, s0, s1, s2):
    """Store row ``k`` of a triple of arrays: ``a_k[k] = a``, ``b_k[k] = b``, ``s_kc[k] = s``."""
    a_k[k] = a
    b_k[k] = b
    s_kc[k, 0] = s0
    s_kc[k, 1] = s1
    s_kc[k, 2] = s2


@numba.njit(cache=True)
def _bin_sort(s_nc, nb, lo, binfrac):
    """Counting sort of atoms into bins (z fastest); returns ``(order, start)``.

    ``order[start[b]:start[b + 1]]`` are the atoms of bin ``b``.
    """
    n = s_nc.shape[0]
    nbins = nb[0] * nb[1] * nb[2]
    bin_n = np.empty(n, np.int64)
    start = np.zeros(nbins + 1, np.int64)
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
        start[idx + 1] += 1
    for b in range(nbins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for a in range(n):
        b = bin_n[a]
        order[fill[b]] = a
        fill[b] += 1
    return order, start


@numba.njit(cache=True)
def _segments(b, nb, m, pbc, start, seg_lo, seg_hi, seg_s):
    """Runs of sorted atoms in the forward half of the stencil of home bin ``b``.

    The stencil offsets ``o`` with ``o > 0`` lexicographically (the home bin itself is
    handled by the caller); along z consecutive bins are contiguous in the sorted order,
    so each stencil column gives one run per periodic image. Returns the number of runs;
    run ``k`` is ``[seg_lo[k], seg_hi[k])`` with image shift ``seg_s[k]`` (cell vectors).
    """
    bz = b % nb[2]
    by = (b // nb[2]) % nb[1]
    bx = b // (nb[2] * nb[1])
    nseg = 0
    for ox in range(0, m[0] + 1):
        tx = bx + ox
        sx = 0
        if pbc[0]:
            sx = tx // nb[0]
            tx -= sx * nb[0]
        elif tx >= nb[0]:
            break
        oy0 = -m[1] if ox > 0 else 0
        for oy in range(oy0, m[1] + 1):
            ty = by + oy
            sy = 0
            if pbc[1]:
                sy = ty // nb[1]
                ty -= sy * nb[1]
            elif ty < 0 or ty >= nb[1]:
                continue
            oz0 = -m[2] if (ox > 0 or oy > 0) else 1
            z0 = bz + oz0
            z1 = bz + m[2]  # inclusive
            if not pbc[2]:
                if z0 < 0:
                    z0 = 0
                if z1 >= nb[2]:
                    z1 = nb[2] - 1
            col = (tx * nb[1] + ty) * nb[2]
            z = z0
            while z <= z1:
                sz = 0
                tz = z
                if pbc[2]:
                    sz = z // nb[2]
                    tz = z - sz * nb[2]
                # run of bins tz .. tz + len - 1 within this image
                run = min(z1 - z, nb[2] - 1 - tz) + 1
                lo_ = start[col + tz]
                hi_ = start[col + tz + run]
                if hi_ > lo_:
                    _put(seg_lo, seg_hi, seg_s, nseg, lo_, hi_, sx, sy, sz)
                    nseg += 1
                z += run
    return nseg


@numba.njit(cache=True)
def _candidates(nb, m, pbc, start):
    """Number of candidate pairs the search visits: an upper bound on the pair count."""
    nbins = nb[0] * nb[1] * nb[2]
    cap = (m[0] + 1) * (2 * m[1] + 1) * (2 * m[2] + 1) * 2 + 1
    seg_lo = np.empty(cap, np.int64)
    seg_hi = np.empty(cap, np.int64)
    seg_s = np.empty((cap, 3), np.int64)
    total = 0
    for b in range(nbins):
        c = start[b + 1] - start[b]
        if c == 0:
            continue
        nseg = _segments(b, nb, m, pbc, start, seg_lo, seg_hi, seg_s)
        w = 0
        for k in range(nseg):
            w += seg_hi[k] - seg_lo[k]
        total += c * w + c * (c - 1) // 2
    return total


@numba.njit(cache=True)
def _search(xs_nc, cell, k_nc, order, start, nb, m, pbc, rc2, i_p, j_p, s_pc):
    """Store the half-list pairs into ``i_p, j_p, s_pc``; returns the number of pairs.

    ``xs_nc`` are the wrapped positions in sorted (bin) order. Stops storing (but keeps
    counting) when the arrays are full, so a return value larger than their length
    asks for a second call with larger arrays.
    """
    nbins = nb[0] * nb[1] * nb[2]
    cap = (m[0] + 1) * (2 * m[1] + 1) * (2 * m[2] + 1) * 2 + 1
    seg_lo = np.empty(cap, np.int64)
    seg_hi = np.empty(cap, np.int64)
    seg_s = np.empty((cap, 3), np.int64)
    seg_v = np.empty((cap, 3))
    size = i_p.shape[0]
    npair = 0
    for b in range(nbins):
        b0 = start[b]
        b1 = start[b + 1]
        if b1 == b0:
            continue
        nseg = _segments(b, nb, m, pbc, start, seg_lo, seg_hi, seg_s)
        for k in range(nseg):
            for c in range(3):
                seg_v[k, c] = (seg_s[k, 0] * cell[0, c] + seg_s[k, 1] * cell[1, c]
                               + seg_s[k, 2] * cell[2, c])
        for p in range(b0, b1):
            i = order[p]
            xi = xs_nc[p, 0]
            yi = xs_nc[p, 1]
            zi = xs_nc[p, 2]
            ki0 = k_nc[i, 0]
            ki1 = k_nc[i, 1]
            ki2 = k_nc[i, 2]
            for k in range(-1, nseg):
                if k < 0:  # the rest of the home bin, no shift
                    q0 = p + 1
                    q1 = b1
                    vx = -xi
                    vy = -yi
                    vz = -zi
                    e0 = 0
                    e1 = 0
                    e2 = 0
                else:
                    q0 = seg_lo[k]
                    q1 = seg_hi[k]
                    vx = seg_v[k, 0] - xi
                    vy = seg_v[k, 1] - yi
                    vz = seg_v[k, 2] - zi
                    e0 = seg_s[k, 0]
                    e1 = seg_s[k, 1]
                    e2 = seg_s[k, 2]
                for q in range(q0, q1):
                    dx = xs_nc[q, 0] + vx
                    dy = xs_nc[q, 1] + vy
                    dz = xs_nc[q, 2] + vz
                    if dx * dx + dy * dy + dz * dz < rc2:
                        if npair < size:
                            j = order[q]
                            # shift between the input (unwrapped) positions
                            f0 = e0 + ki0 - k_nc[j, 0]
                            f1 = e1 + ki1 - k_nc[j, 1]
                            f2 = e2 + ki2 - k_nc[j, 2]
                            first = i
                            second = j
                            if j < i or (j == i and (f0 < 0 or (f0 == 0 and (
                                    f1 < 0 or (f1 == 0 and f2 < 0))))):
                                # store as (min, max); an atom's own image with s > 0
                                first, second, f0, f1, f2 = j, i, -f0, -f1, -f2
                            _put(i_p, j_p, s_pc, npair, first, second, f0, f1, f2)
                        npair += 1
    return npair


@numba.njit(cache=True)
def pair_vectors(x_nc, cell, i_p, j_p, s_pc):
    """Return ``(d_pc, r_p)``: pair vectors ``x[j] - x[i] + s @ cell`` and their lengths."""
    npair = i_p.shape[0]
    d = np.empty((npair, 3))
    r = np.empty(npair)
    for p in range(npair):
        _, _, d[p, 0], d[p, 1], d[p, 2], rsq = pair_vector(x_nc, cell, i_p, j_p, s_pc, p)
        r[p] = np.sqrt(rsq)
    return d, r


@numba.njit(cache=True)
def _max_norm(d_nc):
    """Largest row norm of an (n, 3) array (0 for none): the list's displacement check."""
    m = 0.0
    for a in range(d_nc.shape[0]):
        m = max(m, d_nc[a, 0] * d_nc[a, 0] + d_nc[a, 1] * d_nc[a, 1] + d_nc[a, 2] * d_nc[a, 2])
    return np.sqrt(m)


#: bins are at least this fraction of the search radius wide (stencil of +-2 bins)
_BIN_FRACTION = 0.5


def _build(x_nc, cell_cc, pbc, rc):
    n = len(x_nc)
    pbc_arr = np.array(pbc, dtype=np.bool_)
    basis = cell_cc if abs(np.linalg.det(cell_cc)) > 1e-12 else np.eye(3) * max(1.0, rc)
    inv = np.linalg.inv(basis)
    h = perpendicular_widths(basis)
    s = x_nc @ inv
    k = np.zeros((n, 3), np.int64)
    if pbc_arr.any():
        k[:, pbc_arr] = np.floor(s[:, pbc_arr]).astype(np.int64)
        s -= k
    lo = np.zeros(3)
    span = np.ones(3)
    for c in range(3):
        if not pbc[c] and n:
            lo[c] = s[:, c].min()
            span[c] = max(s[:, c].max() - lo[c], 0.0)
    nb = np.maximum(1, np.floor(span * h / (_BIN_FRACTION * rc))).astype(np.int64)
    # Sparse atoms in a huge box (or a huge periodic cell) would ask for more bins than
    # memory holds; wider bins are always correct (the stencil shrinks), so coarsen the
    # longest direction until there are at most a few bins per atom.
    cap = 16 * n + 4096
    while float(np.prod(nb.astype(float))) > cap:
        c = int(np.argmax(nb))
        nb[c] = max(1, nb[c] // 2)
    binfrac = np.where(span > 0, span / nb, 1.0)
    width = binfrac * h
    m = np.where(width > 0, np.ceil(rc / np.maximum(width, 1e-300)), 0).astype(np.int64)
    m = np.where(~pbc_arr, np.minimum(m, nb - 1), m)
    order, start = _bin_sort(s, nb, lo, binfrac)
    xs = s[order] @ basis  # wrapped positions in bin order
    rc2 = rc * rc
    # Fill arrays sized by the candidate count (an upper bound), then shrink them in place:
    # the untouched tail is never paged in and realloc gives it back without copying.
    cap = int(_candidates(nb, m, pbc_arr, start))
    i_p = np.empty(cap, np.int64)
    j_p = np.empty(cap, np.int64)
    s_pc = np.empty((cap, 3), np.int64)
    npair = _search(xs, basis, k, order, start, nb, m, pbc_arr, rc2, i_p, j_p, s_pc)
    assert npair <= cap
    i_p.resize(npair, refcheck=False)
    j_p.resize(npair, refcheck=False)
    s_pc.resize((npair, 3), refcheck=False)
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
        cutoff = require_positive("neighbour cutoff", cutoff, unit="Å")
        skin = require_nonnegative("neighbour skin", skin, unit="Å")
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
        check_coordinates(positions_nc, cell_cc)
        self._check_cell(cell_cc)
        self.i_p, self.j_p, self.s_pc = _build(
            np.ascontiguousarray(positions_nc, float), np.asarray(cell_cc, float), self.pbc,
            self.cutoff + self.skin)
        self._x0 = np.array(positions_nc, dtype=float)
        self._cell0 = np.array(cell_cc, dtype=float)
        self._cell0_inv = np.linalg.inv(self._cell0) \
            if abs(np.linalg.det(self._cell0)) > 1e-12 else None
        self._periodic = np.array(self.pbc, float)[:, None]
        self.builds += 1

    def update(self, positions_nc: np.ndarray, cell_cc: np.ndarray) -> bool:
        """Rebuild if needed for these positions and cell; return whether it rebuilt.

        The list stays valid while every pair vector changed by less than the skin. When the
        periodic cell changed, ``cell = cell0 @ F``, a pair vector is ``d = d0 @ F + u_j -
        u_i`` with ``u = x - x0 @ F`` the atoms' displacements relative to the homogeneous
        deformation of the cell (exactly, whatever the image shift); so we rebuild when some
        ``|u|`` exceeds skin/2 or the strain ``|F - I|`` could bring a pair from beyond
        cutoff+skin to within the cutoff. (Cell rows along open directions carry no images and
        do not count.) Atoms remapped with the cell, as a barostat does, keep the list; a cell
        changed under atoms that stay put rebuilds it.
        """
        check_coordinates(positions_nc, cell_cc)
        dcell_any = np.asarray(cell_cc, float) - self._cell0
        changed = dcell_any.any()
        dcell = dcell_any if all(self.pbc) else dcell_any * self._periodic
        strain = 0.0
        dx = positions_nc - self._x0
        if changed and dcell.any():
            if self._cell0_inv is None:  # a degenerate reference cell: nothing to follow
                strain = np.inf
            else:
                dF = self._cell0_inv @ dcell  # F - I
                strain = np.sqrt((dF * dF).sum())  # Frobenius norm >= the 2-norm
                dx -= self._x0 @ dF
        moved = _max_norm(dx)
        if 2 * moved + strain * (self.cutoff + self.skin) * 2 > self.skin or (
                changed and self.skin == 0):
            self.build(positions_nc, cell_cc)
            return True
        return False

    def distances(self, positions_nc: np.ndarray, cell_cc: np.ndarray):
        """Return ``(d_pc, r_p)`` for the stored pairs at these positions and cell."""
        return pair_vectors(np.ascontiguousarray(positions_nc, float),
                            np.ascontiguousarray(cell_cc, float), self.i_p, self.j_p, self.s_pc)

    def __len__(self) -> int:
        return len(self.i_p)
