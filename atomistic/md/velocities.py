"""Velocities and what they give: Maxwell-Boltzmann initialisation, kinetic energy, temperature.

Units are LAMMPS ``metal``: velocities in Å/ps, masses in amu, energies in eV
(``K = ½ mvv2e Σ m v²``), temperatures in K (``kB`` = :data:`fe2qc.units.KB`).

Degrees of freedom: a run whose total momentum is fixed at zero (velocity Verlet from zero
momentum, and our momentum-conserving Langevin) has ``3N − 3`` kinetic degrees of freedom,
which is LAMMPS's default count (``compute temp`` removes the 3 of the centre of mass), so
``T = 2K / ((3N − 3) kB)`` is the ``Temp`` LAMMPS prints for the same velocities.
"""

from __future__ import annotations

import numpy as np

from fe2qc.checks import require_finite, require_positive
from fe2qc.errors import InputError
from fe2qc.units import KB, MVV2E

__all__ = ["degrees_of_freedom", "initial_velocities", "kinetic_energy", "kinetic_tensor",
           "temperature", "zero_momentum"]


def degrees_of_freedom(n: int, *, fixed_momentum: bool = True) -> int:
    """Kinetic degrees of freedom of ``n`` atoms: ``3n − 3`` with fixed momentum, else ``3n``."""
    return 3 * n - 3 if fixed_momentum and n > 1 else 3 * n


def kinetic_energy(masses_n: np.ndarray, velocities_nc: np.ndarray) -> float:
    """Kinetic energy ``½ mvv2e Σ m v²`` (eV) of velocities in Å/ps and masses in amu."""
    return 0.5 * MVV2E * float(np.einsum("n,nc,nc->", masses_n, velocities_nc, velocities_nc))


def kinetic_tensor(masses_n: np.ndarray, velocities_nc: np.ndarray) -> np.ndarray:
    """The kinetic part of the virial, ``mvv2e Σ m v ⊗ v`` (eV), shape (3, 3)."""
    return MVV2E * (masses_n[:, None] * velocities_nc).T @ velocities_nc


def temperature(masses_n: np.ndarray, velocities_nc: np.ndarray, dof: int) -> float:
    """Kinetic temperature ``2K / (dof kB)`` (K)."""
    return 2.0 * kinetic_energy(masses_n, velocities_nc) / (dof * KB)


def zero_momentum(masses_n: np.ndarray, velocities_nc: np.ndarray) -> None:
    """Subtract the centre-of-mass velocity in place, so that ``Σ m v = 0``."""
    velocities_nc -= (masses_n @ velocities_nc) / masses_n.sum()


def initial_velocities(masses_n, temperature_K: float, seed) -> np.ndarray:
    """Maxwell-Boltzmann velocities at exactly ``temperature_K``, with zero total momentum.

    Each component is drawn from the normal distribution of variance ``kB T / (m mvv2e)``
    (``numpy.random.default_rng(seed).standard_normal``), the centre-of-mass velocity is
    removed, and the velocities are scaled so that ``2K / ((3N − 3) kB)`` is exactly
    ``temperature_K``: what LAMMPS's ``velocity all create T seed mom yes dist gaussian``
    does with its default temperature compute (3N − 3 degrees of freedom), though with
    another random-number stream.

    Args:
        masses_n: masses (amu), shape (n,), n >= 2.
        temperature_K: target temperature (K), > 0.
        seed: an int seed or a ``numpy.random.Generator`` (drawn from).

    Returns:
        Velocities (Å/ps), shape (n, 3).

    Raises:
        InputError: non-positive temperature or masses, fewer than two atoms, bad seed.
    """
    T = require_positive("temperature", temperature_K, unit="K")
    m = require_finite("masses_n", masses_n)
    if m.ndim != 1 or len(m) < 2:
        raise InputError(f"masses_n must have one mass per atom for at least 2 atoms, got shape "
                         f"{m.shape}")
    if not (m > 0).all():
        bad = int(np.flatnonzero(~(m > 0))[0])
        raise InputError(f"masses_n[{bad}] = {m[bad]!r}: masses must be > 0 (amu)")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng(int(seed))
    else:
        raise InputError(f"seed must be an integer >= 0 or a numpy Generator, got {seed!r}")
    v = rng.standard_normal((len(m), 3)) * np.sqrt(KB * T / (MVV2E * m))[:, None]
    zero_momentum(m, v)
    v *= np.sqrt(T / temperature(m, v, degrees_of_freedom(len(m))))
    return v
