"""Energies, forces, virial, Hessian and Born tensors from any :class:`Potential`.

Everything here is assembled from the potential's two kernels (see
:mod:`atomistic.potentials.base`), treating the energy as a function of the
pair vectors ``d_p = x_j - x_i + s_p @ cell`` of a half neighbour list:

* ``f_p = dE/dd_p = dedr_p d_p / r_p``; the force on ``j`` is ``-f_p`` and on ``i`` is ``+f_p``;
* ``d2E/dd_p dd_q = delta_pq K_p + sum_a U''_a G_ap G_aq^T`` with the radial block
  ``K_p = phi'' n n^T + (phi'/r)(I - n n^T)`` and ``G_ap = (drho_a/dr_p) n_p``.

Contracting those with ``dd_p/dx`` (±I) gives the atomic Hessian; with
``dd_p/dF = D_p`` (the pair vector in the reference frame) the second derivatives
with respect to the deformation gradient (Born term) and the mixed
position/deformation derivatives used by the relaxed (consistent) tangent.

Sign conventions: ``virial_cc`` is LAMMPS's virial ``W = sum_pairs r_ij ⊗ f_ij``
(eV; positive in compression); ``stress_cc`` is the Cauchy stress
``-(W + sum m v ⊗ v) / V`` in eV/Å³ (positive in tension).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from atomistic.neighbors import NeighborList, pair_vector, pair_vectors
from atomistic.potentials.base import Potential, SecondOrder
from atomistic.structure import Configuration
from fe2qc.checks import require_finite, require_nonnegative
from fe2qc.errors import InputError
from fe2qc.tensors import minor_sym
from fe2qc.units import MVV2E

__all__ = ["Calculator", "CompactPairs", "Result", "PairList"]


@dataclass(frozen=True)
class PairList:
    """The pairs a calculator evaluates: a neighbour list's, less any excluded bonds."""

    i_p: np.ndarray
    j_p: np.ndarray
    s_pc: np.ndarray


