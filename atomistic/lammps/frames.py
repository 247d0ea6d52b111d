"""Our configurations in LAMMPS's box, and back.

LAMMPS wants a *restricted* triclinic box: ``a`` along x, ``b`` in the xy plane, ``c``
anywhere with ``c_z > 0``. We rotate the configuration into that frame with an orthogonal
``Q`` from a QR factorisation (``cell @ Q`` is lower triangular, ``x_L = x Q``), run, and
rotate back: ``f = f_L Q^T``, ``W = Q W_L Q^T`` and a fourth-order tensor as
``C_ijkl = Q_ia Q_jb Q_kc Q_ld C^L_abcd``. ``Q`` may be a reflection (left-handed input
cells); that is harmless for the energy. Tilt factors are reduced by lattice vectors (same
periodic lattice) to stay inside LAMMPS's limits.

Non-periodic directions (``pbc`` False) use LAMMPS boundary ``f`` with the cell vector
replaced by a vector perpendicular to the periodic ones, long enough to hold all atoms plus
``padding``; the periodic vectors come first in LAMMPS's box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomistic.structure import Configuration

__all__ = ["LammpsFrame", "lammps_box", "lammps_frame", "restricted_frame"]


def restricted_frame(cell_cc: np.ndarray):
    """Return ``(Q, cell_L)``: orthogonal Q with ``cell_L = cell @ Q`` lower triangular.

    ``cell_L`` rows are LAMMPS's ``a = (lx,0,0)``, ``b = (xy,ly,0)``, ``c = (xz,yz,lz)``
    with ``lx, ly, lz > 0``; for a left-handed cell ``Q`` is a reflection.
    """
    cell = np.asarray(cell_cc, float)
    Q, R = np.linalg.qr(cell.T)
    sign = np.where(np.diag(R) < 0, -1.0, 1.0)
    Q = Q * sign[None, :]
    cell_L = cell @ Q
    cell_L[0, 1:] = 0.0
    cell_L[1, 2] = 0.0
    return Q, cell_L


def lammps_box(config: Configuration, padding: float):
    """Return ``(cell, boundary, origin, n_periodic)`` for LAMMPS, in the input frame.

    The periodic cell vectors come first; each open direction gets a vector perpendicular to
    them spanning the atoms plus ``padding`` (Å) on both sides, and ``origin`` is the box's
    corner. ``boundary`` is LAMMPS's ``boundary`` argument (``p`` periodic, ``f`` open).
    """
    pbc = np.array(config.pbc)
    per = [k for k in range(3) if pbc[k]]
    x = config.positions_nc
    vecs = [config.cell_cc[k] for k in per]
    # orthonormal directions perpendicular to the periodic vectors
    if per:
        q, _ = np.linalg.qr(np.array(vecs).T, mode="complete")
        free_dirs = [q[:, k] for k in range(len(per), 3)]
    else:
        free_dirs = list(np.eye(3))
    origin = np.zeros(3)
    for n in free_dirs:
        t = x @ n if len(x) else np.zeros(1)
        lo, hi = t.min() - padding, t.max() + padding
        vecs.append(n * (hi - lo))
        origin += n * lo
    cell = np.array(vecs)
    bnd = " ".join(["p"] * len(per) + ["f"] * (3 - len(per)))
    return cell, bnd, origin, len(per)


@dataclass
class LammpsFrame:
    """A configuration in LAMMPS's restricted triclinic frame.

    Attributes:
        Q: orthogonal 3×3 map to LAMMPS's frame: ``x_L = (x - origin) Q``; back with ``Q^T``.
        cell_L: LAMMPS's box vectors as rows (lower triangular, tilts reduced), Å.
        positions_L: positions in that box (wrapped along periodic directions), Å.
        boundary: LAMMPS's ``boundary`` argument, e.g. ``"p p f"``.
        n_periodic: number of periodic directions (the first ones of the box).
        origin: corner of the box in the input frame (zero when fully periodic), Å.
    """

    Q: np.ndarray
    cell_L: np.ndarray
    positions_L: np.ndarray
    boundary: str
    n_periodic: int
    origin: np.ndarray

    @property
    def tilted(self) -> bool:
        """Whether the box needs LAMMPS's ``prism`` region (any non-zero tilt factor)."""
        return not (self.cell_L[1, 0] == 0.0 and self.cell_L[2, 0] == 0.0
                    and self.cell_L[2, 1] == 0.0)


def lammps_frame(config: Configuration, padding: float = 10.0) -> LammpsFrame:
    """Map ``config`` into LAMMPS's frame (see the module docstring)."""
    cell_in, bnd, origin, nper = lammps_box(config, padding)
    Q, cell_L = restricted_frame(cell_in)
    # reduce tilts into LAMMPS's limits (only periodic vectors can have tilts here)
    a, b, c = cell_L
    c = c - np.round(c[1] / b[1]) * b
    c = c - np.round(c[0] / a[0]) * a
    b = b - np.round(b[0] / a[0]) * a
    cell_L = np.array([a, b, c])
    x_L = (config.positions_nc - origin) @ Q
    s = x_L @ np.linalg.inv(cell_L)
    s[:, :nper] -= np.floor(s[:, :nper])
    x_L = s @ cell_L
    return LammpsFrame(Q, cell_L, x_L, bnd, nper, origin)
