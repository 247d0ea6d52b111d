"""The QC-vs-atomistics crack benchmark runs and QC matches the reference near the tip.

No timing assertions (the machine may be shared), but the timing spread is reported: the
README's ``python benchmarks/bench_qc_crack.py --quick --json`` (one run, shared with
tests/test_readme_commands.py) has ``--repeats 2`` by default: every case has two runs of
each child, their median/min/max wall and CPU times and the per-run speedups.

Error bounds (``--quick``: R = 30 and 45 a0, atomistic radius 12 a0, bgfc, nearest-neighbour
potential, pre-cut crack at 0.9 K_G; deterministic, the repeats reproduce them to 1e-9),
each just above its measured value:

=====  ===================  =====================  ==========================  =============
R/a0   relative_error       max_abs_error_A (Å)    relative_error_vs_kfield    ||u-uK||/||u||
=====  ===================  =====================  ==========================  =============
30     8.03e-4 (< 1.0e-3)   5.3e-4 (< 6.5e-4)      1.20e-2 (< 1.5e-2)          0.067 (> 0.055)
45     1.17e-3 (< 1.4e-3)   7.1e-4 (< 8.5e-4)      1.55e-2 (< 1.9e-2)          0.075 (> 0.055)
=====  ===================  =====================  ==========================  =============

The last column, ``relative_error / relative_error_vs_kfield = ||u_ref - u_K|| / ||u_ref||``,
is the non-linear near-tip correction the reference has over the K-field: it must be
substantial, or the benchmark would only compare two K-fields. The error grows with R (the
far-field coarse-graining error, README), so R = 45 must be worse than R = 30.
"""

import math

#: R/a0 -> (relative_error, max_abs_error_A, relative_error_vs_kfield) upper bounds
BOUNDS = {30.0: (1.0e-3, 6.5e-4, 1.5e-2), 45.0: (1.4e-3, 8.5e-4, 1.9e-2)}


def test_bench_qc_crack_quick_json(readme_runner):
    data = readme_runner.run("python benchmarks/bench_qc_crack.py [--quick] --json").ok(
    ).last_json()
    keys = {"sites", "qc_dofs", "atomistic_dofs", "speedup", "speedup_min", "speedup_max",
            "speedup_cpu", "qc_cpu_s", "atomistic_cpu_s", "repeats", "relative_error", "cases",
            "target_met"}
    assert keys <= data.keys()
    assert data["target_met"] is False  # quick sizes are far below 1e6 sites
    assert [c["radius_a0"] for c in data["cases"]] == [30.0, 45.0]
    for c in data["cases"]:
        assert c["atomistic_run"] is True
        assert c["scheme"] == "bgfc"
        assert c["atomistic_dofs"] == 2 * c["sites"]
        assert 0 < c["qc_dofs"] < c["atomistic_dofs"]
        assert c["nodes"] * 2 == c["qc_dofs"]
        # timing spread over the repeats: wall and CPU per run, median within [min, max]
        assert c["repeats"] == 2
        for kind in ("qc", "atomistic"):
            runs = c[f"{kind}_time_s_runs"]
            assert len(runs) == 2 and len(c[f"{kind}_cpu_s_runs"]) == 2
            assert min(runs) == c[f"{kind}_time_s_min"] and max(runs) == c[f"{kind}_time_s_max"]
            assert c[f"{kind}_time_s_min"] <= c[f"{kind}_time_s"] <= c[f"{kind}_time_s_max"]
            assert all(t > 0 for t in c[f"{kind}_cpu_s_runs"])
        assert c["speedup_min"] <= c["speedup"] <= c["speedup_max"]
        assert c["speedup"] > 0 and math.isfinite(c["speedup"]) and c["speedup_cpu"] > 0
        # accuracy, each error against its own bound
        rel, mx, rel_k = BOUNDS[c["radius_a0"]]
        assert 0 < c["relative_error"] < rel, c["relative_error"]
        assert 0 < c["max_abs_error_A"] < mx, c["max_abs_error_A"]
        assert 0 < c["relative_error_vs_kfield"] < rel_k, c["relative_error_vs_kfield"]
        nonlinear = c["relative_error"] / c["relative_error_vs_kfield"]  # ||u-uK|| / ||u||
        assert nonlinear > 0.055, nonlinear
        assert c["qc_peak_mb"] > 0 and c["atomistic_peak_mb"] > 0
        assert c["qc_max_force"] <= 1e-8 and c["atomistic_max_force"] <= 1e-8
        # the crack neither runs away nor heals: reference and QC tips agree, within a
        # few bonds of the K-field's
        assert c["tip_x_a0_qc"] == c["tip_x_a0_atomistic"]
        assert abs(c["tip_x_a0_atomistic"] - c["tip_x_a0_kfield"]) <= 3.0
    small, large = data["cases"]
    assert large["relative_error"] > small["relative_error"]
    assert data["sites"] == large["sites"]
    assert data["relative_error"] == large["relative_error"]
    assert data["speedup"] == large["speedup"] and data["repeats"] == 2
