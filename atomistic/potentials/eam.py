"""Embedded-atom method potentials read from DYNAMO ``funcfl`` and ``setfl`` files.

The tabulated functions are turned into splines exactly as LAMMPS's ``pair_style eam``
(``src/MANYBODY/pair_eam.cpp``) and ``pair_style eam/alloy`` (``pair_eam_alloy.cpp``) do,
so that energies, forces and virials agree with LAMMPS to round-off:

* ``funcfl`` (``*.eam``): the file's F(rho), Z(r), rho(r) are re-interpolated by
  ``PairEAM::file2array`` onto a grid of ``nr = int(rmax/dr + 0.5)`` points with
  ``rmax = (nr_file - 1) dr`` (so one point *fewer* than in the file), with 4-point Lagrange
  interpolation; the pair term is ``z2r = 27.2*0.529 * Z_i(r) Z_j(r)`` (Hartree·Bohr -> eV·Å).
  ``rhomax = (nrho_file - 1) drho`` is one grid step *beyond* the re-interpolated table's end.
* ``setfl`` (``*.eam.alloy``): tables are used as read; ``rhomax = (nrho - 1) drho``.
* ``PairEAM::interpolate`` builds a 7-coefficient cubic per interval: ``c[6] + c[5] p +
  c[4] p² + c[3] p³`` is the value and ``c[2] + c[1] p + c[0] p²`` the derivative with
  respect to r (or rho), with ``p`` the position within the interval.
* ``PairEAM::compute``: ``p = r/dr + 1``, ``m = min(int(p), nr-1)``, ``p = min(p - m, 1)``
  (likewise for rho with ``m = max(1, min(m, nrho-1))``); an atom with ``rho > rhomax`` gets
  ``F(rho) = F_table + F'(rho_table) (rho - rhomax)``; pairs count when ``r² < cutmax²``.

Energies are in eV, lengths in Å.
"""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np

from atomistic.lammps.files import lammps_potential_path, potential_dirs
from atomistic.neighbors import pair_vector
from atomistic.potentials.base import SecondOrder, checked_distances
from atomistic.structure import check_coordinates
from fe2qc.checks import require_finite
from fe2qc.errors import InputError
from fe2qc.units import HARTREE_BOHR_IN_EV_A

__all__ = ["EAM"]


# ------------------------------------------------------------------------------------------
# Locating potential files (a bare name is looked up in the lammps wheel)
# ------------------------------------------------------------------------------------------

def _resolve(path) -> Path:
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    if p.parent == Path(".") and potential_dirs():
        try:
            return Path(lammps_potential_path(p.name)).resolve()
        except InputError:
            pass
    where = ", ".join(str(d) for d in potential_dirs()) or (
        "<site-packages>/lammps/share/lammps/potentials (install the lammps wheel)")
    raise InputError(
        f"EAM potential file '{path}' does not exist. Give an existing path; potential files "
        f"shipped with the lammps wheel live in {where} "
        f"(atomistic.lammps.lammps_potential_path(name) returns their path)")


# ------------------------------------------------------------------------------------------
# Reading files
# ------------------------------------------------------------------------------------------

class _Lines:
    """Line reader that collects numbers across lines, like LAMMPS's PotentialFileReader."""

    def __init__(self, path: Path) -> None:
        try:
            self.lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read EAM potential file '{path}': {exc}") from exc
        self.path = path
        self.pos = 0

    def line(self, what: str) -> list[str]:
        while self.pos < len(self.lines):
            words = self.lines[self.pos].split()
            self.pos += 1
            if words:
                return words
        raise InputError(f"EAM potential file '{self.path}' ends before the {what} "
                         f"(truncated or not an EAM file)")

    def numbers(self, n: int, what: str, total: list[int]) -> np.ndarray:
        out: list[str] = []
        while len(out) < n and self.pos < len(self.lines):
            out.extend(self.lines[self.pos].split())
            self.pos += 1
        if len(out) < n:
            found = total[1] + len(out)
            raise InputError(
                f"EAM potential file '{self.path}' is truncated: while reading {what} it "
                f"expected {total[0]} tabulated numbers in all but found only {found}")
        if len(out) > n:
            raise InputError(
                f"EAM potential file '{self.path}', line {self.pos}: {what} has more numbers "
                f"than the header announces ({n}); the file is malformed")
        try:
            vals = np.array([float(w) for w in out])
        except ValueError as exc:
            raise InputError(f"EAM potential file '{self.path}' near line {self.pos}: "
                             f"non-numeric entry while reading {what} ({exc})") from exc
        if not np.isfinite(vals).all():
            k = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise InputError(f"EAM potential file '{self.path}' near line {self.pos}: entry {k} "
                             f"of {what} is {float(vals[k])!r}; the tables must be finite numbers")
        total[1] += n
        return vals


def _grid_header(words: list[str], path: Path, lineno: int):
    try:
        nrho, drho, nr, dr, cut = (int(words[0]), float(words[1]), int(words[2]),
                                   float(words[3]), float(words[4]))
    except (ValueError, IndexError) as exc:
        raise InputError(
            f"EAM potential file '{path}', line {lineno}: expected 'Nrho drho Nr dr cutoff', "
            f"got {' '.join(words)!r} (wrong format?)") from exc
    if nrho < 5 or nr < 5 or not (drho > 0 and dr > 0 and cut > 0) or not all(
            np.isfinite([drho, dr, cut])):
        raise InputError(
            f"EAM potential file '{path}', line {lineno}: invalid grid Nrho={nrho} "
            f"drho={drho} Nr={nr} dr={dr} cutoff={cut} (need at least 5 points, positive steps)")
    # the table ends (n - 1) d and the inverse steps 1/d must be doubles too
    try:
        sizes = ((nrho - 1) * drho, (nr - 1) * dr, 1.0 / drho, 1.0 / dr)
    except OverflowError:  # a point count beyond the range of a double
        sizes = (math.inf,)
    if not all(math.isfinite(x) for x in sizes):
        raise InputError(
            f"EAM potential file '{path}', line {lineno}: grid Nrho={nrho} drho={drho} Nr={nr} "
            f"dr={dr} overflows double precision (the table's end (N - 1) d or the inverse "
            "step 1/d is not a finite number); use steps and sizes of ordinary magnitude")
    return nrho, drho, nr, dr, cut


