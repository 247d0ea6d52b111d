"""Reference runs: LAMMPS evaluates what our kernels compute, for the tests to compare.

:func:`run_lammps` runs LAMMPS (``units metal``, ``atom_style atomic``) with ``run 0`` on a
:class:`~atomistic.structure.Configuration`, for any pair commands, and returns energy, site
energies, forces, virial, stress and optionally the Born matrix in the input frame (see
:mod:`atomistic.lammps.frames`). :func:`lammps_cubic_elastic` measures a0, E_coh and the
cubic elastic constants the way LAMMPS's ``examples/ELASTIC`` does. Nothing in fe2qc's
numerics depends on them; LAMMPS is loaded only when one of them runs.
"""

from __future__ import annotations

import numpy as np

from atomistic.lammps.frames import lammps_create
from atomistic.structure import Configuration
from fe2qc.errors import InputError
from fe2qc.tensors import from_voigt_stiffness, rotate4, sym, to_voigt_stiffness
from fe2qc.units import EV_PER_A3_IN_GPA

__all__ = ["run_lammps", "lammps_cubic_elastic", "lammps_born_tensor"]

#: the 21 outputs of compute born/matrix: (row, column) of the 6x6 Voigt matrix
_BORN21 = ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (0, 1), (0, 2), (0, 3), (0, 4),
           (0, 5), (1, 2), (1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5), (3, 4), (3, 5),
           (4, 5))


def lammps_born_tensor(b21, Q: np.ndarray) -> np.ndarray:
    """The Born tensor of ``compute born/matrix``'s 21 outputs, in the input frame.

    Args:
        b21: the compute's global vector (LAMMPS's frame, energy units: ``V ∂²E/∂η²``, eV),
            in LAMMPS's order C11 C22 C33 C44 C55 C66 C12 C13 ... C56 (``_BORN21``).
        Q: the rotation of :class:`~atomistic.lammps.frames.LammpsFrame` (``x_L = x Q``).

    Returns:
        The fourth-order tensor ``C_ijkl = Q_ia Q_jb Q_kc Q_ld C^L_abcd`` (eV; divide by the
        volume for eV/Å³), shape (3, 3, 3, 3).
    """
    b21 = np.asarray(b21, float)
    if b21.shape != (21,):
        raise InputError(f"compute born/matrix gives 21 numbers, got shape {b21.shape}")
    B = np.zeros((6, 6))
    for v, (I, J) in zip(b21, _BORN21, strict=True):
        B[I, J] = B[J, I] = v
    return rotate4(from_voigt_stiffness(B), Q)


