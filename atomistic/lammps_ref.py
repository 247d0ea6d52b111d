"""LAMMPS as an independent reference: energy, forces, virial, site energies, Born matrix.

One function, :func:`run_lammps`, runs LAMMPS (``units metal``, ``atom_style atomic``) with
``run 0`` on a :class:`~atomistic.structure.Configuration`, for any pair commands. It is
used by the tests to check our own kernels; nothing else in fe2qc depends on it.

Frames. LAMMPS wants a *restricted* triclinic box: ``a`` along x, ``b`` in the xy plane,
``c`` anywhere with ``c_z > 0``. We rotate the configuration into that frame with an
orthogonal ``Q`` from a QR factorisation (``cell @ Q`` is lower triangular, ``x_L = x Q``),
run, and rotate back: ``f = f_L Q^T``, ``W = Q W_L Q^T`` and the Born tensor as a full
fourth-order tensor ``C_ijkl = Q_ia Q_jb Q_kc Q_ld C^L_abcd``. ``Q`` may be a reflection
(left-handed input cells); that is harmless for the energy. Tilt factors are reduced
by lattice vectors (same periodic lattice) to stay inside LAMMPS's limits.

Non-periodic directions (``pbc`` False) use LAMMPS boundary ``f`` with the cell vector
replaced by a vector perpendicular to the periodic ones, long enough to hold all atoms
plus ``padding``; the periodic vectors come first in LAMMPS's box.
"""

from __future__ import annotations

import numpy as np

from atomistic.structure import Configuration
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["run_lammps", "restricted_frame", "voigt_to_tensor", "tensor_to_voigt"]

#: Voigt order used by LAMMPS's compute born/matrix (and by us): xx yy zz yz xz xy
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: the 21 outputs of compute born/matrix: (row, column) of the 6x6 Voigt matrix
_BORN21 = ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (0, 1), (0, 2), (0, 3), (0, 4),
           (0, 5), (1, 2), (1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5), (3, 4), (3, 5),
           (4, 5))


def voigt_to_tensor(C_vv: np.ndarray) -> np.ndarray:
    """6x6 Voigt matrix (order xx yy zz yz xz xy) -> 3x3x3x3 tensor with minor symmetries."""
    C = np.zeros((3, 3, 3, 3))
    for I, (a, b) in enumerate(_VOIGT):
        for J, (c, d) in enumerate(_VOIGT):
            for (i, j) in {(a, b), (b, a)}:
                for (k, l) in {(c, d), (d, c)}:
                    C[i, j, k, l] = C_vv[I, J]
    return C


def tensor_to_voigt(C: np.ndarray) -> np.ndarray:
    """3x3x3x3 tensor -> 6x6 Voigt matrix (order xx yy zz yz xz xy)."""
    return np.array([[C[a, b, c, d] for (c, d) in _VOIGT] for (a, b) in _VOIGT])


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


def _lammps_box(config: Configuration, padding: float):
    """Cell for LAMMPS (periodic vectors first), boundary string and origin (input frame)."""
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


