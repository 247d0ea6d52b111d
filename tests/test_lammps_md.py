"""The LAMMPS MD engine (atomistic.lammps.md) against the native engine and published values.

References we did not write: the native engine's velocity Verlet, Nosé-Hoover chain, NPT
barostat and analytic Born tensor (the same trajectory and the same ``born/matrix``
definition, from independent code), the Stillinger-Weber silicon crystal (cohesive energy
``2ε = 4.3366 eV``/atom at a = 5.431 Å, C11 = 151.4 and C12 = 76.4 GPa at 0 K: Stillinger &
Weber, Phys. Rev. B 31, 5262 (1985); Cowley, Phys. Rev. B 38, 10005 (1988)), and exact
properties of the dynamics (bitwise continuation, energy conservation, tensor symmetries).
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.lattice import crystal
from atomistic.md import (
    LangevinBAOAB,
    MDState,
    NoseHooverChain,
    NoseHooverNPT,
    VelocityVerlet,
    initial_velocities,
    run_md,
)
from atomistic.md.engine import NativeEngine
from atomistic.structure import Configuration
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import EV_PER_A3_IN_GPA, KB

pytestmark = pytest.mark.lammps

A0 = 3.6149999757646176  # Cu_u3's zero-pressure lattice constant (conftest.CU_U3_A0)
CU = ["pair_style eam", "pair_coeff 1 1 Cu_u3.eam"]
SW = ["pair_style sw", "pair_coeff * * Si.sw Si"]
SERIES = ("temperature", "kinetic_energy", "potential_energy", "total_energy", "conserved",
          "pressure", "stress_ccc", "virial_ccc", "cell_ccc")


def engine(commands=CU, **kw):
    from atomistic.lammps.md import LammpsEngine

    return LammpsEngine(commands, **kw)


def cu_state(T=300.0, seed=7, rng_seed=1, size=3, mass=63.55):
    c = crystal("fcc", A0, size=(size, size, size))
    m = np.full(len(c), mass)
    return MDState.from_configuration(c, velocities_nc=initial_velocities(m, T, seed),
                                      masses_n=m, seed=rng_seed)


def copy(state: MDState) -> MDState:
    return state.fresh_copy(1, keep_clock=True)


@pytest.fixture(scope="module")
def nve_both(cu_u3):
    """Same start, 1000 steps of 1 fs velocity Verlet, samples every 20 (~0.8 s).

    The samples have the Born tensor and the per-atom energies and virials.
    """
    start = cu_state()
    assert cu_u3.masses[0] == 63.55
    native, lmp = copy(start), copy(start)
    t_native = run_md(native, Calculator(cu_u3, skin=1.0), VelocityVerlet(0.001), 1000,
                      thermo_every=20, born=True, per_atom=True)
    t_lmp = engine().run(lmp, VelocityVerlet(0.001), 1000, thermo_every=20, born=True,
                         per_atom=True)
    return start, native, t_native, lmp, t_lmp


def test_nve_matches_native_engine(nve_both):
    """Positions after 1000 steps to 1e-8 Å (measured 1.6e-14 Å); samples to round-off."""
    start, native, tn, lmp, tl = nve_both
    dx = np.abs(lmp.positions_nc - native.positions_nc).max()
    assert dx < 1e-8, f"positions differ by {dx:.3g} Å"
    assert np.abs(lmp.velocities_nc - native.velocities_nc).max() < 1e-8  # measured 4.9e-13
    # unwrapped, in the input frame: atoms left the cell, none jumped by a cell vector
    s = lmp.positions_nc @ np.linalg.inv(lmp.cell_cc)
    assert (s < 0).any() and np.abs(lmp.positions_nc - start.positions_nc).max() < 1.0
    assert lmp.step == native.step == 1000 and lmp.time == native.time
    assert lmp.neighbor_positions_nc is None and lmp.integrator == VelocityVerlet(0.001).to_dict()
    np.testing.assert_array_equal(tl.step, np.arange(0, 1001, 20))
    np.testing.assert_array_equal(tl.time, tn.time)
    assert (tl.dof, tl.n_atoms, tl.volume) == (tn.dof, tn.n_atoms, tn.volume) == (321, 108,
                                                                                     tn.volume)
    assert tl.temperature[0] == pytest.approx(300.0, rel=1e-12)
    for k in SERIES:  # measured: 1e-13 relative at most
        a, b = getattr(tn, k), getattr(tl, k)
        scale = np.abs(a).max()
        assert np.abs(a - b).max() <= 1e-11 * scale, f"{k}: {np.abs(a - b).max() / scale:.3g}"
    np.testing.assert_allclose(tl.virial_stress_ccc, tn.virial_stress_ccc, rtol=0,
                               atol=1e-11 * np.abs(tn.stress_ccc).max())


def assert_per_atom_match(tn, tl, rows=slice(None)):
    """LAMMPS's per-atom samples (tl) = the native samples ``rows`` (tn); they sum to tl's totals.

    Measured: 3e-15 (site energies) and 7e-14 to 2e-13 (virials) relative to the largest
    entry; the sums equal the potential energy and virial to 1e-13 relative.
    """
    n = tl.n_atoms
    assert tl.site_energies_tn.shape == (len(tl), n)
    assert tl.atom_virials_tncc.shape == (len(tl), n, 3, 3)
    for k in ("site_energies_tn", "atom_virials_tncc"):
        a, b = getattr(tn, k)[rows], getattr(tl, k)
        err = np.abs(a - b).max() / np.abs(a).max()
        assert err < 1e-10, f"{k} differ by {err:.3g} (relative to the largest entry)"
    np.testing.assert_allclose(tl.site_energies_tn.sum(axis=1), tl.potential_energy,
                               rtol=1e-12)
    np.testing.assert_allclose(tl.atom_virials_tncc.sum(axis=1), tl.virial_ccc, rtol=0,
                               atol=1e-12 * np.abs(tl.virial_ccc).max())


def test_per_atom_energies_and_virials_match_native_engine(cu_u3, nve_both):
    """Site energies and per-atom virials per sample = the native ones (~0.1 s more).

    LAMMPS tallies them at each sample (it would stop with "Per-atom energy was not tallied
    on needed timestep" otherwise). A run without ``per_atom`` drops the computes (nothing
    tallied); switching them on again carries on with the native values.
    """
    start, native, tn, lmp, tl = nve_both
    assert_per_atom_match(tn, tl)
    assert np.ptp(tl.site_energies_tn, axis=0).min() > 1e-4  # each atom's energy moved
    # the step-0 sample: the calculator's site energies of the start
    e0 = Calculator(cu_u3).compute(start.configuration()).site_energies_n
    np.testing.assert_allclose(tl.site_energies_tn[0], e0, rtol=1e-12)
    # per_atom on, off, on again on one LAMMPS instance = the native run with per_atom on
    a, b = copy(start), copy(start)
    tn = run_md(a, Calculator(cu_u3, skin=1.0), VelocityVerlet(0.001), 80, thermo_every=20,
                per_atom=True)
    eng = engine()
    t1 = eng.run(b, VelocityVerlet(0.001), 40, thermo_every=20, per_atom=True)
    t2 = eng.run(b, VelocityVerlet(0.001), 20, thermo_every=20)
    assert t2.site_energies_tn.shape == (0, 108) and t2.atom_virials_tncc.shape == (0, 108, 3, 3)
    assert not eng._live.lmp.has_id("compute", "md_pe")  # nothing per-atom is tallied
    t3 = eng.run(b, VelocityVerlet(0.001), 20, thermo_every=20, per_atom=True)
    assert eng.setups == 1 and list(t1.step) == [0, 20, 40] and list(t3.step) == [80]
    assert_per_atom_match(tn, t1, [0, 1, 2])
    assert_per_atom_match(tn, t3, [4])


def test_born_on_md_frames_matches_native_analytic(cu_u3, nve_both):
    """The native analytic Born tensor = LAMMPS numdiff on the same 51 frames (measured 2e-8)."""
    start, native, tn, lmp, tl = nve_both
    assert tl.born_ccccc.shape == tn.born_ccccc.shape == (51, 3, 3, 3, 3)
    err = np.abs(tl.born_ccccc - tn.born_ccccc).max() / np.abs(tn.born_ccccc).max()
    assert err < 1e-6, f"Born tensors differ by {err:.3g} (relative to the largest entry)"
    # sampling the Born tensor (numdiff moves the atoms) leaves the trajectory bitwise alone
    plain = copy(start)
    engine().run(plain, VelocityVerlet(0.001), 1000, thermo_every=1000)
    np.testing.assert_array_equal(plain.positions_nc, lmp.positions_nc)
    np.testing.assert_array_equal(plain.velocities_nc, lmp.velocities_nc)


def test_triclinic_rotated_cell_matches_native_engine(cu_u3):
    """A sheared, rotated cell (LAMMPS runs it rotated into its prism): 200 steps (~0.4 s)."""
    F = np.eye(3) + 0.04 * np.random.default_rng(5).standard_normal((3, 3))
    c = crystal("fcc", A0, size=(3, 3, 3)).deformed(F)
    m = np.full(len(c), 63.55)
    start = MDState.from_configuration(c, velocities_nc=initial_velocities(m, 300.0, 2),
                                       masses_n=m)
    native, lmp = copy(start), copy(start)
    tn = run_md(native, Calculator(cu_u3, skin=1.0), VelocityVerlet(0.001), 200,
                thermo_every=100, born=True, per_atom=True)
    eng = engine()
    tl = eng.run(lmp, VelocityVerlet(0.001), 200, thermo_every=100, born=True, per_atom=True)
    assert eng._live.frame.tilted and not np.allclose(eng._live.frame.Q, np.eye(3))
    assert np.abs(lmp.positions_nc - native.positions_nc).max() < 1e-8  # measured 1.4e-14
    for k in SERIES:
        a, b = getattr(tn, k), getattr(tl, k)
        assert np.abs(a - b).max() <= 1e-11 * np.abs(a).max(), k
    err = np.abs(tl.born_ccccc - tn.born_ccccc).max() / np.abs(tn.born_ccccc).max()
    assert err < 1e-6, f"Born tensors differ by {err:.3g}"
    assert_per_atom_match(tn, tl)  # the per-atom virials rotated back to the input frame


def test_nose_hoover_chain_matches_native_engine(cu_u3):
    """LAMMPS's fix nvt = the native NoseHooverChain: 300 steps from 600 K (~0.4 s)."""
    integ = NoseHooverChain(0.002, 300.0, 0.1, chain=4, loops=2)
    start = cu_state(T=600.0)
    native, lmp = copy(start), copy(start)
    tn = run_md(native, Calculator(cu_u3, skin=1.0), integ, 300, thermo_every=50)
    tl = engine().run(lmp, integ, 300, thermo_every=50)
    dx = np.abs(lmp.positions_nc - native.positions_nc).max()
    assert dx < 1e-8, f"positions differ by {dx:.3g} Å"  # measured 7e-15
    for k in SERIES:
        a, b = getattr(tn, k), getattr(tl, k)
        assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max(), k
    for k, v in native.variables.items():
        np.testing.assert_allclose(lmp.variables[k], v, rtol=1e-8, err_msg=k)


