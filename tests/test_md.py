"""Molecular dynamics (atomistic.md), checked against references we did not write.

NVE against LAMMPS, energy conservation, bitwise restart, canonical sampling of Langevin
BAOAB, output files, and refusals. References: LAMMPS ``fix nve`` from the same positions
and velocities; the canonical (Gamma) distribution of the kinetic energy, mean
``(f/2) kT`` and variance ``(f/2)(kT)²`` for ``f`` kinetic degrees of freedom.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.lattice import crystal
from atomistic.md import (
    LangevinBAOAB,
    MDState,
    VelocityVerlet,
    initial_velocities,
    integrator_from_dict,
    run_md,
    temperature,
)
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.units import KB, MVV2E

A0 = 3.6149999757646176  # Cu_u3's zero-pressure lattice constant (conftest.CU_U3_A0)


def cu_state(cu_u3, T=300.0, seed=7, rng_seed=1, size=3):
    c = crystal("fcc", A0, size=(size, size, size))
    m = np.full(len(c), cu_u3.masses[0])
    return MDState.from_configuration(c, velocities_nc=initial_velocities(m, T, seed),
                                      masses_n=m, seed=rng_seed)


@functools.cache
def _lammps_engine(commands: tuple):
    """One LAMMPS engine per interaction (its construction checks the interaction)."""
    from atomistic.lammps.md import LammpsEngine

    return LammpsEngine(list(commands))


def lammps_run(state: MDState, commands, integrator, steps: int) -> dict:
    """``steps`` steps of ``integrator`` in LAMMPS from the state's positions and velocities.

    The LAMMPS MD engine (:class:`atomistic.lammps.md.LammpsEngine`: ``fix nve``, ``fix nvt``
    or ``fix npt`` with the integrator's parameters) runs a copy of the state. Returns the
    end: positions ``x`` (unwrapped, input frame) and ``x_L`` (``x Q``, LAMMPS's frame) and
    the same for velocities, LAMMPS's frame ``Q`` and box ``cell_L`` at the start, the cell
    ``cell`` and box corners ``boxlo``, ``boxhi`` (NPT) at the end, LAMMPS's thermo (``temp``,
    ``pe``, ``ke``, ``press_eV_A3``) and the fix's global scalar ``fix_scalar`` (``f_ID``;
    None for ``fix nve``).
    """
    run = state.fresh_copy()
    eng = _lammps_engine(tuple(commands))
    try:
        thermo = eng.run(run, integrator, steps, thermo_every=steps)
        frame = eng._live.frame
        fix_scalar = eng.fix_scalar()
    finally:
        eng.close()
    assert thermo.step[-1] == steps
    Q = frame.Q
    var = run.variables
    return {"x": run.positions_nc, "v": run.velocities_nc, "x_L": run.positions_nc @ Q,
            "v_L": run.velocities_nc @ Q, "Q": Q, "cell_L": frame.cell_L, "cell": run.cell_cc,
            "boxlo": var.get("npt_boxlo"), "boxhi": var.get("npt_boxhi"),
            "temp": thermo.temperature[-1], "pe": thermo.potential_energy[-1],
            "ke": thermo.kinetic_energy[-1], "press_eV_A3": thermo.pressure[-1],
            "fix_scalar": fix_scalar}


@pytest.fixture(scope="module")
def nve_1000(cu_u3):
    """Cu_u3, 108 atoms, 300 K from seed 7, 1000 steps of 1 fs velocity Verlet (~0.5 s)."""
    state = cu_state(cu_u3)
    start = MDState.from_configuration(state.configuration())
    thermo = run_md(state, Calculator(cu_u3, skin=1.0), VelocityVerlet(0.001), 1000,
                    thermo_every=1)
    return start, state, thermo


def test_initial_velocities_zero_momentum_exact_temperature():
    m = np.array([63.55, 12.0, 1.008, 40.0] * 5)
    v = initial_velocities(m, 250.0, 3)
    np.testing.assert_allclose(m @ v, 0.0, atol=1e-12)
    # LAMMPS's count: T = sum m v^2 mvv2e / ((3N - 3) kB)
    assert (m[:, None] * v * v).sum() * MVV2E / ((3 * len(m) - 3) * KB) == \
        pytest.approx(250.0, rel=1e-14)
    assert temperature(m, v, 3 * len(m) - 3) == pytest.approx(250.0, rel=1e-14)
    np.testing.assert_array_equal(v, initial_velocities(m, 250.0, 3))  # a seed is a seed
    assert not np.array_equal(v, initial_velocities(m, 250.0, 4))


def mod_cell_difference(x_nc: np.ndarray, ref_nc: np.ndarray, cell_cc: np.ndarray) -> float:
    """Largest |x - ref| (Å) with lattice translations of ``cell_cc`` taken out."""
    s = (x_nc - ref_nc) @ np.linalg.inv(cell_cc)
    return float(np.abs((s - np.round(s)) @ cell_cc).max())


def restart_in_halves(cu_u3, integ, tmp_path, T: float):
    """40 steps in one run, and 20 + save + restore (fresh calculator and integrator) + 20.

    Returns ``(whole, t_whole, restored, t1, t2, again)``. A small skin makes the neighbour
    list rebuild before and after the save (checked).
    """
    whole = cu_state(cu_u3, T=T)
    t_whole = run_md(whole, Calculator(cu_u3, skin=0.05), integ, 40, thermo_every=5)
    part = cu_state(cu_u3, T=T)
    calc = Calculator(cu_u3, skin=0.05)
    t1 = run_md(part, calc, integ, 20, thermo_every=5)
    assert calc.neighbor_list(part.configuration()).builds > 1
    part.save(tmp_path / "state.npz")
    restored = MDState.load(tmp_path / "state.npz")
    assert restored.step == 20 and restored.integrator == integ.to_dict()
    again = integrator_from_dict(restored.integrator)
    assert type(again) is type(integ) and repr(again) == repr(integ)
    calc2 = Calculator(cu_u3, skin=0.05)
    t2 = run_md(restored, calc2, again, 20, thermo_every=5)
    assert calc2.neighbor_list(restored.configuration()).builds > 1
    np.testing.assert_array_equal(restored.positions_nc, whole.positions_nc)
    np.testing.assert_array_equal(restored.velocities_nc, whole.velocities_nc)
    np.testing.assert_array_equal(restored.cell_cc, whole.cell_cc)
    assert restored.variables == whole.variables
    assert restored.time == whole.time and restored.step == whole.step == 40
    assert restored.rng.bit_generator.state == whole.rng.bit_generator.state
    for k in ("step", "conserved", "pressure", "cell_ccc"):
        np.testing.assert_array_equal(np.concatenate([getattr(t1, k), getattr(t2, k)]),
                                      getattr(t_whole, k))
    return whole, t_whole, restored, t1, t2, again


@pytest.mark.lammps
def test_nve_matches_lammps_fix_nve(cu_u3, nve_1000):
    """Same start, 1000 steps of 1 fs: positions to 1e-8 Å (measured 1.6e-14 Å)."""
    start, state, thermo = nve_1000
    ref = lammps_run(start, cu_u3.lammps_commands(), VelocityVerlet(0.001), 1000)
    Q = ref["Q"]
    dx = mod_cell_difference(state.positions_nc @ Q, ref["x_L"], ref["cell_L"])
    assert dx < 1e-8, f"positions differ by {dx:.3g} Å"
    np.testing.assert_allclose(state.velocities_nc @ Q, ref["v_L"], rtol=0, atol=1e-8)
    assert thermo.step[-1] == 1000
    assert thermo.temperature[-1] == pytest.approx(ref["temp"], rel=1e-10)
    assert thermo.potential_energy[-1] == pytest.approx(ref["pe"], rel=1e-12)
    assert thermo.kinetic_energy[-1] == pytest.approx(ref["ke"], rel=1e-10)
    assert thermo.pressure[-1] == pytest.approx(ref["press_eV_A3"], rel=1e-9)


def test_nve_conserves_energy(nve_1000):
    start, state, thermo = nve_1000
    n = len(state)
    assert thermo.temperature[0] == pytest.approx(300.0, rel=1e-12)
    drift = np.polyfit(thermo.time, thermo.conserved, 1)[0] / n  # eV/atom/ps
    spread = thermo.conserved.std() / n
    msg = f"NVE drift {drift:.3g} eV/atom/ps, fluctuation {spread:.3g} eV/atom (1 fs, 1 ps)"
    assert abs(drift) < 1e-5, msg  # measured -2.9e-7
    assert spread < 1e-5, msg  # measured 1.3e-6
    assert np.abs(state.masses_n @ state.velocities_nc).max() < 1e-10  # momentum stays zero
    # equipartition from a perfect lattice: T drops towards half the start (harmonic limit)
    assert 100.0 < thermo.temperature[-100:].mean() < 200.0


def test_restart_continues_bitwise(cu_u3, tmp_path):
    """40 Langevin steps == 20 steps, save, restore (fresh calculator), 20 steps.

    A small skin makes the neighbour list rebuild before and after the save; without the
    saved neighbour-list reference the restored run differs in the last bits (4e-16 Å).
    """
    restart_in_halves(cu_u3, LangevinBAOAB(0.002, 600.0, 5.0), tmp_path, 600.0)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was moved into place


@pytest.mark.parametrize("fixed_momentum", [True, False])
def test_baoab_samples_canonical_kinetic_energy(cu_u3, fixed_momentum):
    """Mean T, var K = (f/2)(kT)², K ~ Gamma(f/2, kT); f = 3N - 3 (fixed momentum) or 3N."""
    T, steps = 300.0, 10000
    state = cu_state(cu_u3, T=T, seed=3, rng_seed=11)
    thermo = run_md(state, Calculator(cu_u3), LangevinBAOAB(0.002, T, 20.0,
                                                            fixed_momentum=fixed_momentum),
                    steps, thermo_every=1)
    n = len(state)
    f = 3 * n - 3 if fixed_momentum else 3 * n
    assert thermo.dof == f
    keep = slice(len(thermo) // 5, None)  # discard the first 20 %

    def block_mean(x, nblocks=10):
        b = np.array([blk.mean() for blk in np.array_split(x, nblocks)])
        return b.mean(), b.std(ddof=1) / np.sqrt(nblocks)

    t_mean, t_err = block_mean(thermo.temperature[keep])
    assert abs(t_mean - T) < 4 * t_err, f"<T> = {t_mean:.2f} ± {t_err:.2f} K, target {T}"
    assert t_err < 0.02 * T  # the test can tell a 10 % error
    K = thermo.kinetic_energy[keep]
    var_ref = 0.5 * f * (KB * T) ** 2
    var, var_err = block_mean((K - K.mean()) ** 2)
    assert abs(var - var_ref) < 4 * var_err, \
        f"var K = {var:.4g} ± {var_err:.2g} eV², canonical {var_ref:.4g}"
    assert var_err < 0.1 * var_ref
    # the whole distribution: Gamma(f/2, kT) (Kolmogorov-Smirnov on decorrelated samples)
    from scipy import stats

    from fe2qc.statistics import statistical_inefficiency

    sub = K[::int(np.ceil(statistical_inefficiency(K)))]
    assert len(sub) > 300  # ~360: g ~ 22 steps
    assert stats.kstest(sub, stats.gamma(0.5 * f, scale=KB * T).cdf).pvalue > 0.01
    # the conserved quantity (energy + heat removed) stays put; momentum as promised
    assert np.ptp(thermo.conserved) / n < 1e-3
    momentum = np.abs(state.masses_n @ state.velocities_nc).max()
    assert (momentum < 1e-9) if fixed_momentum else (momentum > 1.0)


def test_thermo_log_extxyz_trajectory_and_progress(cu_u3, tmp_path, capsys):
    import ase.io

    state = cu_state(cu_u3)
    thermo = run_md(state, Calculator(cu_u3), VelocityVerlet(0.001), 20, thermo_every=5,
                    log=tmp_path / "thermo.log", trajectory=tmp_path / "traj.extxyz",
                    trajectory_every=10, progress=0.0)
    progress = capsys.readouterr().err.splitlines()
    assert len(progress) == 20 and progress[-1].startswith("MD step 20 (20/20, 100 %)")
    lines = (tmp_path / "thermo.log").read_text().splitlines()
    assert lines[1].split() == ["Step", "Time", "Temp", "PotEng", "KinEng", "TotEng",
                                "Econserve", "Press"]
    table = np.loadtxt(tmp_path / "thermo.log", skiprows=2)
    np.testing.assert_array_equal(table[:, 0], [0, 5, 10, 15, 20])
    np.testing.assert_allclose(table[:, 2], thermo.temperature, rtol=1e-7)
    np.testing.assert_allclose(table[:, 7], thermo.pressure * 160.21766208, rtol=1e-7)
    frames = ase.io.read(tmp_path / "traj.extxyz", index=":")
    assert [a.info["step"] for a in frames] == [0, 10, 20]
    # ASE's extxyz format writes 8 decimals (the exact state is the .npz of MDState.save)
    np.testing.assert_allclose(frames[-1].positions, state.positions_nc, rtol=0, atol=6e-9)
    np.testing.assert_allclose(frames[-1].arrays["velo"], state.velocities_nc, rtol=0,
                               atol=6e-9)
    assert frames[0].get_chemical_symbols()[0] == "Cu"
    np.testing.assert_allclose(frames[0].cell[:], state.cell_cc)


def test_bad_input_is_refused_before_work(cu_u3, tmp_path):
    m = np.full(4, 63.55)
    for T in (0.0, -5.0, float("nan")):
        with pytest.raises(InputError, match="temperature"):
            initial_velocities(m, T, 1)
    with pytest.raises(InputError, match="seed"):
        initial_velocities(m, 300.0, -1)
    for dt in (0.0, -0.001):
        with pytest.raises(InputError, match="dt"):
            VelocityVerlet(dt)
        with pytest.raises(InputError, match="dt"):
            LangevinBAOAB(dt, 300.0, 1.0)
    with pytest.raises(InputError, match="temperature"):
        LangevinBAOAB(0.001, 0.0, 1.0)
    for gamma in (0.0, -1.0):
        with pytest.raises(InputError, match="friction"):
            LangevinBAOAB(0.001, 300.0, gamma)
    state = cu_state(cu_u3)
    x0 = state.positions_nc.copy()
    with pytest.raises(InputError, match="steps"):
        run_md(state, Calculator(cu_u3), VelocityVerlet(0.001), -1)
    with pytest.raises(InputError, match="thermo_every"):
        run_md(state, Calculator(cu_u3), VelocityVerlet(0.001), 10, thermo_every=0)
    assert state.step == 0 and np.array_equal(state.positions_nc, x0)
    with pytest.raises(InputError, match="masses"):
        MDState.from_configuration(crystal("fcc", A0, size=(3, 3, 3)))
    (tmp_path / "junk.npz").write_text("not a state")
    with pytest.raises(InputError, match="not an MD state"):
        MDState.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no MD state"):
        MDState.load(tmp_path / "missing.npz")


def test_too_large_time_step_is_detected(cu_u3):
    state = cu_state(cu_u3)
    with pytest.raises(CalculationFailed, match=r"MD step 1: .*smaller dt"):
        run_md(state, Calculator(cu_u3), VelocityVerlet(0.05), 100)
    # far too large: atoms fly onto each other; still a CalculationFailed with the step
    state = cu_state(cu_u3, T=3000.0)
    with pytest.raises(CalculationFailed, match=r"MD step \d+: .*smaller dt"):
        run_md(state, Calculator(cu_u3), VelocityVerlet(0.5), 100, max_energy_jump=1e6)


def test_per_atom_samples_sum_to_the_totals(cu_u3):
    """per_atom=True: site energies and per-atom virials per sample, summing to the totals.

    (A heat current's input; the per-atom virials equal LAMMPS's stress/atom: test_calculator.)
    """
    st = cu_state(cu_u3, size=3)
    th = run_md(st, Calculator(cu_u3), VelocityVerlet(0.001), 20, thermo_every=10,
                per_atom=True)
    assert th.site_energies_tn.shape == (3, len(st))
    assert th.atom_virials_tncc.shape == (3, len(st), 3, 3)
    np.testing.assert_allclose(th.site_energies_tn.sum(axis=1), th.potential_energy,
                               rtol=1e-12)
    np.testing.assert_allclose(th.atom_virials_tncc.sum(axis=1), th.virial_ccc, rtol=0,
                               atol=1e-10 * np.abs(th.virial_ccc).max())
    assert th.tail(1).atom_virials_tncc.shape == (2, len(st), 3, 3)
