"""Elastic constants at finite temperature (atomistic.md.elastic) and ``fe2qc elastic -T``.

References we did not write: the estimator against the post-processing of LAMMPS's
``examples/ELASTIC_T/BORN_MATRIX/Argon/Numdiff/compute_born.py`` (numpy's ``np.cov`` of Voigt
stress vectors, the kinetic term from its ``compute_delta``); the low-temperature limit
against the 0 K constants (Cauchy-Born at the zero-pressure lattice constant); the adiabatic
conversion against the thermodynamic identity for the bulk modulus; refusals before work.
The long comparisons (fluctuation against direct deformation, native against LAMMPS, the
LAMMPS examples' published numbers) are in the slow tests and the demo.
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.elastic import elastic_constants
from atomistic.md.elastic import (
    adiabatic,
    cubic_constants,
    elastic_at_temperature,
    fluctuation_elastic,
)
from atomistic.md.engine import NativeEngine
from atomistic.md.run import Thermo
from coupling.cli import main
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.statistics import statistical_inefficiency
from fe2qc.tensors import VOIGT_PAIRS, from_voigt_stiffness, to_voigt_stiffness
from fe2qc.units import KB


def _synthetic(m=400, seed=3):
    """A Thermo with random but correlated Born and stress series (no MD)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(6, 6))
    s6 = rng.normal(size=(m, 6)) @ A * 1e-3 + 2e-3
    s = np.zeros((m, 3, 3))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        s[:, i, j] = s[:, j, i] = s6[:, I]
    b = rng.normal(size=(m, 6, 6)) * 0.01 + np.diag([1.0, 1.1, 1.2, 0.5, 0.6, 0.7])
    b = 0.5 * (b + b.transpose(0, 2, 1))
    born = np.stack([from_voigt_stiffness(x) for x in b])
    V = 1000.0
    cell = np.broadcast_to(np.cbrt(V) * np.eye(3), (m, 3, 3)).copy()
    zeros = np.zeros(m)
    th = Thermo(step=np.arange(m), time=zeros, temperature=zeros + 300, kinetic_energy=zeros,
                potential_energy=rng.normal(size=m), total_energy=zeros, conserved=zeros,
                pressure=zeros, stress_ccc=s, virial_ccc=-s * V, born_ccccc=born,
                dof=3 * 64 - 3, n_atoms=64, volume=V, cell_ccc=cell)
    return th, s6, b, V


def test_fluctuation_formula_equals_lammps_example_postprocessing():
    """C = <C_B> - V/kT cov(s) + N kT/V (dd + dd), as compute_born.py writes it."""
    th, s6, b, V = _synthetic()
    T = 300.0
    est = fluctuation_elastic(th, T, equilibrate=False)
    kT = KB * T
    # compute_born.py: CB - vol/kbT * np.cov(stre.T) + N kbT/vol * compute_delta()
    delta = np.ones((6, 6)) * 0.0
    delta[range(3), range(3)] = 2.0
    delta[range(3, 6), range(3, 6)] = 1.0
    # the covariance's correction for correlated samples, m/(m - g) in place of m/(m - 1)
    # (Bayley-Hammersley; g from fe2qc.statistics, checked against pymbar there)
    g = np.array([statistical_inefficiency(s6[:, k]) for k in range(6)])
    m = len(s6)
    scale = (m - 1) / (m - np.sqrt(np.outer(g, g)))
    ref = b.mean(axis=0) - V / kT * np.cov(s6.T) * scale + 64 * kT / V * delta
    np.testing.assert_allclose(est.voigt, ref, rtol=1e-12, atol=1e-12)
    # the error bar of a linear function: the cubic averages from the same series
    cub = cubic_constants(est)
    assert cub["C11"] == pytest.approx(np.mean(np.diag(ref)[:3]), rel=1e-12)
    assert cub["C12"] == pytest.approx(np.mean([ref[0, 1], ref[0, 2], ref[1, 2]]), rel=1e-12)
    assert cub["C44"] == pytest.approx(np.mean(np.diag(ref)[3:]), rel=1e-12)
    # uncorrelated synthetic samples: the error of C11 is the standard error of its series
    y = (b[:, 0, 0] + b[:, 1, 1] + b[:, 2, 2]) / 3 - V / kT * (
        sum((s6[:, k] - s6[:, k].mean()) ** 2 for k in range(3)) / 3)
    assert cub["C11_err"] == pytest.approx(y.std(ddof=1) / np.sqrt(400), rel=0.3)