@pytest.mark.parametrize("integrator", [NoseHooverChain(0.002, 300.0, 0.1, chain=3),
                                        LangevinBAOAB(0.002, 300.0, 5.0)],
                         ids=["nose_hoover", "langevin"])
def test_consecutive_runs_are_one_run(integrator):
    """400 steps == 200 + 200 on the same engine, bitwise; the thermostat carries on (~0.3 s)."""
    whole = cu_state(T=600.0)
    eng = engine()
    t_whole = eng.run(whole, integrator, 400, thermo_every=20)

    part = cu_state(T=600.0)
    eng2 = engine()
    t1 = eng2.run(part, integrator, 200, thermo_every=20)
    t2 = eng2.run(part, integrator, 200, thermo_every=20)
    assert eng2.setups == 1  # one LAMMPS instance, continued
    assert part.step == whole.step == 400 and part.time == whole.time
    assert part.time == pytest.approx(0.8, rel=1e-12)
    np.testing.assert_array_equal(part.positions_nc, whole.positions_nc)
    np.testing.assert_array_equal(part.velocities_nc, whole.velocities_nc)
    assert part.variables == whole.variables
    assert part.rng.bit_generator.state == whole.rng.bit_generator.state
    for k in ("step", "time", *SERIES):
        np.testing.assert_array_equal(np.concatenate([getattr(t1, k), getattr(t2, k)]),
                                      getattr(t_whole, k))
    # the state's thermostat variables are what the native integrator reads: its conserved
    # quantity of the state is the last sample's (LAMMPS's econserve)
    h = integrator.conserved(whole, t_whole.potential_energy[-1], t_whole.kinetic_energy[-1])
    assert h == pytest.approx(t_whole.conserved[-1], rel=1e-12, abs=1e-9)
    assert h != pytest.approx(t_whole.total_energy[-1], abs=1e-3)  # the thermostat did work
    n = len(whole)
    spread = np.ptp(t_whole.conserved) / n
    print(f"{integrator!r}: conserved spread {spread:.3g} eV/atom")
    assert spread < (1e-4 if isinstance(integrator, NoseHooverChain) else 1e-2)
    assert t_whole.temperature[-5:].mean() < 450.0  # thermostatted from 600 K towards 300 K
    # another state (here a copy: same values, another rng) gets the same numbers only from a
    # fresh engine: a run is reproducible from the state, including the Langevin seed
    again = cu_state(T=600.0)
    t_again = engine().run(again, integrator, 400, thermo_every=20)
    np.testing.assert_array_equal(t_again.conserved, t_whole.conserved)
    # a state changed between runs gets a fresh LAMMPS instance
    part.velocities_nc *= 1.01
    t3 = eng2.run(part, integrator, 40, thermo_every=20)
    assert eng2.setups == 2 and part.step == 440
    np.testing.assert_array_equal(t3.step, [420, 440])


