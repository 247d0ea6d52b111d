"""Time integrators: velocity Verlet (NVE) and Langevin dynamics in the BAOAB splitting (NVT).

Units are LAMMPS ``metal``: time step in ps, friction in 1/ps, forces in eV/Å, velocities in
Å/ps. A kick is ``v += (½ dt ftm2v / m) f`` with ``ftm2v = 1 / mvv2e``, the same arithmetic as
LAMMPS's ``fix nve`` (``dtfm = dtf / mass``), so the two engines' trajectories stay together
to round-off for as long as the dynamics lets them.

Each integrator has the same small interface, used by :func:`atomistic.md.run.run_md`:

* ``step(state, forces_nc, compute)`` advances an :class:`~atomistic.md.state.MDState` by one
  step, given the forces at its current positions, calling ``compute()`` (a
  :class:`~atomistic.calculator.Result` at the state's current positions) exactly once, and
  returns that result;
* ``conserved(state, potential, kinetic)``: the quantity the exact dynamics conserves;
* ``fixed_momentum``: whether the total momentum stays zero (the temperature then counts
  ``3N − 3`` degrees of freedom);
* ``to_dict()`` / :func:`integrator_from_dict`: a JSON description stored in the state.

BAOAB (Leimkuhler & Matthews, Appl. Math. Res. Express 2013, 34; J. Chem. Phys. 138, 174102):
half kick (B), half drift (A), the exact Ornstein-Uhlenbeck step (O)
``v ← c v + sqrt((1 − c²) kB T / m) ξ`` with ``c = exp(−γ dt)``, half drift (A), half kick (B);
its configurational sampling is exact to second order in dt with a small prefactor. By default
the noise has its mass-weighted mean removed (``fixed_momentum=True``): that is the exact
O step restricted to zero total momentum (orthogonal projection of isotropic noise in the
mass-weighted velocities), so the centre of mass does not wander and the temperature has
``3N − 3`` degrees of freedom, as in LAMMPS's count. The heat the O steps take out
(``K_before − K_after``) is accumulated in ``state.variables["heat"]``; potential plus kinetic
energy plus that heat is the conserved quantity (it drifts only by the splitting error).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from atomistic.md.state import MDState
from atomistic.md.velocities import kinetic_energy
from fe2qc.checks import require_positive
from fe2qc.errors import InputError
from fe2qc.units import KB, MVV2E

__all__ = ["VelocityVerlet", "LangevinBAOAB", "integrator_from_dict"]

#: eV/Å / amu in Å/ps² (LAMMPS ``metal`` ``ftm2v``, 1 / mvv2e)
FTM2V = 1.0 / MVV2E


def _half_kick_factor(dt: float, masses_n: np.ndarray) -> np.ndarray:
    """LAMMPS's ``dtfm = (0.5 dt ftm2v) / m`` per atom, as a column (n, 1)."""
    return ((0.5 * dt * FTM2V) / masses_n)[:, None]


class VelocityVerlet:
    """Velocity Verlet (NVE), the same update as LAMMPS's ``fix nve``.

    Args:
        dt: time step (ps), > 0.

    Raises:
        InputError: dt is not a positive finite number.
    """

    name = "velocity_verlet"
    fixed_momentum = True

    def __init__(self, dt: float) -> None:
        self.dt = require_positive("dt", dt, unit="ps")

    def start(self, state: MDState) -> None:
        """Prepare the state's variables for this integrator (none needed)."""

    def step(self, state: MDState, forces_nc: np.ndarray, compute: Callable):
        """One step: half kick, drift, forces at the new positions, half kick."""
        dtfm = _half_kick_factor(self.dt, state.masses_n)
        v, x = state.velocities_nc, state.positions_nc
        v += dtfm * forces_nc
        x += self.dt * v
        result = compute()
        v += dtfm * result.forces_nc
        return result

    def conserved(self, state: MDState, potential: float, kinetic: float) -> float:
        """Total energy (eV)."""
        return potential + kinetic

    def to_dict(self) -> dict:
        """A JSON description (see :func:`integrator_from_dict`)."""
        return {"name": self.name, "dt": self.dt}

    def __repr__(self) -> str:
        return f"VelocityVerlet(dt={self.dt!r})"


