"""LAMMPS-side procedures used as independent references by the tests."""

from __future__ import annotations

import numpy as np

from fe2qc.units import EV_PER_A3_IN_GPA

NKTV2P = 1.6021765e6  # LAMMPS metal: eV/Å³ -> bar


def lammps_or_skip():
    import pytest

    try:
        from fe2qc.mpi import lammps

        return lammps()
    except ImportError:
        pytest.skip("lammps is not installed")


def lammps_cubic_elastic(commands: list[str], a_guess: float, mass: float = 63.546,
                         lattice: str = "fcc", strain: float = 1e-5) -> dict:
    """a0, Ecoh and C11, C12, C44 (GPa) the LAMMPS way: box/relax + minimize, then central
    differences of the pressure tensor under ±strain (as LAMMPS's examples/ELASTIC does)."""
    lmp_mod = lammps_or_skip()
    from fe2qc.mpi import mpi

    lmp = lmp_mod.lammps(cmdargs=["-log", "none", "-screen", "none"], comm=mpi().COMM_SELF)
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
    natoms = lmp.get_natoms()
    a0 = lmp.get_thermo("lx") / n
    ecoh = -lmp.get_thermo("pe") / natoms
    L = lmp.get_thermo("lx")

    def stress():
        lmp.command("run 0")
        p = [lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")]
        return -np.array(p) / NKTV2P * EV_PER_A3_IN_GPA / 1.0  # bar -> GPa via eV/Å³

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
    C = 0.5 * (C + C.T)
    return {"a0": a0, "ecoh": ecoh, "C": C, "C11": C[0, 0], "C12": C[0, 1], "C44": C[3, 3]}
