"""Nosé-Hoover chains (atomistic.md.NoseHooverChain), checked against references we did not write.

References: LAMMPS ``fix nvt temp T T Tdamp tchain M tloop L`` from the same positions and
velocities (trajectory, temperature and the fix's global scalar ``f_ID``, the chain's
energy); the canonical (Gamma) distribution of the kinetic energy, shape ``f/2`` and scale
``kT`` for ``f = 3N − 3`` (mean ``(f/2) kT``, variance ``(f/2)(kT)²``); the second-order
(dt²) error of the conserved quantity of a second-order splitting.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from atomistic.calculator import Calculator
from atomistic.md import MDState, NoseHooverChain, integrator_from_dict, run_md
from fe2qc.errors import InputError
from fe2qc.statistics import mean_error, statistical_inefficiency
from fe2qc.units import KB
from tests.test_md import cu_state, lammps_run, mod_cell_difference, restart_in_halves

T_TARGET, TDAMP = 300.0, 0.1  # K, ps: started at 600 K so the thermostat works hard


@pytest.fixture(scope="module")
def nvt_run(cu_u3):
    """108 Cu_u3 atoms from 600 K, NHC to 300 K (Tdamp 0.1 ps), 1 fs steps; cached runs."""
    cache = {}

    def run(chain=3, loops=1, dt=0.001, steps=1000):
        key = (chain, loops, dt, steps)
        if key not in cache:
            state = cu_state(cu_u3, T=600.0)
            start = MDState.from_configuration(state.configuration())
            integ = NoseHooverChain(dt, T_TARGET, TDAMP, chain=chain, loops=loops)
            thermo = run_md(state, Calculator(cu_u3, skin=1.0), integ, steps, thermo_every=1)
            cache[key] = start, state, integ, thermo
        return cache[key]

    return run


@pytest.mark.lammps
@pytest.mark.parametrize("chain,loops", [(3, 1), (1, 1), (2, 3)])
def test_nhc_matches_lammps_fix_nvt(cu_u3, nvt_run, chain, loops):
    """Same start, 1000 steps of 1 fs: the trajectory and f_ID agree to round-off.

    Positions to 1e-8 Å (measured 1.2e-14 to 2.5e-14 Å), velocities 1e-8 Å/ps (measured
    4e-13 to 7e-13), f_ID to 1e-10 eV (measured 1e-14 to 5e-14 eV); ~0.5 s for chain 3,
    ~0.3 s each for the others.
    """
    start, state, integ, thermo = nvt_run(chain, loops)
    # the LAMMPS engine's fix nvt temp T T Tdamp tchain M tloop L
    ref = lammps_run(start, cu_u3.lammps_commands(), integ, 1000)
    Q = ref["Q"]
    dx = mod_cell_difference(state.positions_nc @ Q, ref["x_L"], ref["cell_L"])
    assert dx < 1e-8, f"positions differ by {dx:.3g} Å"
    np.testing.assert_allclose(state.velocities_nc @ Q, ref["v_L"], rtol=0, atol=1e-8)
    assert thermo.temperature[-1] == pytest.approx(ref["temp"], rel=1e-10)
    assert thermo.potential_energy[-1] == pytest.approx(ref["pe"], rel=1e-12)
    assert thermo.kinetic_energy[-1] == pytest.approx(ref["ke"], rel=1e-10)
    # the thermostat part of our conserved quantity is the fix's scalar f_1
    chain_energy = thermo.conserved[-1] - thermo.potential_energy[-1] - \
        thermo.kinetic_energy[-1]
    assert abs(ref["fix_scalar"]) > 0.1  # the chain has exchanged a lot of energy
    assert chain_energy == pytest.approx(ref["fix_scalar"], rel=0, abs=1e-10)
    assert integ.thermostat_energy(state) == pytest.approx(ref["fix_scalar"], rel=0, abs=1e-10)


def test_nhc_conserved_quantity_second_order(nvt_run):
    """The conserved quantity's error is the splitting's, O(dt²): 2 fs vs 1 fs (~0.1 s more)."""
    errors = {}
    for dt, steps in ((0.001, 1000), (0.002, 500)):
        start, state, integ, thermo = nvt_run(dt=dt, steps=steps)
        n = len(state)
        h = thermo.conserved - thermo.conserved[0]
        errors[dt] = np.abs(h).max() / n
        # the chain took out ~3.4e-3 eV/atom; the conserved quantity moves 200 times less
        assert abs(thermo.conserved[-1] - thermo.total_energy[-1]) / n > 2e-3
        momentum = np.abs(state.masses_n @ state.velocities_nc).max()
        assert momentum < 1e-9  # NH scaling keeps zero momentum zero
        assert thermo.dof == 3 * n - 3
    start, state, integ, thermo = nvt_run()
    n = len(state)
    drift = np.polyfit(thermo.time, thermo.conserved, 1)[0] / n  # eV/atom/ps
    msg = (f"max |H - H0| {errors[0.001]:.3g} eV/atom at 1 fs, {errors[0.002]:.3g} at 2 fs; "
           f"drift {drift:.3g} eV/atom/ps")
    assert errors[0.001] < 5e-5, msg  # measured 1.8e-5 (the 600 K -> 300 K transient)
    assert abs(drift) < 1e-5, msg  # measured 3.4e-7
    assert 3.5 < errors[0.002] / errors[0.001] < 4.5, msg  # measured 3.99
    assert 120.0 < thermo.temperature.min() and thermo.temperature[0] == pytest.approx(600.0)


def test_nhc_samples_canonical_kinetic_energy(cu_u3):
    """K of 32 Cu_u3 atoms at 300 K is Gamma(f/2, kT), f = 3N − 3 (20 000 steps, ~2.5 s).

    Mean T and var K against their error bars (fe2qc.statistics), and a Kolmogorov-Smirnov
    test of the whole distribution on samples one statistical inefficiency apart; the same
    test rejects the distribution of a 3 % wrong temperature or of 3N degrees of freedom.
    """
    T, steps = 300.0, 20000
    state = cu_state(cu_u3, T=T, seed=3, size=2)
    thermo = run_md(state, Calculator(cu_u3, multiple_images=True),
                    NoseHooverChain(0.002, T, 0.02), steps, thermo_every=1)
    n = len(state)
    f = 3 * n - 3
    keep = slice(len(thermo) // 5, None)  # discard the first 20 %
    t = mean_error(thermo.temperature[keep], equilibrate=False)
    assert abs(t.mean - T) < 4 * t.stderr, f"<T> = {t.mean:.2f} ± {t.stderr:.2f} K, target {T}"
    assert t.stderr < 0.01 * T  # measured 1.2 K: the test tells a 3 % error (3N vs 3N - 3)
    K = thermo.kinetic_energy[keep]
    var_ref = 0.5 * f * (KB * T) ** 2
    var = mean_error((K - K.mean()) ** 2, equilibrate=False)
    assert abs(var.mean - var_ref) < 4 * var.stderr, \
        f"var K = {var.mean:.4g} ± {var.stderr:.2g} eV², canonical {var_ref:.4g}"
    assert var.stderr < 0.06 * var_ref  # measured 3.4 %
    g = statistical_inefficiency(K)
    sub = K[::int(np.ceil(g))]  # ~1300 nearly independent samples (g ~ 12 steps)
    assert len(sub) > 1000

    def ks_p(shape, kT):
        return stats.kstest(sub, stats.gamma(shape, scale=kT).cdf).pvalue

    assert ks_p(0.5 * f, KB * T) > 0.01  # measured 0.73
    assert ks_p(0.5 * f, KB * T * 1.03) < 1e-3  # the test has the power to fail
    assert ks_p(0.5 * (f + 3), KB * T) < 1e-3
    assert np.ptp(thermo.conserved) / n < 1e-3  # measured 1.7e-4 eV/atom


def test_nhc_restart_continues_bitwise(cu_u3, tmp_path):
    """40 steps == 20 steps, save, restore (fresh calculator and integrator), 20 steps."""
    integ = NoseHooverChain(0.002, 600.0, 0.05, chain=4, loops=2)
    whole, *_, restored, _, _, _ = restart_in_halves(cu_u3, integ, tmp_path, 300.0)
    assert len(restored.variables["nhc_eta"]) == 4
    assert whole.variables["nhc_eta_dot"][0] != 0.0  # the thermostat did act


def test_nhc_bad_input_is_refused(cu_u3):
    for T in (0.0, -5.0, float("nan"), "300"):
        with pytest.raises(InputError, match="temperature"):
            NoseHooverChain(0.001, T, 0.1)
    for damping in (0.0, -0.1, float("inf")):
        with pytest.raises(InputError, match="damping"):
            NoseHooverChain(0.001, 300.0, damping)
    for chain in (0, -1, 1.5, True, "3"):
        with pytest.raises(InputError, match="chain"):
            NoseHooverChain(0.001, 300.0, 0.1, chain=chain)
    for loops in (0, 2.0):
        with pytest.raises(InputError, match="loops"):
            NoseHooverChain(0.001, 300.0, 0.1, loops=loops)
    with pytest.raises(InputError, match="dt"):
        NoseHooverChain(0.0, 300.0, 0.1)
    with pytest.raises(InputError, match="bad parameters"):
        integrator_from_dict({"name": "nose_hoover_chain", "dt": 0.001, "temperature": 300.0})
    # a state carrying a chain of another length is not silently reset
    state = cu_state(cu_u3)
    NoseHooverChain(0.001, 300.0, 0.1, chain=3).start(state)
    with pytest.raises(InputError, match="chain=2"):
        run_md(state, Calculator(cu_u3), NoseHooverChain(0.001, 300.0, 0.1, chain=2), 5)
    del state.variables["nhc_eta"]
    with pytest.raises(InputError, match="afresh"):
        NoseHooverChain(0.001, 300.0, 0.1).start(state)
