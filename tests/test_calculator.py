"""Forces, Hessian and deformation derivatives of the generic calculator.

They are checked against finite differences of our own energies, for pair and EAM potentials.
"""

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.lattice import crystal
from atomistic.potentials import load_potential
from atomistic.structure import Configuration
from fe2qc.errors import InputError


def _potentials(cu_u3):
    return {
        "lj_smooth": (load_potential("lj/smooth", epsilon=0.3, sigma=2.3, cutoff=5.0), 3.6),
        "morse": (load_potential("morse", D0=0.34, alpha=1.36, r0=2.63, cutoff=5.5, shift=True),
                  3.6),
        "eam_cu_u3": (cu_u3, cu_u3.lattice_constant),  # 3.615 Å, the file header's
        "eam_alloy_cuni": (load_potential("CuNi.eam.alloy"), 3.58),
    }


@pytest.fixture(scope="module", params=["lj_smooth", "morse", "eam_cu_u3", "eam_alloy_cuni"])
def system(request, cu_u3):
    pot, a = _potentials(cu_u3)[request.param]
    rng = np.random.default_rng(7)
    conf = crystal("fcc", a, size=(2, 2, 2))
    conf.cell_cc = conf.cell_cc @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))).T
    conf.positions_nc = conf.positions_nc @ (np.eye(3) + rng.normal(0, 0.0, (3, 3))).T
    conf.positions_nc += rng.normal(0, 0.08, conf.positions_nc.shape)
    if len(pot.elements) > 1:
        conf.types_n = rng.integers(0, len(pot.elements), len(conf))
    return pot, Calculator(pot, skin=0.5, multiple_images=True), conf


def _minus_gradient(energy, x0, every, h=1e-5):
    """Yield ``(a, c, -dE/dx_ac)`` by central differences of step ``h``.

    Every ``every``-th atom ``a`` of the positions ``x0``, each direction ``c``.
    """
    for a in range(0, len(x0), every):
        for c in range(3):
            xp, xm = x0.copy(), x0.copy()
            xp[a, c] += h
            xm[a, c] -= h
            yield a, c, -(energy(xp) - energy(xm)) / (2 * h)


def _energy_at(calc, conf, x=None, F=None, X=None, ref_cell=None):
    c = conf.copy()
    if x is not None:
        c.positions_nc = x
    if F is not None:
        c.positions_nc = X @ F.T
        c.cell_cc = ref_cell @ F.T
    return calc.compute(c).energy


def test_forces_are_minus_gradient_of_energy(system):
    _, calc, conf = system
    f = calc.compute(conf).forces_nc
    for a, c, fd in _minus_gradient(lambda x: _energy_at(calc, conf, x), conf.positions_nc, 5):
        assert fd == pytest.approx(f[a, c], abs=1e-6 * np.abs(f).max())


def test_weighted_forces_are_minus_gradient_of_weighted_site_energy(system):
    _, calc, conf = system
    w = np.random.default_rng(3).uniform(0, 1, len(conf))
    f = calc.compute(conf, weights_n=w).forces_nc

    def ew(x):
        c = conf.copy()
        c.positions_nc = x
        return float(w @ calc.compute(c).site_energies_n)

    for a, c, fd in _minus_gradient(ew, conf.positions_nc, 3):
        assert fd == pytest.approx(f[a, c], abs=1e-6 * np.abs(f).max())


def test_sparse_hessian_matches_finite_differences_of_forces(system):
    _, calc, conf = system
    H = calc.hessian(conf).toarray()
    assert np.allclose(H, H.T, atol=1e-10 * np.abs(H).max())
    h = 1e-5
    x0 = conf.positions_nc.ravel()
    for m in range(0, 3 * len(conf), 7):
        c = conf.copy()
        xp, xm = x0.copy(), x0.copy()
        xp[m] += h
        xm[m] -= h
        c.positions_nc = xp.reshape(-1, 3)
        fp = calc.compute(c).forces_nc.ravel()
        c.positions_nc = xm.reshape(-1, 3)
        fm = calc.compute(c).forces_nc.ravel()
        assert np.allclose(-(fp - fm) / (2 * h), H[:, m], atol=1e-6 * np.abs(H).max())


def _dE_dF(calc, conf, X, ref, F, u=None):
    """dE/dF at fixed u for x = F X + u: sum_p f_p ⊗ D_p = -W F^-T + sum_a f_a ⊗ F^-1 u_a."""
    c = conf.copy()
    u = np.zeros_like(X) if u is None else u
    c.positions_nc = X @ F.T + u
    c.cell_cc = ref @ F.T
    r = calc.compute(c)
    Finv = np.linalg.inv(F)
    return -r.virial_cc @ Finv.T + r.forces_nc.T @ (u @ Finv.T)


