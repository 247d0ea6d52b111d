"""Pair potentials (single species): Lennard-Jones, smoothly truncated LJ, Morse.

Each potential is a radial function ``phi(r)`` described by a kind code and a small
parameter array; one numba kernel per derivative order evaluates every kind, so the
three classes share the pair loop and differ only in :func:`_radial`. The energy
conventions are those of the LAMMPS pair styles they reproduce:

=======================  ==========================================================
class                    LAMMPS
=======================  ==========================================================
``LennardJones``         ``lj/cut`` (plain truncation; ``shift=True`` adds
                         ``pair_modify shift yes``, i.e. ``phi -= phi_LJ(rc)``)
``LennardJonesSmooth``   ``lj/smooth/linear``:
                         ``phi = phi_LJ(r) - phi_LJ(rc) - (r - rc) phi_LJ'(rc)``
``Morse``                ``morse``: ``D0 [exp(-2a(r-r0)) - 2 exp(-a(r-r0))]``
=======================  ==========================================================

Pairs at ``r >= cutoff`` contribute nothing (LAMMPS tests ``rsq < cutsq``). Note that
``lj/cut`` and ``morse`` are discontinuous in the force at the cutoff (and, unshifted, in
the energy): derivatives of the energy are those of the smooth branch inside the cutoff.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from atomistic.neighbors import pair_vector
from atomistic.potentials.base import SecondOrder, checked_distances
from atomistic.structure import check_coordinates
from fe2qc.checks import require_finite, require_positive
from fe2qc.errors import InputError

__all__ = ["PairPotential", "LennardJones", "LennardJonesSmooth", "Morse"]

# kind codes of the radial functions handled by the kernels
_LJ = 0  # params: epsilon, sigma, cutoff, energy offset, linear slope (0 for lj/cut)
_MORSE = 1  # params: D0, alpha, r0, cutoff, energy offset


@numba.njit(cache=True, inline="always")
def _radial(kind, prm, r):
    """Return ``(phi, phi', phi'')`` at ``r`` (all zero at and beyond the cutoff)."""
    if kind == _LJ:
        rc = prm[2]
        if r >= rc:
            return 0.0, 0.0, 0.0
        eps = prm[0]
        sr6 = (prm[1] / r) ** 6
        sr12 = sr6 * sr6
        phi = 4.0 * eps * (sr12 - sr6)
        dphi = 24.0 * eps * (sr6 - 2.0 * sr12) / r
        d2phi = 24.0 * eps * (26.0 * sr12 - 7.0 * sr6) / (r * r)
        # energy offset and linear term (lj/smooth/linear: slope = phi_LJ'(rc))
        return phi - prm[3] - (r - rc) * prm[4], dphi - prm[4], d2phi
    else:  # Morse
        rc = prm[3]
        if r >= rc:
            return 0.0, 0.0, 0.0
        D0 = prm[0]
        a = prm[1]
        ex = np.exp(-a * (r - prm[2]))
        phi = D0 * (ex * ex - 2.0 * ex)
        dphi = 2.0 * a * D0 * (ex - ex * ex)
        d2phi = 2.0 * a * a * D0 * (2.0 * ex * ex - ex)
        return phi - prm[4], dphi, d2phi


@numba.njit(cache=True)
def _radial_array(kind, prm, r_p):
    n = r_p.shape[0]
    out = np.empty((3, n))
    for p in range(n):
        out[0, p], out[1, p], out[2, p] = _radial(kind, prm, r_p[p])
    return out


@numba.njit(cache=True)
def _first_order(kind, prm, r_p, i_p, j_p, w_n, n):
    """Site energies (half of each pair to each end) and ``d(sum w E)/dr_p``."""
    e_n = np.zeros(n)
    dedr_p = np.zeros(r_p.shape[0])
    for p in range(r_p.shape[0]):
        phi, dphi, _ = _radial(kind, prm, r_p[p])
        i = i_p[p]
        j = j_p[p]
        # an atom and its own image (i == j): it gets both halves, as it should,
        # because the stored pair stands for the images +s and -s
        e_n[i] += 0.5 * phi
        e_n[j] += 0.5 * phi
        dedr_p[p] = 0.5 * (w_n[i] + w_n[j]) * dphi
    return e_n, dedr_p


@numba.njit(cache=True)
def _second_order(kind, prm, r_p):
    dedr_p = np.empty(r_p.shape[0])
    d2edr2_p = np.empty(r_p.shape[0])
    for p in range(r_p.shape[0]):
        _, dedr_p[p], d2edr2_p[p] = _radial(kind, prm, r_p[p])
    return dedr_p, d2edr2_p


@numba.njit(cache=True)
def _energy_forces(kind, prm, x, cell, i_p, j_p, s_pc):
    """Energy, forces and LAMMPS's virial from positions, one pass over the half list."""
    n = x.shape[0]
    forces = np.zeros((n, 3))
    virial = np.zeros((3, 3))
    d = np.empty(3)
    energy = 0.0
    for p in range(i_p.shape[0]):
        i, j, d[0], d[1], d[2], rsq = pair_vector(x, cell, i_p, j_p, s_pc, p)
        r = np.sqrt(rsq)
        phi, dphi, _ = _radial(kind, prm, r)
        energy += phi
        if dphi == 0.0:
            continue
        s = dphi / r
        for a in range(3):
            f = s * d[a]
            forces[i, a] += f
            forces[j, a] -= f
            for b in range(3):
                virial[a, b] -= f * d[b]
    return energy, forces, virial


def _positive(name: str, value: float) -> float:
    return require_positive(name, value)


def _pow(x: float, n: int) -> float:
    """``x**n``, infinite instead of an OverflowError when it exceeds a double."""
    try:
        return x**n
    except OverflowError:
        return math.inf


def _exp(x: float) -> float:
    """``exp(x)``, infinite instead of an OverflowError when it exceeds a double."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _finite_params(pot: PairPotential, values: list[float], at_cutoff: float) -> np.ndarray:
    """Return the kernels' parameter array, refusing parameters that overflow a double.

    Args:
        pot: the potential (its ``_describe()`` goes into the message).
        values: the parameters.
        at_cutoff: the unshifted energy at the cutoff, which must be finite too.

    Raises:
        InputError: a parameter, or the energy at the cutoff, is not a finite number.
    """
    prm = np.array(values, dtype=float)
    if not (np.isfinite(prm).all() and math.isfinite(at_cutoff)):
        raise InputError(f"{type(pot).__name__}({pot._describe()}): the pair energy or its "
                         f"slope at the cutoff overflows double precision (energy "
                         f"{at_cutoff!r} eV); use parameters of ordinary size (eV, Å)")
    return prm


def _g(x: float) -> str:
    """Shortest decimal that reads back as exactly the same double (for LAMMPS commands)."""
    return repr(float(x))


class PairPotential:
    """A single-species pair potential ``E = sum_p phi(r_p)`` evaluated by the shared kernels.

    Subclasses set ``_kind``, ``_params`` (float array), ``cutoff`` and implement
    :meth:`lammps_commands`; the kernels (``first_order``, ``second_order`` and the fused
    ``energy_forces``) are shared.
    """

    _kind: int
    _params: np.ndarray
    cutoff: float

    def __init__(self, element: str = "X", mass: float = 1.0) -> None:
        self.elements = (str(element),)
        self.masses = (_positive("mass", mass),)

    # -- the two kernels of the Potential protocol ---------------------------------------
    def first_order(self, r_p, i_p, j_p, types_n, weights_n=None):
        """Return ``(e_n, dedr_p)``; see :class:`atomistic.potentials.base.Potential`."""
        types_n = np.asarray(types_n)
        self._check_types(types_n)
        n = len(types_n)
        w_n = np.ones(n) if weights_n is None else np.ascontiguousarray(
            require_finite("weights_n", weights_n))
        if w_n.shape != (n,):
            raise InputError(f"weights must have one entry per atom ({n}), got {w_n.shape}")
        return _first_order(self._kind, self._params, checked_distances(r_p),
                            np.ascontiguousarray(i_p, np.int64),
                            np.ascontiguousarray(j_p, np.int64), w_n, n)

    def second_order(self, r_p, i_p, j_p, types_n, weights_n=None) -> SecondOrder:
        """Return the second-order data (``fpp_n`` and ``drho`` are zero for a pair potential).

        With ``weights_n`` the data are those of ``sum_a w_a E_a``: pair p carries
        ``(w_i + w_j) / 2`` of ``phi``.
        """
        types_n = np.asarray(types_n)
        self._check_types(types_n)
        r_p = checked_distances(r_p)
        dedr_p, d2edr2_p = _second_order(self._kind, self._params, r_p)
        npair = len(r_p)
        if weights_n is not None:
            w_n = require_finite("weights_n", weights_n)
            if w_n.shape != (len(types_n),):
                raise InputError(f"weights must have one entry per atom ({len(types_n)}), got "
                                 f"{w_n.shape}")
            w_p = 0.5 * (w_n[np.asarray(i_p)] + w_n[np.asarray(j_p)])
            dedr_p *= w_p
            d2edr2_p *= w_p
        return SecondOrder(dedr_p, d2edr2_p, np.zeros(len(types_n)), np.zeros(npair),
                           np.zeros(npair))

    def energy_forces(self, x_nc, cell_cc, i_p, j_p, s_pc, types_n):
        """Return ``(energy, forces_nc, virial_cc)`` from positions in one fused pass.

        See :meth:`atomistic.potentials.base.Potential.energy_forces`.
        """
        types_n = np.asarray(types_n)
        self._check_types(types_n)
        check_coordinates(x_nc, cell_cc)
        return _energy_forces(self._kind, self._params, np.ascontiguousarray(x_nc, float),
                              np.ascontiguousarray(cell_cc, float),
                              np.ascontiguousarray(i_p, np.int64),
                              np.ascontiguousarray(j_p, np.int64), np.ascontiguousarray(s_pc))

    # -- helpers ------------------------------------------------------------------------
    def pair_function(self, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(phi, phi', phi'')`` at the distances ``r`` (zero beyond the cutoff)."""
        r = np.atleast_1d(np.asarray(r, float)).ravel()
        out = _radial_array(self._kind, self._params, checked_distances(r))
        return out[0], out[1], out[2]

    def lammps_commands(self) -> list[str]:  # pragma: no cover - overridden
        """LAMMPS ``pair_style``/``pair_coeff`` lines (see each subclass)."""
        raise NotImplementedError

    def _check_types(self, types_n: np.ndarray) -> None:
        if len(types_n) and (types_n.min() < 0 or types_n.max() > 0):
            raise InputError(
                f"{type(self).__name__} has one species ({self.elements[0]}), but the "
                f"configuration has types {sorted(set(types_n.tolist()))}: use type 0 only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()}, element={self.elements[0]!r})"

    def _describe(self) -> str:  # pragma: no cover - overridden
        return ""


class LennardJones(PairPotential):
    """``4 eps [(sigma/r)^12 - (sigma/r)^6]`` truncated at ``cutoff`` (LAMMPS ``lj/cut``).

    Args:
        epsilon: well depth (eV).
        sigma: zero-crossing distance (Å).
        cutoff: cutoff radius (Å).
        shift: subtract ``phi(cutoff)`` so the energy is continuous (``pair_modify shift yes``);
            the force still jumps at the cutoff.
        element, mass: species name and mass (amu).
    """

    _kind = _LJ

    def __init__(self, epsilon: float, sigma: float, cutoff: float, *, shift: bool = False,
                 element: str = "X", mass: float = 1.0) -> None:
        super().__init__(element, mass)
        self.epsilon = _positive("epsilon", epsilon)
        self.sigma = _positive("sigma", sigma)
        self.cutoff = _positive("cutoff", cutoff)
        self.shift = bool(shift)
        sr6 = _pow(self.sigma / self.cutoff, 6)
        e_rc = 4.0 * self.epsilon * (sr6 * sr6 - sr6)
        offset = e_rc if self.shift else 0.0
        self._params = _finite_params(self, [self.epsilon, self.sigma, self.cutoff, offset, 0.0],
                                      e_rc)

    def lammps_commands(self) -> list[str]:
        """Return ``pair_style lj/cut``, ``pair_coeff`` (and ``pair_modify shift yes``)."""
        cmds = [f"pair_style lj/cut {_g(self.cutoff)}",
                f"pair_coeff * * {_g(self.epsilon)} {_g(self.sigma)}"]
        if self.shift:
            cmds.append("pair_modify shift yes")
        return cmds

    def _describe(self) -> str:
        return (f"epsilon={self.epsilon}, sigma={self.sigma}, cutoff={self.cutoff}, "
                f"shift={self.shift}")


class LennardJonesSmooth(PairPotential):
    """Lennard-Jones with energy and force both zero at the cutoff (``lj/smooth/linear``).

    ``phi(r) = phi_LJ(r) - phi_LJ(rc) - (r - rc) phi_LJ'(rc)`` for ``r < rc``. The second
    derivative still jumps at ``rc`` (from ``phi_LJ''(rc)`` to 0).
    """

    _kind = _LJ

    def __init__(self, epsilon: float, sigma: float, cutoff: float, *, element: str = "X",
                 mass: float = 1.0) -> None:
        super().__init__(element, mass)
        self.epsilon = _positive("epsilon", epsilon)
        self.sigma = _positive("sigma", sigma)
        self.cutoff = _positive("cutoff", cutoff)
        sr6 = _pow(self.sigma / self.cutoff, 6)
        offset = 4.0 * self.epsilon * (sr6 * sr6 - sr6)
        slope = 24.0 * self.epsilon * (sr6 - 2.0 * sr6 * sr6) / self.cutoff
        self._params = _finite_params(
            self, [self.epsilon, self.sigma, self.cutoff, offset, slope], offset)

    def lammps_commands(self) -> list[str]:
        """Return ``pair_style lj/smooth/linear`` and ``pair_coeff``."""
        return [f"pair_style lj/smooth/linear {_g(self.cutoff)}",
                f"pair_coeff * * {_g(self.epsilon)} {_g(self.sigma)}"]

    def _describe(self) -> str:
        return f"epsilon={self.epsilon}, sigma={self.sigma}, cutoff={self.cutoff}"


class Morse(PairPotential):
    """``D0 [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))]`` truncated at ``cutoff``.

    Args:
        D0: well depth (eV).
        alpha: stiffness (1/Å).
        r0: equilibrium pair distance (Å).
        cutoff: cutoff radius (Å).
        shift: subtract ``phi(cutoff)`` (``pair_modify shift yes``).
    """

    _kind = _MORSE

    def __init__(self, D0: float, alpha: float, r0: float, cutoff: float, *,
                 shift: bool = False, element: str = "X", mass: float = 1.0) -> None:
        super().__init__(element, mass)
        self.D0 = _positive("D0", D0)
        self.alpha = _positive("alpha", alpha)
        self.r0 = _positive("r0", r0)
        self.cutoff = _positive("cutoff", cutoff)
        self.shift = bool(shift)
        ex = _exp(-self.alpha * (self.cutoff - self.r0))
        e_rc = self.D0 * (ex * ex - 2.0 * ex)
        offset = e_rc if self.shift else 0.0
        self._params = _finite_params(self, [self.D0, self.alpha, self.r0, self.cutoff, offset],
                                      e_rc)

    def lammps_commands(self) -> list[str]:
        """Return ``pair_style morse``, ``pair_coeff`` (and ``pair_modify shift yes``)."""
        cmds = [f"pair_style morse {_g(self.cutoff)}",
                f"pair_coeff * * {_g(self.D0)} {_g(self.alpha)} {_g(self.r0)}"]
        if self.shift:
            cmds.append("pair_modify shift yes")
        return cmds

    def _describe(self) -> str:
        return (f"D0={self.D0}, alpha={self.alpha}, r0={self.r0}, cutoff={self.cutoff}, "
                f"shift={self.shift}")
