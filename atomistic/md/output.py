"""What a molecular-dynamics run writes: the thermo log and extxyz trajectory frames.

The thermo log is a text table, one line per sample, with the columns LAMMPS users know
(``Step Temp PotEng KinEng TotEng Press``) plus ``Time`` (ps) and ``Econserve`` (the
integrator's conserved quantity, eV, LAMMPS's thermo keyword of that name). Pressure is in
GPa (LAMMPS ``metal`` prints bar: 1 GPa = 10⁴ bar); a comment line at the top says so.

Trajectory frames are extended XYZ (:func:`atomistic.extxyz.write_extxyz`, read by
``ase.io.read`` and OVITO): species, positions (Å) and velocities (``velo``, Å/ps) per atom;
cell, pbc, step, time (ps), temperature (K) and energies (eV) per frame; ASE's format
writes 8 decimals (positions to 1e-8 Å): the exact state for a restart is
:meth:`atomistic.md.state.MDState.save`'s file.
"""

from __future__ import annotations

import io
from pathlib import Path

__all__ = ["ThermoLog", "THERMO_COLUMNS", "TextSink"]

#: the log's columns, in order
THERMO_COLUMNS = ("Step", "Time", "Temp", "PotEng", "KinEng", "TotEng", "Econserve", "Press")


class TextSink:
    """A text destination: a path (opened for writing, closed by us) or an open stream.

    ``file`` is what to write to; :meth:`close` closes a file we opened and flushes a stream
    the caller gave (the thermo log and the trajectory of both MD engines use it).
    """

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
        """Close the file we opened, or flush the caller's stream."""
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
        self._sink = TextSink(target)
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
