"""The molecular-dynamics run loop: steps, samples (thermo), blow-up detection, output.

:func:`run_md` advances an :class:`~atomistic.md.state.MDState` with an integrator and a
:class:`~atomistic.calculator.Calculator`, sampling every ``thermo_every`` steps: step, time,
temperature, kinetic and potential energy, the integrator's conserved quantity, pressure, the
stress tensor (virial + kinetic, eV/Å³ inside; the log shows GPa), the configurational virial
and, with ``born=True``, the analytic Born elastic tensor of each sampled frame (what the
stress-fluctuation formula of the elastic constants needs, :mod:`atomistic.md.elastic`).

:class:`~atomistic.md.integrators.VelocityVerlet` steps run as two numba passes (kick and
drift, then kick) with the integrator's own arithmetic, bit for bit; other integrators run
their ``step``. The forces come from :meth:`Calculator.compute
<atomistic.calculator.Calculator.compute>` (for EAM its fused kernels over a compact pair
list).

Samples are taken at the steps that are multiples of ``thermo_every`` (step 0 included when a
run starts there), so a run continued from a saved state samples exactly the steps one long
run would. Velocities at a sample are full-step velocities (after the second half kick).

A time step too large for the system is detected: a non-finite energy, or a change of the
conserved quantity by more than ``max_energy_jump`` eV per atom in one step, or atoms flying
apart or onto each other (the calculator refuses such positions) stops the run with
:class:`~fe2qc.errors.CalculationFailed` naming the step and the fix (a smaller dt). The
state is then left as it was at the failing step: restart from a saved state.
"""

from __future__ import annotations

import math
import sys
import time as _time
from dataclasses import dataclass, field

import numba
import numpy as np

from atomistic.calculator import Calculator
from atomistic.extxyz import write_extxyz
from atomistic.md.integrators import FTM2V, VelocityVerlet
from atomistic.md.output import TextSink, ThermoLog
from atomistic.md.state import MDState
from atomistic.md.velocities import degrees_of_freedom, kinetic_energy, kinetic_tensor
from atomistic.structure import Configuration
from fe2qc.checks import require_nonnegative, require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import EV_PER_A3_IN_GPA, KB

__all__ = ["run_md", "Thermo"]


@dataclass
class Thermo:
    """Samples of a run, one entry per sample (units metal: eV, K, ps, eV/Å³).

    Attributes:
        step: step number.
        time: time (ps).
        temperature: kinetic temperature (K) with the integrator's degrees of freedom.
        kinetic_energy: kinetic energy (eV).
        potential_energy: potential energy (eV).
        total_energy: potential + kinetic (eV).
        conserved: the integrator's conserved quantity (eV).
        pressure: ``-tr(stress)/3`` (eV/Å³), virial + kinetic.
        stress_ccc: Cauchy stress per sample (eV/Å³, positive in tension), virial + kinetic.
        virial_ccc: configurational virial ``W = -Σ_p f_p ⊗ d_p`` per sample (eV, positive in
            compression): the configurational stress is ``-W / volume``.
        born_ccccc: Born elastic tensor per sample (eV/Å³, LAMMPS's ``born/matrix``
            definition, see :meth:`atomistic.calculator.Calculator.born_tensor`); shape
            (0, 3, 3, 3, 3) when not sampled.
        dof: kinetic degrees of freedom used for the temperature.
        n_atoms: number of atoms.
        volume: cell volume (Å³) at the first sample (NaN without full periodicity); the
            volume of fixed-cell runs (NVE, NVT), where the fluctuation formulas use it.
        cell_ccc: cell vectors (rows, Å) per sample: they change under a barostat.
        site_energies_tn: per-atom (site) energies per sample (eV), with ``per_atom=True``;
            shape (0, n) otherwise.
        atom_virials_tncc: per-atom virials per sample (eV, summing to ``virial_ccc``: see
            :meth:`atomistic.calculator.Calculator.atom_virials`), with ``per_atom=True``.
    """

    step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    temperature: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kinetic_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    potential_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    conserved: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pressure: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stress_ccc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    virial_ccc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    born_ccccc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3, 3, 3)))
    dof: int = 0
    n_atoms: int = 0
    volume: float = math.nan
    cell_ccc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    site_energies_tn: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    atom_virials_tncc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3, 3)))

    def __len__(self) -> int:
        return len(self.step)

    @property
    def volumes(self) -> np.ndarray:
        """Cell volume per sample (Å³)."""
        return np.abs(np.linalg.det(self.cell_ccc))

    @property
    def virial_stress_ccc(self) -> np.ndarray:
        """Configurational (virial) stress per sample, ``-W / V`` (eV/Å³, tension positive)."""
        return -self.virial_ccc / self.volumes[:, None, None]

    def tail(self, start: int) -> Thermo:
        """The samples from index ``start`` on (e.g. after an equilibration cut)."""
        per = {k: getattr(self, k)[start:] for k in _SERIES}
        opt = {k: getattr(self, k)[start:] if len(getattr(self, k)) else getattr(self, k)
               for k in _OPTIONAL}
        vol = float(abs(np.linalg.det(per["cell_ccc"][0]))) if len(per["cell_ccc"]) else \
            self.volume
        return Thermo(**per, **opt, dof=self.dof, n_atoms=self.n_atoms, volume=vol)