def run_lammps(config: Configuration, commands: list[str], *, masses=None, born=None,
               born_delta: float = 1e-5, ntypes: int | None = None, padding: float = 10.0,
               comm=None) -> dict:
    """Evaluate ``config`` with LAMMPS (``run 0``) and return its results in the input frame.

    Args:
        config: the configuration; ``types_n`` (0-based) become LAMMPS types 1, 2, ...
        commands: the interaction, e.g. ``["pair_style eam", "pair_coeff 1 1 Cu_u3.eam"]``
            (:meth:`atomistic.potentials.eam.EAM.lammps_commands`).
        masses: mass (amu) per type; sets ``mass`` for each type (pair_coeff of eam styles
            overrides them). Default 1.0 each.
        born: None, ``"numdiff"`` or ``"analytic"``.
            ``"numdiff"`` (``compute born/matrix numdiff born_delta vir``): central
            differences of the virial under strains ±``born_delta`` plus LAMMPS's virial
            add-on terms; works with any pair style (EAM included), error ~ delta², and was
            checked to equal the textbook Born term ``sum_p (phi'' - phi'/r) d d d d / r²``
            to ~1e-8 on stressed triclinic LJ crystals. **Use this one as the reference.**
            ``"analytic"`` (``compute born/matrix``): the pair style's ``born_matrix()``;
            only some pair styles have it (lj/cut, harmonic/cut, ...; not eam or morse),
            and with the 22Jul2025 wheel it returns ``sum_p (phi'' - 2 phi'/r) d d d d / r²``
            (measured on dimers of lj/cut and harmonic/cut, where numdiff gives the
            ``- phi'/r`` textbook value), so it differs from numdiff wherever phi' != 0.
        born_delta: strain step for ``born="numdiff"``.
        ntypes: number of atom types (default ``len(masses)`` or ``max(types_n) + 1``).
        padding: empty space (Å) around the atoms along non-periodic directions.
        comm: MPI communicator for LAMMPS (default ``MPI.COMM_SELF``, so this works on every
            rank of an ``mpirun`` job without coordination).

    Returns:
        dict with
        ``stress_cc`` (Cauchy stress, eV/Å³, virial and kinetic parts: ``-`` LAMMPS's
        pressure tensor with ``thermo_temp``; velocities are taken from the configuration),
        ``energy`` (eV), ``energies_n`` (LAMMPS ``pe/atom``, eV), ``forces_nc`` (eV/Å),
        ``virial_cc`` (eV; LAMMPS's virial ``W_ab = sum_i x_ia f_ib`` = pressure tensor x
        volume / nktv2p from ``compute pressure NULL virial``; positive in compression),
        ``volume`` (Å³, of LAMMPS's box; for open directions that includes the padding),
        ``Q`` (rotation used), and with ``born``:
        ``born_energy_vv``: compute born/matrix as a symmetric 6x6 matrix (rotated to the
        input frame), in **energy units**
        (eV), i.e. ``d²U/dε_I dε_J`` *not* divided by volume. LAMMPS outputs 21 numbers in the
        order C11 C22 C33 C44 C55 C66 C12 C13 C14 C15 C16 C23 C24 C25 C26 C34 C35 C36 C45 C46
        C56, Voigt indices 1..6 = xx yy zz yz xz xy; shear entries are derivatives with
        respect to engineering shear strain (``γ_yz = 2 ε_yz``), so ``C44 = C_yzyz`` of the
        fourth-order tensor. It is the Born (affine, unrelaxed) term only. LAMMPS's numdiff
        variant multiplies its pressure differences by ``volume/nktv2p`` internally, so
        both variants come out in eV.
        ``born_vv``: the same divided by ``volume`` (eV/Å³), rotated to the input frame;
        ``born_ijkl``: the full tensor (eV/Å³) in the input frame.
    """
    from fe2qc.mpi import lammps, mpi

    if born not in (None, "analytic", "numdiff"):
        raise InputError(f"born must be None, 'analytic' or 'numdiff', got {born!r}")
    lmp_mod = lammps()
    if comm is None:
        comm = mpi().COMM_SELF
    n = len(config)
    types = np.asarray(config.types_n, np.int64)
    if ntypes is None:
        ntypes = len(masses) if masses is not None else int(types.max(initial=0)) + 1
    if n and (types.min() < 0 or types.max() >= ntypes):
        raise InputError(f"types_n must lie in 0..{ntypes - 1}")
    masses = [1.0] * ntypes if masses is None else [float(m) for m in masses]

    cell_in, bnd, origin, nper = _lammps_box(config, padding)
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

    lmp = lmp_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], comm=comm)
    try:
        cmd = lmp.command
        cmd("units metal")
        cmd("atom_style atomic")
        cmd("atom_modify map array")
        cmd(f"boundary {bnd}")
        lx, ly, lz = (float(v) for v in (cell_L[0, 0], cell_L[1, 1], cell_L[2, 2]))
        xy, xz, yz = (float(v) for v in (cell_L[1, 0], cell_L[2, 0], cell_L[2, 1]))
        if xy == 0.0 and xz == 0.0 and yz == 0.0:
            cmd(f"region box block 0 {lx!r} 0 {ly!r} 0 {lz!r} units box")
        else:
            cmd(f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box")
        cmd(f"create_box {ntypes} box")
        for t, m in enumerate(masses):
            cmd(f"mass {t + 1} {m!r}")
        img = lmp.encode_image_flags(0, 0, 0)
        v_L = None
        if config.velocities_nc is not None:
            v_L = (config.velocities_nc @ Q).ravel().tolist()
        created = lmp.create_atoms(n, list(range(1, n + 1)), (types + 1).tolist(),
                                   x_L.ravel().tolist(), v=v_L, image=[img] * n)
        if created != n:
            raise CalculationFailed(f"LAMMPS created {created} of {n} atoms (atoms outside "
                                    f"the box?)")
        for c_ in commands:
            cmd(c_)
        cmd("neighbor 1.0 bin")
        cmd("compute peatom all pe/atom")
        cmd("compute sumpe all reduce sum c_peatom")
        cmd("compute vir all pressure NULL virial")
        cmd("compute ptot all pressure thermo_temp")  # virial + kinetic (sum m v v)
        thermo = "thermo_style custom step pe c_sumpe c_vir[1]"
        if born == "analytic":
            cmd("compute born all born/matrix")
        elif born == "numdiff":
            cmd(f"compute born all born/matrix numdiff {born_delta!r} vir")
        if born:
            thermo += " c_born[1]"
        cmd(thermo)
        cmd("thermo_modify norm no")
        cmd("run 0 post no")

        LMP_STYLE_GLOBAL, LMP_STYLE_ATOM = 0, 1
        LMP_TYPE_VECTOR = 1
        energy = float(lmp.get_thermo("pe"))
        ids = np.array(lmp.numpy.extract_atom("id")[:n], dtype=np.int64) - 1
        f_L = np.empty((n, 3))
        f_L[ids] = lmp.numpy.extract_atom("f")[:n]
        e_n = np.empty(n)
        e_n[ids] = lmp.numpy.extract_compute("peatom", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:n]
        p6 = np.array(lmp.numpy.extract_compute("vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
        nktv2p = float(lmp.extract_global("nktv2p"))
        volume = float(lx * ly * lz)
        pxx, pyy, pzz, pxy, pxz, pyz = p6
        W_L = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]]) * volume / nktv2p
        pt = np.array(lmp.numpy.extract_compute("ptot", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
        P_L = np.array([[pt[0], pt[3], pt[4]], [pt[3], pt[1], pt[5]], [pt[4], pt[5], pt[2]]])
        out = {
            "stress_cc": -(Q @ P_L @ Q.T) / nktv2p,
            "energy": energy,
            "energies_n": e_n,
            "forces_nc": f_L @ Q.T,
            "virial_cc": Q @ W_L @ Q.T,
            "volume": volume,
            "Q": Q,
        }
        if born:
            b21 = np.array(lmp.numpy.extract_compute("born", LMP_STYLE_GLOBAL,
                                                     LMP_TYPE_VECTOR))
            B = np.zeros((6, 6))
            for v, (I, J) in zip(b21, _BORN21, strict=True):
                B[I, J] = B[J, I] = v
            C = np.einsum("ia,jb,kc,ld,abcd->ijkl", Q, Q, Q, Q, voigt_to_tensor(B))
            out["born_energy_vv"] = tensor_to_voigt(C)
            out["born_ijkl"] = C / volume
            out["born_vv"] = out["born_energy_vv"] / volume
        return out
    finally:
        lmp.close()
