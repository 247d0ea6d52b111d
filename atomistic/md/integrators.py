"""Time integrators: velocity Verlet (NVE), Langevin BAOAB, Nosé-Hoover chains (NVT, NPT).

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

Nosé-Hoover chains (Martyna, Klein & Tuckerman, J. Chem. Phys. 97, 2635 (1992); the
integrator of Martyna, Tuckerman, Tobias & Klein, Mol. Phys. 87, 1117 (1996)) are
:class:`NoseHooverChain`, the same equations and the same floating-point operations, in the
same order, as LAMMPS's ``fix nvt temp T T Tdamp tchain M tloop L`` (``src/fix_nh.cpp``:
``FixNH::setup``, ``initial_integrate``, ``final_integrate``, ``nhc_temp_integrate``,
``nh_v_temp``, ``nve_v``, ``nve_x``, ``compute_scalar``), so the two engines' trajectories
stay together to round-off. Deterministic; the thermostat's variables live in
``state.variables``, so a saved and restored run continues bitwise.

:class:`NoseHooverNPT` adds the Martyna-Tobias-Klein barostat to that chain: LAMMPS's ``fix
npt ... {iso|aniso|tri} P P Pdamp pchain M mtk yes`` (also ``x y z xy xz yz`` tensor
targets), the same file's ``nhc_press_integrate``, ``nh_omega_dot``, ``nh_v_press``,
``remap``, ``couple`` and the deviatoric terms, ported the same way. It changes the cell in
place (``state.cell_cc[:] = ...``) with the positions remapped; pressures are eV/Å³ here and
bar in LAMMPS (:data:`fe2qc.units.NKTV2P`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from atomistic.md.state import MDState
from atomistic.md.velocities import kinetic_energy
from fe2qc.checks import require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import KB, MVV2E, NKTV2P

__all__ = ["VelocityVerlet", "LangevinBAOAB", "NoseHooverChain", "NoseHooverNPT",
           "integrator_from_dict"]

#: eV/Å / amu in Å/ps² (LAMMPS ``metal`` ``ftm2v``, 1 / mvv2e)
FTM2V = 1.0 / MVV2E


def _half_kick_factor(dt: float, masses_n: np.ndarray) -> np.ndarray:
    """LAMMPS's ``dtfm = (0.5 dt ftm2v) / m`` per atom, as a column (n, 1)."""
    return ((0.5 * dt * FTM2V) / masses_n)[:, None]


def _chain_inward(x_dot: list, x_dotdot: list, M: int, ncfac: float, dt4: float,
                  dt8: float) -> float:
    """First half of a Nosé-Hoover chain's sub-step; returns link 0's scaling factor.

    ``FixNH::nhc_temp_integrate`` and ``nhc_press_integrate`` alike: the links' velocities
    from the chain's end down to link 0, each scaled by its successor.
    """
    for ich in range(M - 1, 0, -1):
        expfac = math.exp(-ncfac * dt8 * x_dot[ich + 1])
        x_dot[ich] *= expfac
        x_dot[ich] += x_dotdot[ich] * ncfac * dt4
        x_dot[ich] *= expfac
    expfac = math.exp(-ncfac * dt8 * x_dot[1])
    x_dot[0] *= expfac
    x_dot[0] += x_dotdot[0] * ncfac * dt4
    x_dot[0] *= expfac
    return expfac


def _chain_outward(x_dot: list, x_dotdot: list, mass, M: int, kt: float, ncfac: float,
                   dt4: float, dt8: float, expfac: float) -> None:
    """Second half of a chain's sub-step: link 0 with its new force, then the links outward.

    Each link is driven by its predecessor's kinetic energy against kT (LAMMPS's arithmetic).
    """
    x_dot[0] *= expfac
    x_dot[0] += x_dotdot[0] * ncfac * dt4
    x_dot[0] *= expfac
    for ich in range(1, M):
        expfac = math.exp(-ncfac * dt8 * x_dot[ich + 1])
        x_dot[ich] *= expfac
        x_dotdot[ich] = (mass[ich - 1] * x_dot[ich - 1] * x_dot[ich - 1] - kt) / mass[ich]
        x_dot[ich] += x_dotdot[ich] * ncfac * dt4
        x_dot[ich] *= expfac


def _carried(var: dict, keys: tuple, per_link: tuple, length: int, *, variables: str,
             chain: str, arg: str, part: str) -> bool:
    """Whether ``state.variables`` carries a chain's variables: all ``keys``, links of ``length``.

    Raises:
        InputError: only some of ``keys`` present, or ``per_link`` lists of another length;
            the message names the ``variables``, the ``chain``, the argument ``arg`` and the
            ``part`` (thermostat, barostat) that starts afresh without them.
    """
    have = [k for k in keys if k in var]
    if not have:
        return False
    if len(have) != len(keys):
        raise InputError(f"the state carries only {', '.join(have)} of the {variables} "
                         f"variables {', '.join(keys)}: remove them from state.variables to "
                         f"start the {part} afresh")
    lengths = {len(var[k]) for k in per_link}
    if lengths != {length}:
        raise InputError(f"the state carries a {chain} of length {sorted(lengths)}, this "
                         f"integrator has {arg}={length}: use {arg}={len(var[per_link[0]])}, "
                         f"or remove the {keys[0].split('_')[0]}_* entries from "
                         f"state.variables to start the {part} afresh")
    return True


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


#: the names under which :class:`NoseHooverChain` keeps its variables in ``state.variables``
_NHC_KEYS = ("nhc_eta", "nhc_eta_dot", "nhc_eta_dotdot", "nhc_t_current")