#: the per-sample fields of Thermo that every sample has
_SERIES = ("step", "time", "temperature", "kinetic_energy", "potential_energy", "total_energy",
           "conserved", "pressure", "stress_ccc", "virial_ccc", "cell_ccc")
#: the per-sample fields that are sampled on request (empty otherwise)
_OPTIONAL = ("born_ccccc", "site_energies_tn", "atom_virials_tncc")


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _run_arguments(state, steps, thermo_every, trajectory_every, max_energy_jump, progress):
    """The checked arguments every engine's ``run`` shares (InputError before any step).

    Returns:
        ``(steps, thermo_every, trajectory_every, max_energy_jump, progress)``.
    """
    if not isinstance(state, MDState):
        raise InputError(f"state must be an MDState, got {type(state).__name__}")
    steps = _count("steps", steps, 0)
    thermo_every = _count("thermo_every", thermo_every, 1)
    trajectory_every = thermo_every if trajectory_every is None else \
        _count("trajectory_every", trajectory_every, 1)
    max_jump = require_positive("max_energy_jump", max_energy_jump, unit="eV/atom")
    if progress is not None:
        progress = require_nonnegative("progress", progress, unit="s")
    return steps, thermo_every, trajectory_every, max_jump, progress


def _symbols(calculator: Calculator, types_n: np.ndarray) -> list[str]:
    elements = getattr(calculator.potential, "elements", ())
    return [elements[t] if t < len(elements) else "X" for t in types_n]


def _too_large(step: int, dt: float, what: str) -> CalculationFailed:
    return CalculationFailed(
        f"MD step {step}: {what}. The time step dt = {dt:g} ps is too large for this system "
        f"(or the start is far from equilibrium): use a smaller dt (e.g. {dt / 2:g} ps) and "
        f"restart from the last saved state")


@numba.njit(cache=True)
def _kick_drift(v_nc, x_nc, f_nc, dtfm_n, dt):
    """Velocity Verlet's first half: ``v += dtfm f``, ``x += dt v``, in one pass."""
    for a in range(v_nc.shape[0]):
        for c in range(3):
            v_nc[a, c] += dtfm_n[a] * f_nc[a, c]
            x_nc[a, c] += dt * v_nc[a, c]


@numba.njit(cache=True)
def _kick(v_nc, f_nc, dtfm_n):
    """Velocity Verlet's second half kick ``v += dtfm f``."""
    for a in range(v_nc.shape[0]):
        for c in range(3):
            v_nc[a, c] += dtfm_n[a] * f_nc[a, c]


def _verlet_stepper(integrator: VelocityVerlet, state: MDState):
    """``step(state, forces, compute)`` of :class:`VelocityVerlet` in two numba passes.

    The same floating-point operations in the same order as ``VelocityVerlet.step`` (each
    product rounded, then added; no fused multiply-add), so the bits are the same, without
    its temporaries: the MD loop's hot path.
    """
    dt = integrator.dt
    dtfm_n = (0.5 * dt * FTM2V) / state.masses_n  # as integrators._half_kick_factor

    def step(state: MDState, forces_nc: np.ndarray, compute):
        _kick_drift(state.velocities_nc, state.positions_nc, np.ascontiguousarray(forces_nc),
                    dtfm_n, dt)
        result = compute()
        _kick(state.velocities_nc, np.ascontiguousarray(result.forces_nc), dtfm_n)
        return result

    return step