class LangevinBAOAB:
    """Langevin dynamics (NVT) in the BAOAB splitting of Leimkuhler and Matthews.

    Args:
        dt: time step (ps), > 0.
        temperature: target temperature (K), > 0.
        friction: friction γ (1/ps), > 0; the velocity correlation time is 1/γ.
        fixed_momentum: remove the noise's centre-of-mass part, so that a state with zero
            momentum keeps it (default; 3N − 3 degrees of freedom); False gives the plain
            O step on all 3N degrees of freedom.

    Raises:
        InputError: dt, temperature or friction not positive finite numbers.
    """

    name = "langevin_baoab"

    def __init__(self, dt: float, temperature: float, friction: float, *,
                 fixed_momentum: bool = True) -> None:
        self.dt = require_positive("dt", dt, unit="ps")
        self.temperature = require_positive("temperature", temperature, unit="K")
        self.friction = require_positive("friction", friction, unit="1/ps")
        if not isinstance(fixed_momentum, bool):
            raise InputError(f"fixed_momentum must be True or False, got {fixed_momentum!r}")
        self.fixed_momentum = fixed_momentum
        self._c = math.exp(-self.friction * self.dt)

    def start(self, state: MDState) -> None:
        """Start the heat account at zero unless the state carries one."""
        state.variables.setdefault("heat", 0.0)

    def step(self, state: MDState, forces_nc: np.ndarray, compute: Callable):
        """One BAOAB step; draws 3N normal numbers from ``state.rng``."""
        m = state.masses_n
        dtfm = _half_kick_factor(self.dt, m)
        v, x = state.velocities_nc, state.positions_nc
        half = 0.5 * self.dt
        v += dtfm * forces_nc
        x += half * v
        k0 = kinetic_energy(m, v)
        sigma = np.sqrt((1.0 - self._c * self._c) * KB * self.temperature / (MVV2E * m))
        noise = state.rng.standard_normal(v.shape) * sigma[:, None]
        if self.fixed_momentum:
            noise -= (m @ noise) / m.sum()
        v *= self._c
        v += noise
        state.variables["heat"] = state.variables["heat"] + (k0 - kinetic_energy(m, v))
        x += half * v
        result = compute()
        v += dtfm * result.forces_nc
        return result

    def conserved(self, state: MDState, potential: float, kinetic: float) -> float:
        """Potential + kinetic energy + the heat removed by the thermostat so far (eV)."""
        return potential + kinetic + state.variables.get("heat", 0.0)

    def to_dict(self) -> dict:
        """A JSON description (see :func:`integrator_from_dict`)."""
        return {"name": self.name, "dt": self.dt, "temperature": self.temperature,
                "friction": self.friction, "fixed_momentum": self.fixed_momentum}

    def __repr__(self) -> str:
        return (f"LangevinBAOAB(dt={self.dt!r}, temperature={self.temperature!r}, "
                f"friction={self.friction!r}, fixed_momentum={self.fixed_momentum!r})")


def integrator_from_dict(spec: dict):
    """The integrator a ``to_dict()`` description (e.g. ``MDState.integrator``) names.

    Raises:
        InputError: unknown name or missing parameters.
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise InputError(f"an integrator description is a dict with a 'name', got {spec!r}")
    kw = {k: v for k, v in spec.items() if k != "name"}
    kinds = {VelocityVerlet.name: VelocityVerlet, LangevinBAOAB.name: LangevinBAOAB}
    if spec["name"] not in kinds:
        raise InputError(f"unknown integrator {spec['name']!r} (known: {', '.join(kinds)})")
    try:
        return kinds[spec["name"]](**kw)
    except TypeError as exc:
        raise InputError(f"bad parameters for integrator {spec['name']!r}: {exc}") from exc