def test_fluctuation_refuses_samples_without_born():
    th, *_ = _synthetic()
    th.born_ccccc = np.zeros((0, 3, 3, 3, 3))
    with pytest.raises(InputError, match="born=True"):
        fluctuation_elastic(th, 300.0)
    with pytest.raises(InputError, match="temperature"):
        fluctuation_elastic(_synthetic()[0], -1.0)


@pytest.fixture(scope="module")
def cu_0K(cu_u3):
    return elastic_constants(cu_u3, "fcc")


def test_low_temperature_limit_is_the_0K_tensor(cu_u3, cu_0K):
    """At 2 K and the 0 K volume the tensor is the 0 K one, within error bars.

    (At fixed volume C(T) - C(0) is the intrinsic anharmonic shift, ~1e-5 relative at 2 K;
    the thermal expansion, 4e-4 in C11 at 2 K, is left out by keeping the cell.)
    """
    r = elastic_at_temperature(NativeEngine(cu_u3), "fcc", cu_0K.a0, cu_u3.masses[0], 2.0,
                               cells=3, time_ps=2.0, lattice_time_ps=1.0, seed=5,
                               fixed_cell=True)
    d = r.as_dict()
    assert d["isothermal"] is True and d["method"] == "fluctuation"
    for k, (I, J) in (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3))):
        ref = cu_0K.C[I, J]
        assert abs(d[k] - ref) < 5 * d[k + "_err"] + 2e-4 * ref, (k, d[k], ref, d[k + "_err"])
        assert 0 < d[k + "_err"] < 0.05
    assert d["P_mean"] == pytest.approx(0.0, abs=0.05)  # the thermal pressure at 2 K
    # off-cubic entries vanish within their errors
    C, E = np.array(d["C"]), np.array(d["C_err"])
    assert np.all(np.abs(C[:3, 3:]) < 5 * E[:3, 3:] + 1e-3)


def test_adiabatic_conversion_inputs_match_finite_differences(cu_u3, cu_0K):
    """λ = (∂σ/∂T)_V and C_V from one run's fluctuations = finite differences over T.

    Two more NVT runs at T ± 40 K at the same cell give dP/dT and dE/dT directly (the
    thermodynamic definitions); the adiabatic correction is then T V λ⊗λ / C_V exactly.
    """
    a = cu_0K.a0 * 1.0048
    kw = dict(cells=3, time_ps=3.0, fixed_cell=True, lattice_time_ps=1.0, seed=2)
    eng = NativeEngine(cu_u3)
    r = elastic_at_temperature(eng, "fcc", a, cu_u3.masses[0], 300.0, **kw)
    iso, ad = r.isothermal, r.adiabatic
    lam, cv = ad.extras["lambda_cc"], ad.extras["heat_capacity"]
    ends = [elastic_at_temperature(eng, "fcc", a, cu_u3.masses[0], T, **kw)
            for T in (260.0, 340.0)]
    P = [e.lattice["pressure"] for e in ends]
    dP = [e.lattice["pressure_err"] for e in ends]
    dPdT_fd = (P[1] - P[0]) / 80.0
    dPdT_err = np.hypot(*dP) / 80.0
    dPdT = -np.trace(lam) / 3
    assert abs(dPdT - dPdT_fd) < 4 * dPdT_err + 0.1 * abs(dPdT_fd), (dPdT, dPdT_fd)
    assert cv == pytest.approx(3 * 108 * KB, rel=0.1)  # classical crystal: near Dulong-Petit
    corr = ad.value_ijkl - iso.value_ijkl
    np.testing.assert_allclose(corr, 300.0 * iso.volume / cv * np.einsum("ij,kl->ijkl", lam,
                                                                         lam), rtol=1e-9)
    assert abs(corr[1, 2, 1, 2]) < 1e-3 * iso.value_ijkl[1, 2, 1, 2]  # no shear correction
    assert adiabatic(iso).value_ijkl == pytest.approx(ad.value_ijkl)


