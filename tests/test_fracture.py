"""Griffith quantities from potentials.

Surface energies (against LAMMPS and hand values), the triangular lattice's constant and
isotropic elastic tensor, K_G.
"""

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.fracture import (
    elastic_tensor,
    griffith,
    lattice_constant,
    slab,
    surface_energy,
)
from atomistic.lattice import crystal
from atomistic.potentials import load_potential
from fe2qc.errors import InputError
from fe2qc.units import EV_PER_A52_IN_MPA_SQRT_M

CU111 = [[1, -1, 0], [1, 1, 1], [-1, -1, 2]]


@pytest.fixture(scope="module")
def cu(cu_u3):
    return cu_u3, lattice_constant(cu_u3, "fcc")


@pytest.mark.lammps
def test_cu100_surface_energy_matches_lammps_unrelaxed_and_minimized(cu):
    from atomistic.lammps import run_lammps

    pot, a0 = cu
    s, b, area = slab("fcc", a0, layers=4, inplane=(2, 2))
    cmds = pot.lammps_commands()
    ref_s = run_lammps(s, cmds, masses=pot.masses)["energy"]
    ref_b = run_lammps(b, cmds, masses=pot.masses)["energy"]
    g0, d0 = surface_energy(pot, "fcc", a0, layers=4, inplane=(2, 2), relax=False,
                            return_details=True)
    assert d0["energy_slab"] == pytest.approx(ref_s, rel=1e-9)
    assert d0["energy_bulk_per_atom"] * len(b) == pytest.approx(ref_b, rel=1e-9)
    assert g0 == pytest.approx((ref_s - ref_b) / (2 * area), rel=1e-8)
    # relaxed: LAMMPS conjugate gradients on the same slab
    mini = ["min_style cg", "min_modify line quadratic", "minimize 0 1e-12 10000 100000"]
    ref_r = run_lammps(s, cmds + mini, masses=pot.masses)
    g = surface_energy(pot, "fcc", a0, layers=4, inplane=(2, 2), relax=True)
    assert g == pytest.approx((ref_r["energy"] - ref_b) / (2 * area), rel=1e-8)
    assert g < g0  # relaxation lowers it, by a visible amount
    assert g0 - g > 1e-3 * g0


def test_cu_surface_energy_converges_with_thickness_and_111_is_lowest(cu):
    pot, a0 = cu
    g = {L: surface_energy(pot, "fcc", a0, layers=L) for L in (2, 3, 4, 6)}
    assert abs(g[4] - g[6]) < 1e-7 * g[6]
    assert abs(g[2] - g[6]) > abs(g[4] - g[6])  # thin slabs are not converged
    # 1.29 J/m² for the (100) surface of Foiles-Baskes-Daw Cu (a sanity range only)
    assert 1.1 < g[6] * 16.02176634 < 1.5
    g111 = surface_energy(pot, "fcc", a0, orientation=CU111, layers=3)
    assert g111 < g[6]


