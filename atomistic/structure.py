"""An atomic configuration: positions, a (possibly triclinic) cell, periodicity, types."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fe2qc.checks import MAX_COORDINATE, MAX_F_ENTRY, require_finite
from fe2qc.errors import InputError

__all__ = ["Configuration", "perpendicular_widths", "check_coordinates", "check_repetitions"]


def check_coordinates(positions_nc: np.ndarray, cell_cc: np.ndarray) -> None:
    """Refuse non-finite or huge positions and cell vectors with an :class:`InputError`.

    NaN/inf or values beyond :data:`fe2qc.checks.MAX_COORDINATE`; the error names the first
    offending entry.

    Called wherever positions enter the engine (``Configuration``, ``NeighborList.build`` and
    ``update``, hence every ``Calculator`` method), since arrays can be changed in place after
    a configuration was built.
    """
    hint = "(positions and cell vectors are in Å)"
    require_finite("positions_nc", positions_nc, bound=MAX_COORDINATE, unit=" Å", hint=hint)
    require_finite("cell_cc", cell_cc, bound=MAX_COORDINATE, unit=" Å", hint=hint)


def check_repetitions(size) -> tuple[int, int, int]:
    """Three repetition counts, integers >= 1 (an int is used along all three).

    Raises:
        InputError: naming ``size`` when the counts are not integers >= 1.
    """
    try:
        s = np.broadcast_to(np.asarray(size, dtype=float), 3)
    except (TypeError, ValueError):
        raise InputError(f"size must be three integers >= 1, got {size!r}") from None
    require_finite("size", s)
    if not (np.all(s == np.round(s)) and np.all(s >= 1)):
        raise InputError(f"size must be three integers >= 1, got {size!r}")
    return tuple(int(v) for v in s)


def perpendicular_widths(cell_cc: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell spanned by the rows of ``cell_cc``."""
    cell = np.asarray(cell_cc, dtype=float)
    vol = abs(np.linalg.det(cell))
    return np.array(
        [vol / np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3])) for a in range(3)]
    )


@dataclass
class Configuration:
    """Atoms in a cell.

    Attributes:
        positions_nc: Cartesian positions (Å), shape (n, 3).
        cell_cc: cell vectors as rows (Å), shape (3, 3), like ASE and LAMMPS.
            Along non-periodic directions the cell only sets the box for output.
        pbc: periodicity along each cell vector.
        types_n: integer species index per atom (0-based, indexes the potential's elements).
        masses_n: masses (amu), optional (only kinetic stress and dynamics need them).
        velocities_nc: velocities (Å/ps), optional.
    """

    positions_nc: np.ndarray
    cell_cc: np.ndarray
    pbc: tuple[bool, bool, bool] = (True, True, True)
    types_n: np.ndarray | None = None
    masses_n: np.ndarray | None = None
    velocities_nc: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.positions_nc = np.ascontiguousarray(self.positions_nc, dtype=float)
        self.cell_cc = np.ascontiguousarray(self.cell_cc, dtype=float)
        self.pbc = tuple(bool(b) for b in np.broadcast_to(self.pbc, 3))
        if self.positions_nc.ndim != 2 or self.positions_nc.shape[1] != 3:
            raise InputError(f"positions must have shape (n, 3), got {self.positions_nc.shape}")
        if self.cell_cc.shape != (3, 3):
            raise InputError(f"cell must be a 3×3 array of row vectors, got {self.cell_cc.shape}")
        n = len(self.positions_nc)
        if self.types_n is None:
            self.types_n = np.zeros(n, dtype=np.int64)
        self.types_n = np.ascontiguousarray(self.types_n, dtype=np.int64)
        if self.types_n.shape != (n,):
            raise InputError(f"types must have one entry per atom ({n}), got {self.types_n.shape}")
        check_coordinates(self.positions_nc, self.cell_cc)
        if any(self.pbc) and abs(np.linalg.det(self.cell_cc)) < 1e-12:
            raise InputError(
                "the periodic cell has zero volume (det = 0): the cell vectors are not independent"
            )
        if self.masses_n is not None:
            self.masses_n = np.broadcast_to(np.asarray(self.masses_n, float), (n,)).copy()
            require_finite("masses_n", self.masses_n)
            if len(self.masses_n) and not (self.masses_n > 0).all():
                bad = int(np.flatnonzero(~(self.masses_n > 0))[0])
                raise InputError(f"masses_n[{bad}] = {self.masses_n[bad]!r}: masses must be > 0 "
                                 "(amu)")
        if self.velocities_nc is not None:
            self.velocities_nc = np.asarray(self.velocities_nc, float).reshape(n, 3)
            require_finite("velocities_nc", self.velocities_nc)

    def __len__(self) -> int:
        return len(self.positions_nc)

    @property
    def volume(self) -> float:
        """Cell volume (Å³)."""
        return float(abs(np.linalg.det(self.cell_cc)))

    def copy(self) -> Configuration:
        """A deep copy."""
        return Configuration(
            self.positions_nc.copy(),
            self.cell_cc.copy(),
            self.pbc,
            self.types_n.copy(),
            None if self.masses_n is None else self.masses_n.copy(),
            None if self.velocities_nc is None else self.velocities_nc.copy(),
            dict(self.info),
        )

    def deformed(self, F_cc: np.ndarray) -> Configuration:
        """Return a copy mapped affinely by F: x -> F x, cell rows -> F a."""
        F = np.asarray(F_cc, dtype=float)
        if F.shape != (3, 3):
            raise InputError(f"F must be a 3×3 array, got shape {F.shape}")
        require_finite("F", F, bound=MAX_F_ENTRY)
        det = np.linalg.det(F)
        if det <= 0:
            raise InputError(f"det F = {det:.6g} <= 0: F must preserve orientation and volume > 0")
        out = self.copy()
        out.positions_nc = self.positions_nc @ F.T
        out.cell_cc = self.cell_cc @ F.T
        return out

    def repeat(self, reps: tuple[int, int, int]) -> Configuration:
        """A supercell repeated ``reps`` times along the cell vectors."""
        reps = check_repetitions(reps)
        axes = [np.arange(r) for r in reps]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        shifts = grid @ self.cell_cc
        pos = (self.positions_nc[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        rep = len(grid)
        return Configuration(
            pos,
            self.cell_cc * np.array(reps)[:, None],
            self.pbc,
            np.tile(self.types_n, rep),
            None if self.masses_n is None else np.tile(self.masses_n, rep),
            None if self.velocities_nc is None else np.tile(self.velocities_nc, (rep, 1)),
            dict(self.info),
        )