def run_md(state: MDState, calculator: Calculator, integrator, steps: int, *,
           thermo_every: int = 100, log=None, trajectory=None, trajectory_every: int | None = None,
           max_energy_jump: float = 0.1, progress: float | None = None,
           born: bool | str = False, per_atom: bool = False,
           born_delta: float = 1e-3) -> Thermo:
    """Advance ``state`` by ``steps`` steps of ``integrator``; return the samples.

    The state is changed in place (positions, velocities, step, time, the integrator's
    variables and random-number state, the neighbour list's reference positions) and can be
    saved at any time between runs (:meth:`MDState.save`); a run from a restored state
    continues bitwise identically, since the calculator's neighbour list is rebuilt from the
    positions the saved run had built it from.

    Args:
        state: the dynamical state (masses and velocities set).
        calculator: evaluates forces and energies; its neighbour list is reset here.
        integrator: :class:`~atomistic.md.integrators.VelocityVerlet`,
            :class:`~atomistic.md.integrators.LangevinBAOAB`,
            :class:`~atomistic.md.integrators.NoseHooverChain` or one with their interface.
        steps: number of steps (>= 0).
        thermo_every: sample every this many steps (at multiples of it).
        log: None, a path or an open text file for the thermo log (see
            :class:`~atomistic.md.output.ThermoLog`).
        trajectory: None, a path (overwritten) or an open text file for extxyz frames.
        trajectory_every: a frame every this many steps (default ``thermo_every``).
        max_energy_jump: largest change of the conserved quantity in one step (eV/atom)
            before the run is stopped as blown up.
        progress: None (silent) or seconds of wall time between progress lines on stderr
            (step, percentage, simulated time, temperature, steps per second, time left).
        per_atom: also sample the site energies and per-atom virials (what a heat current
            needs; (n_samples, n) and (n_samples, n, 3, 3) arrays: mind the memory).
        born: also sample the Born tensor: ``True`` or ``"analytic"`` (a second-order
            evaluation per sample; for EAM two fused passes, about the cost of one force
            call) or ``"numdiff"`` (central differences of the stress under ±``born_delta``
            strains, 12 force calls, :meth:`~atomistic.calculator.Calculator.born_tensor_numdiff`:
            unlike the analytic tensor its average includes the impulsive term of a potential
            that is discontinuous at its cutoff).
        born_delta: the strain step of ``born="numdiff"``.

    Returns:
        The samples (:class:`Thermo`).

    Raises:
        InputError: bad arguments (before any step).
        CalculationFailed: the dynamics blew up (step and fix in the message).
    """
    steps, thermo_every, trajectory_every, max_jump, progress = _run_arguments(
        state, steps, thermo_every, trajectory_every, max_energy_jump, progress)
    for attr in ("step", "conserved", "to_dict", "dt", "fixed_momentum"):
        if not hasattr(integrator, attr):
            raise InputError(f"integrator {integrator!r} has no {attr!r}: use VelocityVerlet, "
                             f"LangevinBAOAB or NoseHooverChain")
    n = len(state)
    if n < 2:
        raise InputError(f"MD needs at least 2 atoms, got {n}")
    dof = degrees_of_freedom(n, fixed_momentum=integrator.fixed_momentum)
    dt = integrator.dt

    config = Configuration(state.positions_nc, state.cell_cc, state.pbc, state.types_n)
    if config.positions_nc is not state.positions_nc:  # pragma: no cover - a bug
        raise RuntimeError("the configuration must share the state's positions")
    periodic = all(state.pbc)
    volume0 = config.volume if periodic else math.nan

    # the neighbour list as the saved run had it (bitwise continuation), else a fresh one
    calculator.reset()
    seen = [None]  # (list, builds) of the neighbour list whose reference the state holds
    if state.neighbor_positions_nc is not None:
        nl = calculator.neighbor_list(Configuration(state.neighbor_positions_nc,
                                                    state.neighbor_cell_cc, state.pbc,
                                                    state.types_n))
        seen[0] = (id(nl), nl.builds)

    def compute():
        res = calculator.compute(config)  # updates (rebuilds if needed) the neighbour list
        nl = calculator.kept_neighbor_list
        key = (id(nl), nl.builds)
        if key != seen[0]:  # (re)built from the current positions
            state.neighbor_positions_nc = state.positions_nc.copy()
            state.neighbor_cell_cc = state.cell_cc.copy()
            seen[0] = key
        return res

    result = compute()  # input errors here are the user's: not wrapped
    integrator.start(state)
    state.integrator = integrator.to_dict()

    if born not in (False, True, "analytic", "numdiff"):
        raise InputError(f"born must be False, True, 'analytic' or 'numdiff', got {born!r}")
    if not isinstance(per_atom, bool):
        raise InputError(f"per_atom must be True or False, got {per_atom!r}")
    born_calc = None
    if born == "numdiff":  # its own neighbour list: the strained frames never touch the run's
        require_positive("born_delta", born_delta)
        born_calc = Calculator(calculator.potential, skin=calculator.skin,
                               exclude=calculator.exclude)
    rows: dict[str, list] = {k: [] for k in (*_SERIES, *_OPTIONAL)}
    thermo = ThermoLog(log) if log is not None else None
    sink = TextSink(trajectory) if trajectory is not None else None
    traj = sink.file if sink is not None else None
    symbols = _symbols(calculator, state.types_n) if traj is not None else None

    def sample(kin: float, conserved: float) -> None:
        if state.step % thermo_every and (traj is None or state.step % trajectory_every):
            return
        m, v = state.masses_n, state.velocities_nc
        volume = abs(float(np.linalg.det(state.cell_cc))) if periodic else math.nan
        stress = -(result.virial_cc + kinetic_tensor(m, v)) / volume
        p = -float(np.trace(stress)) / 3.0
        temp = 2.0 * kin / (dof * KB)
        pot = result.energy
        if state.step % thermo_every == 0:
            for k, val in (("step", state.step), ("time", state.time), ("temperature", temp),
                           ("kinetic_energy", kin), ("potential_energy", pot),
                           ("total_energy", pot + kin), ("conserved", conserved),
                           ("pressure", p), ("stress_ccc", stress),
                           ("virial_ccc", result.virial_cc.copy()),
                           ("cell_ccc", state.cell_cc.copy())):
                rows[k].append(val)
            if born_calc is not None:
                rows["born_ccccc"].append(born_calc.born_tensor_numdiff(config, born_delta))
            elif born:
                rows["born_ccccc"].append(calculator.born_tensor(config))
            if per_atom:
                rows["site_energies_tn"].append(result.site_energies_n.copy())
                rows["atom_virials_tncc"].append(calculator.atom_virials(config))
            if thermo is not None:
                thermo.write(state.step, state.time, temp, pot, kin, pot + kin, conserved,
                             p * EV_PER_A3_IN_GPA)
        if traj is not None and state.step % trajectory_every == 0:
            write_extxyz(traj, state.positions_nc, cell=state.cell_cc, pbc=state.pbc,
                         arrays={"velo": v}, symbols=symbols,
                         info={"step": state.step, "time": state.time, "temperature": temp,
                               "energy": pot, "kinetic_energy": kin})

    try:
        kin = kinetic_energy(state.masses_n, state.velocities_nc)
        h_prev = integrator.conserved(state, result.energy, kin)
        if not math.isfinite(h_prev):
            raise InputError(f"the starting state has a non-finite energy ({h_prev!r})")
        if state.step == 0:
            sample(kin, h_prev)
        stepper = _verlet_stepper(integrator, state) if type(integrator) is VelocityVerlet \
            else integrator.step
        wall0 = last = _time.monotonic()
        for done in range(1, steps + 1):
            step = state.step + 1
            try:
                result = stepper(state, result.forces_nc, compute)
            except InputError as exc:  # positions the calculator refuses: flown apart/overlap
                raise _too_large(step, dt, f"the atoms moved to positions the calculator "
                                           f"refuses ({exc})") from exc
            state.step = step
            state.time += dt
            kin = kinetic_energy(state.masses_n, state.velocities_nc)
            h = integrator.conserved(state, result.energy, kin)
            if not math.isfinite(h):
                raise _too_large(step, dt, f"the energy is not finite ({h!r})")
            if abs(h - h_prev) > max_jump * n:
                raise _too_large(step, dt, f"the conserved energy jumped by "
                                           f"{(h - h_prev) / n:.3g} eV/atom in one step (limit "
                                           f"{max_jump:g} eV/atom, max_energy_jump)")
            h_prev = h
            sample(kin, h)
            if progress is not None and (_time.monotonic() - last >= progress or done == steps):
                last = _time.monotonic()
                rate = done / max(last - wall0, 1e-9)
                print(f"MD step {state.step} ({done}/{steps}, {100 * done / steps:.0f} %), "
                      f"t = {state.time:.6g} ps, T = {2 * kin / (dof * KB):.1f} K, "
                      f"{rate:.0f} steps/s, {(steps - done) / rate:.0f} s left",
                      file=sys.stderr, flush=True)
    finally:
        if thermo is not None:
            thermo.close()
        if sink is not None:
            sink.close()

    shapes = {"stress_ccc": (3, 3), "virial_ccc": (3, 3), "cell_ccc": (3, 3),
              "born_ccccc": (3, 3, 3, 3), "site_energies_tn": (n,),
              "atom_virials_tncc": (n, 3, 3)}
    out = Thermo(**{k: np.array(v) for k, v in rows.items() if k not in shapes},
                 **{k: np.array(rows[k]).reshape(-1, *shp) for k, shp in shapes.items()},
                 dof=dof, n_atoms=n, volume=volume0)
    out.step = out.step.astype(np.int64)
    return out