@pytest.mark.parametrize("mode,p_gpa", [("iso", 0.0), ("aniso", 1.0), ("tri", 1.0)])
def test_npt_matches_native_engine(cu_u3, mode, p_gpa):
    """LAMMPS's fix npt = the native NoseHooverNPT: 300 steps of 1 fs at 300 K (~0.2 s each).

    Measured: positions 5e-14 Å, velocities 1.6e-12 Å/ps, cell 2e-14 Å, samples (stress,
    virial, cell, conserved) 4e-13 relative, barostat and chain variables 1e-13 relative,
    per-atom energies 7e-15 and virials 2e-13 relative (the cell changing).
    """
    integ = NoseHooverNPT(0.001, 300.0, 0.1, p_gpa / EV_PER_A3_IN_GPA, 0.5, mode=mode)
    start = cu_state()
    native, lmp = copy(start), copy(start)
    tn = NativeEngine(cu_u3).run(native, integ, 300, thermo_every=50, per_atom=True)
    eng = engine()
    tl = eng.run(lmp, integ, 300, thermo_every=50, per_atom=True)
    dx = np.abs(lmp.positions_nc - native.positions_nc).max()
    assert dx < 1e-11, f"positions differ by {dx:.3g} Å"
    np.testing.assert_allclose(lmp.velocities_nc, native.velocities_nc, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lmp.cell_cc, native.cell_cc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(tl.step, tn.step)
    for k in SERIES:
        a, b = getattr(tn, k), getattr(tl, k)
        assert np.abs(a - b).max() <= 1e-11 * np.abs(a).max(), k
    assert_per_atom_match(tn, tl)
    assert set(lmp.variables) == set(native.variables)
    for k, v in native.variables.items():
        np.testing.assert_allclose(lmp.variables[k], v, rtol=1e-8, atol=1e-12, err_msg=k)
    # the barostat worked: the cell breathed, tri sheared it, iso kept it cubic
    tilts = lmp.cell_cc[[1, 2, 2], [0, 0, 1]]
    assert np.ptp(tl.volumes) / tl.volumes[0] > 3e-3  # measured 0.5 % to 1.5 %
    assert (np.abs(tilts).min() > 1e-3) if mode == "tri" else not tilts.any()
    if mode == "iso":
        assert lmp.cell_cc[0, 0] == lmp.cell_cc[1, 1] == lmp.cell_cc[2, 2]
    # the state's variables give the native conserved quantity, the last sample's; the fix's
    # own scalar is the native barostat_energy (LAMMPS's, which differs for iso)
    h = integ.conserved(lmp, tl.potential_energy[-1], tl.kinetic_energy[-1])
    assert h == pytest.approx(tl.conserved[-1], rel=1e-12)
    assert eng.fix_scalar() == pytest.approx(integ.barostat_energy(lmp), rel=0, abs=1e-10)
    if mode == "iso":
        gap = eng.fix_scalar() - (tl.conserved[-1] - tl.total_energy[-1])
        etap0 = lmp.variables["npt_etap"][0]
        assert gap == pytest.approx(2 * KB * 300.0 * etap0, rel=0, abs=1e-10)
        assert abs(gap) > 1e-4  # measured 2.4e-4 eV


def test_npt_consecutive_runs_and_a_state_with_a_moved_box(cu_u3):
    """NPT runs continue bitwise on one instance; a fresh one keeps the box (~0.2 s).

    A fresh instance restarts fix npt's barostat (LAMMPS cannot be given ω̇, ηp, V0, h0):
    it equals the native integrator restarted the same way, box corners and fixed point
    kept (measured: positions 4e-14 Å, cell 1.4e-14 Å after 100 steps from a box moved by
    0.009 Å).
    """
    integ = NoseHooverNPT(0.001, 300.0, 0.1, 1.0 / EV_PER_A3_IN_GPA, 0.5, mode="tri")
    whole, part = cu_state(), cu_state()
    t_whole = engine().run(whole, integ, 200, thermo_every=20)
    eng = engine()
    t1 = eng.run(part, integ, 100, thermo_every=20)
    t2 = eng.run(part, integ, 100, thermo_every=20)
    assert eng.setups == 1
    np.testing.assert_array_equal(part.positions_nc, whole.positions_nc)
    np.testing.assert_array_equal(part.cell_cc, whole.cell_cc)
    assert part.variables == whole.variables
    for k in ("conserved", "stress_ccc", "cell_ccc"):
        np.testing.assert_array_equal(np.concatenate([getattr(t1, k), getattr(t2, k)]),
                                      getattr(t_whole, k))
    # a state the native engine moved (npt_boxlo != 0), continued by a fresh LAMMPS instance
    state = cu_state()
    NativeEngine(cu_u3).run(state, integ, 100, thermo_every=100)
    lo = np.array(state.variables["npt_boxlo"])
    assert np.abs(lo).max() > 1e-3
    restarted = copy(state)  # the native integrator restarted as fix npt restarts
    integ.start(restarted)
    for k in ("npt_boxlo", "npt_boxhi", "npt_fixedpoint"):
        restarted.variables[k] = list(state.variables[k])
    lmp = copy(state)
    lmp.variables = dict(state.variables)
    eng = engine()
    tl = eng.run(lmp, integ, 100, thermo_every=50)
    tn = NativeEngine(cu_u3).run(restarted, integ, 100, thermo_every=50)
    assert np.abs(eng._live.shift - lo).max() == 0.0
    assert np.abs(lmp.positions_nc - restarted.positions_nc).max() < 1e-11
    np.testing.assert_allclose(lmp.cell_cc, restarted.cell_cc, rtol=0, atol=1e-12)
    for k in ("npt_boxlo", "npt_boxhi", "npt_vol0", "npt_h0_inv", "npt_omega_dot"):
        np.testing.assert_allclose(lmp.variables[k], restarted.variables[k], rtol=1e-9,
                                   atol=1e-12, err_msg=k)
    np.testing.assert_allclose(tl.conserved, tn.conserved, rtol=1e-12)
    # refused: a cell LAMMPS would rotate, or whose tilts it would reduce
    for cell, why in ((np.array([[0.0, 10.8, 0.0], [-10.8, 0.0, 0.0], [0.0, 0.0, 10.8]]),
                       "restricted"),
                      (np.array([[10.8, 0.0, 0.0], [6.0, 10.8, 0.0], [0.0, 0.0, 10.8]]),
                       "half a box length")):
        bad = cu_state()
        bad.cell_cc[:] = cell
        with pytest.raises(InputError, match=why):
            engine(multiple_images=True).run(bad, integ, 10)  # the tilted cell is thin
        assert bad.step == 0


def test_stillinger_weber_silicon_nve_and_born():
    """A manybody potential: SW Si, 64 atoms, 300 steps of 1 fs NVE from 600 K (~0.3 s)."""
    a = 5.431
    fcc = crystal("fcc", a, size=(2, 2, 2))
    x = np.vstack([fcc.positions_nc, fcc.positions_nc + a / 4])
    si = Configuration(x, fcc.cell_cc, (True, True, True))
    m = np.full(len(si), 28.0855)
    state = MDState.from_configuration(si, velocities_nc=initial_velocities(m, 600.0, 3),
                                       masses_n=m)
    eng = engine(SW)
    assert eng.cutoff == pytest.approx(3.77118, rel=1e-5)  # a sigma = 2.0951 x 1.8 Å
    assert eng.elements == ["Si"]
    th = eng.run(state, VelocityVerlet(0.001), 300, thermo_every=10, born=True)
    n = len(state)
    assert th.potential_energy[0] / n == pytest.approx(-4.3366, abs=1e-4)  # -2 eps per atom
    spread = np.ptp(th.conserved) / n
    drift = np.polyfit(th.time, th.conserved, 1)[0] / n
    print(f"SW Si NVE: spread {spread:.3g} eV/atom, drift {drift:.3g} eV/atom/ps")
    assert spread < 2e-4, f"NVE energy spread {spread:.3g} eV/atom"  # measured 8.5e-5
    assert abs(drift) < 1e-4, f"NVE energy drift {drift:.3g} eV/atom/ps"
    B = th.born_ccccc
    assert B.shape == (31, 3, 3, 3, 3) and np.isfinite(B).all()
    for perm in ("jikl", "ijlk", "klij"):
        np.testing.assert_allclose(np.einsum(f"tijkl->t{perm}", B), B, rtol=0,
                                   atol=1e-12 * np.abs(B).max())
    # at step 0 the atoms sit on the perfect lattice: the Born term is the 0 K C11, C12
    c11, c12 = B[0, 0, 0, 0, 0], B[0, 0, 0, 1, 1]
    assert c11 * EV_PER_A3_IN_GPA == pytest.approx(151.4, rel=2e-3)
    assert c12 * EV_PER_A3_IN_GPA == pytest.approx(76.4, rel=2e-3)
    assert np.abs(B[1:] - B[0]).max() > 1e-3 * np.abs(B[0]).max()  # frames differ


def test_thermo_log_and_trajectory_look_like_the_native_ones(cu_u3, tmp_path, capsys):
    import ase.io

    files = {}
    for name in ("native", "lammps"):
        state = cu_state()
        kw = dict(thermo_every=5, log=tmp_path / f"{name}.log",
                  trajectory=tmp_path / f"{name}.extxyz", trajectory_every=10, progress=0.0)
        if name == "native":
            run_md(state, Calculator(cu_u3), VelocityVerlet(0.001), 20, **kw)
        else:
            engine(elements=["Cu"]).run(state, VelocityVerlet(0.001), 20, **kw)
        files[name] = state
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("LAMMPS MD step 20 (20/20, 100 %)")
    logs = [(tmp_path / f"{k}.log").read_text().splitlines() for k in ("native", "lammps")]
    assert logs[0][:2] == logs[1][:2]  # the same header
    np.testing.assert_allclose(np.loadtxt(tmp_path / "lammps.log", skiprows=2),
                               np.loadtxt(tmp_path / "native.log", skiprows=2), rtol=1e-7)
    fn, fl = (ase.io.read(tmp_path / f"{k}.extxyz", index=":") for k in ("native", "lammps"))
    assert [a.info["step"] for a in fl] == [a.info["step"] for a in fn] == [0, 10, 20]
    for a, b in zip(fn, fl, strict=True):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=2e-8)
        np.testing.assert_allclose(b.arrays["velo"], a.arrays["velo"], rtol=0, atol=2e-8)
        assert set(a.info) == set(b.info)


