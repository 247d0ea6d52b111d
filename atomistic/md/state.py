"""The dynamical state of a molecular-dynamics run, and its file (save/restore).

An :class:`MDState` is everything a run needs to continue: positions, velocities, masses,
cell, periodicity, types, step and time, the integrator's description and its dynamical
variables (e.g. the heat the Langevin thermostat removed), the state of the random-number
generator, and the positions the neighbour list was last built from. The last item makes a
restored run continue *bitwise* identically: the order in which a neighbour list sums its
pairs depends on the positions it was built from (see
:meth:`atomistic.calculator.Calculator.reset`), so :func:`atomistic.md.run.run_md` rebuilds
the list from those positions when it starts.

File format: one ``.npz`` (numpy, no pickle) holding the arrays and, under ``"meta"``, a JSON
string with the scalars (step, time, pbc, integrator, variables, random-number state). It is
written to a temporary file in the same folder and moved into place with ``os.replace``, so a
crash while saving never leaves a half-written state behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atomistic.structure import Configuration, check_coordinates
from fe2qc.checks import require_finite
from fe2qc.errors import InputError

__all__ = ["MDState", "FORMAT_VERSION", "rng_from_state"]

#: version of the state file layout
FORMAT_VERSION = 1

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _jsonable(obj):
    """Random-number states hold numpy arrays (MT19937's key): make them JSON lists."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _from_jsonable(obj):
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _from_jsonable(v) for k, v in obj.items()}
    return obj


