"""The native molecular-dynamics engine behind the interface both engines share.

An *engine* advances an :class:`~atomistic.md.state.MDState` with an integrator and returns
the samples as a :class:`~atomistic.md.run.Thermo`::

    engine.run(state, integrator, steps, *, thermo_every=100, born=False, log=None,
               trajectory=None, trajectory_every=None, progress=None) -> Thermo

:class:`NativeEngine` is fe2qc's own (numba kernels, :func:`~atomistic.md.run.run_md`);
:class:`atomistic.lammps.md.LammpsEngine` runs the same integrators in LAMMPS with the user's
``pair_style``/``pair_coeff``. The analysis (:mod:`atomistic.md.elastic`) sees only ``Thermo``
and never knows which engine produced it.
"""

from __future__ import annotations

from atomistic.calculator import Calculator
from atomistic.md.run import Thermo, run_md
from atomistic.md.state import MDState

__all__ = ["NativeEngine"]


class NativeEngine:
    """fe2qc's own engine: a :class:`~atomistic.calculator.Calculator` driven by ``run_md``.

    Args:
        potential: any native potential (pair, EAM).
        skin: neighbour-list skin (Å).
        threads: threads of the EAM force kernel (opt-in; a given count gives the same bits
            on every run, but not those of one thread: see
            :class:`~atomistic.calculator.Calculator`).
    """

    name = "native"

    def __init__(self, potential, *, skin: float = 1.0, threads: int = 1) -> None:
        self.potential = potential
        self.calculator = Calculator(potential, skin=skin, threads=threads)

    @property
    def cutoff(self) -> float:
        """The potential's cutoff (Å)."""
        return float(self.potential.cutoff)

    def run(self, state: MDState, integrator, steps: int, **kwargs) -> Thermo:
        """Advance ``state`` by ``steps`` steps (see :func:`~atomistic.md.run.run_md`)."""
        return run_md(state, self.calculator, integrator, steps, **kwargs)

    def __repr__(self) -> str:
        return f"NativeEngine({self.potential!r})"
