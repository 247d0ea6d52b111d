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

from atomistic.potentials.base import Potential
from atomistic.rve import CauchyBorn
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import EV_PER_A3_IN_GPA, to_voigt_stiffness

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
    cb = CauchyBorn(potential, lattice, a)
    cb.cell.types_n[:] = type_index
    return cb


def _pressure(potential: Potential, lattice: str, a: float, type_index: int) -> float:
    P, _, _ = _cb(potential, lattice, a, type_index).evaluate_one(np.eye(3), tangent=False)
    return -float(np.trace(P)) / 3.0


def _energy_per_atom(potential: Potential, lattice: str, a: float, type_index: int) -> float:
    cb = _cb(potential, lattice, a, type_index)
    return cb.evaluate_one(np.eye(3), tangent=False)[2] * cb.V0


def equilibrium_lattice_constant(potential: Potential, lattice: str, a_guess: float | None = None,
                                 *, type_index: int = 0) -> float:
    """The lattice constant (Å) at which the Cauchy-Born pressure vanishes."""
    if lattice not in CUBIC_LATTICES:
        raise InputError(f"unknown lattice {lattice!r}; choose one of {list(CUBIC_LATTICES)}")
    if a_guess is None:
        a_guess = getattr(potential, "lattice_constant", None) or None
    if a_guess is None or not np.isfinite(a_guess) or a_guess <= 0:
        # scan the energy for a minimum over plausible nearest-neighbour distances
        nn = {"fcc": np.sqrt(0.5), "bcc": np.sqrt(0.75)}[lattice]
        grid = np.linspace(0.3, 1.0, 71) * potential.cutoff / nn
        e = [_energy_per_atom(potential, lattice, a, type_index) for a in grid]
        a_guess = float(grid[int(np.argmin(e))])
    lo, hi = 0.97 * a_guess, 1.03 * a_guess
    plo = _pressure(potential, lattice, lo, type_index)
    phi = _pressure(potential, lattice, hi, type_index)
    for _ in range(20):
        if plo > 0 > phi:
            break
        lo, hi = 0.97 * lo, 1.03 * hi
        plo = _pressure(potential, lattice, lo, type_index)
        phi = _pressure(potential, lattice, hi, type_index)
    else:
        raise CalculationFailed(
            f"could not bracket zero pressure for {lattice} around a = {a_guess:.4g} Å; "
            "pass a better --a0 guess")
    return float(scipy.optimize.brentq(lambda a: _pressure(potential, lattice, a, type_index),
                                       lo, hi, xtol=1e-14, rtol=1e-15, maxiter=200))


def elastic_constants(potential: Potential, lattice: str, a_guess: float | None = None, *,
                      type_index: int = 0) -> ElasticResult:
    """Relax the lattice to zero pressure and return a0, the cohesive energy and C (GPa)."""
    a0 = equilibrium_lattice_constant(potential, lattice, a_guess, type_index=type_index)
    cb = _cb(potential, lattice, a0, type_index)
    _, A, W = cb.evaluate_one(np.eye(3))
    ecoh = -W * cb.V0  # one atom per primitive cell
    C = 0.5 * (A + A.transpose(1, 0, 2, 3))
    C = 0.5 * (C + C.transpose(0, 1, 3, 2))
    return ElasticResult(lattice, a0, float(ecoh), to_voigt_stiffness(C) * EV_PER_A3_IN_GPA)
