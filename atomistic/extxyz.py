"""Atoms as extended XYZ (ASE's format, read by OVITO and ``ase.io.read``): one writer.

:func:`write_extxyz` writes one frame: species, positions and any per-atom arrays (e.g.
displacements, velocities, stresses), the cell, pbc and per-frame values. It is used by the
molecular dynamics (:mod:`atomistic.md`) and by the quasicontinuum's outputs
(:mod:`coupling.qc`).
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import InputError

__all__ = ["write_extxyz"]


def write_extxyz(path, positions_n3, *, cell, pbc, arrays=None, info=None, symbols="X",
                 append=False, origin=None) -> None:
    """Write one frame of atoms as extended XYZ (ASE), readable by OVITO.

    The extended XYZ format (ASE's reader and writer) has no cell origin: the cell spans
    ``origin + s @ cell`` with ``origin = 0``. Positions given in a frame whose cell corner is
    elsewhere (e.g. centred on a crack tip) are therefore written shifted, ``x - origin``, so
    that they lie inside the cell, and ``origin`` is stored in the frame's info (key
    ``frame_origin``, three floats, Å): add it back to get the positions in the original frame.
    Along a non-periodic axis every written atom must lie inside the cell.

    Args:
        path: output file, or an open text file (the frame is written to it; ``append`` is
            then ignored).
        positions_n3: (n, 3) positions (Å).
        cell: (3, 3) cell vectors as rows (Å).
        pbc: three booleans.
        arrays: per-atom arrays, each (n,) or (n, k) (e.g. displacements, energies, masks).
        info: per-frame scalars/strings (e.g. step, time, load).
        symbols: chemical symbol(s), a string for all atoms or a list of n; ``"X"`` (ASE's
            and OVITO's dummy species) when the potential names no element.
        append: add a frame to an existing file instead of overwriting it.
        origin: (3,) corner of the cell in the frame of ``positions_n3`` (Å); default 0.
    """
    import ase
    import ase.io

    R = np.asarray(positions_n3, float)
    if R.ndim != 2 or R.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {R.shape}")
    if not np.isfinite(R).all():
        bad = int(np.flatnonzero(~np.isfinite(R).all(axis=1))[0])
        raise InputError(f"position of atom {bad} is not finite ({R[bad].tolist()})")
    n = len(R)
    C = np.asarray(cell, float)
    if C.shape != (3, 3) or not np.isfinite(C).all() or abs(np.linalg.det(C)) < 1e-12:
        raise InputError(f"cell must be three finite, independent vectors (3, 3), got {C!r}")
    pbc = tuple(bool(p) for p in pbc)
    o = np.zeros(3) if origin is None else np.asarray(origin, float).reshape(-1)
    if o.shape != (3,) or not np.isfinite(o).all():
        raise InputError(f"origin must be three finite numbers (Å), got {origin!r}")
    R = R - o
    frac = R @ np.linalg.inv(C)
    for k in range(3):
        out = np.flatnonzero((frac[:, k] < -1e-9) | (frac[:, k] > 1 + 1e-9))
        if not pbc[k] and len(out):
            i = int(out[0])
            raise InputError(
                f"atom {i} at {(R[i] + o).tolist()} lies outside the cell along the "
                f"non-periodic axis {k} ({len(out)} atoms do): give the cell's corner as "
                f"origin= or enlarge the cell")
    if isinstance(symbols, str):
        symbols = [symbols] * n
    atoms = ase.Atoms(symbols=symbols, positions=R, cell=C, pbc=pbc)
    for key, val in (arrays or {}).items():
        v = np.asarray(val)
        if v.shape[:1] != (n,):
            raise InputError(f"per-atom array {key!r} must have {n} rows, got shape {v.shape}")
        if v.dtype == bool:
            v = v.astype(np.int8)
        atoms.arrays[key] = v
    atoms.info.update(info or {})
    if origin is not None:
        atoms.info["frame_origin"] = o
    if hasattr(path, "write"):  # an open text file: add the frame where it stands
        ase.io.write(path, atoms, format="extxyz")
    else:
        ase.io.write(str(path), atoms, format="extxyz", append=append)