def _element_line(words: list[str], path: Path, lineno: int):
    try:
        z = int(float(words[0]))
        mass = float(words[1])
    except (ValueError, IndexError, OverflowError) as exc:  # OverflowError: Z = inf
        raise InputError(f"EAM potential file '{path}', line {lineno}: expected "
                         f"'Z mass [a0 lattice]', got {' '.join(words)!r}") from exc
    if not (np.isfinite(mass) and mass > 0):
        raise InputError(f"EAM potential file '{path}', line {lineno}: the mass {words[1]!r} "
                         f"must be a positive number (amu)")
    a0 = float(words[2]) if len(words) > 2 and _isfloat(words[2]) else float("nan")
    if not (math.isfinite(a0) and a0 > 0):  # informative only: NaN stands for "not given"
        a0 = float("nan")
    lat = words[3].lower() if len(words) > 3 else ""
    return z, mass, a0, lat


def _element_symbol(z: int, path: Path) -> str:
    """Return the chemical symbol of atomic number ``z`` (line 2 of a funcfl file).

    ``"X"`` when the number is no element's (pass ``element=`` then).
    """
    from ase.data import chemical_symbols

    return chemical_symbols[z] if 1 <= z < len(chemical_symbols) else "X"


def _isfloat(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------
# LAMMPS's table processing (file2array, interpolate)
# ------------------------------------------------------------------------------------------

def _lagrange_regrid(f1: np.ndarray, dfile: float, n_new: int, d_new: float) -> np.ndarray:
    """PairEAM::file2array's 4-point re-interpolation; ``f1`` is 1-based (f1[0] unused)."""
    f1 = [float(v) for v in f1]  # Python floats: an overflow is inf, checked by the caller
    nfile = len(f1) - 1
    sixth = 1.0 / 6.0
    out = np.zeros(n_new + 1)
    for m in range(1, n_new + 1):
        r = (m - 1) * d_new
        p = r / dfile + 1.0
        k = int(p)
        k = min(k, nfile - 2)
        k = max(k, 2)
        p -= k
        p = min(p, 2.0)
        cof1 = -sixth * p * (p - 1.0) * (p - 2.0)
        cof2 = 0.5 * (p * p - 1.0) * (p - 2.0)
        cof3 = -0.5 * p * (p + 1.0) * (p - 2.0)
        cof4 = sixth * p * (p * p - 1.0)
        out[m] = cof1 * f1[k - 1] + cof2 * f1[k] + cof3 * f1[k + 1] + cof4 * f1[k + 2]
    return out


def _interpolate(f1: np.ndarray, delta: float) -> np.ndarray:
    """PairEAM::interpolate: 7 spline coefficients per grid point; ``f1`` is 1-based."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite: refused by EAM()
        return _interpolate_tables(f1, delta)


def _interpolate_tables(f1: np.ndarray, delta: float) -> np.ndarray:
    n = len(f1) - 1
    s = np.zeros((n + 1, 7))
    s[1:, 6] = f1[1:]
    s[1, 5] = s[2, 6] - s[1, 6]
    s[2, 5] = 0.5 * (s[3, 6] - s[1, 6])
    s[n - 1, 5] = 0.5 * (s[n, 6] - s[n - 2, 6])
    s[n, 5] = s[n, 6] - s[n - 1, 6]
    m = np.arange(3, n - 1)
    s[m, 5] = ((s[m - 2, 6] - s[m + 2, 6]) + 8.0 * (s[m + 1, 6] - s[m - 1, 6])) / 12.0
    m = np.arange(1, n)
    s[m, 4] = 3.0 * (s[m + 1, 6] - s[m, 6]) - 2.0 * s[m, 5] - s[m + 1, 5]
    s[m, 3] = s[m, 5] + s[m + 1, 5] - 2.0 * (s[m + 1, 6] - s[m, 6])
    s[n, 4] = 0.0
    s[n, 3] = 0.0
    s[1:, 2] = s[1:, 5] / delta
    s[1:, 1] = 2.0 * s[1:, 4] / delta
    s[1:, 0] = 3.0 * s[1:, 3] / delta
    return s


# ------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------

@numba.njit(cache=True, inline="always")
def _locate(x, rdelta, n):
    """Return LAMMPS's interval ``m`` of ``x`` on a table, the position ``p`` in it, ``clamped``.

    The table's step is ``1/rdelta``; as in ``PairEAM::compute``, ``p = x/delta + 1``,
    ``m = max(1, min(int(p), n-1))``, ``p = min(p - m, 1)``; ``clamped`` is True beyond the
    table's end.

    LAMMPS clamps the density index from below at 1, the distance index not at all; for
    distances (r >= 0, so ``int(p) >= 1``) the lower clamp never acts.
    """
    p = x * rdelta + 1.0
    m = int(p)
    m = max(1, min(m, n - 1))
    p -= m
    clamped = p > 1.0
    p = min(p, 1.0)
    return m, p, clamped


@numba.njit(cache=True, inline="always")
def _spline(c, p, k):
    """Value, first and second derivative of one interval's cubic at position ``p``.

    ``c`` holds ``PairEAM::interpolate``'s 7 coefficients of the interval: the value is
    ``c[6] + c[5] p + c[4] p² + c[3] p³``, its derivative with respect to r (or rho)
    ``c[2] + c[1] p + c[0] p²``, and the second derivative ``(2 c[0] p + c[1]) k`` with
    ``k = 1/delta``, or 0 beyond the table where LAMMPS freezes ``p`` at 1. Inlined into
    the kernels, so the terms a kernel does not use are never computed.
    """
    f = ((c[3] * p + c[4]) * p + c[5]) * p + c[6]
    fp = (c[0] * p + c[1]) * p + c[2]
    fpp = (2.0 * c[0] * p + c[1]) * k
    return f, fp, fpp


@numba.njit(cache=True, inline="always")
def _pair(c, p, k, r):
    """``(phi, phi', phi'')`` of the pair term ``phi = z2r(r)/r`` from its spline interval."""
    z2, z2p, z2pp = _spline(c, p, k)
    recip = 1.0 / r
    phi = z2 * recip
    phip = z2p * recip - phi * recip
    phipp = (z2pp - 2.0 * phip) * recip
    return phi, phip, phipp


@numba.njit(cache=True, inline="always")
def _embed(rho, frho, rdrho, nrho, rhomax):
    """Return (F, F', F'') of LAMMPS's embedding spline at ``rho``."""
    m, p, clamped = _locate(rho, rdrho, nrho)
    f, fp, fpp = _spline(frho[m], p, 0.0 if clamped else rdrho)
    if rho > rhomax:
        f += fp * (rho - rhomax)
    return f, fp, fpp


@numba.njit(cache=True, inline="always")
def _pair_at(q, r, i_p, j_p, types_n, rdr, nr):
    """Return ``(i, j, type_i, type_j, m, p, clamped)`` of pair ``q`` at distance ``r``."""
    i = i_p[q]
    j = j_p[q]
    m, p, clamped = _locate(r, rdr, nr)
    return i, j, types_n[i], types_n[j], m, p, clamped


@numba.njit(cache=True)
def _density(r_p, i_p, j_p, types_n, rhor, rdr, nr, cut, rho):
    for q in range(r_p.shape[0]):
        r = r_p[q]
        if r < cut:
            i, j, ti, tj, m, p, _ = _pair_at(q, r, i_p, j_p, types_n, rdr, nr)
            rho[i] += _spline(rhor[tj, m], p, rdr)[0]
            rho[j] += _spline(rhor[ti, m], p, rdr)[0]


@numba.njit(cache=True, inline="always")
def _embedding(r_p, i_p, j_p, types_n, w_n, rhor, frho, rdr, rdrho, nr, nrho, rhomax, cut):
    """Return ``(F_n, w F'_n, w F''_n)``: embedding energies and weighted derivatives per atom."""
    n = types_n.shape[0]
    rho = np.zeros(n)
    _density(r_p, i_p, j_p, types_n, rhor, rdr, nr, cut, rho)
    f_n = np.empty(n)
    fp_n = np.empty(n)
    fpp_n = np.empty(n)
    for a in range(n):
        f, fp, fpp = _embed(rho[a], frho[types_n[a]], rdrho, nrho, rhomax)
        f_n[a] = f
        fp_n[a] = w_n[a] * fp
        fpp_n[a] = w_n[a] * fpp
    return f_n, fp_n, fpp_n


@numba.njit(cache=True)
def _first_order(r_p, i_p, j_p, types_n, w_n, rhor, z2r, z2r_idx, frho, rdr, rdrho, nr, nrho,
                 rhomax, cut):
    e_n, wfp, _ = _embedding(r_p, i_p, j_p, types_n, w_n, rhor, frho, rdr, rdrho, nr, nrho,
                             rhomax, cut)
    npair = r_p.shape[0]
    dedr = np.zeros(npair)
    for q in range(npair):
        r = r_p[q]
        if r < cut:
            i, j, ti, tj, m, p, _ = _pair_at(q, r, i_p, j_p, types_n, rdr, nr)
            rhoip = _spline(rhor[ti, m], p, rdr)[1]
            rhojp = _spline(rhor[tj, m], p, rdr)[1]
            phi, phip, _ = _pair(z2r[z2r_idx[ti, tj], m], p, rdr, r)
            dedr[q] = wfp[i] * rhojp + wfp[j] * rhoip + 0.5 * (w_n[i] + w_n[j]) * phip
            e_n[i] += 0.5 * phi
            e_n[j] += 0.5 * phi
    return e_n, dedr


@numba.njit(cache=True)
def _second_order(r_p, i_p, j_p, types_n, w_n, rhor, z2r, z2r_idx, frho, rdr, rdrho, nr, nrho,
                  rhomax, cut):
    _, fp_n, fpp_n = _embedding(r_p, i_p, j_p, types_n, w_n, rhor, frho, rdr, rdrho, nr, nrho,
                                rhomax, cut)
    npair = r_p.shape[0]
    dedr = np.zeros(npair)
    d2 = np.zeros(npair)
    drho_i = np.zeros(npair)
    drho_j = np.zeros(npair)
    for q in range(npair):
        r = r_p[q]
        if r < cut:
            i, j, ti, tj, m, p, clamped = _pair_at(q, r, i_p, j_p, types_n, rdr, nr)
            k = 0.0 if clamped else rdr
            _, rhoip, rhoipp = _spline(rhor[ti, m], p, k)
            _, rhojp, rhojpp = _spline(rhor[tj, m], p, k)
            _, phip, phipp = _pair(z2r[z2r_idx[ti, tj], m], p, k, r)
            wp = 0.5 * (w_n[i] + w_n[j])
            dedr[q] = fp_n[i] * rhojp + fp_n[j] * rhoip + wp * phip
            d2[q] = wp * phipp + fp_n[i] * rhojpp + fp_n[j] * rhoipp
            drho_i[q] = rhojp
            drho_j[q] = rhoip
    return dedr, d2, fpp_n, drho_i, drho_j


@numba.njit(cache=True, fastmath=False)
def _energy_forces(x, cell, i_p, j_p, s_pc, types_n, rhor, z2r, z2r_idx, frho, rdr, rdrho,
                   nr, nrho, rhomax, cutsq):
    n = x.shape[0]
    npair = i_p.shape[0]
    rho = np.zeros(n)
    for q in range(npair):
        i, j, _, _, _, rsq = pair_vector(x, cell, i_p, j_p, s_pc, q)
        if rsq < cutsq:
            m, p, _ = _locate(np.sqrt(rsq), rdr, nr)
            rho[i] += _spline(rhor[types_n[j], m], p, rdr)[0]
            rho[j] += _spline(rhor[types_n[i], m], p, rdr)[0]
    energy = 0.0
    fp_n = np.empty(n)
    for a in range(n):
        f, fp, _ = _embed(rho[a], frho[types_n[a]], rdrho, nrho, rhomax)
        energy += f
        fp_n[a] = fp
    forces = np.zeros((n, 3))
    vxx = 0.0
    vyy = 0.0
    vzz = 0.0
    vxy = 0.0
    vxz = 0.0
    vyz = 0.0
    for q in range(npair):
        i, j, dx, dy, dz, rsq = pair_vector(x, cell, i_p, j_p, s_pc, q)
        if rsq < cutsq:
            ti = types_n[i]
            tj = types_n[j]
            r = np.sqrt(rsq)
            m, p, _ = _locate(r, rdr, nr)
            rhoip = _spline(rhor[ti, m], p, rdr)[1]
            rhojp = _spline(rhor[tj, m], p, rdr)[1]
            phi, phip, _ = _pair(z2r[z2r_idx[ti, tj], m], p, rdr, r)
            psip = fp_n[i] * rhojp + fp_n[j] * rhoip + phip
            fpair = psip * (1.0 / r)
            fx = dx * fpair
            fy = dy * fpair
            fz = dz * fpair
            forces[i, 0] += fx
            forces[i, 1] += fy
            forces[i, 2] += fz
            forces[j, 0] -= fx
            forces[j, 1] -= fy
            forces[j, 2] -= fz
            vxx -= dx * fx
            vyy -= dy * fy
            vzz -= dz * fz
            vxy -= dx * fy
            vxz -= dx * fz
            vyz -= dy * fz
            energy += phi
    virial = np.empty((3, 3))
    virial[0, 0] = vxx
    virial[1, 1] = vyy
    virial[2, 2] = vzz
    virial[0, 1] = virial[1, 0] = vxy
    virial[0, 2] = virial[2, 0] = vxz
    virial[1, 2] = virial[2, 1] = vyz
    return energy, forces, virial


# ------------------------------------------------------------------------------------------
# Row kernels over a compact half list (the MD path of Calculator.compute)
# ------------------------------------------------------------------------------------------
#
# The compact list (:class:`atomistic.calculator.CompactPairs`) holds the half list's pairs
# grouped by their first atom i (rows ``start[i]:start[i + 1]``, sorted by j), the second atom
# as uint32 ``j_k`` and the image shift as a small code ``c_k`` into a table ``sv_kc`` of shift
# vectors (``s @ cell``, recomputed per call): 5 bytes a pair instead of the list's 40, read
# twice per evaluation. A row keeps atom i's position, embedding slope and force in
# registers, as LAMMPS's loops over its half list do. The rows ``a0:a1`` of one call write
# their atom j terms into the arrays they are given, so that threads can work on disjoint row
# ranges with private arrays (summed afterwards in a fixed order: deterministic).


@numba.njit(cache=True, inline="always")
def _row_vector(x, sv, j_k, c_k, k, xi, yi, zi):
    """Return ``(j, dx, dy, dz, rsq)`` of entry ``k`` of a compact row of an atom at xi, yi, zi."""
    j = j_k[k]
    c = c_k[k]
    dx = x[j, 0] - xi + sv[c, 0]
    dy = x[j, 1] - yi + sv[c, 1]
    dz = x[j, 2] - zi + sv[c, 2]
    return j, dx, dy, dz, dx * dx + dy * dy + dz * dz


@numba.njit(cache=True)
def _rows_density(x, sv, start, j_k, c_k, types_n, rhor, rdr, nr, cutsq, a0, a1, rho):
    """Add the host densities of the pairs of rows ``a0:a1`` to ``rho`` (both atoms)."""
    for i in range(a0, a1):
        xi = x[i, 0]
        yi = x[i, 1]
        zi = x[i, 2]
        ti = types_n[i]
        acc = 0.0
        for k in range(start[i], start[i + 1]):
            j, _, _, _, rsq = _row_vector(x, sv, j_k, c_k, k, xi, yi, zi)
            if rsq < cutsq:
                m, p, _ = _locate(np.sqrt(rsq), rdr, nr)
                tj = types_n[j]
                a = _spline(rhor[tj, m], p, rdr)[0]
                acc += a
                rho[j] += a if ti == tj else _spline(rhor[ti, m], p, rdr)[0]
        rho[i] += acc


@numba.njit(cache=True)
def _rows_forces(x, sv, start, j_k, c_k, types_n, fp_n, rhor, z2r, z2r_idx, rdr, nr, cutsq,
                 a0, a1, forces, e_n, vir6):
    """Add the forces, half pair energies and virial (xx yy zz xy xz yz) of rows ``a0:a1``."""
    vxx = 0.0
    vyy = 0.0
    vzz = 0.0
    vxy = 0.0
    vxz = 0.0
    vyz = 0.0
    for i in range(a0, a1):
        xi = x[i, 0]
        yi = x[i, 1]
        zi = x[i, 2]
        ti = types_n[i]
        fpi = fp_n[i]
        fxi = 0.0
        fyi = 0.0
        fzi = 0.0
        ei = 0.0
        for k in range(start[i], start[i + 1]):
            j, dx, dy, dz, rsq = _row_vector(x, sv, j_k, c_k, k, xi, yi, zi)
            if rsq < cutsq:
                r = np.sqrt(rsq)
                m, p, _ = _locate(r, rdr, nr)
                tj = types_n[j]
                rhojp = _spline(rhor[tj, m], p, rdr)[1]
                rhoip = rhojp if ti == tj else _spline(rhor[ti, m], p, rdr)[1]
                phi, phip, _ = _pair(z2r[z2r_idx[ti, tj], m], p, rdr, r)
                fpair = (fpi * rhojp + fp_n[j] * rhoip + phip) * (1.0 / r)
                fx = dx * fpair
                fy = dy * fpair
                fz = dz * fpair
                fxi += fx
                fyi += fy
                fzi += fz
                forces[j, 0] -= fx
                forces[j, 1] -= fy
                forces[j, 2] -= fz
                vxx -= dx * fx
                vyy -= dy * fy
                vzz -= dz * fz
                vxy -= dx * fy
                vxz -= dx * fz
                vyz -= dy * fz
                half = 0.5 * phi
                ei += half
                e_n[j] += half
        forces[i, 0] += fxi
        forces[i, 1] += fyi
        forces[i, 2] += fzi
        e_n[i] += ei
    vir6[0] += vxx
    vir6[1] += vyy
    vir6[2] += vzz
    vir6[3] += vxy
    vir6[4] += vxz
    vir6[5] += vyz


@numba.njit(cache=True)
def _embedding_slopes(rho, types_n, frho, rdrho, nrho, rhomax, e_n, fp_n):
    """Embedding energies into ``e_n`` and slopes F'(rho) into ``fp_n``."""
    for a in range(rho.shape[0]):
        f, fp, _ = _embed(rho[a], frho[types_n[a]], rdrho, nrho, rhomax)
        e_n[a] = f
        fp_n[a] = fp


@numba.njit(cache=True)
def _virial6(v):
    out = np.empty((3, 3))
    out[0, 0] = v[0]
    out[1, 1] = v[1]
    out[2, 2] = v[2]
    out[0, 1] = out[1, 0] = v[3]
    out[0, 2] = out[2, 0] = v[4]
    out[1, 2] = out[2, 1] = v[5]
    return out


@numba.njit(cache=True)
def _compact_serial(x, sv, start, j_k, c_k, types_n, rhor, z2r, z2r_idx, frho, rdr, rdrho, nr,
                    nrho, rhomax, cutsq):
    n = x.shape[0]
    rho = np.zeros(n)
    _rows_density(x, sv, start, j_k, c_k, types_n, rhor, rdr, nr, cutsq, 0, n, rho)
    e_n = np.empty(n)
    fp_n = np.empty(n)
    _embedding_slopes(rho, types_n, frho, rdrho, nrho, rhomax, e_n, fp_n)
    forces = np.zeros((n, 3))
    vir6 = np.zeros(6)
    _rows_forces(x, sv, start, j_k, c_k, types_n, fp_n, rhor, z2r, z2r_idx, rdr, nr, cutsq,
                 0, n, forces, e_n, vir6)
    return e_n, forces, _virial6(vir6)


@numba.njit(cache=True, parallel=True)
def _compact_threaded(x, sv, start, j_k, c_k, types_n, rhor, z2r, z2r_idx, frho, rdr, rdrho,
                      nr, nrho, rhomax, cutsq, bounds):
    """The row kernels on the row ranges ``bounds[t]:bounds[t + 1]``, one per thread.

    Each range adds into its own arrays (zeroed by the thread that fills them); they are
    summed in range order, so the result depends on ``bounds`` only, not on the threads'
    timing. Four parallel regions: densities, their sum and the embedding, forces, their sum.
    """
    n = x.shape[0]
    nt = bounds.shape[0] - 1
    rho_t = np.empty((nt, n))
    f_t = np.empty((nt, n, 3))
    e_t = np.empty((nt, n))
    v_t = np.empty((nt, 6))
    for t in numba.prange(nt):
        rho_t[t, :] = 0.0
        _rows_density(x, sv, start, j_k, c_k, types_n, rhor, rdr, nr, cutsq, bounds[t],
                      bounds[t + 1], rho_t[t])
    e_n = np.empty(n)
    fp_n = np.empty(n)
    for a in numba.prange(n):
        s = rho_t[0, a]
        for t in range(1, nt):
            s += rho_t[t, a]
        f, fp, _ = _embed(s, frho[types_n[a]], rdrho, nrho, rhomax)
        e_n[a] = f
        fp_n[a] = fp
    for t in numba.prange(nt):
        f_t[t, :, :] = 0.0
        e_t[t, :] = 0.0
        v_t[t, :] = 0.0
        _rows_forces(x, sv, start, j_k, c_k, types_n, fp_n, rhor, z2r, z2r_idx, rdr, nr,
                     cutsq, bounds[t], bounds[t + 1], f_t[t], e_t[t], v_t[t])
    forces = np.empty((n, 3))
    for a in numba.prange(n):
        for c in range(3):
            s = f_t[0, a, c]
            for t in range(1, nt):
                s += f_t[t, a, c]
            forces[a, c] = s
        s = e_n[a]
        for t in range(nt):
            s += e_t[t, a]
        e_n[a] = s
    vir6 = np.zeros(6)
    for t in range(nt):
        for c in range(6):
            vir6[c] += v_t[t, c]
    return e_n, forces, _virial6(vir6)


#: (c, J) -> index into the 6 components (xx yy zz xy xz yz) of a symmetric 3x3 tensor
_SYM6 = np.array([[0, 3, 4], [3, 1, 5], [4, 5, 2]], np.int64)


@numba.njit(cache=True)
def _compact_born(x, sv, start, j_k, c_k, types_n, rhor, z2r, z2r_idx, frho, rdr, rdrho, nr,
                  nrho, rhomax, cutsq, sym6):
    """``V C^Born`` (eV): ``sum_p (E''_p - E'_p/r) d d d d / r^2 + sum_a U''_a M_a ⊗ M_a``.

    ``E'_p, E''_p`` are the pair's total radial derivatives at fixed embedding slopes and
    ``M_a = sum_{p at a} (drho_a/dr_p) d_p ⊗ d_p / r_p``; the stress terms of ``d2E/dF dF``
    cancel against LAMMPS's definition (see :meth:`Calculator.born_tensor`).
    """
    n = x.shape[0]
    rho = np.zeros(n)
    _rows_density(x, sv, start, j_k, c_k, types_n, rhor, rdr, nr, cutsq, 0, n, rho)
    fp_n = np.empty(n)
    fpp_n = np.empty(n)
    for a in range(n):
        _, fp, fpp = _embed(rho[a], frho[types_n[a]], rdrho, nrho, rhomax)
        fp_n[a] = fp
        fpp_n[a] = fpp
    m_n6 = np.zeros((n, 6))
    # w d^4 by monomial: xxxx xxxy xxxz xxyy xxyz xxzz xyyy xyyz xyzz xzzz yyyy yyyz yyzz yzzz zzzz
    t0 = 0.0
    t1 = 0.0
    t2 = 0.0
    t3 = 0.0
    t4 = 0.0
    t5 = 0.0
    t6 = 0.0
    t7 = 0.0
    t8 = 0.0
    t9 = 0.0
    t10 = 0.0
    t11 = 0.0
    t12 = 0.0
    t13 = 0.0
    t14 = 0.0
    mi = np.empty(6)
    for i in range(n):
        xi = x[i, 0]
        yi = x[i, 1]
        zi = x[i, 2]
        ti = types_n[i]
        fpi = fp_n[i]
        mi[:] = 0.0
        for k in range(start[i], start[i + 1]):
            j, dx, dy, dz, rsq = _row_vector(x, sv, j_k, c_k, k, xi, yi, zi)
            if rsq < cutsq:
                r = np.sqrt(rsq)
                m, p, clamped = _locate(r, rdr, nr)
                kk = 0.0 if clamped else rdr
                tj = types_n[j]
                _, rhojp, rhojpp = _spline(rhor[tj, m], p, kk)
                if ti == tj:
                    rhoip = rhojp
                    rhoipp = rhojpp
                else:
                    _, rhoip, rhoipp = _spline(rhor[ti, m], p, kk)
                _, phip, phipp = _pair(z2r[z2r_idx[ti, tj], m], p, kk, r)
                fpj = fp_n[j]
                dedr = fpi * rhojp + fpj * rhoip + phip
                d2 = phipp + fpi * rhojpp + fpj * rhoipp
                w = (d2 - dedr / r) / rsq
                xx = dx * dx
                yy = dy * dy
                zz = dz * dz
                xy = dx * dy
                xz = dx * dz
                yz = dy * dz
                wxx = w * xx
                wyy = w * yy
                t0 += wxx * xx
                t1 += wxx * xy
                t2 += wxx * xz
                t3 += wxx * yy
                t4 += wxx * yz
                t5 += wxx * zz
                t6 += wyy * xy
                t7 += wyy * xz
                t8 += w * xy * zz
                t9 += w * xz * zz
                t10 += wyy * yy
                t11 += wyy * yz
                t12 += wyy * zz
                t13 += w * yz * zz
                t14 += w * zz * zz
                gi = rhojp / r
                gj = rhoip / r
                mi[0] += gi * xx
                mi[1] += gi * yy
                mi[2] += gi * zz
                mi[3] += gi * xy
                mi[4] += gi * xz
                mi[5] += gi * yz
                m_n6[j, 0] += gj * xx
                m_n6[j, 1] += gj * yy
                m_n6[j, 2] += gj * zz
                m_n6[j, 3] += gj * xy
                m_n6[j, 4] += gj * xz
                m_n6[j, 5] += gj * yz
        for u in range(6):
            m_n6[i, u] += mi[u]
    t = np.array([t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14])
    e66 = np.zeros((6, 6))
    for a in range(n):
        f = fpp_n[a]
        if f != 0.0:
            for u in range(6):
                fu = f * m_n6[a, u]
                for v in range(6):
                    e66[u, v] += fu * m_n6[a, v]
    C = np.empty((3, 3, 3, 3))
    cnt = np.zeros(3, np.int64)
    for c in range(3):
        for J in range(3):
            for k in range(3):
                for L in range(3):
                    cnt[:] = 0
                    cnt[c] += 1
                    cnt[J] += 1
                    cnt[k] += 1
                    cnt[L] += 1
                    C[c, J, k, L] = t[_monomial(cnt[0], cnt[1], cnt[2])] + \
                        e66[sym6[c, J], sym6[k, L]]
    return C


@numba.njit(cache=True, inline="always")
def _monomial(nx, ny, nz):
    """Index of ``x^nx y^ny z^nz`` (degree 4) in :func:`_compact_born`'s ordering."""
    # ordering: lexicographic in (x count descending, y count descending)
    idx = 0
    for a in range(4, nx, -1):  # blocks of higher x counts come first
        idx += 4 - a + 1
    return idx + (4 - nx - ny)


# ------------------------------------------------------------------------------------------
# The potential
# ------------------------------------------------------------------------------------------

class EAM:
    """An EAM potential with LAMMPS's spline tables (see the module docstring).

    Create it with :meth:`from_file`, :meth:`from_funcfl` or :meth:`from_setfl`.

    Attributes:
        cutoff: interaction cutoff (Å), LAMMPS's ``cutmax``.
        elements: element names, indexed by a configuration's ``types_n``.
        masses: masses (amu) per element, from the file.
        atomic_numbers: Z per element, from the file.
        lattice_constant: a0 (Å) of the first element from the file header (NaN if absent).
        lattice_type: lattice name of the first element from the file header (e.g. "fcc").
        path: absolute path of the file.
        style: "eam" (funcfl) or "eam/alloy" (setfl).
        rhomax: density beyond which F is extrapolated linearly (LAMMPS's ``rhomax``).
    """

    def __init__(self, *, style: str, path: Path, elements, masses, atomic_numbers,
                 lattice_constants, lattice_types, cutoff: float, dr: float, nr: int,
                 drho: float, nrho: int, rhomax: float, frho_spl, rhor_spl, z2r_spl,
                 z2r_idx) -> None:
        self.style = style
        self.path = Path(path)
        self.elements = tuple(elements)
        self.masses = tuple(float(m) for m in masses)
        self.atomic_numbers = tuple(int(z) for z in atomic_numbers)
        self.lattice_constants = tuple(lattice_constants)
        self.lattice_types = tuple(lattice_types)
        self.lattice_constant = float(lattice_constants[0])
        self.lattice_type = lattice_types[0]
        self.cutoff = float(cutoff)
        self.dr, self.nr, self.drho, self.nrho = float(dr), int(nr), float(drho), int(nrho)
        self.rdr = 1.0 / self.dr
        self.rdrho = 1.0 / self.drho
        self.rhomax = float(rhomax)
        self._frho = np.ascontiguousarray(frho_spl)
        self._rhor = np.ascontiguousarray(rhor_spl)
        self._z2r = np.ascontiguousarray(z2r_spl)
        self._z2r_idx = np.ascontiguousarray(z2r_idx, dtype=np.int64)
        # NaN or inf never reaches a kernel: finite file entries can still overflow when
        # splined (values near 1e308, or tiny steps divided into differences)
        scalars = [self.cutoff, self.rdr, self.rdrho, self.rhomax]
        bad = [name for name, t in (("F(rho)", self._frho), ("rho(r)", self._rhor),
                                    ("the pair term", self._z2r)) if not np.isfinite(t).all()]
        if bad or not np.isfinite(scalars).all():
            raise InputError(
                f"EAM potential file '{self.path}': the spline tables of "
                f"{', '.join(bad) or 'the grid'} overflow double precision (entries too large, "
                f"or steps drho={self.drho!r}, dr={self.dr!r} too small); the tables must hold "
                "finite numbers of ordinary size")

    def __repr__(self) -> str:
        return (f"EAM({self.style}, {self.path.name}, elements={self.elements}, "
                f"cutoff={self.cutoff})")

    # ---- constructors -------------------------------------------------------------------

    @classmethod
    def from_file(cls, path, **kwargs) -> EAM:
        """Read ``*.eam`` (funcfl) or ``*.eam.alloy`` / ``*.setfl`` (setfl) by suffix."""
        name = Path(path).name.lower()
        if name.endswith(".eam.alloy") or name.endswith(".setfl") or name.endswith(".alloy"):
            return cls.from_setfl(path, **kwargs)
        if name.endswith(".eam"):
            return cls.from_funcfl(path, **kwargs)
        if name.endswith(".eam.fs"):
            raise InputError(f"'{path}' is a Finnis-Sinclair (eam/fs) file, which is not "
                             f"supported; use a funcfl (.eam) or setfl (.eam.alloy) file")
        raise InputError(f"cannot tell the EAM format of '{path}' from its name: use "
                         f"EAM.from_funcfl for DYNAMO funcfl (*.eam) or EAM.from_setfl for "
                         f"setfl (*.eam.alloy) files")

    @classmethod
    def from_funcfl(cls, path, *, element: str | None = None) -> EAM:
        """Read a single-element DYNAMO funcfl file (LAMMPS ``pair_style eam``).

        Args:
            path: the file; a bare name not found locally is looked up in the lammps wheel.
            element: element name; by default the chemical symbol of the atomic number on
                the file's second line (LAMMPS itself does not name funcfl elements).
        """
        path = _resolve(path)
        rd = _Lines(path)
        rd.line("comment line")
        z, mass, a0, lat = _element_line(rd.line("element line"), path, rd.pos)
        nrho_f, drho_f, nr_f, dr_f, cut = _grid_header(rd.line("grid line"), path, rd.pos)
        total = [nrho_f + 2 * nr_f, 0]
        frho_f = np.concatenate([[0.0], rd.numbers(nrho_f, "F(rho)", total)])
        zr_f = np.concatenate([[0.0], rd.numbers(nr_f, "Z(r)", total)])
        rhor_f = np.concatenate([[0.0], rd.numbers(nr_f, "rho(r)", total)])
        if element is None:
            element = _element_symbol(z, path)
        # PairEAM::file2array for one funcfl file
        dr, drho = dr_f, drho_f
        rmax = (nr_f - 1) * dr_f
        rhomax = (nrho_f - 1) * drho_f
        nr = int(rmax / dr + 0.5)
        nrho = int(rhomax / drho + 0.5)
        frho = _lagrange_regrid(frho_f, drho_f, nrho, drho)
        rhor = _lagrange_regrid(rhor_f, dr_f, nr, dr)
        zr = _lagrange_regrid(zr_f, dr_f, nr, dr)
        with np.errstate(over="ignore"):  # non-finite tables are refused by EAM()
            z2r = HARTREE_BOHR_IN_EV_A * zr * zr
        return cls(style="eam", path=path, elements=(element,), masses=(mass,),
                   atomic_numbers=(z,), lattice_constants=(a0,), lattice_types=(lat,),
                   cutoff=cut, dr=dr, nr=nr, drho=drho, nrho=nrho, rhomax=rhomax,
                   frho_spl=_interpolate(frho, drho)[None],
                   rhor_spl=_interpolate(rhor, dr)[None],
                   z2r_spl=_interpolate(z2r, dr)[None], z2r_idx=np.zeros((1, 1)))

    @classmethod
    def from_setfl(cls, path) -> EAM:
        """Read a multi-element DYNAMO setfl file (LAMMPS ``pair_style eam/alloy``)."""
        path = _resolve(path)
        rd = _Lines(path)
        for k in range(3):
            rd.line(f"comment line {k + 1}")
        words = rd.line("element list")
        try:
            nel = int(words[0])
        except ValueError as exc:
            raise InputError(f"EAM setfl file '{path}', line {rd.pos}: expected "
                             f"'Nelements El1 El2 ...', got {' '.join(words)!r}") from exc
        if nel < 1 or len(words) != nel + 1:
            raise InputError(f"EAM setfl file '{path}', line {rd.pos}: element line "
                             f"{' '.join(words)!r} must list exactly Nelements={nel} names")
        elements = tuple(words[1:])
        nrho, drho, nr, dr, cut = _grid_header(rd.line("grid line"), path, rd.pos)
        total = [nel * (nrho + nr) + nel * (nel + 1) // 2 * nr, 0]
        # tables are allocated as they are read: a header announcing more numbers than the
        # file holds is refused as truncated, not by a huge allocation
        frho_spl, rhor_spl = [], []
        masses, zs, a0s, lats = [], [], [], []
        for e in range(nel):
            z, mass, a0, lat = _element_line(rd.line(f"header of element {elements[e]}"),
                                             path, rd.pos)
            zs.append(z)
            masses.append(mass)
            a0s.append(a0)
            lats.append(lat)
            f = np.concatenate([[0.0], rd.numbers(nrho, f"F(rho) of {elements[e]}", total)])
            g = np.concatenate([[0.0], rd.numbers(nr, f"rho(r) of {elements[e]}", total)])
            frho_spl.append(_interpolate(f, drho))
            rhor_spl.append(_interpolate(g, dr))
        z2r_spl = []
        z2r_idx = np.zeros((nel, nel), np.int64)
        n = 0
        for i in range(nel):
            for j in range(i + 1):
                g = np.concatenate(
                    [[0.0], rd.numbers(nr, f"r*phi(r) of {elements[i]}-{elements[j]}", total)])
                z2r_spl.append(_interpolate(g, dr))
                z2r_idx[i, j] = z2r_idx[j, i] = n
                n += 1
        return cls(style="eam/alloy", path=path, elements=elements, masses=masses,
                   atomic_numbers=zs, lattice_constants=a0s, lattice_types=lats, cutoff=cut,
                   dr=dr, nr=nr, drho=drho, nrho=nrho, rhomax=(nrho - 1) * drho,
                   frho_spl=np.stack(frho_spl), rhor_spl=np.stack(rhor_spl),
                   z2r_spl=np.stack(z2r_spl), z2r_idx=z2r_idx)

    # ---- LAMMPS -----------------------------------------------------------------------------

    def lammps_commands(self) -> list[str]:
        """LAMMPS ``pair_style``/``pair_coeff`` lines for this file (types 1.. = elements)."""
        p = str(self.path.resolve())
        if any(ch.isspace() for ch in p):
            p = f'"{p}"'
        if self.style == "eam":
            return ["pair_style eam", f"pair_coeff 1 1 {p}"]
        return ["pair_style eam/alloy", f"pair_coeff * * {p} {' '.join(self.elements)}"]

    # ---- kernels ------------------------------------------------------------------------

    def _check_types(self, types_n) -> np.ndarray:
        t = np.ascontiguousarray(types_n, dtype=np.int64)
        if len(t) and (t.min() < 0 or t.max() >= len(self.elements)):
            raise InputError(f"atom types must lie in 0..{len(self.elements) - 1} "
                             f"(elements {self.elements}), got {t.min()}..{t.max()}")
        return t

    def _args(self):
        return (self._rhor, self._z2r, self._z2r_idx, self._frho, self.rdr, self.rdrho,
                self.nr, self.nrho, self.rhomax)

    def _weights(self, weights_n, t: np.ndarray) -> np.ndarray:
        w = np.ones(len(t)) if weights_n is None else np.ascontiguousarray(
            require_finite("weights_n", weights_n))
        if w.shape != t.shape:
            raise InputError(f"weights must have one entry per atom ({len(t)}), got {w.shape}")
        return w

    def densities(self, r_p, i_p, j_p, types_n) -> np.ndarray:
        """Return the host densities ``rho_n`` (LAMMPS's ``rho``) from a half pair list."""
        t = self._check_types(types_n)
        rho = np.zeros(len(t))
        _density(checked_distances(r_p), np.ascontiguousarray(i_p), np.ascontiguousarray(j_p),
                 t, self._rhor, self.rdr, self.nr, self.cutoff, rho)
        return rho

    def first_order(self, r_p, i_p, j_p, types_n, weights_n=None):
        """Return ``(e_n, dedr_p)``: LAMMPS per-atom energies and d(sum_a w_a E_a)/dr_p."""
        t = self._check_types(types_n)
        w = self._weights(weights_n, t)
        return _first_order(checked_distances(r_p), np.ascontiguousarray(i_p),
                            np.ascontiguousarray(j_p), t, w, *self._args(), self.cutoff)

    def second_order(self, r_p, i_p, j_p, types_n, weights_n=None) -> SecondOrder:
        """Return the :class:`SecondOrder` data of ``sum_a w_a E_a`` from the spline derivatives.

        All ``w = 1`` gives the total energy.
        """
        t = self._check_types(types_n)
        w = self._weights(weights_n, t)
        out = _second_order(checked_distances(r_p), np.ascontiguousarray(i_p),
                            np.ascontiguousarray(j_p), t, w, *self._args(), self.cutoff)
        return SecondOrder(*out)

    def compact_energy_forces(self, x_nc, shifts_kc, start_n, j_k, c_k, types_n,
                              bounds=None):
        """Site energies, forces and virial over a compact half list, in two fused passes.

        The kernel of :meth:`atomistic.calculator.Calculator.compute` (and so of the MD):
        pairs grouped by their first atom (see :class:`atomistic.calculator.CompactPairs`),
        pair vectors ``x[j] - x[i] + shifts_kc[c]`` computed inside the passes (one for the
        densities, one for forces, energies and virial).

        Args:
            x_nc: positions (Å), float64, C-contiguous.
            shifts_kc: the image vectors ``s @ cell`` (Å) the codes ``c_k`` index.
            start_n: row starts, ``n + 1`` entries; the pairs of atom i are
                ``start_n[i]:start_n[i + 1]``.
            j_k: second atom of each pair (uint32).
            c_k: image code of each pair (uint8 or uint32).
            types_n: atom types (int64, checked by the caller).
            bounds: None (one thread), or row ranges ``bounds[t]:bounds[t + 1]`` run by
                numba's threads with private accumulators summed in range order (the result
                depends on ``bounds``, not on the threads' timing).

        Returns:
            ``(e_n, forces_nc, virial_cc)``: LAMMPS per-atom energies (eV), forces (eV/Å) and
            LAMMPS's virial (eV).
        """
        args = (x_nc, shifts_kc, start_n, j_k, c_k, types_n, *self._args(),
                self.cutoff * self.cutoff)
        if bounds is None:
            return _compact_serial(*args)
        return _compact_threaded(*args, bounds)

    def compact_born(self, x_nc, shifts_kc, start_n, j_k, c_k, types_n) -> np.ndarray:
        """``V`` times the Born tensor (eV) over a compact half list, in two fused passes.

        Arguments as :meth:`compact_energy_forces`. ``C_ijkl V = sum_p (E''_p - E'_p / r_p)
        d_i d_j d_k d_l / r_p² + sum_a U''(rho_a) M_a,ij M_a,kl`` with ``M_a = sum_{p at a}
        rho'_p d_p ⊗ d_p / r_p``: LAMMPS's ``born/matrix`` definition, equal to
        :meth:`atomistic.calculator.Calculator.born_tensor`'s general assembly.
        """
        return _compact_born(x_nc, shifts_kc, start_n, j_k, c_k, types_n, *self._args(),
                             self.cutoff * self.cutoff, _SYM6)

    def energy_forces(self, x_nc, cell_cc, i_p, j_p, s_pc, types_n):
        """Fused evaluation from positions: ``(energy, forces_nc, virial_cc)``.

        Pair vectors are ``d = x[j] - x[i] + s @ cell``; the virial is LAMMPS's
        ``W_ab = -sum_p (dE/dr_p) d_a d_b / r_p`` (eV).
        """
        t = self._check_types(types_n)
        check_coordinates(x_nc, cell_cc)
        return _energy_forces(np.ascontiguousarray(x_nc, float),
                              np.ascontiguousarray(cell_cc, float), np.ascontiguousarray(i_p),
                              np.ascontiguousarray(j_p), np.ascontiguousarray(s_pc), t,
                              *self._args(), self.cutoff * self.cutoff)
