"""QC convergence trend: qce stalls, the consistent and blended schemes converge.

One run of the README's ``python demos/qc_convergence.py --quick`` (domain radius 30 a0,
R_a = 4, 6, 9 a0, both defects, about 30 s) feeds every trend test, so the demo's CLI is
tested too.

Measured (quick run), relative W^{1,2} error at R_a = 4 -> 9 a0:

=========  ===================  ====================
scheme     vacancy              microcrack
=========  ===================  ====================
qce        1.14 -> 1.84  (x1.6)  0.091 -> 0.100 (x1.1)
gfc, qcf   0.027 -> 0.0059 (x0.22)  0.076 -> 0.017 (x0.22)
bqce       0.41 -> 0.27  (x0.65)  0.034 -> 0.014 (x0.42)
bgfc       0.0099 -> 0.0021 (x0.21)  0.027 -> 0.0049 (x0.18)
=========  ===================  ====================

Thresholds and why they would fail for a wrong scheme:

* qce: last/first > 0.5. Its ghost forces live on the interface, whose length grows with
  R_a, so the error does not decay; a qce that (wrongly) converged like the corrected schemes
  would drop to ~0.2.
* qcf, gfc, bgfc: last/first < 0.4 (measured 0.18-0.22, i.e. about R_a^{-2}). A residual
  ghost force (a wrong gfc dead load, a bgfc correction at the wrong state, a qcf with the
  wrong halo) leaves an O(1)-per-interface-atom consistency error and the ratio would be
  > 0.5 like qce's.
* qce / bgfc at the largest radius > 10 (measured 900 vacancy, 21 microcrack); qce / qcf >
  10 for the vacancy (measured 310).
* gfc and qcf give the same W^{1,2} error (gfc's fixed point solves the qcf equations), to
  1e-5 relative (both relaxed to 1e-8 eV/Å).
* bqce with a blending width ~ R_a: decreases monotonically, last/first < 0.85 (measured
  0.65 and 0.42); with a fixed-width blending band (or the sharp qce weights) it would not.
* The atomistic energy of every QC displacement is >= the reference's (the reference
  minimises it with the same Dirichlet data): excess >= -1e-9 relative.
"""

from __future__ import annotations

import json

import pytest

from coupling.qc.study import convergence_study, defect_sites, fit_rate
from fe2qc.errors import InputError


@pytest.fixture(scope="module")
def quick(readme_runner):
    """Return ``(outdir, qc_convergence.json, stdout)`` of the README's quick command.

    ``python demos/qc_convergence.py [--quick]``: one run, shared with
    tests/test_readme_commands.py.
    """
    run = readme_runner.run("python demos/qc_convergence.py [--quick]").ok()
    out = run.output("qc_convergence_quick")
    return out, json.loads((out / "qc_convergence.json").read_text()), run.proc.stdout


def _w12(res, scheme):
    return [r["W12_error"] for r in res["runs"] if r["scheme"] == scheme]


def test_demo_writes_plot_json_and_rate_table(quick):
    out, summary, stdout = quick
    assert (out / "qc_convergence.png").stat().st_size > 10_000
    on_disk = json.loads((out / "qc_convergence.json").read_text())
    assert set(on_disk["studies"]) == {"vacancy", "microcrack"}
    assert "W12/R_a" in stdout and "pub R_a" in stdout
    for res in summary["studies"].values():
        assert all(r["converged"] for r in res["runs"])
        assert len(res["runs"]) == len(res["schemes"]) * len(res["radii"])


@pytest.mark.parametrize("defect", ["vacancy", "microcrack"])
def test_qce_stalls_corrected_and_blended_schemes_converge(quick, defect):
    res = quick[1]["studies"][defect]
    qce, qcf, gfc = _w12(res, "qce"), _w12(res, "qcf"), _w12(res, "gfc")
    bqce, bgfc = _w12(res, "bqce"), _w12(res, "bgfc")
    assert qce[-1] / qce[0] > 0.5, qce
    for name, err in (("qcf", qcf), ("gfc", gfc), ("bgfc", bgfc)):
        assert err[-1] / err[0] < 0.4, (name, err)
    assert qce[-1] / bgfc[-1] > 10, (qce, bgfc)
    if defect == "vacancy":
        assert qce[-1] / qcf[-1] > 10, (qce, qcf)
    for a, b in zip(gfc, qcf, strict=True):
        assert abs(a - b) <= 1e-5 * b
    assert all(b < a for a, b in zip(bqce, bqce[1:], strict=False)), bqce
    assert bqce[-1] / bqce[0] < 0.85, bqce
    for r in res["runs"]:
        assert r["atomistic_energy_excess"] >= -1e-9, r
    # the bgfc energy error falls too (measured x0.02 and x0.03 from R_a = 4 to 9)
    e = [r["energy_error"] for r in res["runs"] if r["scheme"] == "bgfc"]
    assert e[-1] / e[0] < 0.2, e
    assert res["rates"]["qcf"]["W12_vs_Ra"] < -1.5
    assert res["rates"]["qce"]["W12_vs_Ra"] > -0.2


def test_helpers_and_input_checks():
    assert len(defect_sites("microcrack", 1.0, crack_sites=6)) == 6
    assert defect_sites("microcrack", 1.0, crack_sites=5)[0] == [-2.0, 0.0]
    assert abs(fit_rate([1, 2, 4], [1, 0.25, 0.0625]) + 2.0) < 1e-12
    with pytest.raises(InputError, match="unknown defect"):
        convergence_study("interstitial")
    with pytest.raises(InputError, match="increasing"):
        convergence_study("vacancy", radii=(6, 4))
    with pytest.raises(InputError, match="2D"):
        convergence_study("vacancy", dim=3)