def rng_from_state(state: dict) -> np.random.Generator:
    """A ``numpy.random.Generator`` continuing from ``bit_generator.state`` ``state``."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise InputError(f"unknown random-number generator {name!r} in the state (known: "
                         f"{', '.join(_BIT_GENERATORS)})")
    bg = getattr(np.random, name)()
    bg.state = state
    return np.random.Generator(bg)


@dataclass(eq=False)
class MDState:
    """Positions, velocities and everything else a molecular-dynamics run continues from.

    Attributes:
        positions_nc: positions (Å), shape (n, 3); not wrapped into the cell.
        velocities_nc: velocities (Å/ps), shape (n, 3).
        masses_n: masses (amu), shape (n,).
        cell_cc: cell vectors as rows (Å).
        pbc: periodicity along each cell vector.
        types_n: species index per atom (0-based).
        step: number of steps done.
        time: simulated time (ps).
        integrator: the integrator's description (``to_dict()``), set by the run.
        variables: the integrator's dynamical variables (floats), e.g. ``{"heat": ...}``.
        rng: the random-number generator the stochastic integrators draw from.
        neighbor_positions_nc: positions the neighbour list was last built from (None: build
            from the current positions).
        neighbor_cell_cc: the cell it was built with.
    """

    positions_nc: np.ndarray
    velocities_nc: np.ndarray
    masses_n: np.ndarray
    cell_cc: np.ndarray
    pbc: tuple[bool, bool, bool] = (True, True, True)
    types_n: np.ndarray | None = None
    step: int = 0
    time: float = 0.0
    integrator: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    neighbor_positions_nc: np.ndarray | None = None
    neighbor_cell_cc: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.positions_nc = np.ascontiguousarray(self.positions_nc, dtype=float)
        n = len(self.positions_nc)
        if self.positions_nc.shape != (n, 3):
            raise InputError(f"positions must have shape (n, 3), got {self.positions_nc.shape}")
        self.velocities_nc = np.ascontiguousarray(self.velocities_nc, dtype=float)
        if self.velocities_nc.shape != (n, 3):
            raise InputError(f"velocities must have shape ({n}, 3), got "
                             f"{self.velocities_nc.shape}")
        require_finite("velocities_nc", self.velocities_nc, hint="(velocities are in Å/ps)")
        self.masses_n = np.array(np.broadcast_to(np.asarray(self.masses_n, float), (n,)))
        require_finite("masses_n", self.masses_n)
        if n and not (self.masses_n > 0).all():
            bad = int(np.flatnonzero(~(self.masses_n > 0))[0])
            raise InputError(f"masses_n[{bad}] = {self.masses_n[bad]!r}: masses must be > 0 "
                             "(amu)")
        self.cell_cc = np.ascontiguousarray(self.cell_cc, dtype=float)
        if self.cell_cc.shape != (3, 3):
            raise InputError(f"cell must be a 3×3 array of row vectors, got {self.cell_cc.shape}")
        check_coordinates(self.positions_nc, self.cell_cc)
        self.pbc = tuple(bool(b) for b in np.broadcast_to(self.pbc, 3))
        self.types_n = np.zeros(n, np.int64) if self.types_n is None else \
            np.ascontiguousarray(self.types_n, dtype=np.int64)
        if self.types_n.shape != (n,):
            raise InputError(f"types must have one entry per atom ({n}), got {self.types_n.shape}")
        if not isinstance(self.rng, np.random.Generator):
            raise InputError(f"rng must be a numpy.random.Generator, got {type(self.rng)}")
        self.step = int(self.step)
        self.time = float(self.time)

    def __len__(self) -> int:
        return len(self.positions_nc)

    @classmethod
    def from_configuration(cls, config: Configuration, *, velocities_nc=None, masses_n=None,
                           seed=None) -> MDState:
        """A state at step 0 from a configuration (arrays are copied).

        Args:
            config: positions, cell, pbc, types; its masses and velocities are used unless
                given here.
            velocities_nc: velocities (Å/ps); default the configuration's, else zero.
            masses_n: masses (amu) per atom; default the configuration's.
            seed: seed of the state's random-number generator (``numpy.random.default_rng``).

        Raises:
            InputError: no masses given or known.
        """
        m = masses_n if masses_n is not None else config.masses_n
        if m is None:
            raise InputError("the state needs masses: give masses_n (amu), e.g. the "
                             "potential's masses[types_n]")
        v = velocities_nc if velocities_nc is not None else config.velocities_nc
        v = np.zeros((len(config), 3)) if v is None else np.array(v, dtype=float)
        return cls(config.positions_nc.copy(), v, np.array(m, dtype=float),
                   config.cell_cc.copy(), config.pbc, config.types_n.copy(),
                   rng=np.random.default_rng(seed))

    def fresh_copy(self, seed=None, *, keep_clock: bool = False) -> MDState:
        """A copy of the atoms and velocities that starts a new run.

        Arrays copied, a new random-number generator from ``seed``, no integrator variables
        and no neighbour-list reference; step and time copied with ``keep_clock``, else 0.
        """
        return MDState(self.positions_nc.copy(), self.velocities_nc.copy(), self.masses_n.copy(),
                       self.cell_cc.copy(), self.pbc, self.types_n.copy(),
                       step=self.step if keep_clock else 0,
                       time=self.time if keep_clock else 0.0, rng=np.random.default_rng(seed))

    def configuration(self) -> Configuration:
        """A :class:`Configuration` that *shares* this state's positions and velocities."""
        return Configuration(self.positions_nc, self.cell_cc, self.pbc, self.types_n,
                             self.masses_n, self.velocities_nc)

    # -- file ------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the state to ``path`` (``.npz``), atomically (temporary file + os.replace).

        Returns:
            The path written.
        """
        path = Path(path)
        meta = {
            "format": "fe2qc-md-state",
            "version": FORMAT_VERSION,
            "step": self.step,
            "time": self.time,
            "pbc": list(self.pbc),
            "integrator": self.integrator,
            "variables": self.variables,
            "rng": _jsonable(self.rng.bit_generator.state),
        }
        arrays = {
            "positions_nc": self.positions_nc,
            "velocities_nc": self.velocities_nc,
            "masses_n": self.masses_n,
            "cell_cc": self.cell_cc,
            "types_n": self.types_n,
            "meta": np.array(json.dumps(meta)),
        }
        if self.neighbor_positions_nc is not None:
            arrays["neighbor_positions_nc"] = self.neighbor_positions_nc
            arrays["neighbor_cell_cc"] = self.neighbor_cell_cc
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path) -> MDState:
        """Read a state written by :meth:`save`.

        Raises:
            InputError: the file is missing or is not an fe2qc MD state.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no MD state file at {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"]))
        # EOFError: an empty or cut file; NotImplementedError: a damaged zip header (an
        # unknown compression method)
        except (OSError, EOFError, ValueError, KeyError, NotImplementedError,
                zipfile.BadZipFile) as exc:
            raise InputError(f"{path} is not an MD state file ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != "fe2qc-md-state":
            raise InputError(f"{path} is not an fe2qc MD state file")
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(f"{path}: state format version {meta.get('version')} is not "
                             f"{FORMAT_VERSION}")
        try:
            return cls(data["positions_nc"], data["velocities_nc"], data["masses_n"],
                       data["cell_cc"], tuple(meta["pbc"]), data["types_n"],
                       step=meta["step"], time=meta["time"], integrator=meta["integrator"],
                       variables=meta["variables"],
                       rng=rng_from_state(_from_jsonable(meta["rng"])),
                       neighbor_positions_nc=data.get("neighbor_positions_nc"),
                       neighbor_cell_cc=data.get("neighbor_cell_cc"))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        # a missing entry, or one of the wrong kind: the file was damaged or edited
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError,
                IndexError) as exc:
            raise InputError(f"{path} is not a valid fe2qc MD state file: "
                             f"{type(exc).__name__}: {exc} (damaged or edited; save the state "
                             "again with MDState.save)") from None
