"""Molecular dynamics on the native engine: state, velocities, integrators, run loop, output.

* :mod:`atomistic.md.state`: :class:`MDState`, the dynamical state, saved and restored
  (a restored run continues bitwise identically);
* :mod:`atomistic.md.velocities`: Maxwell-Boltzmann initial velocities, kinetic energy,
  temperature (3N − 3 degrees of freedom with fixed momentum, as LAMMPS counts them);
* :mod:`atomistic.md.integrators`: velocity Verlet (NVE, LAMMPS's ``fix nve`` arithmetic),
  Langevin BAOAB and Nosé-Hoover chains (NVT, LAMMPS's ``fix nvt`` arithmetic), and
  Nosé-Hoover chains with the MTK barostat (NPT, LAMMPS's ``fix npt`` arithmetic);
* :mod:`atomistic.md.run`: :func:`run_md`, the loop with samples, blow-up detection, thermo
  log and extxyz frames (:mod:`atomistic.md.output`).

Units are LAMMPS ``metal``: Å, ps, amu, eV, K; stresses in eV/Å³ inside, GPa in the log.
"""

from atomistic.md.integrators import (
    LangevinBAOAB,
    NoseHooverChain,
    NoseHooverNPT,
    VelocityVerlet,
    integrator_from_dict,
)
from atomistic.md.output import ThermoLog
from atomistic.md.run import Thermo, run_md
from atomistic.md.state import MDState
from atomistic.md.velocities import (
    degrees_of_freedom,
    initial_velocities,
    kinetic_energy,
    temperature,
)

__all__ = [
    "LangevinBAOAB",
    "MDState",
    "NoseHooverChain",
    "NoseHooverNPT",
    "Thermo",
    "ThermoLog",
    "VelocityVerlet",
    "degrees_of_freedom",
    "initial_velocities",
    "integrator_from_dict",
    "kinetic_energy",
    "run_md",
    "temperature",
]
