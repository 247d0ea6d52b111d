"""What a molecular-dynamics run writes: the thermo log and extxyz trajectory frames.

The thermo log is a text table, one line per sample, with the columns LAMMPS users know
(``Step Temp PotEng KinEng TotEng Press``) plus ``Time`` (ps) and ``Econserve`` (the
integrator's conserved quantity, eV, LAMMPS's thermo keyword of that name). Pressure is in
GPa (LAMMPS ``metal`` prints bar: 1 GPa = 10⁴ bar); a comment line at the top says so.

Trajectory frames are extended XYZ (ASE's format, read by ``ase.io.read`` and OVITO):
species, positions (Å) and velocities (``velo``, Å/ps) per atom; cell, pbc, step, time (ps),
temperature (K) and energies (eV) per frame. The writer is a minimal one of our own (the
engine does not depend on the coupling layer's writer).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["ThermoLog", "write_extxyz_frame", "THERMO_COLUMNS"]

#: the log's columns, in order
THERMO_COLUMNS = ("Step", "Time", "Temp", "PotEng", "KinEng", "TotEng", "Econserve", "Press")


class _Sink:
    """A text destination: a path (opened for writing, closed by us) or an open stream."""

    def __init__(self, target) -> None:
        if isinstance(target, str | Path):
            self.file = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self.owned = True
        elif isinstance(target, io.TextIOBase) or hasattr(target, "write"):
            self.file = target
            self.owned = False
        else:
            from fe2qc.errors import InputError

            raise InputError(f"expected a path or an open text file, got {target!r}")

    def close(self) -> None:
        if self.owned:
            self.file.close()
        else:
            self.file.flush()


class ThermoLog:
    """A thermo log written line by line (flushed at each line, readable while a run goes on).

    Args:
        target: a path (created or overwritten) or an open text stream (appended to; a
            header is written at each run, as LAMMPS does).
    """

    def __init__(self, target) -> None:
        self._sink = _Sink(target)
        f = self._sink.file
        f.write("# fe2qc MD thermo: units metal (Time ps, Temp K, energies eV); Press in GPa\n")
        f.write(" ".join(f"{c:>14s}" if k else f"{c:>10s}"
                         for k, c in enumerate(THERMO_COLUMNS)) + "\n")
        f.flush()

    def write(self, step: int, time: float, temp: float, pot: float, kin: float, tot: float,
              conserved: float, press_gpa: float) -> None:
        """Write one line (energies in eV, pressure in GPa)."""
        vals = (time, temp, pot, kin, tot, conserved, press_gpa)
        self._sink.file.write(f"{step:10d} " + " ".join(f"{v:14.8g}" for v in vals) + "\n")
        self._sink.file.flush()

    def close(self) -> None:
        """Close the file (a stream given by the caller is flushed, not closed)."""
        self._sink.close()


def write_extxyz_frame(f, positions_nc: np.ndarray, velocities_nc: np.ndarray,
                       cell_cc: np.ndarray, pbc, symbols_n, info: dict) -> None:
    """Append one extended-XYZ frame to the open text file ``f``.

    Args:
        f: an open text file.
        positions_nc: positions (Å), written as they are (not wrapped).
        velocities_nc: velocities (Å/ps), the ``velo`` column.
        cell_cc: cell vectors as rows (Å).
        pbc: three booleans.
        symbols_n: a chemical symbol per atom.
        info: per-frame numbers (e.g. step, time), written as ``key=value``.
    """
    lattice = " ".join(repr(float(v)) for v in np.asarray(cell_cc).ravel())
    pbc_s = " ".join("T" if p else "F" for p in pbc)
    extra = " ".join(f"{k}={v!r}" for k, v in info.items())
    lines = [str(len(positions_nc)),
             f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:velo:R:3 pbc="{pbc_s}" '
             f"{extra}"]
    data = np.hstack([positions_nc, velocities_nc])
    lines += [f"{s} " + " ".join(f"{v:.17g}" for v in row) for s, row in zip(symbols_n, data,
                                                                             strict=True)]
    f.write("\n".join(lines) + "\n")
