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

import numpy as np

from atomistic.calculator import Calculator
from atomistic.md.run import Thermo, run_md
from atomistic.md.state import MDState
from fe2qc.errors import InputError

__all__ = ["NativeEngine", "cutoff_jump"]


def cutoff_jump(potential, eps: float = 1e-9) -> bool:
    """Whether a dimer's energy or force jumps where its atoms cross the cutoff.

    Tabulated EAM files and unshifted ``lj/cut`` do (Cu_u3: the pair force at 4.95 Å);
    a pair whose ensemble has atoms at the cutoff then has an impulsive part in its second
    derivative, which the analytic Born tensor of one configuration lacks.
    """
    from atomistic.structure import Configuration

    rc = float(potential.cutoff)
    calc = Calculator(potential, skin=0.0)
    vals = []
    for r in (rc * (1.0 - eps), rc * (1.0 + eps)):
        cfg = Configuration(np.array([[0.0, 0.0, 0.0], [r, 0.0, 0.0]]), np.eye(3) * 4 * rc,
                            (False, False, False), np.zeros(2, np.int64))
        res = calc.compute(cfg)
        vals.append((res.energy, res.forces_nc[0, 0]))
        calc.reset()
    (e_in, f_in), (e_out, f_out) = vals
    scale = max(abs(e_in), abs(e_out), 1e-3)
    return bool(abs(e_in - e_out) > 1e-7 * scale or abs(f_in - f_out) > 1e-7)


class NativeEngine:
    """fe2qc's own engine: a :class:`~atomistic.calculator.Calculator` driven by ``run_md``.

    Args:
        potential: any native potential (pair, EAM).
        skin: neighbour-list skin (Å).
        threads: threads of the EAM force kernel (opt-in; a given count gives the same bits
            on every run, but not those of one thread: see
            :class:`~atomistic.calculator.Calculator`).
        born: how ``run(..., born=True)`` samples the Born tensor: ``"analytic"``,
            ``"numdiff"`` (see :func:`~atomistic.md.run.run_md`) or ``"auto"``: numdiff when
            the potential's energy or force jumps at its cutoff (:func:`cutoff_jump`), whose
            impulsive second-derivative term only numdiff averages in, else analytic.
        born_delta: the strain step of numdiff.
    """

    name = "native"

    def __init__(self, potential, *, skin: float = 1.0, threads: int = 1,
                 born: str = "auto", born_delta: float = 1e-3) -> None:
        if born not in ("auto", "analytic", "numdiff"):
            raise InputError(f"born must be 'auto', 'analytic' or 'numdiff', got {born!r}")
        self.potential = potential
        self.calculator = Calculator(potential, skin=skin, threads=threads)
        if born == "auto":
            born = "numdiff" if cutoff_jump(potential) else "analytic"
        self.born = born
        self.born_delta = born_delta

    @property
    def cutoff(self) -> float:
        """The potential's cutoff (Å)."""
        return float(self.potential.cutoff)

    def run(self, state: MDState, integrator, steps: int, *, born: bool = False,
            **kwargs) -> Thermo:
        """Advance ``state`` by ``steps`` steps (see :func:`~atomistic.md.run.run_md`).

        ``born=True`` samples the Born tensor by the engine's method (``self.born``).
        """
        if born is True:
            born = self.born
        return run_md(state, self.calculator, integrator, steps, born=born,
                      born_delta=self.born_delta, **kwargs)

    def __repr__(self) -> str:
        return f"NativeEngine({self.potential!r})"