def run_lammps(config: Configuration, commands: list[str], *, masses=None, born=None,
               born_delta: float = 1e-5, ntypes: int | None = None, padding: float = 10.0,
               comm=None) -> dict:
    """Evaluate ``config`` with LAMMPS (``run 0``) and return its results in the input frame.

    Args:
        config: the configuration; ``types_n`` (0-based) become LAMMPS types 1, 2, ...
        commands: the interaction, e.g. ``["pair_style eam", "pair_coeff 1 1 Cu_u3.eam"]``
            (a potential's ``lammps_commands()``).
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
        ``atom_virials_ncc`` (eV, per atom: ``-`` LAMMPS's ``stress/atom NULL virial`` /
        nktv2p, summing to ``virial_cc``),
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
    types = np.asarray(config.types_n, np.int64)
    if ntypes is None:
        ntypes = len(masses) if masses is not None else int(types.max(initial=0)) + 1
    masses = [1.0] * ntypes if masses is None else [float(m) for m in masses]

    lmp = lmp_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], comm=comm)
    try:
        n = len(config)
        frame = lammps_create(lmp, config, masses, padding=padding)
        Q, cell_L = frame.Q, frame.cell_L
        lx, ly, lz = (float(v) for v in (cell_L[0, 0], cell_L[1, 1], cell_L[2, 2]))
        cmd = lmp.command
        for c_ in commands:
            cmd(c_)
        cmd("neighbor 1.0 bin")
        cmd("compute peatom all pe/atom")
        cmd("compute satom all stress/atom NULL virial")
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
        # per-atom stress×volume (bar Å³), xx yy zz xy xz yz, the negative of the per-atom
        # pressure tensor: W_a = -S_a / nktv2p sums to the virial
        S = np.empty((n, 6))
        S[ids] = lmp.numpy.extract_compute("satom", LMP_STYLE_ATOM, 2)[:n]
        W_n = np.empty((n, 3, 3))
        for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
            W_n[:, a, b] = W_n[:, b, a] = -S[:, k] / nktv2p
        out = {
            "atom_virials_ncc": np.einsum("ia,nab,jb->nij", Q, W_n, Q),
            "stress_cc": -(Q @ P_L @ Q.T) / nktv2p,
            "energy": energy,
            "energies_n": e_n,
            "forces_nc": f_L @ Q.T,
            "virial_cc": Q @ W_L @ Q.T,
            "volume": volume,
            "Q": Q,
        }
        if born:
            C = lammps_born_tensor(lmp.numpy.extract_compute("born", LMP_STYLE_GLOBAL,
                                                             LMP_TYPE_VECTOR), Q)
            out["born_energy_vv"] = to_voigt_stiffness(C)
            out["born_ijkl"] = C / volume
            out["born_vv"] = out["born_energy_vv"] / volume
        return out
    finally:
        lmp.close()


def lammps_cubic_elastic(commands: list[str], a_guess: float, mass: float = 63.546,
                         lattice: str = "fcc", strain: float = 1e-5) -> dict:
    """Compute a0, Ecoh and C11, C12, C44 (GPa) of a cubic crystal the LAMMPS way.

    box/relax + minimize, then central differences of the pressure tensor under ±strain (as
    LAMMPS's examples/ELASTIC does), with the atoms relaxed at each strain for lattices with a
    basis (diamond: the relaxed C44, not the unrelaxed one).
    """
    from fe2qc.mpi import lammps, mpi

    lmp = lammps().lammps(cmdargs=["-log", "none", "-screen", "none"], comm=mpi().COMM_SELF)
    n = 3
    lmp.commands_list([
        "units metal", "atom_style atomic", "boundary p p p",
        f"lattice {lattice} {a_guess}",
        f"region box prism 0 {n} 0 {n} 0 {n} 0 0 0",
        "create_box 1 box", "create_atoms 1 box", f"mass 1 {mass}",
        *commands,
        "thermo_style custom step pe lx ly lz pxx pyy pzz pyz pxz pxy",
        "fix relax all box/relax iso 0.0 vmax 0.001",
        "min_style cg", "min_modify line quadratic",
        "minimize 0 1e-14 10000 100000",
        "unfix relax",
        "minimize 0 1e-14 10000 100000",
        "run 0",
    ])
    nktv2p = float(lmp.extract_global("nktv2p"))  # eV/Å³ -> bar (metal units: 1.6021765e6)
    natoms = lmp.get_natoms()
    a0 = lmp.get_thermo("lx") / n
    ecoh = -lmp.get_thermo("pe") / natoms
    L = lmp.get_thermo("lx")

    # a lattice with a basis relaxes its inner coordinates under strain (diamond's C44 is
    # about half its unrelaxed value): minimise the atoms at each strained box
    relax = lattice not in ("fcc", "bcc", "sc")

    def stress():
        if relax:
            lmp.command("minimize 0 1e-14 10000 100000")
        lmp.command("run 0")
        p = [lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")]
        return -np.array(p) / nktv2p * EV_PER_A3_IN_GPA / 1.0  # bar -> GPa via eV/Å³

    C = np.zeros((6, 6))
    for col, (cmd, scale) in enumerate([("x", 1), ("y", 1), ("z", 1), ("yz", 2), ("xz", 2),
                                        ("xy", 2)]):
        s = []
        for sign in (1, -1):
            e = sign * strain
            if len(cmd) == 1:
                lmp.command(f"change_box all {cmd} final 0 {L * (1 + e)} remap units box")
            else:
                lmp.command(f"change_box all {cmd} final {L * e} remap units box")
            s.append(stress())
            if len(cmd) == 1:
                lmp.command(f"change_box all {cmd} final 0 {L} remap units box")
            else:
                lmp.command(f"change_box all {cmd} final 0 remap units box")
        # engineering shear strain for tilts is e (tilt / L); tensor strain e/2
        C[:, col] = (s[0] - s[1]) / (2 * strain) * (1 if scale == 1 else 1)
    lmp.close()
    C = sym(C)
    return {"a0": a0, "ecoh": ecoh, "C": C, "C11": C[0, 0], "C12": C[0, 1], "C44": C[3, 3]}