def test_melting_is_detected(cu_u3):
    """Cu_u3 far above its melting point: a clear failure, not elastic constants of a liquid."""
    with pytest.raises(CalculationFailed, match="melted"):
        elastic_at_temperature(NativeEngine(cu_u3), "fcc", 3.75, cu_u3.masses[0], 4000.0,
                               cells=3, time_ps=2.0, lattice_time_ps=2.0, fixed_cell=True,
                               dt=0.001)


@pytest.mark.parametrize("argv, match", [
    (["--temperature", "0"], "temperature"),
    (["--temperature", "-5"], "temperature"),
    (["--time", "5"], "add --temperature"),
    (["--temperature", "300", "--time", "0.01"], "too short"),
    (["--temperature", "300", "--dt", "0.5"], "too large"),
    (["--temperature", "300", "--fixed-cell"], "--a0"),
    (["--temperature", "300", "--cells", "2"], "too small for the cutoff"),
    (["--temperature", "300", "--ensemble", "nve"], "--adiabatic"),
])
def test_cli_refuses_bad_finite_temperature_input(argv, match, capsys):
    code = main(["elastic", "--potential", "Cu_u3.eam", "--lattice", "fcc", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert match in err and err.count("fe2qc elastic: error") == 1


def test_cli_refuses_a_pair_potential_without_mass(capsys):
    assert main(["elastic", "--pair-style", "lj/cut 5.5", "--pair-coeff", "0.4 2.2",
                 "--lattice", "fcc", "--temperature", "30"]) == 2
    assert "--mass" in capsys.readouterr().err


def test_cli_refuses_diamond_on_the_native_engine(capsys):
    assert main(["elastic", "--potential", "Cu_u3.eam", "--lattice", "diamond",
                 "--temperature", "300"]) == 2
    assert "--engine lammps" in capsys.readouterr().err


def test_cli_finite_temperature_json(readme_runner):
    """The README's quick command: the keys the issue names, in GPa, beside the 0 K constants.

    (One run, shared with tests/test_readme_commands.py.)
    """
    run = readme_runner.run("fe2qc elastic --potential Cu_u3.eam --lattice fcc --temperature "
                            "300 --cells 3 --time 4 --json").ok()
    d = run.last_json()
    for k in ("T", "a0", "C11", "C12", "C44", "C11_err", "C12_err", "C44_err", "C", "method",
              "ensemble", "isothermal", "adiabatic", "C11_0K", "a0_err", "symmetry"):
        assert k in d, k
    assert d["T"] == 300.0 and d["ensemble"] == "nvt" and d["isothermal"] is True
    assert np.array(d["C"]).shape == (6, 6)
    # expanded and softer than at 0 K (Cu_u3 at 300 K: a0 +0.5 %, C11 -8 %)
    assert d["a0_0K"] * 1.002 < d["a0"] < d["a0_0K"] * 1.01
    assert 0.85 * d["C11_0K"] < d["C11"] < d["C11_0K"] - 3 * d["C11_err"]
    assert d["adiabatic"]["C11"] > d["C11"]
    assert to_voigt_stiffness(from_voigt_stiffness(np.array(d["C"]))) == pytest.approx(
        np.array(d["C"]))
    assert "lattice at T = 300 K" in run.proc.stderr  # progress on stderr, stdout the JSON
    assert "run too short" in run.proc.stderr  # 4 ps: the warning the quick form earns


# ----------------------------------------------------------------------------- slow: the
# references that need long runs (make test-slow); the demo runs the converged versions.

def _cli_json(argv, capsys) -> dict:
    import json

    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_fluctuation_and_deformation_routes_agree_at_300K(cu_u3):
    """Cu_u3, 300 K, one cell: the two independent routes within their combined errors."""
    eng = NativeEngine(cu_u3)
    kw = dict(cells=3, time_ps=20.0, fixed_cell=True, lattice_time_ps=2.0)
    a = elastic_at_temperature(eng, "fcc", 3.6327, cu_u3.masses[0], 300.0, seed=3, **kw)
    b = elastic_at_temperature(eng, "fcc", 3.6327, cu_u3.masses[0], 300.0, seed=4,
                               method="deformation", **kw)
    da, db = a.as_dict(), b.as_dict()
    for k in ("C11", "C12", "C44"):
        err = np.hypot(da[k + "_err"], db[k + "_err"])
        assert abs(da[k] - db[k]) < 3 * err, (k, da[k], db[k], err)
        assert err < 2.5  # measured 1.7 for C11 (20 ps, 108 atoms)


@pytest.mark.slow
def test_lammps_silicon_example_is_reproduced(capsys):
    """LAMMPS examples/ELASTIC_T/BORN_MATRIX/Silicon: SW Si, 216 atoms at a = 5.457 Å, 1477 K.

    Its published output (log of the ortho run, 115 ps, fix langevin damp 0.01 ps, dt 0.766
    fs): C11 = 133.2, C12 = 73.9, C44 = 46.0 GPa (issue 12; a second log of the same input
    gives 133.2, 73.8, 45.2). The example's own statistical spread, estimated from its output:
    the rms of the 12 entries of its 6×6 matrix that vanish for a cubic crystal is 0.38 GPa
    per component, and its two logs differ by 0.8 GPa in C44: we take 0.6 GPa.
    """
    d = _cli_json(["elastic", "--engine", "lammps", "--pair-style", "sw", "--pair-coeff",
                   "* * Si.sw Si", "--mass", "28.06", "--lattice", "diamond", "--a0", "5.457",
                   "--fixed-cell", "--temperature", "1477", "--dt", "0.000766", "--friction",
                   "100", "--cells", "3", "--time", "30", "--json"], capsys)
    assert d["engine"] == "lammps" and d["atoms"] == 216
    spread = 0.6
    for k, ref in (("C11", 133.2), ("C12", 73.9), ("C44", 46.0)):
        assert abs(d[k] - ref) < 3 * np.hypot(d[k + "_err"], spread), (k, d[k], d[k + "_err"])
    # the 0 K constants of SW Si with inner relaxation (Cowley 1988: 151.4, 76.4, 56.4)
    assert d["C11_0K"] == pytest.approx(151.4, abs=0.2)
    assert d["C44_0K"] == pytest.approx(56.4, abs=0.2)


@pytest.mark.slow
def test_lammps_argon_example_is_reproduced(capsys):
    """LAMMPS examples/ELASTIC_T/BORN_MATRIX/Argon: LJ Ar, 500 atoms, 60 K, zero pressure.

    Its published short-run output: C11 = 2.457, C12 = 1.300, C44 = 1.443 GPa, with ~10 %
    run-to-run spread (issue 12); ours within our error bars plus that spread. (The demo's
    200 ps run gives the converged values, cited in the README.)
    """
    eps = 0.238067 * 0.0433641  # kcal/mol -> eV
    d = _cli_json(["elastic", "--pair-style", "lj/cut 12.0", "--pair-coeff", f"{eps!r} 3.405",
                   "--element", "Ar", "--lattice", "fcc", "--a0", "5.3", "--mass", "39.948",
                   "--temperature", "60", "--cells", "5", "--dt", "0.002", "--time", "40",
                   "--json"], capsys)
    assert d["atoms"] == 500
    assert d["a0"] == pytest.approx(5.4095, rel=2e-3)  # the example's NPT volume 27.047271³/5³
    for k, ref in (("C11", 2.457), ("C12", 1.300), ("C44", 1.443)):
        assert abs(d[k] - ref) < 3 * d[k + "_err"] + 0.1 * ref, (k, d[k], d[k + "_err"])
