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

:func:`lammps_create` builds that box and its atoms in a running LAMMPS instance (``units
metal``, ``atom_style atomic``): the one set-up both the reference runs
(:func:`atomistic.lammps.reference.run_lammps`) and the LAMMPS MD engine
(:class:`atomistic.lammps.md.LammpsEngine`) use. It drives the instance it is given and
never imports LAMMPS itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomistic.structure import Configuration
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["LammpsFrame", "lammps_box", "lammps_create", "lammps_frame", "restricted_frame"]


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


def lammps_create(lmp, config: Configuration, masses, *, padding: float = 10.0) -> LammpsFrame:
    """Create the box and atoms of ``config`` in the LAMMPS instance ``lmp``; return the frame.

    Issues ``units metal``, ``atom_style atomic``, ``atom_modify map array`` (atoms are found
    by id, and :meth:`lammps.lammps.gather_atoms` works), ``boundary``, the box (a ``block``
    region, or a ``prism`` when :attr:`LammpsFrame.tilted`), ``create_box`` with one atom
    type per entry of ``masses`` and a ``mass`` command for each, then creates the atoms:
    ids ``1..n`` in the configuration's order, types ``types_n + 1``, positions in LAMMPS's
    frame (:func:`lammps_frame`), velocities ``velocities_nc @ Q`` when the configuration has
    them, image flags zero. The interaction (``pair_style``, ...) is the caller's.

    Args:
        lmp: a ``lammps.lammps`` instance on which nothing has been defined yet.
        config: the configuration; ``types_n`` (0-based) must lie in ``0..len(masses) - 1``.
        masses: mass (amu) per atom type.
        padding: empty space (Å) around the atoms along non-periodic directions.

    Returns:
        The :class:`LammpsFrame` that maps LAMMPS's results back to the input frame.

    Raises:
        InputError: a type outside ``0..len(masses) - 1``.
        CalculationFailed: LAMMPS created fewer atoms than given (atoms outside the box).
    """
    masses = [float(m) for m in masses]
    ntypes = len(masses)
    n = len(config)
    types = np.asarray(config.types_n, np.int64)
    if n and (types.min() < 0 or types.max() >= ntypes):
        raise InputError(f"types_n must lie in 0..{ntypes - 1}")
    frame = lammps_frame(config, padding)
    cell_L = frame.cell_L
    cmd = lmp.command
    cmd("units metal")
    cmd("atom_style atomic")
    cmd("atom_modify map array")
    cmd(f"boundary {frame.boundary}")
    lx, ly, lz = (float(v) for v in (cell_L[0, 0], cell_L[1, 1], cell_L[2, 2]))
    xy, xz, yz = (float(v) for v in (cell_L[1, 0], cell_L[2, 0], cell_L[2, 1]))
    if not frame.tilted:
        cmd(f"region box block 0 {lx!r} 0 {ly!r} 0 {lz!r} units box")
    else:
        cmd(f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box")
    cmd(f"create_box {ntypes} box")
    for t, m in enumerate(masses):
        cmd(f"mass {t + 1} {m!r}")
    img = lmp.encode_image_flags(0, 0, 0)
    v_L = None
    if config.velocities_nc is not None:
        v_L = (config.velocities_nc @ frame.Q).ravel().tolist()
    created = lmp.create_atoms(n, list(range(1, n + 1)), (types + 1).tolist(),
                               frame.positions_L.ravel().tolist(), v=v_L, image=[img] * n)
    if created != n:
        raise CalculationFailed(f"LAMMPS created {created} of {n} atoms (atoms outside "
                                f"the box?)")
    return frame