@dataclass(frozen=True)
class CompactPairs:
    """A half pair list grouped by first atom, in 5 bytes a pair: what the MD kernels read.

    The pairs of atom ``i`` are ``start_n[i]:start_n[i + 1]``, sorted by second atom
    ``j_k`` (uint32); ``c_k`` (uint8 when the shifts allow, else uint32) codes the image shift
    ``s = (a - K, b - K, c - K)`` as ``(a w + b) w + c`` with ``w = 2K + 1``, ``K`` the largest
    shift component, so that a call needs only the ``w³`` image vectors ``s @ cell``
    (:meth:`shift_vectors`). Built from a :class:`PairList` or neighbour list once per list
    build (:func:`compact_pairs`).
    """

    start_n: np.ndarray
    j_k: np.ndarray
    c_k: np.ndarray
    shift_max: int
    shifts_sc: np.ndarray  # the shift (cell vectors, float) of each code, shape (w³, 3)

    def shift_vectors(self, cell_cc: np.ndarray) -> np.ndarray:
        """The image vectors ``s @ cell`` (Å) of every code, shape ``(w³, 3)``."""
        return self.shifts_sc @ np.asarray(cell_cc, float)

    def row_ranges(self, parts: int) -> np.ndarray:
        """Row bounds of ``parts`` ranges of about equal pair counts (for threads)."""
        n = len(self.start_n) - 1
        targets = np.linspace(0, self.start_n[-1], parts + 1)
        b = np.searchsorted(self.start_n, targets[1:-1]).astype(np.int64)
        return np.concatenate([[0], np.clip(b, 0, n), [n]]).astype(np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return self.start_n.nbytes + self.j_k.nbytes + self.c_k.nbytes


@numba.njit(cache=True)
def _compact(i_p, j_p, s_pc, n, K, c_k):
    """Counting sort of the pairs by i, rows sorted by (j, code); fills ``c_k``."""
    npair = i_p.shape[0]
    w = 2 * K + 1
    start = np.zeros(n + 1, np.int64)
    for p in range(npair):
        start[i_p[p] + 1] += 1
    for a in range(n):
        start[a + 1] += start[a]
    pos = start[:-1].copy()
    j_k = np.empty(npair, np.uint32)  # unsigned: no negative-index wraparound in kernels
    for p in range(npair):
        a = i_p[p]
        k = pos[a]
        j_k[k] = j_p[p]
        c_k[k] = ((s_pc[p, 0] + K) * w + s_pc[p, 1] + K) * w + s_pc[p, 2] + K
        pos[a] += 1
    for a in range(n):  # rows are short (tens of pairs): insertion sort
        for k in range(start[a] + 1, start[a + 1]):
            jj = j_k[k]
            cc = c_k[k]
            q = k - 1
            while q >= start[a] and (j_k[q] > jj or (j_k[q] == jj and c_k[q] > cc)):
                j_k[q + 1] = j_k[q]
                c_k[q + 1] = c_k[q]
                q -= 1
            j_k[q + 1] = jj
            c_k[q + 1] = cc
    return start, j_k


@numba.njit(cache=True)
def _max_abs(s_pc):
    """Largest absolute shift component (0 for no pairs), without a temporary."""
    m = 0
    for p in range(s_pc.shape[0]):
        for c in range(3):
            m = max(m, abs(s_pc[p, c]))
    return m


def compact_pairs(pairs, n: int) -> CompactPairs:
    """The :class:`CompactPairs` of a half list (``i_p``, ``j_p``, ``s_pc``) over ``n`` atoms."""
    if n >= 2**32:  # pragma: no cover - 4e9 atoms
        raise InputError(f"{n} atoms do not fit uint32 indices")
    s_pc = np.ascontiguousarray(pairs.s_pc, np.int64)
    K = int(_max_abs(s_pc))
    w = 2 * K + 1
    c_k = np.empty(len(s_pc), np.uint8 if w**3 <= 256 else np.uint32)
    start, j_k = _compact(np.ascontiguousarray(pairs.i_p, np.int64),
                          np.ascontiguousarray(pairs.j_p, np.int64), s_pc, n, K, c_k)
    r = np.arange(-K, K + 1, dtype=float)
    shifts = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return CompactPairs(start, j_k, c_k, K, np.ascontiguousarray(shifts))


@dataclass
class Result:
    """First-order results for one configuration (units: eV, Å, eV/Å³)."""

    energy: float
    site_energies_n: np.ndarray
    forces_nc: np.ndarray
    virial_cc: np.ndarray
    stress_cc: np.ndarray
    volume: float

    @property
    def max_force(self) -> float:
        """Largest force norm (eV/Å)."""
        return float(np.sqrt((self.forces_nc**2).sum(axis=1).max())) if len(self.forces_nc) else 0.0


@numba.njit(cache=True)
def _closest_pair(x_nc, cell_cc, i_p, j_p, s_pc):
    """Return ``(p, r)``: the first pair of smallest length and its length (-1, inf: none)."""
    best = np.inf
    pbest = -1
    for p in range(i_p.shape[0]):
        rsq = pair_vector(x_nc, cell_cc, i_p, j_p, s_pc, p)[5]
        if rsq < best:
            best = rsq
            pbest = p
    return pbest, np.sqrt(best)


@numba.njit(cache=True)
def _forces_virial(d_pc, r_p, i_p, j_p, dedr_p, n):
    forces = np.zeros((n, 3))
    virial = np.zeros((3, 3))
    for p in range(i_p.shape[0]):
        if dedr_p[p] == 0.0:
            continue
        s = dedr_p[p] / r_p[p]
        i = i_p[p]
        j = j_p[p]
        for a in range(3):
            f = s * d_pc[p, a]
            forces[i, a] += f
            forces[j, a] -= f
            for b in range(3):
                virial[a, b] -= f * d_pc[p, b]
    return forces, virial


@numba.njit(cache=True)
def _atom_virials(d_pc, r_p, i_p, j_p, dedr_p, n):
    """Per-atom virials: each pair's ``-f ⊗ d`` split half and half between its atoms."""
    w = np.zeros((n, 3, 3))
    for p in range(i_p.shape[0]):
        if dedr_p[p] == 0.0:
            continue
        s = 0.5 * dedr_p[p] / r_p[p]
        i = i_p[p]
        j = j_p[p]
        for a in range(3):
            f = s * d_pc[p, a]
            for b in range(3):
                w[i, a, b] -= f * d_pc[p, b]
                w[j, a, b] -= f * d_pc[p, b]
    return w


@numba.njit(cache=True)
def _radial_blocks(d_pc, r_p, dedr_p, d2edr2_p):
    """K_p = phi'' n n^T + (phi'/r)(I - n n^T) per pair."""
    npair = d_pc.shape[0]
    K = np.zeros((npair, 3, 3))
    for p in range(npair):
        if dedr_p[p] == 0.0 and d2edr2_p[p] == 0.0:
            continue
        r = r_p[p]
        b = dedr_p[p] / r
        a = d2edr2_p[p]
        for c in range(3):
            nc = d_pc[p, c] / r
            for k in range(3):
                nk = d_pc[p, k] / r
                K[p, c, k] = (a - b) * nc * nk
            K[p, c, c] += b
    return K


@numba.njit(cache=True)
def _incidence(i_p, j_p, n):
    """CSR over atoms of (pair, end) incidences; end 0 = atom is i_p, end 1 = atom is j_p."""
    npair = i_p.shape[0]
    count = np.zeros(n + 1, np.int64)
    for p in range(npair):
        count[i_p[p] + 1] += 1
        count[j_p[p] + 1] += 1
    for a in range(n):
        count[a + 1] += count[a]
    pos = count[:-1].copy()
    pair = np.empty(2 * npair, np.int64)
    end = np.empty(2 * npair, np.int64)
    for p in range(npair):
        a = i_p[p]
        pair[pos[a]] = p
        end[pos[a]] = 0
        pos[a] += 1
        a = j_p[p]
        pair[pos[a]] = p
        end[pos[a]] = 1
        pos[a] += 1
    return count, pair, end


@numba.njit(cache=True, inline="always")
def _gradient_scratch(n):
    """Scratch arrays ``(vec, mark, touched)`` of :func:`_add_density_gradient` for n atoms."""
    return np.zeros((n, 3)), np.full(n, -1, np.int64), np.empty(n, np.int64)


@numba.njit(cache=True, inline="always")
def _incident_gradient(q, inc_pair, inc_end, drho_i_p, drho_j_p):
    """Return ``(p, g)``: the pair of incidence ``q`` and ``g = d rho_a / d r_p`` of its atom."""
    p = inc_pair[q]
    return p, (drho_i_p[p] if inc_end[q] == 0 else drho_j_p[p])


@numba.njit(cache=True)
def _add_density_gradient(g, p, i, j, d_pc, r_p, a, vec, mark, touched, nt):
    """Add pair p's share ``g n_p (±1)`` of d rho_a / dx to atoms j and i.

    Returns the new count of atoms touched for atom a (``vec`` rows are zeroed on first touch).
    """
    for b in (i, j):
        if mark[b] != a:
            mark[b] = a
            vec[b, :] = 0.0
            touched[nt] = b
            nt += 1
    for c in range(3):
        gc = g * d_pc[p, c] / r_p[p]
        vec[j, c] += gc
        vec[i, c] -= gc
    return nt


@numba.njit(cache=True)
def _hessian_coo(d_pc, r_p, i_p, j_p, K, fpp_n, drho_i_p, drho_j_p, n):
    npair = i_p.shape[0]
    start, inc_pair, inc_end = _incidence(i_p, j_p, n)
    # upper bound on the number of 3x3 blocks
    nblk = 4 * npair
    for a in range(n):
        if fpp_n[a] != 0.0:
            deg = start[a + 1] - start[a]
            nblk += (2 * deg + 1) * (2 * deg + 1)
    rows = np.empty(9 * nblk, np.int64)
    cols = np.empty(9 * nblk, np.int64)
    vals = np.empty(9 * nblk)
    m = 0
    for p in range(npair):
        i = i_p[p]
        j = j_p[p]
        if i == j:
            continue  # an atom and its own image: d_p does not depend on positions
        for (u, v, sgn) in ((i, i, 1.0), (j, j, 1.0), (i, j, -1.0), (j, i, -1.0)):
            for c in range(3):
                for k in range(3):
                    rows[m] = 3 * u + c
                    cols[m] = 3 * v + k
                    vals[m] = sgn * K[p, c, k]
                    m += 1
    # embedding: H += U''_a v_a v_a^T with v_a = d rho_a / dx
    vec, mark, touched = _gradient_scratch(n)
    for a in range(n):
        if fpp_n[a] == 0.0:
            continue
        nt = 0
        for q in range(start[a], start[a + 1]):
            p, g = _incident_gradient(q, inc_pair, inc_end, drho_i_p, drho_j_p)
            i = i_p[p]
            j = j_p[p]
            if i == j:
                continue
            if g == 0.0:
                continue
            nt = _add_density_gradient(g, p, i, j, d_pc, r_p, a, vec, mark, touched, nt)
        for t1 in range(nt):
            b1 = touched[t1]
            for t2 in range(nt):
                b2 = touched[t2]
                for c in range(3):
                    for k in range(3):
                        rows[m] = 3 * b1 + c
                        cols[m] = 3 * b2 + k
                        vals[m] = fpp_n[a] * vec[b1, c] * vec[b2, k]
                        m += 1
    return rows[:m], cols[:m], vals[:m]


@numba.njit(cache=True)
def _second_F(d_pc, r_p, D_pc, i_p, j_p, K, fpp_n, drho_i_p, drho_j_p, n, want_mixed):
    """E_FF[i,J,k,L] and, if wanted, the mixed derivative B[3n, 9] = d2E / dx dF."""
    npair = i_p.shape[0]
    EFF = np.zeros((3, 3, 3, 3))
    B = np.zeros((3 * n if want_mixed else 0, 9))
    for p in range(npair):
        i = i_p[p]
        j = j_p[p]
        for c in range(3):
            for J in range(3):
                for k in range(3):
                    kd = K[p, c, k] * D_pc[p, J]
                    if kd == 0.0:
                        continue
                    for L in range(3):
                        EFF[c, J, k, L] += kd * D_pc[p, L]
        if want_mixed and i != j:
            for c in range(3):
                for k in range(3):
                    for L in range(3):
                        t = K[p, c, k] * D_pc[p, L]
                        B[3 * j + c, 3 * k + L] += t
                        B[3 * i + c, 3 * k + L] -= t
    start, inc_pair, inc_end = _incidence(i_p, j_p, n)
    M = np.zeros((3, 3))
    vec, mark, touched = _gradient_scratch(n)
    for a in range(n):
        if fpp_n[a] == 0.0:
            continue
        M[:, :] = 0.0
        nt = 0
        for q in range(start[a], start[a + 1]):
            p, g = _incident_gradient(q, inc_pair, inc_end, drho_i_p, drho_j_p)
            if g == 0.0:
                continue
            for c in range(3):
                gc = g * d_pc[p, c] / r_p[p]
                for J in range(3):
                    M[c, J] += gc * D_pc[p, J]
            i = i_p[p]
            j = j_p[p]
            if want_mixed and i != j:
                nt = _add_density_gradient(g, p, i, j, d_pc, r_p, a, vec, mark, touched, nt)
        f = fpp_n[a]
        for c in range(3):
            for J in range(3):
                for k in range(3):
                    for L in range(3):
                        EFF[c, J, k, L] += f * M[c, J] * M[k, L]
        if want_mixed:
            for t in range(nt):
                b = touched[t]
                for c in range(3):
                    for k in range(3):
                        for L in range(3):
                            B[3 * b + c, 3 * k + L] += f * vec[b, c] * M[k, L]
    return EFF, B


def _check_weights(weights_n, n: int) -> np.ndarray:
    w = np.ascontiguousarray(require_finite("weights_n", weights_n))
    if w.shape != (n,):
        raise InputError(f"weights must have one entry per atom ({n}), got shape {w.shape}")
    return w


class Calculator:
    """Evaluate a potential on configurations, keeping a neighbour list between calls.

    Args:
        potential: any :class:`~atomistic.potentials.base.Potential`.
        skin: neighbour-list skin (Å).
        multiple_images: allow cutoffs of half a periodic width or more (see
            :class:`~atomistic.neighbors.NeighborList`).
        min_distance: atoms closer than this (Å) are refused as overlapping when a list is built.
        exclude: optional ``exclude(i_p, j_p, s_pc) -> bool mask`` of neighbour pairs that
            do not interact (a cut bond, e.g. across the faces of a pre-cut crack; see
            :func:`atomistic.fracture.crack_cut`). It is applied to every list the
            calculator builds, so energy, forces and Hessian all see the same bonds. For EAM
            an excluded pair contributes neither its pair term nor its density.
        threads: numba threads of :meth:`compute`'s compact kernel (potentials that have
            one: EAM). 1 (default) runs the serial kernel; ``t > 1`` splits the atoms into
            ``t`` row ranges of equal pair counts, each accumulating into private arrays that
            are summed in range order: results are bitwise reproducible for a given ``t``
            (whatever numba's thread count or timing), but differ in the last bits from
            another ``t``. Opt-in, so that a default run's bits do not depend on it.
    """

    def __init__(self, potential: Potential, *, skin: float = 1.0, multiple_images: bool = False,
                 min_distance: float = 0.5, exclude=None, threads: int = 1) -> None:
        self.potential = potential
        self.skin = require_nonnegative("skin", skin, unit="Å")
        self.multiple_images = multiple_images
        self.min_distance = require_nonnegative("min_distance", min_distance, unit="Å")
        self.exclude = exclude
        if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
            raise InputError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = int(threads)
        self._nl: NeighborList | None = None
        self._key = None
        self._pl: PairList | None = None
        self._pl_key = None
        self._cp: CompactPairs | None = None
        self._cp_key = None

    # -- neighbour list ---------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the cached neighbour and pair lists: the next call builds them afresh.

        A kept list (with its skin) is reused while the atoms move less than half the skin, so
        the order in which its pairs are summed, hence the last bits of every result, depends
        on the configurations computed before. Call this where a result must be a function of
        its own input only (:meth:`atomistic.rve.AtomisticRVE.evaluate_one`: a material point's
        result must not depend on which point the same process evaluated before it).
        """
        self._nl = self._key = None
        self._pl = self._pl_key = None
        self._cp = self._cp_key = None

    def neighbor_list(self, config: Configuration) -> NeighborList:
        """The neighbour list for ``config``, rebuilt only when needed.

        Every method of the calculator passes through here, and ``NeighborList.build`` /
        ``update`` refuse NaN/inf or absurd positions and cells (``InputError`` naming the
        entry, e.g. ``positions_nc[17, 2] is nan``) before any kernel runs, also when the
        arrays were changed in place after the configuration was built.
        """
        key = (len(config), config.pbc)
        if self._nl is None or key != self._key:
            self._nl = NeighborList(config, self.potential.cutoff, self.skin,
                                    multiple_images=self.multiple_images)
            self._key = key
            self._check_overlap(config)
        elif self._nl.update(config.positions_nc, config.cell_cc):
            self._check_overlap(config)
        return self._nl

    @property
    def kept_neighbor_list(self) -> NeighborList | None:
        """The neighbour list kept from the last call (None before any), not updated."""
        return self._nl

    def _check_overlap(self, config: Configuration) -> None:
        nl = self._nl
        p, r = _closest_pair(np.ascontiguousarray(config.positions_nc, float),
                             np.ascontiguousarray(config.cell_cc, float), nl.i_p, nl.j_p, nl.s_pc)
        if p >= 0 and r < self.min_distance:
            raise InputError(
                f"atoms {nl.i_p[p]} and {nl.j_p[p]} overlap (distance {r:.4g} Å < "
                f"{self.min_distance} Å): remove duplicated atoms or fix the positions "
                "(min_distance sets this threshold)")

    def _pairs(self, config: Configuration):
        if config.types_n.size and config.types_n.max() >= len(self.potential.elements):
            raise InputError(
                f"atom type {int(config.types_n.max())} has no element in the potential "
                f"(elements: {self.potential.elements})")
        nl = self.pair_list(config)
        d_pc, r_p = pair_vectors(config.positions_nc, config.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
        return nl, d_pc, r_p

    def pair_list(self, config: Configuration):
        """The neighbour list for ``config`` without the excluded pairs."""
        nl = self.neighbor_list(config)
        if self.exclude is None:
            return nl
        key = (id(nl), nl.builds)
        if self._pl is None or key != self._pl_key:
            drop = np.asarray(self.exclude(nl.i_p, nl.j_p, nl.s_pc), bool)
            if drop.shape != nl.i_p.shape:
                raise InputError(f"exclude must return one bool per pair, got {drop.shape}")
            keep = ~drop
            self._pl = PairList(np.ascontiguousarray(nl.i_p[keep]),
                                np.ascontiguousarray(nl.j_p[keep]),
                                np.ascontiguousarray(nl.s_pc[keep]))
            self._pl_key = key
        return self._pl

    # -- first order ------------------------------------------------------------------------
    def compute(self, config: Configuration, weights_n: np.ndarray | None = None) -> Result:
        """Energy, site energies, forces, virial and stress.

        With ``weights_n`` the forces are ``-grad sum_a w_a E_a`` (as the quasicontinuum needs);
        energy and site energies are always the unweighted ones.
        """
        if weights_n is None and hasattr(self.potential, "compact_energy_forces"):
            e_n, forces, virial = self._compact_compute(config)
        else:
            nl, d_pc, r_p = self._pairs(config)
            if weights_n is not None:
                weights_n = _check_weights(weights_n, len(config))
            e_n, dedr_p = self.potential.first_order(r_p, nl.i_p, nl.j_p, config.types_n,
                                                     weights_n)
            forces, virial = _forces_virial(d_pc, r_p, nl.i_p, nl.j_p, dedr_p, len(config))
        vol = config.volume if all(config.pbc) else float("nan")
        kin = np.zeros((3, 3))
        if config.velocities_nc is not None and config.masses_n is not None:
            v = config.velocities_nc
            kin = MVV2E * (config.masses_n[:, None] * v).T @ v
        stress = -(virial + kin) / vol
        return Result(float(e_n.sum()), e_n, forces, virial, stress, vol)

    def atom_virials(self, config: Configuration) -> np.ndarray:
        """Per-atom virials ``W_a`` (eV), shape (n, 3, 3), summing to ``Result.virial_cc``.

        Every interaction of the potentials here is central and pairwise in its forces (EAM
        included: ``dE/dr_p`` per pair), so each pair's ``-f_p ⊗ d_p`` is split half and half
        between its two atoms, LAMMPS's ``compute stress/atom`` convention (``W_a =
        -nktv2p⁻¹`` × its per-atom stress×volume, virial part). With the site energies
        (``Result.site_energies_n``) they give the heat current ``J = Σ_a (e_a v_a - W_a
        v_a)``.
        """
        nl, d_pc, r_p = self._pairs(config)
        _, dedr_p = self.potential.first_order(r_p, nl.i_p, nl.j_p, config.types_n, None)
        return _atom_virials(d_pc, r_p, nl.i_p, nl.j_p, dedr_p, len(config))

    def compact_pairs(self, config: Configuration) -> CompactPairs:
        """The :class:`CompactPairs` of :meth:`pair_list`, rebuilt only with the list."""
        pl = self.pair_list(config)
        key = (pl.i_p, self._nl.builds)
        if self._cp is None or key[0] is not self._cp_key[0] or key[1] != self._cp_key[1]:
            self._cp = compact_pairs(pl, len(config))
            self._cp_key = key
        return self._cp

    def _compact_args(self, config: Configuration):
        """``(x, shift vectors, compact pairs, types)`` for a potential's compact kernels."""
        types = config.types_n
        if types.size and (types.max() >= len(self.potential.elements) or types.min() < 0):
            raise InputError(
                f"atom types must lie in 0..{len(self.potential.elements) - 1} (elements: "
                f"{self.potential.elements}), got {int(types.min())}..{int(types.max())}")
        cp = self.compact_pairs(config)
        return (np.ascontiguousarray(config.positions_nc, float),
                cp.shift_vectors(config.cell_cc), cp, np.ascontiguousarray(types, np.int64))

    def _compact_compute(self, config: Configuration):
        """``(e_n, forces, virial)`` from the potential's compact kernel (the MD path)."""
        x, sv, cp, types = self._compact_args(config)
        bounds = None if self.threads == 1 else cp.row_ranges(self.threads)
        return self.potential.compact_energy_forces(x, sv, cp.start_n, cp.j_k, cp.c_k, types,
                                                    bounds)

    def energy(self, config: Configuration) -> float:
        """Total energy (eV)."""
        return self.compute(config).energy

    # -- second order -----------------------------------------------------------------------
    def _second(self, config: Configuration, weights_n: np.ndarray | None = None):
        nl, d_pc, r_p = self._pairs(config)
        if weights_n is None:
            so: SecondOrder = self.potential.second_order(r_p, nl.i_p, nl.j_p, config.types_n)
        else:
            weights_n = _check_weights(weights_n, len(config))
            so = self.potential.second_order(r_p, nl.i_p, nl.j_p, config.types_n, weights_n)
        K = _radial_blocks(d_pc, r_p, so.dedr_p, so.d2edr2_p)
        return nl, d_pc, r_p, so, K

    def hessian(self, config: Configuration, weights_n: np.ndarray | None = None
                ) -> sp.csr_matrix:
        """The analytic atomic Hessian d2E/dx dx as a sparse (3n, 3n) matrix (eV/Å²).

        With ``weights_n`` it is the Hessian of ``sum_a w_a E_a`` (the quasicontinuum's
        weighted site energies), matching :meth:`compute` with the same weights.
        """
        nl, d_pc, r_p, so, K = self._second(config, weights_n)
        n = len(config)
        rows, cols, vals = _hessian_coo(d_pc, r_p, nl.i_p, nl.j_p, K, so.fpp_n, so.drho_i_p,
                                        so.drho_j_p, n)
        return sp.coo_matrix((vals, (rows, cols)), shape=(3 * n, 3 * n)).tocsr()

    def deformation_derivatives(self, config: Configuration, reference_cell_cc: np.ndarray, *,
                                mixed: bool = True):
        """Second derivatives with respect to a deformation gradient F.

        The configuration is read as ``x_a = F X_a + u_a`` with cell ``F @ reference_cell``
        (rows: ``cell = reference_cell @ F.T``); the reference pair vectors are
        ``D_p = F^{-1} (d_p - (u_j - u_i))``, so that ``d_p = F D_p + u_j - u_i``.
        Because u enters only through differences, we need ``D_p`` only through
        the cell: here ``D_p = d_p`` mapped back with ``F^{-1}``, i.e. the internal
        displacements are taken in the current frame.

        Returns:
            ``(E_FF, B, H)``: ``E_FF[i,J,k,L] = d2E/dF_iJ dF_kL`` (eV) at fixed u,
            ``B[3a+c, 3k+L] = d2E/du_ac dF_kL`` (eV/Å, None unless ``mixed``), and the
            sparse Hessian ``H = d2E/du du`` (None unless ``mixed``).
        """
        nl, d_pc, r_p, so, K = self._second(config)
        reference_cell_cc = require_finite("reference_cell_cc", reference_cell_cc)
        F = np.linalg.solve(reference_cell_cc, config.cell_cc).T  # cell = ref @ F.T
        D_pc = np.ascontiguousarray(self._reference_vectors(config, nl, F))
        EFF, B = _second_F(d_pc, r_p, D_pc, nl.i_p, nl.j_p, K, so.fpp_n, so.drho_i_p,
                           so.drho_j_p, len(config), mixed)
        if not mixed:
            return EFF, None, None
        n = len(config)
        rows, cols, vals = _hessian_coo(d_pc, r_p, nl.i_p, nl.j_p, K, so.fpp_n, so.drho_i_p,
                                        so.drho_j_p, n)
        H = sp.coo_matrix((vals, (rows, cols)), shape=(3 * n, 3 * n)).tocsr()
        return EFF, B, H

    def _reference_vectors(self, config, nl, F):
        # With x = F X + u and the reference positions X unknown to the calculator, the
        # derivative at fixed u needs D_p = X_j - X_i + s_p @ ref_cell. Positions enter d_p as
        # F (X_j - X_i) + (u_j - u_i); the split between X and u is a gauge choice that drops
        # out of the relaxed tangent; we take X = F^{-1} x (u = 0 at this state), i.e.
        # D_p = F^{-1} d_p.
        d_pc, _ = pair_vectors(config.positions_nc, config.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
        return np.linalg.solve(F, d_pc.T).T

    def born_tensor_numdiff(self, config: Configuration, delta: float = 1e-3) -> np.ndarray:
        """The Born tensor by central differences of the stress: what LAMMPS's numdiff does.

        For each of the six Green-Lagrange strains ``±delta`` (engineering shear) applied to
        the configuration (``x' = F x``, ``F = sqrt(I + 2E)``), the derivative of the energy
        with respect to E, ``V S = -F⁻¹ W(E) F⁻ᵀ`` (W the virial), is differenced:
        ``C_IJ = (V S_I(+E_J) - V S_I(-E_J)) / (2 delta V)``: 12 force evaluations.

        Unlike :meth:`born_tensor`, it sees the potential's discontinuities: a pair crossing
        the cutoff within the ±delta strain (where a tabulated potential or an unshifted
        ``lj/cut`` has a nonzero force or energy) adds its jump divided by 2 delta, so that its
        average over an ensemble includes the impulsive (delta-function) part of the second
        derivative that the analytic tensor of a single configuration cannot have. Its error
        for the smooth part is O(delta²).

        Args:
            config: a fully periodic configuration.
            delta: the strain step (default 1e-3: relative error ~1e-6 for the smooth part,
                window ~2 delta r for the cutoff term).

        Returns:
            (3, 3, 3, 3) in eV/Å³.
        """
        from fe2qc.tensors import VOIGT_PAIRS, from_voigt_stiffness

        delta = require_nonnegative("delta", delta)
        if not (delta > 0):
            raise InputError("delta must be > 0")
        V = config.volume
        C = np.zeros((6, 6))
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            g = []
            for sign in (1.0, -1.0):
                E = np.zeros((3, 3))
                if k == l:
                    E[k, k] = sign * delta
                else:
                    E[k, l] = E[l, k] = 0.5 * sign * delta
                w, Q = np.linalg.eigh(np.eye(3) + 2.0 * E)
                F = (Q * np.sqrt(w)) @ Q.T
                Finv = np.linalg.inv(F)
                strained = Configuration(config.positions_nc @ F.T, config.cell_cc @ F.T,
                                         config.pbc, config.types_n)
                W = self.compute(strained).virial_cc
                VS = -Finv @ W @ Finv.T
                g.append([VS[a, b] for a, b in VOIGT_PAIRS])
            C[:, J] = (np.array(g[0]) - np.array(g[1])) / (2.0 * delta * V)
        return from_voigt_stiffness(0.5 * (C + C.T))

    def born_tensor(self, config: Configuration) -> np.ndarray:
        """Born elastic tensor (eV/Å³) at fixed internal coordinates, LAMMPS's definition.

        ``C_ijkl = (1/V) d2E/dE_ij dE_kl`` with E the Green-Lagrange strain taken from the
        current configuration; for pair potentials this is
        ``(1/V) sum_p (phi'' - phi'/r) d_i d_j d_k d_l / r^2``. It equals the symmetrised
        ``d2E/dF dF`` only at zero stress: ``d2E/dF_iJ dF_kL = V C_iJkL + delta_ik V S_JL``.

        Potentials with a compact kernel (EAM: ``compact_born``) evaluate it in two fused
        passes over the compact pair list, where the stress terms cancel analytically:
        ``V C = sum_p (E''_p - E'_p/r) d d d d / r² + sum_a U''_a M_a ⊗ M_a``.
        """
        if hasattr(self.potential, "compact_born"):
            x, sv, cp, types = self._compact_args(config)
            C = self.potential.compact_born(x, sv, cp.start_n, cp.j_k, cp.c_k, types)
            return C / config.volume
        nl, d_pc, r_p, so, K = self._second(config)
        EFF, _ = _second_F(d_pc, r_p, d_pc, nl.i_p, nl.j_p, K, so.fpp_n, so.drho_i_p,
                           so.drho_j_p, len(config), False)
        res = self.compute(config)
        S = -res.virial_cc  # = sum_p f_p ⊗ d_p = V sigma (= V S at the current state)
        EFF = EFF - np.einsum("ik,jl->ijkl", np.eye(3), S)
        return minor_sym(EFF) / config.volume
