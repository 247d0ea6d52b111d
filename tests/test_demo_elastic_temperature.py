"""The finite-temperature demo: Cu_u3 from 0 K to 900 K, two routes, two engines.

One run of the README's ``python demos/elastic_temperature.py [--quick]`` (108 atoms, 4 ps
per run, 300 and 900 K, about 12 s), shared with tests/test_readme_commands.py. What would
fail for a wrong estimator: the two routes (fluctuation and direct deformation) and the two
engines (native analytic Born term, LAMMPS numdiff) are independent, so a wrong Born term,
fluctuation term, kinetic term or unit would separate them by many error bars; C(T) must
fall below the 0 K constants and keep falling with T (thermal softening of Cu).
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def quick(readme_runner):
    run = readme_runner.run("python demos/elastic_temperature.py [--quick]").ok()
    out = run.output("elastic_temperature_quick")
    return out, json.loads((out / "summary.json").read_text()), run.proc.stdout


def test_routes_and_engines_agree_within_error_bars(quick):
    _, s, stdout = quick
    for name, z in s["checks"].items():
        for k, v in z.items():
            assert abs(v) < 4.0, (name, k, v)  # combined standard errors
    assert "deformation_vs_fluctuation_300K" in stdout


def test_softening_with_temperature_and_plot(quick):
    out, s, _ = quick
    zero = s["zero_K"]
    fl = sorted(s["runs"]["fluctuation"], key=lambda d: d["T"])
    assert [d["T"] for d in fl] == [300.0, 900.0]
    for k in ("C11", "C12", "C44"):
        vals = [zero[k]] + [d[k] for d in fl]
        errs = [0.0] + [d[k + "_err"] for d in fl]
        for a, b, ea, eb in zip(vals, vals[1:], errs, errs[1:], strict=False):
            assert b < a - 2 * (ea + eb), (k, vals)
        for d in fl:  # adiabatic >= isothermal, equal for the shear constant
            assert d["adiabatic"][k] >= d[k] - 1e-9
            assert 0 < d[k + "_err"] < 3.0
    assert fl[0]["a0"] > zero["a0"] and fl[1]["a0"] > fl[0]["a0"]  # thermal expansion
    assert (out / "elastic_temperature.png").stat().st_size > 20_000