def _count_arg(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class NoseHooverChain:
    """Nosé-Hoover chain thermostat (NVT), the arithmetic of LAMMPS's ``fix nvt``.

    ``NoseHooverChain(dt, T, Tdamp, chain=M, loops=L)`` is ``fix ID all nvt temp T T Tdamp
    tchain M tloop L`` with LAMMPS's default temperature compute (``3N − 3`` degrees of
    freedom, ``tdof``). Per step (``FixNH::initial_integrate`` / ``final_integrate``): a
    half step of the chain (``nhc_temp_integrate``, which scales the velocities by
    ``exp(−dt/2 η̇₀)``), half kick, drift, forces, half kick, the temperature from the new
    velocities, a half step of the chain. Chain masses ``Q₀ = tdof kB T / t_freq²`` and
    ``Qₖ = kB T / t_freq²`` with ``t_freq = 1 / Tdamp``.

    The chain's state (η, η̇, η̈ and the temperature it last saw, which LAMMPS keeps
    scaled by ``factor_eta²`` between the half steps instead of recomputing it) is kept in
    ``state.variables`` under ``nhc_eta``, ``nhc_eta_dot``, ``nhc_eta_dotdot`` and
    ``nhc_t_current``. A state without them starts as ``FixNH::setup`` does (η = η̇ = 0,
    temperature from the velocities, ``η̈ₖ = (Qₖ₋₁ η̇ₖ₋₁² − kB T) / Qₖ`` for k ≥ 1); a state
    carrying them continues where it stopped, bitwise as one uninterrupted run. (LAMMPS's
    ``setup`` at the start of each ``run`` recomputes the temperature from the velocities,
    which changes the last bits only.)

    Args:
        dt: time step (ps), > 0.
        temperature: target temperature T (K), > 0.
        damping: Tdamp (ps), > 0: the thermostat's relaxation time; LAMMPS recommends about
            100 time steps.
        chain: number of thermostats in the chain M (LAMMPS ``tchain``, default 3), >= 1.
        loops: sub-cycles of each chain half step L (LAMMPS ``tloop``, default 1), >= 1.

    Raises:
        InputError: a parameter out of range (message names it and what is allowed).
    """

    name = "nose_hoover_chain"
    fixed_momentum = True  # η̇ scales every velocity alike: zero momentum stays zero

    def __init__(self, dt: float, temperature: float, damping: float, *, chain: int = 3,
                 loops: int = 1) -> None:
        self.dt = require_positive("dt", dt, unit="ps")
        self.temperature = require_positive("temperature", temperature, unit="K")
        self.damping = require_positive("damping", damping, unit="ps")
        self.chain = _count_arg("chain (the number of Nosé-Hoover thermostats, LAMMPS tchain)",
                                chain, 1)
        self.loops = _count_arg("loops (sub-cycles of the chain, LAMMPS tloop)", loops, 1)
        # FixNH::FixNH / init(): frequencies and sub-steps, the same expressions
        self._t_freq = 1.0 / self.damping
        self._dthalf = 0.5 * self.dt
        self._dt4 = 0.25 * self.dt
        self._dt8 = 0.125 * self.dt
        self._ncfac = 1.0 / self.loops

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _tdof(state: MDState) -> float:
        """LAMMPS's ``compute temp`` dof: 3N − 3 (the centre of mass removed)."""
        return float(3 * len(state) - 3)

    def _masses(self, tdof: float) -> list[float]:
        """``eta_mass`` as ``FixNH::nhc_temp_integrate`` recomputes it (eta_mass_flag)."""
        t_target, t_freq = self.temperature, self._t_freq
        return [tdof * KB * t_target / (t_freq * t_freq)] + \
            [KB * t_target / (t_freq * t_freq)] * (self.chain - 1)

    @staticmethod
    def _t_current(state: MDState, tdof: float) -> float:
        """``ComputeTemp::compute_scalar``: Σ m v² · mvv2e / (tdof kB)."""
        v = state.velocities_nc
        mv2 = float(state.masses_n @ np.einsum("nc,nc->n", v, v))
        return mv2 * (MVV2E / (tdof * KB))

    def _chain_half_step(self, state: MDState, var: dict, tdof: float) -> None:
        """``FixNH::nhc_temp_integrate``: half a step of the chain, velocities scaled."""
        M = self.chain
        kt = KB * self.temperature
        ke_target = tdof * KB * self.temperature  # compute_temp_target()
        eta, eta_dotdot = var["nhc_eta"], var["nhc_eta_dotdot"]
        eta_dot = var["nhc_eta_dot"] + [0.0]  # the extra dummy thermostat, zero
        t_current = var["nhc_t_current"]
        kecurrent = tdof * KB * t_current
        eta_mass = self._masses(tdof)
        eta_dotdot[0] = (kecurrent - ke_target) / eta_mass[0]
        ncfac, dt4, dt8, dthalf = self._ncfac, self._dt4, self._dt8, self._dthalf
        v = state.velocities_nc
        # LAMMPS also multiplies each eta_dot by tdrag_factor = 1 − dt t_freq drag / L, which
        # is exactly 1.0 without the ``drag`` keyword (not offered here): omitted
        for _ in range(self.loops):
            expfac = _chain_inward(eta_dot, eta_dotdot, M, ncfac, dt4, dt8)
            factor_eta = math.exp(-ncfac * dthalf * eta_dot[0])
            v *= factor_eta  # nh_v_temp()
            t_current *= factor_eta * factor_eta
            kecurrent = tdof * KB * t_current
            eta_dotdot[0] = (kecurrent - ke_target) / eta_mass[0]
            for ich in range(M):
                eta[ich] += ncfac * dthalf * eta_dot[ich]
            _chain_outward(eta_dot, eta_dotdot, eta_mass, M, kt, ncfac, dt4, dt8, expfac)
        var["nhc_eta_dot"] = eta_dot[:M]
        var["nhc_t_current"] = t_current

    # -- the integrator interface --------------------------------------------------------
    def start(self, state: MDState) -> None:
        """``FixNH::setup``, unless the state already carries this thermostat's variables.

        Raises:
            InputError: the state carries a chain of another length, or partial variables.
        """
        var = state.variables
        if _carried(var, _NHC_KEYS, _NHC_KEYS[:3], self.chain, variables="Nosé-Hoover chain",
                    chain="Nosé-Hoover chain", arg="chain", part="thermostat"):
            return
        tdof = self._tdof(state)
        eta_mass = self._masses(tdof)
        kt = KB * self.temperature
        eta_dot = [0.0] * self.chain
        eta_dotdot = [0.0] * self.chain
        for ich in range(1, self.chain):
            eta_dotdot[ich] = (eta_mass[ich - 1] * eta_dot[ich - 1] * eta_dot[ich - 1]
                               - kt) / eta_mass[ich]
        var["nhc_eta"] = [0.0] * self.chain
        var["nhc_eta_dot"] = eta_dot
        var["nhc_eta_dotdot"] = eta_dotdot
        var["nhc_t_current"] = self._t_current(state, tdof)

    def step(self, state: MDState, forces_nc: np.ndarray, compute: Callable):
        """One step: chain half step, half kick, drift, forces, half kick, chain half step."""
        var = state.variables
        tdof = self._tdof(state)
        dtfm = _half_kick_factor(self.dt, state.masses_n)
        v, x = state.velocities_nc, state.positions_nc
        self._chain_half_step(state, var, tdof)  # initial_integrate
        v += dtfm * forces_nc  # nve_v()
        x += self.dt * v  # nve_x()
        result = compute()
        v += dtfm * result.forces_nc  # final_integrate: nve_v()
        var["nhc_t_current"] = self._t_current(state, tdof)
        self._chain_half_step(state, var, tdof)
        return result

    def thermostat_energy(self, state: MDState) -> float:
        """The chain's energy, LAMMPS's ``FixNH::compute_scalar`` (the fix's ``f_ID``, eV).

        ``ke_target η₀ + ½ Q₀ η̇₀² + Σ_{k≥1} (kB T ηₖ + ½ Qₖ η̇ₖ²)`` with
        ``ke_target = tdof kB T``; 0 before the first :meth:`start`.
        """
        var = state.variables
        if "nhc_eta" not in var:
            return 0.0
        tdof = self._tdof(state)
        kt = KB * self.temperature
        ke_target = tdof * KB * self.temperature
        eta, eta_dot = var["nhc_eta"], var["nhc_eta_dot"]
        eta_mass = self._masses(tdof)
        energy = 0.0
        energy += ke_target * eta[0] + 0.5 * eta_mass[0] * eta_dot[0] * eta_dot[0]
        for ich in range(1, self.chain):
            energy += kt * eta[ich] + 0.5 * eta_mass[ich] * eta_dot[ich] * eta_dot[ich]
        return energy

    def conserved(self, state: MDState, potential: float, kinetic: float) -> float:
        """Potential + kinetic energy + the chain's energy (:meth:`thermostat_energy`, eV)."""
        return potential + kinetic + self.thermostat_energy(state)

    def to_dict(self) -> dict:
        """A JSON description (see :func:`integrator_from_dict`)."""
        return {"name": self.name, "dt": self.dt, "temperature": self.temperature,
                "damping": self.damping, "chain": self.chain, "loops": self.loops}

    def __repr__(self) -> str:
        return (f"NoseHooverChain(dt={self.dt!r}, temperature={self.temperature!r}, "
                f"damping={self.damping!r}, chain={self.chain!r}, loops={self.loops!r})")


#: the names under which :class:`NoseHooverNPT` keeps the barostat's variables
_NPT_KEYS = ("npt_omega", "npt_omega_dot", "npt_etap", "npt_etap_dot", "npt_etap_dotdot",
             "npt_boxlo", "npt_boxhi", "npt_fixedpoint", "npt_vol0", "npt_h0_inv")

#: barostat styles: LAMMPS's ``iso`` (one strain rate, couple xyz), ``aniso`` (three) and
#: ``tri`` (six: the three tilts too)
NPT_MODES = ("iso", "aniso", "tri")

#: LAMMPS ``fix nh``: a tilt may not exceed this many box lengths after one step (TILTMAX),
#: and a tilt beyond (0.5 + DELTAFLIP) box lengths is flipped to the equivalent lattice
_TILTMAX = 1.5
_DELTAFLIP = 0.1


def _box(cell_cc: np.ndarray, lo: list, hi: list) -> list[float]:
    """LAMMPS's ``domain->h``: ``[xprd, yprd, zprd, yz, xz, xy]`` (``prd = boxhi - boxlo``)."""
    return [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2],
            float(cell_cc[2, 1]), float(cell_cc[2, 0]), float(cell_cc[1, 0])]