def test_deformation_derivatives_match_finite_differences(system):
    # EAM splines are C1 only, so second derivatives come from central differences of the
    # analytic first derivatives with a small step (fewer spline knots crossed).
    _, calc, conf = system
    ref = conf.cell_cc.copy()
    X = conf.positions_nc.copy()
    EFF, B, _ = calc.deformation_derivatives(conf, ref)
    h = 1e-6
    # first derivative vs energy
    G = _dE_dF(calc, conf, X, ref, np.eye(3))
    for k, L in [(0, 0), (0, 1), (2, 1)]:
        Fp, Fm = np.eye(3), np.eye(3)
        Fp[k, L] += 1e-5
        Fm[k, L] -= 1e-5
        fd = (_energy_at(calc, conf, F=Fp, X=X, ref_cell=ref)
              - _energy_at(calc, conf, F=Fm, X=X, ref_cell=ref)) / 2e-5
        assert fd == pytest.approx(G[k, L], abs=1e-6 * np.abs(G).max())
    for k in range(3):
        for L in range(3):
            Fp, Fm = np.eye(3), np.eye(3)
            Fp[k, L] += h
            Fm[k, L] -= h
            fd = (_dE_dF(calc, conf, X, ref, Fp) - _dE_dF(calc, conf, X, ref, Fm)) / (2 * h)
            assert np.allclose(fd, EFF[:, :, k, L], atol=1e-6 * np.abs(EFF).max())
    for m in (4, 10, 17):
        up, um = np.zeros(3 * len(conf)), np.zeros(3 * len(conf))
        up[m], um[m] = h, -h
        fd = (_dE_dF(calc, conf, X, ref, np.eye(3), up.reshape(-1, 3))
              - _dE_dF(calc, conf, X, ref, np.eye(3), um.reshape(-1, 3))) / (2 * h)
        assert np.allclose(fd.ravel(), B[m], atol=1e-6 * np.abs(B).max())


def test_born_tensor_is_second_derivative_in_green_lagrange_strain(system):
    _, calc, conf = system
    C = calc.born_tensor(conf)
    X, ref = conf.positions_nc.copy(), conf.cell_cc.copy()
    h = 1e-6

    def S(E):  # second Piola-Kirchhoff stress times V0: dE/dE_GL = F^-1 dE/dF
        w, v = np.linalg.eigh(np.eye(3) + 2 * E)
        F = v @ np.diag(np.sqrt(w)) @ v.T
        return np.linalg.solve(F, _dE_dF(calc, conf, X, ref, F))

    for k, l in [(0, 0), (1, 1), (1, 2), (0, 2)]:
        Ep, Em = np.zeros((3, 3)), np.zeros((3, 3))
        for E, s in ((Ep, h), (Em, -h)):
            E[k, l] += s / 2
            E[l, k] += s / 2
        fd = (S(Ep) - S(Em)) / (2 * h) / conf.volume
        assert np.allclose(fd, C[:, :, k, l], atol=1e-6 * np.abs(C).max())


def test_overlapping_atoms_are_refused(cu_u3):
    pot = cu_u3
    conf = crystal("fcc", pot.lattice_constant, size=(3, 3, 3))
    conf.positions_nc[1] = conf.positions_nc[0] + [0.1, 0, 0]
    with pytest.raises(InputError, match="overlap"):
        Calculator(pot).compute(conf)


def test_nan_position_is_refused():
    with pytest.raises(InputError, match="NaN"):
        Configuration(np.array([[0.0, np.nan, 0.0]]), np.eye(3) * 5)


def test_cutoff_beyond_half_the_cell_is_refused_unless_asked_for(cu_u3):
    pot = cu_u3
    conf = crystal("fcc", pot.lattice_constant, size=(2, 2, 2))  # width 7.23 Å < 2 × 4.95 Å
    with pytest.raises(InputError, match="Repeat the cell"):
        Calculator(pot).compute(conf)
    big = conf.repeat((2, 2, 2))
    e_small = Calculator(pot, multiple_images=True).compute(conf).energy / len(conf)
    e_big = Calculator(pot).compute(big).energy / len(big)
    assert e_small == pytest.approx(e_big, rel=1e-12)


def test_open_cluster_has_no_self_images(cu_u3):
    from atomistic.lattice import cluster

    pot = cu_u3
    conf = cluster("fcc", pot.lattice_constant, 6.0)
    res = Calculator(pot).compute(conf)
    assert np.allclose(res.forces_nc.sum(axis=0), 0, atol=1e-10)  # Newton's third law
    # torque-free as well
    assert np.allclose(np.cross(conf.positions_nc, res.forces_nc).sum(axis=0), 0, atol=1e-9)


@pytest.mark.lammps
@pytest.mark.parametrize("name,a", [("Cu_u3.eam", 3.615), ("Cu_mishin1.eam.alloy", 3.615),
                                    ("morse", 3.6)])