def test_cu_griffith_with_anisotropic_E_prime(cu):
    from fe2qc.lefm import AnisotropicCrack, griffith_K

    pot, a0 = cu
    out = griffith(pot, "fcc", a0, layers=4)
    C = out["C_ijkl"]
    assert C[0, 0, 1, 1] == pytest.approx(C[1, 1, 2, 2], rel=1e-12)  # cubic, cube frame
    Ep = AnisotropicCrack(C).plane_strain_modulus
    # griffith computes the anisotropic E' itself (once), as a caller passing it would
    assert out["E_prime"] == Ep and out["K_G"] == griffith_K(out["gamma"], Ep)
    full = griffith(pot, "fcc", a0, layers=4, E_prime=Ep)
    assert full["K_G"] == pytest.approx(griffith_K(out["gamma"], Ep), rel=1e-14)
    assert full["K_G_MPa_sqrt_m"] == pytest.approx(full["K_G"] * 1.602176634, rel=1e-12)
    # the same crack rotated about the front by 90 degrees has the same E' (cubic symmetry)
    C90 = elastic_tensor(pot, "fcc", a0, orientation=[[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    assert AnisotropicCrack(C90).plane_strain_modulus == pytest.approx(Ep, rel=1e-12)


def test_triangular_morse_nearest_neighbours_hand_values():
    """Triangular Morse with nearest neighbours only (cutoff < sqrt(3) r0) has hand values.

    a0 = r0, and a cut between close-packed rows breaks 2 bonds per length a0
    (gamma = D0/a0); a cut normal to the rows breaks 4/sqrt(3) per a0
    (gamma = 2 D0/(sqrt(3) a0)). Springs k = phi''(r0) = 2 D0 alpha² on a triangular lattice
    give lambda = mu = sqrt(3) k/4 (per 1 Å thickness). The surface atoms feel no force (every
    remaining bond is at r0), so relaxation changes nothing.
    """
    D0, alpha, r0 = 0.5, 2.0, 2.5
    pot = load_potential("morse", D0=D0, alpha=alpha, r0=r0, cutoff=1.5 * r0)
    a0 = lattice_constant(pot, "triangular")
    assert a0 == pytest.approx(r0, rel=1e-12)
    for relax in (False, True):
        assert surface_energy(pot, "triangular", a0, layers=3, relax=relax) == pytest.approx(
            D0 / a0, rel=1e-12)
    assert surface_energy(pot, "triangular", a0, normal_axis=0, layers=4) == pytest.approx(
        2 * D0 / (np.sqrt(3) * a0), rel=1e-12)
    out = griffith(pot, "triangular", layers=3)
    k = 2 * D0 * alpha**2
    assert out["lam"] == pytest.approx(np.sqrt(3) * k / 4, rel=1e-12)
    assert out["mu"] == pytest.approx(np.sqrt(3) * k / 4, rel=1e-12)
    Ep = 8 / 3 * out["mu"]  # 4 mu (lam + mu)/(lam + 2 mu) with lam = mu
    assert out["E_prime"] == pytest.approx(Ep, rel=1e-12)
    assert out["K_G"] == pytest.approx(np.sqrt(2 * D0 / r0 * Ep), rel=1e-12)
    assert EV_PER_A52_IN_MPA_SQRT_M == pytest.approx(1.602176634, rel=1e-15)


def test_triangular_lj_isotropic_zero_pressure_and_converged_gamma():
    pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=2.5 * 2.2)
    a0 = lattice_constant(pot, "triangular")
    C = elastic_tensor(pot, "triangular", a0)
    lam, mu = C[0, 0, 1, 1], C[0, 1, 0, 1]
    assert C[0, 0, 0, 0] == pytest.approx(lam + 2 * mu, rel=1e-10)  # isotropic in 2D
    assert C[1, 1, 1, 1] == pytest.approx(C[0, 0, 0, 0], rel=1e-10)
    assert np.abs(C[2]).max() < 1e-12 * C[0, 0, 0, 0]  # nothing along z
    # a0 is the energy minimum (zero in-plane pressure)
    calc = Calculator(pot, multiple_images=True)
    e = [calc.energy(crystal("triangular", a0 * f)) for f in (0.999, 1.0, 1.001)]
    assert e[1] < e[0] and e[1] < e[2]
    g = {L: surface_energy(pot, "triangular", a0, layers=L) for L in (2, 4, 6)}
    assert abs(g[4] - g[6]) < 1e-6 * g[6]
    g_u = surface_energy(pot, "triangular", a0, layers=6, relax=False)
    assert g[6] < g_u


def test_bad_inputs():
    pot = load_potential("morse", D0=0.5, alpha=2.0, r0=2.5, cutoff=3.75)
    with pytest.raises(InputError, match="normal_axis"):
        surface_energy(pot, "triangular", 2.5, normal_axis=2)
    with pytest.raises(InputError, match="layers"):
        surface_energy(pot, "triangular", 2.5, layers=0)
    with pytest.raises(InputError, match="orthogonal"):
        elastic_tensor(pot, "fcc", 3.0, orientation=[[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="E_prime"):
        griffith(pot, "triangular", 2.5, layers=2, E_prime=-1.0)


def test_griffith_refuses_a_crack_frame_without_plane_strain_modulus_before_the_slab(cu):
    """A (111) crack with a <112> front is refused without E_prime, and runs with it.

    Its frame is no mirror plane of fcc: in-plane strains couple to anti-plane shear and E' of
    the Stroh formalism does not exist.
    """
    pot, a0 = cu
    with pytest.raises(InputError, match="mirror plane"):
        griffith(pot, "fcc", a0, orientation=CU111, layers=2)
    out = griffith(pot, "fcc", a0, orientation=CU111, layers=2, E_prime=1.0, relax=False)
    assert out["E_prime"] == 1.0 and out["K_G"] == pytest.approx(np.sqrt(2 * out["gamma"]))
