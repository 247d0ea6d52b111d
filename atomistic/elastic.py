"""Zero-temperature equilibrium lattice constant, cohesive energy and elastic constants.

For a Bravais lattice (fcc, bcc) every atom is a centre of inversion, so there is no
internal relaxation and the 0 K elastic tensor is the Cauchy-Born tangent at zero stress:
``C_ijkl = (1/V0) d2E/dF_ij dF_kl`` at the equilibrium lattice constant, where
the stress terms vanish. The lattice constant is the root of the pressure, found by
bracketing and Brent's method to ~1e-12 relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from atomistic.cauchy_born import CauchyBorn
from atomistic.potentials.base import Potential
from fe2qc.checks import require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.tensors import minor_sym, to_voigt_stiffness
from fe2qc.units import EV_PER_A3_IN_GPA

__all__ = ["ElasticResult", "equilibrium_lattice_constant", "elastic_constants"]

CUBIC_LATTICES = ("fcc", "bcc")


@dataclass
class ElasticResult:
    """Equilibrium properties; ``C`` is 6×6 Voigt (xx yy zz yz xz xy) in GPa."""

    lattice: str
    a0: float  # Å
    ecoh: float  # eV/atom, positive
    C: np.ndarray  # GPa

    def as_dict(self) -> dict:
        """JSON-ready dictionary with the names other tools rely on."""
        return {
            "lattice": self.lattice,
            "a0": self.a0,
            "ecoh": self.ecoh,
            "C": self.C.tolist(),
            "C11": float(self.C[0, 0]),
            "C12": float(self.C[0, 1]),
            "C44": float(self.C[3, 3]),
            "units": {"a0": "Å", "ecoh": "eV/atom", "C": "GPa"},
            "voigt_order": "xx yy zz yz xz xy",
        }


def _cb(potential: Potential, lattice: str, a: float, type_index: int) -> CauchyBorn:
    return CauchyBorn(potential, lattice, a, type_index=type_index)


def _pressure(potential: Potential, lattice: str, a: float, type_index: int) -> float:
    P, _, _ = _cb(potential, lattice, a, type_index).evaluate_one(np.eye(3), tangent=False)
    return -float(np.trace(P)) / 3.0


def _energy_per_atom(potential: Potential, lattice: str, a: float, type_index: int) -> float:
    cb = _cb(potential, lattice, a, type_index)
    return cb.evaluate_one(np.eye(3), tangent=False)[2] * cb.V0


#: nearest-neighbour distance in units of the cube edge
_NN = {"fcc": float(np.sqrt(0.5)), "bcc": float(np.sqrt(0.75))}
#: atoms closer than this (Å) overlap (the calculators' ``min_distance``)
_OVERLAP = 0.5
#: a guess must lie within this factor of the root; the search walks from it in steps of 2 %
_GUESS_RANGE = 1.5


def _scan_guess(potential: Potential, lattice: str, type_index: int) -> float | None:
    """Cube edge of lowest energy on a grid of nearest-neighbour distances up to the cutoff.

    None when the energy is lowest at the cutoff itself (no bound state).
    """
    nn = _NN[lattice]
    rc = float(potential.cutoff)
    lo = max(0.3 * rc, 1.1 * _OVERLAP)
    if lo >= rc:
        return None
    grid = np.linspace(lo, rc, 71)[:-1] / nn  # at nn = rc the atoms no longer interact
    e = np.array([_energy_per_atom(potential, lattice, a, type_index) for a in grid])
    k = int(np.argmin(e))
    if k == len(grid) - 1 or not e[k] < 0:
        return None
    return float(grid[k])


def _bracket(potential: Potential, lattice: str, a_guess: float, type_index: int):
    """Bracket ``(lo, hi)`` of zero pressure (``p(lo) > 0 > p(hi)``) around the guess.

    Reached by walking from the guess in the direction the pressure points, within a factor
    ``_GUESS_RANGE``.

    Returns ``(lo, hi)``, or ``(None, why)`` with ``why`` in ``{"small", "large", "flat"}``.
    """
    nn = _NN[lattice]
    rc = float(potential.cutoff)
    if a_guess * nn < _OVERLAP:
        return None, "small"
    if a_guess * nn >= rc:
        return None, "large"
    p0 = _pressure(potential, lattice, a_guess, type_index)
    if p0 == 0.0:
        return a_guess, a_guess
    up = p0 > 0  # compressed: the root lies at larger a
    step = 1.02 if up else 1 / 1.02
    a = a_guess
    while True:
        b = a * step
        if not (a_guess / _GUESS_RANGE <= b <= a_guess * _GUESS_RANGE) or b * nn < _OVERLAP \
                or b * nn >= rc:
            return None, "small" if up else "large"
        pb = _pressure(potential, lattice, b, type_index)
        if (pb < 0) if up else (pb > 0):
            return (a, b) if up else (b, a)
        if pb == 0.0:
            return b, b
        a = b


def equilibrium_lattice_constant(potential: Potential, lattice: str, a_guess: float | None = None,
                                 *, type_index: int = 0) -> float:
    """The lattice constant (Å) at which the Cauchy-Born pressure vanishes.

    Args:
        potential: the potential.
        lattice: ``"fcc"`` or ``"bcc"``.
        a_guess: a guess of the cube edge (Å), positive and finite; None takes the file's
            value if it has one (falling back to a scan), else the energy minimum of a scan over
            nearest-neighbour distances up to the cutoff. The root is searched from the guess
            in the direction the pressure points, up to a factor 1.5 away.
        type_index: the element (index into ``potential.elements``) that fills the lattice.

    Raises:
        InputError: a bad lattice, type index or guess; a guess too small or too large for the
            potential (the message gives the scan's energy minimum as a better guess).
        CalculationFailed: the potential has no zero-pressure state of this lattice with
            neighbours inside its cutoff (e.g. it is repulsive everywhere inside it).
    """
    if lattice not in CUBIC_LATTICES:
        raise InputError(f"unknown lattice {lattice!r}; choose one of {list(CUBIC_LATTICES)}")
    nel = len(potential.elements)
    if isinstance(type_index, bool) or not isinstance(type_index, int | np.integer) or not (
            0 <= type_index < nel):
        raise InputError(f"type_index must be an integer in 0..{nel - 1} (elements "
                         f"{list(potential.elements)}), got {type_index!r}")
    nn = _NN[lattice]
    rc = float(potential.cutoff)
    if a_guess is not None:
        a_guess = require_positive("the guess a0", a_guess, unit="Å")
        lo, hi = _bracket(potential, lattice, a_guess, type_index)
        if lo is None:
            scan = _scan_guess(potential, lattice, type_index)
            where = (f"the energy per atom of {lattice} is lowest near a = {scan:.4g} Å "
                     f"(nearest-neighbour distance {scan * nn:.4g} Å): give a guess between "
                     f"{scan / 1.3:.3g} and {scan * 1.3:.3g} Å, or omit the guess to use that "
                     "scan") if scan is not None else (
                     f"a scan over nearest-neighbour distances up to the cutoff {rc:.4g} Å "
                     f"found no energy minimum of {lattice} either")
            if hi == "small":
                why = (f"the guess a0 = {a_guess:.6g} Å is too small for this potential: the "
                       f"{lattice} lattice (nearest-neighbour distance {a_guess * nn:.4g} Å) "
                       f"is still compressed up to {a_guess * _GUESS_RANGE:.4g} Å"
                       if a_guess * nn >= _OVERLAP else
                       f"the guess a0 = {a_guess:.6g} Å is too small for this potential: its "
                       f"nearest-neighbour distance {a_guess * nn:.4g} Å is below "
                       f"{_OVERLAP} Å, where atoms overlap")
            else:
                why = (f"the guess a0 = {a_guess:.6g} Å is too large for this potential: the "
                       f"{lattice} lattice (nearest-neighbour distance {a_guess * nn:.4g} Å) "
                       f"is still under tension down to {a_guess / _GUESS_RANGE:.4g} Å"
                       if a_guess * nn < rc else
                       f"the guess a0 = {a_guess:.6g} Å is too large for this potential: its "
                       f"nearest-neighbour distance {a_guess * nn:.4g} Å is beyond the cutoff "
                       f"{rc:.4g} Å, where atoms do not interact")
            raise InputError(f"{why}; {where}")
    else:
        lo = None
        consts = getattr(potential, "lattice_constants", None)  # per element (EAM files)
        a_file = consts[type_index] if consts else getattr(potential, "lattice_constant", None)
        if a_file is not None and np.isfinite(a_file) and a_file > 0:
            lo, hi = _bracket(potential, lattice, float(a_file), type_index)
        if lo is None:
            scan = _scan_guess(potential, lattice, type_index)
            if scan is not None:
                lo, hi = _bracket(potential, lattice, scan, type_index)
        if lo is None:
            raise CalculationFailed(
                f"found no zero-pressure {lattice} lattice for this potential: the energy per "
                f"atom has no minimum with nearest-neighbour distances below the cutoff "
                f"{rc:.4g} Å (is the potential repulsive everywhere inside its cutoff?); "
                "check the potential's parameters or pass a guess of a0")
    if lo == hi:
        return float(lo)
    return float(scipy.optimize.brentq(lambda a: _pressure(potential, lattice, a, type_index),
                                       lo, hi, xtol=1e-14, rtol=1e-15, maxiter=200))


def elastic_constants(potential: Potential, lattice: str, a_guess: float | None = None, *,
                      type_index: int = 0) -> ElasticResult:
    """Relax the lattice to zero pressure and return a0, the cohesive energy and C (GPa)."""
    a0 = equilibrium_lattice_constant(potential, lattice, a_guess, type_index=type_index)
    cb = _cb(potential, lattice, a0, type_index)
    _, A, W = cb.evaluate_one(np.eye(3))
    ecoh = -W * cb.V0  # one atom per primitive cell
    C = minor_sym(A)
    return ElasticResult(lattice, a0, float(ecoh), to_voigt_stiffness(C) * EV_PER_A3_IN_GPA)