def test_born_tensor_matches_lammps_born_matrix_numdiff(name, a):
    from atomistic.lammps import run_lammps

    kw = {"D0": 0.34, "alpha": 1.36, "r0": 2.63, "cutoff": 5.5} if name == "morse" else {}
    pot = load_potential(name, **kw)
    rng = np.random.default_rng(11)
    conf = crystal("fcc", a, size=(4, 4, 4))
    F = np.eye(3) + rng.normal(0, 0.01, (3, 3))  # a stressed, general triclinic cell
    conf = conf.deformed(F)
    conf.positions_nc += rng.normal(0, 0.03, conf.positions_nc.shape)
    ours = Calculator(pot).born_tensor(conf)
    ref = run_lammps(conf, pot.lammps_commands(), born="numdiff", born_delta=1e-6)["born_ijkl"]
    # numdiff's error is O(delta^2) plus round-off of the virial differences
    np.testing.assert_allclose(ours, ref, atol=1e-6 * np.abs(ours).max())


@pytest.mark.lammps
def test_stress_with_kinetic_part_matches_lammps_pressure_tensor(cu_u3):
    from atomistic.lammps import run_lammps

    pot = cu_u3
    rng = np.random.default_rng(4)
    conf = crystal("fcc", pot.lattice_constant, size=(3, 3, 3)).deformed(
        np.eye(3) + rng.normal(0, 0.01, (3, 3)))
    conf.positions_nc += rng.normal(0, 0.05, conf.positions_nc.shape)
    conf.masses_n = np.full(len(conf), pot.masses[0])
    conf.velocities_nc = rng.normal(0, 5.0, (len(conf), 3))  # Å/ps, ~ a few hundred K
    ours = Calculator(pot).compute(conf)
    ref = run_lammps(conf, pot.lammps_commands(), masses=pot.masses)
    kinetic = ours.stress_cc + ours.virial_cc / ours.volume
    assert np.abs(kinetic).max() > 1e-3 * np.abs(ours.stress_cc).max()  # the part is visible
    np.testing.assert_allclose(ours.stress_cc, ref["stress_cc"], rtol=0,
                               atol=1e-7 * np.abs(ref["stress_cc"]).max())


@pytest.mark.lammps
@pytest.mark.parametrize("name,a", [("Cu_u3.eam", 3.615), ("CuNi.eam.alloy", 3.6),
                                    ("lj/cut", 3.4)])
def test_atom_virials_match_lammps_stress_atom(name, a):
    """Per-atom virials (for heat currents) = LAMMPS ``compute stress/atom NULL virial``."""
    from atomistic.lammps import run_lammps
    from atomistic.potentials.factory import pair_potential_from_lammps

    pot = pair_potential_from_lammps("lj/cut 6.0", "0.4 2.3") if name == "lj/cut" else \
        load_potential(name)
    rng = np.random.default_rng(5)
    conf = crystal("fcc", a, size=(4, 4, 4)).deformed(np.eye(3) + rng.normal(0, 0.01, (3, 3)))
    conf.positions_nc += rng.normal(0, 0.05, conf.positions_nc.shape)
    if len(pot.elements) > 1:
        conf.types_n = rng.integers(0, len(pot.elements), len(conf))
    calc = Calculator(pot)
    ours = calc.atom_virials(conf)
    np.testing.assert_allclose(ours.sum(axis=0), calc.compute(conf).virial_cc, rtol=0,
                               atol=1e-12 * np.abs(ours).sum())
    ref = run_lammps(conf, pot.lammps_commands(), masses=pot.masses)["atom_virials_ncc"]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("name", ["Cu_u3.eam", "Cu_mishin1.eam.alloy"])
def test_born_numdiff_equals_the_analytic_tensor_away_from_the_cutoff(name):
    """Born tensor by central differences of the stress = the analytic one.

    Green-Lagrange strains, 12 force calls; where no pair sits within the strain window of the
    cutoff (elsewhere numdiff also sees the cutoff's impulsive term).
    """
    from atomistic.md.engine import cutoff_jump
    from atomistic.neighbors import pair_vectors

    pot = load_potential(name)
    rng = np.random.default_rng(11)
    conf = crystal("fcc", 3.615, size=(4, 4, 4)).deformed(np.eye(3) + rng.normal(0, 0.01, (3, 3)))
    conf.positions_nc += rng.normal(0, 0.03, conf.positions_nc.shape)
    calc = Calculator(pot)
    nl = calc.pair_list(conf)
    _, r_p = pair_vectors(conf.positions_nc, conf.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
    assert np.abs(r_p - pot.cutoff).min() > 0.01  # no crossing within ±1e-4 strain
    ours = calc.born_tensor(conf)
    nd = calc.born_tensor_numdiff(conf, 1e-4)
    np.testing.assert_allclose(nd, ours, rtol=0, atol=1e-6 * np.abs(ours).max())
    # Cu_u3's table ends with a force at its cutoff, Mishin's goes smoothly to zero
    assert cutoff_jump(pot) is (name == "Cu_u3.eam")