def test_bad_input_is_refused_before_any_step(tmp_path):
    with pytest.raises(InputError, match="no pair style 'nonexistent/style'"):
        engine(["pair_style nonexistent/style", "pair_coeff * *"])
    with pytest.raises(InputError, match=r"`pair_coeff 1 1 missing\.eam`.*cannot open"):
        engine(["pair_style eam", "pair_coeff 1 1 missing.eam"])
    with pytest.raises(InputError, match="Incorrect args"):
        engine(["pair_style lj/cut 5.0", "pair_coeff 1 1 0.1"])
    with pytest.raises(InputError, match="only the interaction"):
        engine([*CU, "units real"])
    with pytest.raises(InputError, match="list of LAMMPS command lines"):
        engine("pair_style eam")
    with pytest.raises(InputError, match="no pair_style"):
        engine(["pair_coeff 1 1 Cu_u3.eam"])

    eng = engine()
    assert eng.cutoff == pytest.approx(4.95, rel=1e-12)  # Cu_u3.eam's cutoff
    small = cu_state(size=1)  # 3.615 Å < twice the cutoff
    x0 = small.positions_nc.copy()
    with pytest.raises(InputError, match="cutoff 4.95 Å is at least half"):
        eng.run(small, VelocityVerlet(0.001), 10)
    assert small.step == 0 and np.array_equal(small.positions_nc, x0)
    engine(multiple_images=True).run(small, VelocityVerlet(0.001), 0)  # LAMMPS can do it

    class Unknown:
        dt, fixed_momentum = 0.001, True

    state = cu_state()
    x0 = state.positions_nc.copy()
    with pytest.raises(InputError, match="VelocityVerlet .*NoseHooverChain.*LangevinBAOAB"):
        eng.run(state, Unknown(), 10)
    with pytest.raises(InputError, match="steps"):
        eng.run(state, VelocityVerlet(0.001), -1)
    with pytest.raises(InputError, match="born"):
        eng.run(state, VelocityVerlet(0.001), 10, born=1)
    mixed = cu_state()
    mixed.masses_n[0] = 1.0
    with pytest.raises(InputError, match="different masses"):
        eng.run(mixed, VelocityVerlet(0.001), 10)
    open_cell = MDState(state.positions_nc, state.velocities_nc, state.masses_n, state.cell_cc,
                        pbc=(True, True, False))
    with pytest.raises(InputError, match="fully periodic"):
        eng.run(open_cell, VelocityVerlet(0.001), 10)
    assert state.step == 0 and np.array_equal(state.positions_nc, x0) and eng.setups == 0


def test_too_large_time_step_is_detected():
    state = cu_state()
    eng = engine()
    with pytest.raises(CalculationFailed, match=r"MD step \d+: .*smaller dt"):
        eng.run(state, VelocityVerlet(0.05), 200)
    # the engine starts afresh from the state afterwards
    ok = cu_state()
    eng.run(ok, VelocityVerlet(0.001), 10, thermo_every=10)
    assert ok.step == 10 and eng.setups == 2
