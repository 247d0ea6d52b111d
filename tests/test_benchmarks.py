"""The force benchmark runs and its energies agree with LAMMPS (no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lammps  # bench_forces compares with LAMMPS; both read Cu_u3.eam

ROOT = Path(__file__).resolve().parents[1]


def test_bench_forces_quick_json():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_forces.py"),
                          "--quick", "--json"], capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    keys = {"atoms", "time_per_atom_step_s", "lammps_time_per_atom_step_s",
            "time_ratio_vs_lammps", "neighbor_build_s", "lammps_neighbor_build_s",
            "bytes_per_atom", "cases"}
    assert keys <= data.keys()
    assert data["atoms"] == 4000
    assert data["energy_check_passed"] is True
    assert len(data["cases"]) == 1
    case = data["cases"][0]
    assert keys - {"cases"} <= case.keys()
    assert case["energy_rel_diff"] < 1e-10
    for k in keys - {"cases", "atoms"}:
        assert data[k] > 0


@pytest.mark.slow
@pytest.mark.dolfinx
@pytest.mark.timeout(1800)
def test_bench_fe2_quick_json_values():
    """Iteration counts are scalars and hold what the README says.

    3 / 3 / 7 on the 112-point mesh; timings are only checked for consistency, never against a
    bound.
    """
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_fe2.py"),
                          "--quick", "--json"], capture_output=True, text=True, timeout=1700,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["gauss_points"] == {"1": 112, "2": 112} and data["fd_gauss_points"] == 112
    for key, expected in (("newton_iterations_consistent", 3), ("newton_iterations_fd", 3),
                          ("initial_stiffness_iterations", 7)):
        assert type(data[key]) is int, (key, data[key])
        assert data[key] == expected, (key, data[key])
    ratio = data["fd_tangent_time_ratio"]
    assert isinstance(ratio, float) and ratio > 0
    assert ratio == pytest.approx(data["wall_s_fd"] / data["wall_s_consistent"], rel=1e-12)
    assert 0 <= data["dispatch_share"] < 1 and data["parallel_efficiency_2"] > 0
    model = data["cost_model_seconds_per_iteration_1e5_points"]
    assert [model[k] > model[n] for k, n in (("1", "2"), ("2", "16"), ("16", "128"))] == [True] * 3
    # the discrete-event model (coupling.costmodel): measured parameters, 2-rank checks,
    # projections; consistency only (the README reports the figures)
    for key in ("model_efficiency_1e4", "model_efficiency_1e4_root", "restart_overhead_s",
                "checkpoint_write_s", "model_error_2_ranks", "model_assumptions",
                "model_parameters", "model_scaling", "model_root_below"):
        assert key in data, key
    assert set(data["model_error_2_ranks"]) == {"local", "worker", "groups"}
    assert all(r > 0 for r in data["model_error_2_ranks"].values())
    assert 0 < data["model_efficiency_1e4_root"] < data["model_efficiency_1e4"] <= 1
    assert data["model_scaling"]["new"][-1] == data["model_efficiency_1e4"]
    assert data["model_scaling"]["ranks"][-1] == 10000
    assert data["restart_same_result"] is True and data["checkpoint_write_s"] > 0
    assert Path(data["model_plot"]).is_file()
    assert data["dispatch_2_layouts"]["groups"]["groups"] == 2


@pytest.mark.slow
@pytest.mark.dolfinx
def test_bench_concurrent_quick_json(readme_runner):
    """The concurrent-crack benchmark (the README's quick command, one run shared with its test).

    Timings are checked for consistency only, never against a bound; the four layouts must
    give bitwise the same displacements.
    """
    data = readme_runner.run("python benchmarks/bench_concurrent.py [--quick] --json").ok(
    ).last_json()
    assert data["quick"] is True and data["repeats"] == 1 and data["bitwise"] is True
    cases = data["cases"]
    assert list(cases) == ["cauchy_born", "rve_1", "rve_2_replicated", "rve_2_worker"]
    assert [(c["ranks"], c["workers"]) for c in cases.values()] == [(1, 0), (1, 0), (2, 0),
                                                                    (2, 1)]
    assert cases["cauchy_born"]["rve_points"] == 0
    for name in ("rve_1", "rve_2_replicated", "rve_2_worker"):
        c = cases[name]
        assert 0 < c["rve_points"] < c["gauss_points"] == cases["cauchy_born"]["gauss_points"]
        assert [r["newton_iterations"] for r in c["runs"]] == [
            r["newton_iterations"] for r in cases["rve_1"]["runs"]]
        assert 0 < c["rve_wall_s"]["median"] <= c["wall_s"]["median"]
    t = {k: c["wall_s"]["median"] for k, c in cases.items()}
    assert data["rve_cost_ratio"] == pytest.approx(t["rve_1"] / t["cauchy_born"], rel=1e-12)
    assert data["speedup_replicated"] == pytest.approx(t["rve_1"] / t["rve_2_replicated"],
                                                       rel=1e-12)
    assert 0 < data["rve_share"] < 1
    assert 1 <= data["amdahl_replicated"] <= 2


@pytest.mark.slow
def test_bench_md_quick_json(readme_runner):
    """The MD benchmark (the README's quick command): the issue's keys, checks passed.

    Timings are checked for consistency only, never against a bound: both engines ran the
    same trajectory (to 1e-10 Å) and gave the same Born tensor on the same frame.
    """
    data = readme_runner.run("python benchmarks/bench_md.py [--quick] --json").ok().last_json()
    assert data["atoms"] == 4000 and data["checks_passed"] is True
    for k in ("time_per_atom_step_s", "lammps_time_per_atom_step_s", "born_sample_s",
              "lammps_born_sample_s", "bytes_per_atom"):
        assert data[k] > 0, k
    assert data["time_ratio_vs_lammps"] == pytest.approx(
        data["time_per_atom_step_s"] / data["lammps_time_per_atom_step_s"], rel=0.5)