def _box_inverse(h: list[float], triclinic: bool) -> list[float]:
    """``Domain::set_global_box``'s ``h_inv`` (the tilt entries stay 0 for an orthogonal box)."""
    h_inv = [1.0 / h[0], 1.0 / h[1], 1.0 / h[2], 0.0, 0.0, 0.0]
    if triclinic:
        h_inv[3] = -h[3] / (h[1] * h[2])
        h_inv[4] = (h[3] * h[5] - h[1] * h[4]) / (h[0] * h[1] * h[2])
        h_inv[5] = -h[5] / (h[0] * h[1])
    return h_inv


def _pressure_target(pressure, mode: str):
    """``(pressure, [Pxx Pyy Pzz Pyz Pxz Pxy] (eV/Å³), deviatoric)`` of a scalar or tensor."""
    if isinstance(pressure, bool) or pressure is None or isinstance(pressure, str):
        ok = False
    elif np.ndim(pressure) == 0:
        ok = isinstance(pressure, int | float | np.number) and math.isfinite(pressure)
        if ok:
            p = float(pressure)
            return p, [p, p, p, 0.0, 0.0, 0.0], False
    else:
        try:
            P = np.array(pressure, dtype=float)
        except (TypeError, ValueError):
            P = None
        ok = P is not None and P.shape == (3, 3) and bool(np.isfinite(P).all())
        if ok and not np.array_equal(P, P.T):
            raise InputError("a target pressure tensor must be symmetric (P = P.T), got "
                             f"{P.tolist()}")
        if ok and mode == "iso":
            raise InputError("mode 'iso' takes a scalar pressure; a tensor target needs mode "
                             "'aniso' (diagonal) or 'tri'")
        if ok and mode == "aniso" and (P[0, 1] != 0.0 or P[0, 2] != 0.0 or P[1, 2] != 0.0):
            raise InputError("mode 'aniso' controls the normal pressures only: give a diagonal "
                             "target, or use mode 'tri' for shear targets")
        if ok:
            return P, [P[0, 0], P[1, 1], P[2, 2], P[1, 2], P[0, 2], P[0, 1]], True
    raise InputError(f"pressure must be a finite number (eV/Å³, compression positive: the "
                     f"hydrostatic target; 1 GPa = 1/160.2 eV/Å³) or, for mode 'aniso' or "
                     f"'tri', a symmetric 3×3 target pressure tensor (= minus the target "
                     f"stress), got {pressure!r}")


class NoseHooverNPT:
    """Nosé-Hoover chains with an MTK barostat (NPT), the arithmetic of LAMMPS's ``fix npt``.

    ``NoseHooverNPT(dt, T, Tdamp, P, Pdamp, mode=m, chain=M, loops=L, pchain=Mp, mtk=True)``
    is ``fix ID all npt temp T T Tdamp m P·nktv2p P·nktv2p Pdamp tchain M tloop L pchain Mp
    mtk yes`` (``m`` one of ``iso``, ``aniso``, ``tri``; ``nktv2p`` =
    :data:`fe2qc.units.NKTV2P`: LAMMPS ``metal`` pressures are in bar, ours in eV/Å³; 1 GPa
    is ``1 / EV_PER_A3_IN_GPA`` eV/Å³) with LAMMPS's default temperature and pressure computes
    (``3N − 3`` degrees of freedom; pressure = virial + kinetic, the scalar from the
    temperature, the tensor from ``Σ m v ⊗ v``). The equations are those of Martyna,
    Tobias & Klein, J. Chem. Phys. 101, 4177 (1994) with the MTK correction terms and
    the integrator of Martyna, Tuckerman, Tobias & Klein, Mol. Phys. 87, 1117 (1996), as
    ``src/fix_nh.cpp`` implements them (``setup``, ``initial_integrate``,
    ``final_integrate``, ``couple``, ``compute_press_target``, ``nh_omega_dot``,
    ``nhc_press_integrate``, ``nh_v_press``, ``remap``, ``compute_scalar``,
    ``pre_exchange``), the same floating-point operations in the same order:

    * per step: half step of the barostat's chain (which scales ω̇), half step of the
      particles' chain (:class:`NoseHooverChain`'s code), pressure, half step of ω̇
      (``(P − P_target) V / W`` plus the MTK term ``tdof kB T / (3N)`` / W), velocities
      scaled by ``exp(−dt/4 (ω̇ + tr ω̇ / 3N))`` twice around the tilt coupling, half kick,
      cell and positions remapped by half a step, drift, remapped by the other half,
      forces, half kick, the same scaling, temperature and pressure, half step of ω̇, of
      the particles' chain and of the barostat's chain;
    * masses ``W = (N + 1) kB T / p_freq²`` per barostatted component, chain masses
      ``kB T / p_freq²`` (``p_freq = 1 / Pdamp``); ``iso`` moves the three lengths
      together (P the mean normal pressure), ``aniso`` each length with its normal pressure,
      ``tri`` also the tilts ``xy``, ``xz``, ``yz`` with the shear pressures (target 0:
      hydrostatic).

    **The cell.** LAMMPS works in its restricted triclinic frame: cell vectors
    ``a = (lx, 0, 0)``, ``b = (xy, ly, 0)``, ``c = (xz, yz, lz)``, with ω upper
    triangular. Our cells are rows (``cell_cc[0] = a``, ...), so the state's cell must have
    that form: ``cell_cc[0, 1] = cell_cc[0, 2] = cell_cc[1, 2] = 0`` and a positive
    diagonal (any cell can be rotated so, :func:`atomistic.lammps.frames.restricted_frame`;
    a cubic or orthorhombic cell along the axes already is). ``cell_cc[1, 0]`` is LAMMPS's
    ``xy``, ``cell_cc[2, 0]`` its ``xz``, ``cell_cc[2, 1]`` its ``yz``. The cell changes in
    place (``state.cell_cc[:] = ...``), and every position is remapped with it, about the
    centre of the starting cell (LAMMPS's default ``fixedpoint``); the box's corners
    (``boxlo``, ``boxhi``), kept in ``state.variables``, place the cell in space, the first
    one at the origin at the start. A tilt beyond 0.6 of its box length is flipped to the
    equivalent lattice vector (LAMMPS's ``flip yes``; done at the step it is needed, where
    LAMMPS does it at its next reneighbouring, so a run in which a flip happens departs
    from LAMMPS's there); a tilt beyond 1.5 box lengths after one step is refused as
    LAMMPS refuses it.

    **State.** The particles' chain keeps :class:`NoseHooverChain`'s variables (``nhc_*``);
    the barostat its own in ``state.variables``: ``npt_omega`` and ``npt_omega_dot`` (6
    each, Voigt order xx yy zz yz xz xy), ``npt_etap``, ``npt_etap_dot``,
    ``npt_etap_dotdot`` (the barostat's chain), ``npt_boxlo``, ``npt_boxhi``,
    ``npt_fixedpoint``, ``npt_vol0`` (the starting volume of the ``P (V − V0)`` term) and
    ``npt_h0_inv`` (the starting cell's inverse, LAMMPS's ``h0_inv``, for tensor targets).
    A state without them starts as ``FixNH::setup`` does (ω̇ = 0); one carrying them
    continues bitwise as one uninterrupted run. The barostat needs the virial at the
    starting positions, which the integrator interface does not hand over: the first step
    after :meth:`start` evaluates the forces there once more (bitwise the same result).

    **Conserved quantity** (:meth:`conserved`): potential + kinetic energy + the chains'
    energies + ``½ W ω̇²`` per component + ``P (V − V0)``, i.e. LAMMPS's ``compute_scalar``
    (the fix's ``f_ID``, :meth:`barostat_energy`) with one correction: for ``iso`` with
    ``pchain >= 1``, ``compute_scalar`` weighs the barostat chain's first position ``ηp₀``
    by ``3 kB T`` (one ``kB T`` per barostatted length) while ``nhc_press_integrate``
    drives that chain towards ``kB T`` (``lkt_press = kt`` for ``iso``, since LAMMPS PR
    #1259), so ``pe + ke + f_ID`` is not conserved: it drifts by ``2 kB T ηp₀`` (measured
    2e-3 eV/atom in 2 ps on 108 Cu atoms, against 1.4e-5 with the correction). Our conserved
    quantity uses the ``kB T`` of the equation of motion; :meth:`barostat_energy` keeps
    LAMMPS's number, so that it can be compared with ``f_ID``.

    **A target pressure tensor** ``P`` (symmetric 3×3, eV/Å³, compression positive: minus
    the target Cauchy stress, in the restricted frame) is LAMMPS's per-component keywords:
    ``mode="tri"`` is ``x Pxx Pxx Pdamp y Pyy Pyy Pdamp z Pzz Pzz Pdamp xy Pxy Pxy Pdamp xz
    Pxz Pxz Pdamp yz Pyz Pyz Pdamp``, ``mode="aniso"`` with a diagonal ``P`` the ``x y z``
    ones: the normal components are driven by ``(P_current − p_hydro) V`` with ``p_hydro =
    tr P / 3``, and the deviatoric part ``P − p_hydro I`` enters as Parrinello-Rahman's
    reference-cell force ``h Σ hᵀ`` with ``Σ = V0 h0⁻¹ (P − p_hydro) h0⁻ᵀ`` (``h0`` the
    starting cell, kept as ``npt_h0_inv``; ``compute_sigma``, ``compute_deviatoric``), whose
    strain energy ``½ tr(Σ h hᵀ)`` the conserved quantity adds (``compute_strain_energy``).
    This controls the second Piola-Kirchhoff-like thermodynamic tension of the reference
    cell, which equals the Cauchy target only near ``h0`` (LAMMPS's ``nreset`` keyword,
    which re-references ``h0``, is not offered).

    Not offered: LAMMPS's ``drag``, ``dilate``, ``couple`` other than ``iso``'s, ``nreset``,
    ``ploop`` (1), target ramps (``T`` and ``P`` constant) and ``fixedpoint``.

    Args:
        dt: time step (ps), > 0.
        temperature: target temperature T (K), > 0.
        damping: Tdamp (ps), > 0: the thermostat's relaxation time (about 100 steps).
        pressure: target hydrostatic pressure P (eV/Å³, compression positive), finite; or,
            for ``aniso`` (diagonal) and ``tri``, a symmetric 3×3 target pressure tensor.
        pressure_damping: Pdamp (ps), > 0: the barostat's relaxation time; LAMMPS
            recommends about 1000 time steps. A stiff solid's volume oscillates much faster:
            the frequency is ``sqrt(3 K V / W) ~ p_freq sqrt(3 K Ω / kB T)`` (``Ω`` the
            volume per atom), about 33 / Pdamp for Cu at 300 K, a period of Pdamp / 5; take
            Pdamp >= ~250 dt so that the step resolves it (with 2 fs steps on 32 Cu atoms,
            Pdamp = 0.1 ps gave volume fluctuations ~20 % too large, 0.05 ps twice too large;
            0.25 to 1 ps gave the right ones).
        mode: ``"iso"``, ``"aniso"`` or ``"tri"``.
        chain: thermostats in the particles' chain (LAMMPS ``tchain``), >= 1.
        loops: sub-cycles of the particles' chain (LAMMPS ``tloop``), >= 1.
        pchain: thermostats in the barostat's chain (LAMMPS ``pchain``), >= 0.
        mtk: include the MTK correction terms (LAMMPS ``mtk yes``, the default).

    Raises:
        InputError: a parameter out of range (message names it and what is allowed).
    """

    name = "nose_hoover_npt"
    fixed_momentum = True  # the scalings and the tilt coupling keep zero momentum zero

    def __init__(self, dt: float, temperature: float, damping: float, pressure: float,
                 pressure_damping: float, *, mode: str = "iso", chain: int = 3, loops: int = 1,
                 pchain: int = 3, mtk: bool = True) -> None:
        self._nhc = NoseHooverChain(dt, temperature, damping, chain=chain, loops=loops)
        self.dt, self.temperature, self.damping = self._nhc.dt, self._nhc.temperature, \
            self._nhc.damping
        self.chain, self.loops = self._nhc.chain, self._nhc.loops
        self.pressure, p6, self._deviatoric = _pressure_target(pressure, mode)
        self.pressure_damping = require_positive("pressure_damping", pressure_damping,
                                                 unit="ps")
        if mode not in NPT_MODES:
            raise InputError(f"mode must be one of {', '.join(NPT_MODES)} (LAMMPS fix npt's "
                             f"iso, aniso, tri), got {mode!r}")
        self.mode = mode
        self.pchain = _count_arg("pchain (thermostats on the barostat, LAMMPS pchain)",
                                 pchain, 0)
        if not isinstance(mtk, bool | np.bool_):
            raise InputError(f"mtk must be True or False, got {mtk!r}")
        self.mtk = bool(mtk)
        # FixNH::FixNH / init(): flags, frequencies, sub-steps
        self._iso = mode == "iso"
        self._tri = mode == "tri"
        self._flag = [True, True, True] + [self._tri] * 3
        self._pdim = 3
        self._p_freq = 1.0 / self.pressure_damping
        self._p_freq_max = self._p_freq
        self._p_start = [p * NKTV2P for p in p6]  # bar, Voigt, as LAMMPS reads its targets
        self._dthalf = 0.5 * self.dt
        self._dt4 = 0.25 * self.dt
        self._dt8 = 0.125 * self.dt
        self._nc_pchain = 1
        self._virial = None  # (state id, step, virial at the state's positions)

    # -- LAMMPS's pieces -----------------------------------------------------------------
    def _omega_mass(self, n: int) -> list[float]:
        kt = KB * self.temperature
        nkt = float(n + 1) * kt
        return [nkt / (self._p_freq * self._p_freq) if f else 0.0 for f in self._flag]

    def _etap_mass(self) -> list[float]:
        pf = self._p_freq_max
        return [KB * self.temperature / (pf * pf)] * self.pchain

    def _p_hydro(self) -> float:
        """``compute_press_target``: the mean of the three normal targets (bar)."""
        p_hydro = 0.0
        for i in range(3):
            p_hydro += self._p_start[i]
        return p_hydro / self._pdim

    def _sigma(self, var: dict) -> list[float]:
        """``compute_sigma``: ``vol0 h0⁻¹ (p_target − p_hydro) h0⁻ᵀ``, upper triangle (bar Å)."""
        vol0, h0_inv, pt = var["npt_vol0"], var["npt_h0_inv"], self._p_start
        p_hydro = self._p_hydro()
        return [
            vol0 * (h0_inv[0] * ((pt[0] - p_hydro) * h0_inv[0]
                                 + pt[5] * h0_inv[5] + pt[4] * h0_inv[4])
                    + h0_inv[5] * (pt[5] * h0_inv[0]
                                   + (pt[1] - p_hydro) * h0_inv[5] + pt[3] * h0_inv[4])
                    + h0_inv[4] * (pt[4] * h0_inv[0] + pt[3] * h0_inv[5]
                                   + (pt[2] - p_hydro) * h0_inv[4])),
            vol0 * (h0_inv[1] * ((pt[1] - p_hydro) * h0_inv[1] + pt[3] * h0_inv[3])
                    + h0_inv[3] * (pt[3] * h0_inv[1] + (pt[2] - p_hydro) * h0_inv[3])),
            vol0 * (h0_inv[2] * ((pt[2] - p_hydro) * h0_inv[2])),
            vol0 * (h0_inv[1] * (pt[3] * h0_inv[2]) + h0_inv[3] * ((pt[2] - p_hydro) * h0_inv[2])),
            vol0 * (h0_inv[0] * (pt[4] * h0_inv[2]) + h0_inv[5] * (pt[3] * h0_inv[2])
                    + h0_inv[4] * ((pt[2] - p_hydro) * h0_inv[2])),
            vol0 * (h0_inv[0] * (pt[5] * h0_inv[1] + pt[4] * h0_inv[3])
                    + h0_inv[5] * ((pt[1] - p_hydro) * h0_inv[1] + pt[3] * h0_inv[3])
                    + h0_inv[4] * (pt[3] * h0_inv[1] + (pt[2] - p_hydro) * h0_inv[3]))]

    @staticmethod
    def _fdev(h: list[float], sg: list[float]) -> list[float]:
        """``compute_deviatoric``: ``h σ hᵀ``, the deviatoric barostat force (bar Å³)."""
        return [
            h[0] * (sg[0] * h[0] + sg[5] * h[5] + sg[4] * h[4])
            + h[5] * (sg[5] * h[0] + sg[1] * h[5] + sg[3] * h[4])
            + h[4] * (sg[4] * h[0] + sg[3] * h[5] + sg[2] * h[4]),
            h[1] * (sg[1] * h[1] + sg[3] * h[3]) + h[3] * (sg[3] * h[1] + sg[2] * h[3]),
            h[2] * (sg[2] * h[2]),
            h[1] * (sg[3] * h[2]) + h[3] * (sg[2] * h[2]),
            h[0] * (sg[4] * h[2]) + h[5] * (sg[3] * h[2]) + h[4] * (sg[2] * h[2]),
            h[0] * (sg[5] * h[1] + sg[4] * h[3]) + h[5] * (sg[1] * h[1] + sg[3] * h[3])
            + h[4] * (sg[3] * h[1] + sg[2] * h[3])]

    @staticmethod
    def _strain_energy(h: list[float], sg: list[float]) -> float:
        """``compute_strain_energy``: ``½ tr(σ h hᵀ)`` (eV)."""
        d0 = sg[0] * (h[0] * h[0] + h[5] * h[5] + h[4] * h[4]) \
            + sg[5] * (h[1] * h[5] + h[3] * h[4]) + sg[4] * (h[2] * h[4])
        d1 = sg[5] * (h[5] * h[1] + h[4] * h[3]) + sg[1] * (h[1] * h[1] + h[3] * h[3]) \
            + sg[3] * (h[2] * h[3])
        d2 = sg[4] * (h[4] * h[2]) + sg[3] * (h[3] * h[2]) + sg[2] * (h[2] * h[2])
        return 0.5 * (d0 + d1 + d2) / NKTV2P

    @staticmethod
    def _ke_tensor(state: MDState) -> list[float]:
        """``ComputeTemp::compute_vector``: ``mvv2e Σ m v v`` as xx yy zz xy xz yz (eV)."""
        m, v = state.masses_n, state.velocities_nc
        mv = m[:, None] * v
        return [float(mv[:, a] @ v[:, b]) * MVV2E
                for a, b in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))]

    def _p_current(self, state: MDState, h: list[float], virial_cc: np.ndarray,
                   t: float, tdof: float, ke: list[float] | None) -> list[float]:
        """``ComputePressure::compute_scalar``/``compute_vector`` and ``couple`` (bar)."""
        inv_volume = 1.0 / (h[0] * h[1] * h[2])
        w = virial_cc
        if self._iso:
            scalar = (tdof * KB * t + w[0, 0] + w[1, 1] + w[2, 2]) / 3.0 * inv_volume * NKTV2P
            return [float(scalar)] * 3 + [0.0] * 3
        vir = (w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2])
        vec = [float((ke[i] + vir[i]) * inv_volume * NKTV2P) for i in range(6)]
        # couple none; switch xy-xz-yz to Voigt
        return vec[:3] + ([vec[5], vec[4], vec[3]] if self._tri else [0.0] * 3)

    def _omega_dot_half(self, var: dict, p_current: list[float], h: list[float],
                        t_current: float, tdof: float, ke: list[float] | None,
                        n: int) -> float:
        """``nh_omega_dot``: half a step of ω̇; returns ``mtk_term2``."""
        volume = h[0] * h[1] * h[2]
        od = var["npt_omega_dot"]
        om = self._omega_mass(n)
        p_hydro = self._p_hydro()
        pn = self._pdim * n
        mtk_term1 = 0.0
        if self.mtk:
            if self._iso:
                mtk_term1 = tdof * KB * t_current
                mtk_term1 /= pn
            else:
                for i in range(3):
                    mtk_term1 += ke[i]
                mtk_term1 /= pn
        fdev = self._fdev(h, self._sigma(var)) if self._deviatoric else None
        for i in range(3):
            f_omega = (p_current[i] - p_hydro) * volume / (om[i] * NKTV2P) + mtk_term1 / om[i]
            if fdev is not None:
                f_omega -= fdev[i] / (om[i] * NKTV2P)
            od[i] += f_omega * self._dthalf
        mtk_term2 = 0.0
        if self.mtk:
            for i in range(3):
                mtk_term2 += od[i]
            mtk_term2 /= pn
        if self._tri:
            for i in range(3, 6):
                f_omega = p_current[i] * volume / (om[i] * NKTV2P)
                if fdev is not None:
                    f_omega -= fdev[i] / (om[i] * NKTV2P)
                od[i] += f_omega * self._dthalf
        return mtk_term2

    def _v_press(self, state: MDState, od: list[float], mtk_term2: float) -> None:
        """``nh_v_press``: velocities scaled by the barostat (and sheared in ``tri``)."""
        dt4 = self._dt4
        factor = np.array([math.exp(-dt4 * (od[i] + mtk_term2)) for i in range(3)])
        v = state.velocities_nc
        v *= factor
        if self._tri:
            dthalf = self._dthalf
            v[:, 0] += -dthalf * (v[:, 1] * od[5] + v[:, 2] * od[4])
            v[:, 1] += -dthalf * v[:, 2] * od[3]
        v *= factor

    def _chain_press_half(self, var: dict, n: int) -> None:
        """``nhc_press_integrate``: half a step of the barostat's chain, ω̇ scaled."""
        M = self.pchain
        kt = KB * self.temperature
        om, em = self._omega_mass(n), self._etap_mass()
        od = var["npt_omega_dot"]
        etap, etap_dotdot = var["npt_etap"], var["npt_etap_dotdot"]
        etap_dot = var["npt_etap_dot"] + [0.0]  # the extra dummy thermostat, zero
        flagged = [i for i in range(6) if self._flag[i]]

        def ke_omega() -> float:
            kecurrent = 0.0
            for i in flagged:
                kecurrent += om[i] * od[i] * od[i]
            return kecurrent

        kecurrent = ke_omega()
        lkt_press = kt if self._iso else len(flagged) * kt
        etap_dotdot[0] = (kecurrent - lkt_press) / em[0]
        ncfac = 1.0 / self._nc_pchain
        dt4, dt8, dthalf = self._dt4, self._dt8, self._dthalf
        for _ in range(self._nc_pchain):
            expfac = _chain_inward(etap_dot, etap_dotdot, M, ncfac, dt4, dt8)
            for ich in range(M):
                etap[ich] += ncfac * dthalf * etap_dot[ich]
            factor_etap = math.exp(-ncfac * dthalf * etap_dot[0])
            for i in flagged:
                od[i] *= factor_etap
            kecurrent = ke_omega()
            etap_dotdot[0] = (kecurrent - lkt_press) / em[0]
            _chain_outward(etap_dot, etap_dotdot, em, M, kt, ncfac, dt4, dt8, expfac)
        var["npt_etap_dot"] = etap_dot[:M]

    def _remap(self, state: MDState, var: dict) -> None:
        """``FixNH::remap``: half a step of ``ḣ = ω̇ h``; positions follow in scaled coords."""
        od, omega = var["npt_omega_dot"], var["npt_omega"]
        lo, hi, fp = var["npt_boxlo"], var["npt_boxhi"], var["npt_fixedpoint"]
        cell = state.cell_cc
        dto = self._dthalf
        for i in range(6):
            omega[i] += dto * od[i]
        h = _box(cell, lo, hi)
        triclinic = self._tri or h[3] != 0.0 or h[4] != 0.0 or h[5] != 0.0
        h_inv = _box_inverse(h, triclinic)
        x = state.positions_nc
        # Domain::x2lamda (an orthogonal box's zero terms are left out: adding ±0 is exact)
        d0, d1, d2 = x[:, 0] - lo[0], x[:, 1] - lo[1], x[:, 2] - lo[2]
        if triclinic:
            s0 = h_inv[0] * d0 + h_inv[5] * d1 + h_inv[4] * d2
            s1 = h_inv[1] * d1 + h_inv[3] * d2
        else:
            s0, s1 = h_inv[0] * d0, h_inv[1] * d1
        s2 = h_inv[2] * d2
        dto2, dto4, dto8 = dto / 2.0, dto / 4.0, dto / 8.0

        def tilts() -> None:  # off-diagonal components, half of the half step (time symmetric)
            if self._flag[4]:
                expfac = math.exp(dto8 * od[0])
                h[4] *= expfac
                h[4] += dto4 * (od[5] * h[3] + od[4] * h[2])
                h[4] *= expfac
            if self._flag[3]:
                expfac = math.exp(dto4 * od[1])
                h[3] *= expfac
                h[3] += dto2 * (od[3] * h[2])
                h[3] *= expfac
            if self._flag[5]:
                expfac = math.exp(dto4 * od[0])
                h[5] *= expfac
                h[5] += dto2 * (od[5] * h[1])
                h[5] *= expfac
            if self._flag[4]:
                expfac = math.exp(dto8 * od[0])
                h[4] *= expfac
                h[4] += dto4 * (od[5] * h[3] + od[4] * h[2])
                h[4] *= expfac

        if self._tri:
            tilts()
        # tilts scale with the lengths when present and not themselves barostatted
        scale = (not self._tri and h[5] != 0.0, not self._tri and h[4] != 0.0,
                 not self._tri and h[3] != 0.0)  # scalexy, scalexz, scaleyz
        for i in range(3):
            expfac = math.exp(dto * od[i])
            lo[i] = (lo[i] - fp[i]) * expfac + fp[i]
            hi[i] = (hi[i] - fp[i]) * expfac + fp[i]
            if i == 1 and scale[0]:
                h[5] *= expfac
            if i == 2:
                if scale[1]:
                    h[4] *= expfac
                if scale[2]:
                    h[3] *= expfac
        if self._tri:
            tilts()
        if (abs(h[3]) > _TILTMAX * h[1] or abs(h[4]) > _TILTMAX * h[0]
                or abs(h[5]) > _TILTMAX * h[0]):
            raise CalculationFailed(
                "the NPT barostat tilted the cell by more than 1.5 box lengths in one step "
                "(LAMMPS: 'Fix npt has tilted box too far in one step - periodic cell is too "
                "far from equilibrium state'): start closer to equilibrium, or use a larger "
                "pressure_damping or a smaller dt")
        # Domain::set_global_box, lamda2x
        h[0], h[1], h[2] = hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]
        if triclinic:
            x[:, 0] = h[0] * s0 + h[5] * s1 + h[4] * s2 + lo[0]
            x[:, 1] = h[1] * s1 + h[3] * s2 + lo[1]
        else:
            x[:, 0] = h[0] * s0 + lo[0]
            x[:, 1] = h[1] * s1 + lo[1]
        x[:, 2] = h[2] * s2 + lo[2]
        cell[:] = ((h[0], 0.0, 0.0), (h[5], h[1], 0.0), (h[4], h[3], h[2]))

    @staticmethod
    def _flip(state: MDState) -> None:
        """``FixNH::pre_exchange``: a tilt beyond 0.6 box lengths becomes the equivalent one."""
        cell = state.cell_cc
        xprd, yprd = cell[0, 0], cell[1, 1]
        xtiltmax, ytiltmax = (0.5 + _DELTAFLIP) * xprd, (0.5 + _DELTAFLIP) * yprd
        yz, xz, xy = cell[2, 1], cell[2, 0], cell[1, 0]
        if yz < -ytiltmax:
            yz += yprd
            xz += xy
        elif yz >= ytiltmax:
            yz -= yprd
            xz -= xy
        if xz < -xtiltmax:
            xz += xprd
        elif xz >= xtiltmax:
            xz -= xprd
        if xy < -xtiltmax:
            xy += xprd
        elif xy >= xtiltmax:
            xy -= xprd
        cell[2, 1], cell[2, 0], cell[1, 0] = yz, xz, xy

    # -- the integrator interface --------------------------------------------------------
    def start(self, state: MDState) -> None:
        """``FixNH::setup``, unless the state already carries this integrator's variables.

        Raises:
            InputError: a cell that is not fully periodic or not in LAMMPS's restricted form,
                partial or inconsistent barostat variables, or a thermostat chain of another
                length.
        """
        if not all(state.pbc):
            raise InputError("NPT needs a cell periodic along all three vectors (pbc "
                             f"{state.pbc}): the barostat scales the periodic cell")
        c = state.cell_cc
        if c[0, 1] != 0.0 or c[0, 2] != 0.0 or c[1, 2] != 0.0 or not (np.diag(c) > 0).all():
            raise InputError(
                "NPT needs the cell in LAMMPS's restricted triclinic form, rows a = (lx, 0, 0), "
                "b = (xy, ly, 0), c = (xz, yz, lz) with lx, ly, lz > 0 (cell_cc[0, 1], "
                f"cell_cc[0, 2], cell_cc[1, 2] zero), got {c.tolist()}: rotate positions, "
                "velocities and cell with atomistic.lammps.frames.restricted_frame")
        self._virial = None
        var = state.variables
        self._nhc.start(state)
        if _carried(var, _NPT_KEYS, _NPT_KEYS[2:5], self.pchain, variables="NPT barostat",
                    chain="barostat chain", arg="pchain", part="barostat"):
            h = _box(c, var["npt_boxlo"], var["npt_boxhi"])
            if h[:3] != [float(c[0, 0]), float(c[1, 1]), float(c[2, 2])]:
                raise InputError("the state's cell is not the box its NPT variables describe "
                                 "(npt_boxhi - npt_boxlo != the cell's diagonal): was the cell "
                                 "changed? Remove the npt_* entries from state.variables to "
                                 "start the barostat afresh")
            return
        em = self._etap_mass()
        kt = KB * self.temperature
        etap_dot = [0.0] * self.pchain
        etap_dotdot = [0.0] * self.pchain
        for ich in range(1, self.pchain):
            etap_dotdot[ich] = (em[ich - 1] * etap_dot[ich - 1] * etap_dot[ich - 1]
                                - kt) / em[ich]
        lo = [0.0, 0.0, 0.0]
        hi = [float(c[0, 0]), float(c[1, 1]), float(c[2, 2])]
        var["npt_omega"] = [0.0] * 6
        var["npt_omega_dot"] = [0.0] * 6
        var["npt_etap"] = [0.0] * self.pchain
        var["npt_etap_dot"] = etap_dot
        var["npt_etap_dotdot"] = etap_dotdot
        var["npt_boxlo"] = lo
        var["npt_boxhi"] = hi
        var["npt_fixedpoint"] = [0.5 * (lo[i] + hi[i]) for i in range(3)]
        var["npt_vol0"] = hi[0] * hi[1] * hi[2]
        h = _box(c, lo, hi)
        var["npt_h0_inv"] = _box_inverse(h, self._tri or h[3] != 0.0 or h[4] != 0.0
                                         or h[5] != 0.0)

    def step(self, state: MDState, forces_nc: np.ndarray, compute: Callable):
        """One step of ``FixNH::initial_integrate``, forces, ``final_integrate``."""
        var = state.variables
        n = len(state)
        tdof = self._nhc._tdof(state)
        dtfm = _half_kick_factor(self.dt, state.masses_n)
        v, x = state.velocities_nc, state.positions_nc
        key = (id(state), state.step)
        if self._virial is None or self._virial[0] != key:
            virial = compute().virial_cc  # the virial at these positions (first step)
        else:
            virial = self._virial[1]
        # initial_integrate
        if self.pchain:
            self._chain_press_half(var, n)
        self._nhc._chain_half_step(state, var, tdof)
        h = _box(state.cell_cc, var["npt_boxlo"], var["npt_boxhi"])
        if self._iso:
            t, ke = self._nhc._t_current(state, tdof), None
        else:
            t, ke = 0.0, self._ke_tensor(state)
        p_current = self._p_current(state, h, virial, t, tdof, ke)
        mtk_term2 = self._omega_dot_half(var, p_current, h, var["nhc_t_current"], tdof, ke, n)
        self._v_press(state, var["npt_omega_dot"], mtk_term2)
        v += dtfm * forces_nc  # nve_v()
        self._remap(state, var)
        x += self.dt * v  # nve_x()
        self._remap(state, var)
        if self._tri or state.cell_cc[1, 0] != 0.0 or state.cell_cc[2, 0] != 0.0 \
                or state.cell_cc[2, 1] != 0.0:
            self._flip(state)
        result = compute()
        # final_integrate
        v += dtfm * result.forces_nc  # nve_v()
        self._v_press(state, var["npt_omega_dot"], mtk_term2)
        t_current = self._nhc._t_current(state, tdof)
        var["nhc_t_current"] = t_current
        ke = None if self._iso else self._ke_tensor(state)
        h = _box(state.cell_cc, var["npt_boxlo"], var["npt_boxhi"])
        p_current = self._p_current(state, h, result.virial_cc, t_current, tdof, ke)
        self._omega_dot_half(var, p_current, h, t_current, tdof, ke, n)
        self._nhc._chain_half_step(state, var, tdof)
        if self.pchain:
            self._chain_press_half(var, n)
        self._virial = ((id(state), state.step + 1), result.virial_cc.copy())
        return result

    def thermostat_energy(self, state: MDState) -> float:
        """The particles' chain energy alone (eV), as :meth:`NoseHooverChain.thermostat_energy`."""
        return self._nhc.thermostat_energy(state)

    def barostat_energy(self, state: MDState) -> float:
        """LAMMPS's ``FixNH::compute_scalar`` (the fix's ``f_ID``, eV): chains, ½ W ω̇², P ΔV.

        ``thermostat_energy + Σ_i (½ W_i ω̇_i² + P (V − V0) / 3) + Σ_tilts ½ W ω̇² + l kB T
        ηp₀ + ½ Qp₀ η̇p₀² + Σ_{k≥1} (kB T ηpₖ + ½ Qpₖ η̇pₖ²)`` with ``l`` the number of
        barostatted components (3 or 6); the thermostat's part alone before :meth:`start`.
        See the class notes for why :meth:`conserved` differs from it for ``iso``.
        """
        return self._extended_energy(state, lammps=True)

    def _extended_energy(self, state: MDState, *, lammps: bool) -> float:
        var = state.variables
        energy = self._nhc.thermostat_energy(state)
        if "npt_omega_dot" not in var:
            return energy
        n = len(state)
        kt = KB * self.temperature
        h = _box(state.cell_cc, var["npt_boxlo"], var["npt_boxhi"])
        volume = h[0] * h[1] * h[2]
        vol0 = var["npt_vol0"]
        od, om = var["npt_omega_dot"], self._omega_mass(n)
        p_hydro = self._p_hydro()
        lkt_press = 0.0
        for i in range(3):
            energy += 0.5 * od[i] * od[i] * om[i] + \
                p_hydro * (volume - vol0) / (self._pdim * NKTV2P)
            lkt_press += kt
        if self._tri:
            for i in range(3, 6):
                energy += 0.5 * od[i] * od[i] * om[i]
                lkt_press += kt
        if self._iso and not lammps:
            lkt_press = kt  # what nhc_press_integrate drives the chain towards
        if self.pchain:
            etap, etap_dot, em = var["npt_etap"], var["npt_etap_dot"], self._etap_mass()
            energy += lkt_press * etap[0] + 0.5 * em[0] * etap_dot[0] * etap_dot[0]
            for ich in range(1, self.pchain):
                energy += kt * etap[ich] + 0.5 * em[ich] * etap_dot[ich] * etap_dot[ich]
        if self._deviatoric:
            energy += self._strain_energy(h, self._sigma(var))
        return energy

    def conserved(self, state: MDState, potential: float, kinetic: float) -> float:
        """Potential + kinetic + extended-system energy (eV), conserved by the exact dynamics.

        :meth:`barostat_energy` for ``aniso`` and ``tri``; for ``iso`` the barostat chain's
        first position is weighed by ``kB T``, not LAMMPS's ``3 kB T`` (class notes).
        """
        return potential + kinetic + self._extended_energy(state, lammps=False)

    def _pressure_json(self):
        return self.pressure.tolist() if self._deviatoric else self.pressure

    def to_dict(self) -> dict:
        """A JSON description (see :func:`integrator_from_dict`)."""
        return {"name": self.name, "dt": self.dt, "temperature": self.temperature,
                "damping": self.damping, "pressure": self._pressure_json(),
                "pressure_damping": self.pressure_damping, "mode": self.mode,
                "chain": self.chain, "loops": self.loops, "pchain": self.pchain,
                "mtk": self.mtk}

    def __repr__(self) -> str:
        return (f"NoseHooverNPT(dt={self.dt!r}, temperature={self.temperature!r}, "
                f"damping={self.damping!r}, pressure={self._pressure_json()!r}, "
                f"pressure_damping={self.pressure_damping!r}, mode={self.mode!r}, "
                f"chain={self.chain!r}, loops={self.loops!r}, pchain={self.pchain!r}, "
                f"mtk={self.mtk!r})")


def integrator_from_dict(spec: dict):
    """The integrator a ``to_dict()`` description (e.g. ``MDState.integrator``) names.

    Raises:
        InputError: unknown name or missing parameters.
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise InputError(f"an integrator description is a dict with a 'name', got {spec!r}")
    kw = {k: v for k, v in spec.items() if k != "name"}
    kinds = {VelocityVerlet.name: VelocityVerlet, LangevinBAOAB.name: LangevinBAOAB,
             NoseHooverChain.name: NoseHooverChain, NoseHooverNPT.name: NoseHooverNPT}
    if spec["name"] not in kinds:
        raise InputError(f"unknown integrator {spec['name']!r} (known: {', '.join(kinds)})")
    try:
        return kinds[spec["name"]](**kw)
    except TypeError as exc:
        raise InputError(f"bad parameters for integrator {spec['name']!r}: {exc}") from exc
