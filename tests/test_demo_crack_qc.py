"""The crack-tip QC demo (lattice trapping) runs in its quick form and reports consistent data.

Checked (quick form: triangular radius 35 a0, Cu slab radius 16 a0, K step 0.01 K_G; both
scans start one step below K_G):

* units: one convention (the triangular lattice is a layer 1 Å thick), the same labels in the
  JSON and the printout, and K_G = sqrt(2 γ E') from the reported γ and E' to round-off;
* both lattices find K_+ and K_- (the tip advanced and healed by one period). The scan starts
  below K_G, so K_+ >= K_G is a result: it fails if the tip advances one period between
  K_start and K_G; K_- <= K_G fails if it heals above K_G. Both lattices must bracket K_G
  strictly: the tip still unmoved at the last K >= K_G before K_+ and unhealed at the last
  K <= K_G before K_-. Measured: triangular K_+ in [1.01, 1.02], K_- in [0.96, 0.97]; Cu
  K_+ in [1.02, 1.03], K_- in [0.98, 0.99];
* the tip never moves backwards while K rises nor forwards while it falls, and for the
  triangular lattice (no hysteresis, README) loading and unloading give the same tip at
  every K visited by both;
* the outputs: extxyz readable by ASE with one frame per relaxation, the potential's element
  (X for the pair potential, Cu), every atom inside the written cell along the open axes, and
  `frame_origin` + position = reference + displacement; the VTX folder; the PNG.
"""

from __future__ import annotations

import json
import math
import re

import pytest

pytestmark = pytest.mark.dolfinx

KEYS = {"K_G", "gamma", "E_prime", "K_plus", "K_minus", "K_plus_over_KG", "K_minus_over_KG",
        "trapping_range_over_KG", "tip_history", "sites", "nodes", "dofs", "wall_time",
        "frames", "status_up", "status_down"}


@pytest.fixture(scope="module")
def quick_run(readme_runner):
    """Return ``(outdir, summary.json, stdout)`` of the README's quick command.

    ``python demos/crack_tip_qc.py [--quick]``: one run, shared with
    tests/test_readme_commands.py.
    """
    run = readme_runner.run("python demos/crack_tip_qc.py [--quick]").ok()
    out = run.output("crack_tip_qc_quick")
    return out, json.loads((out / "summary.json").read_text()), run.proc.stdout


UNITS = {"gamma": "eV/Å²", "E_prime": "eV/Å³", "K": "eV/Å^(5/2)", "length": "Å"}


def test_json_units_and_griffith(quick_run):
    _, data, out = quick_run
    assert set(data) == {"triangular", "fcc"}
    for lat, r in data.items():
        assert KEYS <= set(r), (lat, KEYS - set(r))
        assert r["K_G"] == pytest.approx(math.sqrt(2 * r["gamma"] * r["E_prime"]), rel=1e-12)
        assert r["gamma"] > 0 and r["E_prime"] > 0
        assert {k: r["units"][k] for k in UNITS} == UNITS, r["units"]
    assert "1 Å" in data["triangular"]["units"]["convention"]
    # the printout uses the same labels for both lattices
    lines = re.findall(r"γ = [0-9.]+ (\S+), E' = [0-9.]+ (\S+), K_G = sqrt\(2 γ E'\) = "
                       r"[0-9.]+ (\S+)", out)
    assert lines == [("eV/Å²", "eV/Å³", "eV/Å^(5/2)")] * 2, lines


@pytest.mark.parametrize("lat", ["triangular", "fcc"])
def test_trapping_brackets_griffith(quick_run, lat):
    r = quick_run[1][lat]
    step = r["K_step_over_KG"]
    assert r["K_start_over_KG"] == pytest.approx(1.0 - step)
    assert r["status_up"] == "tip advanced" and r["status_down"] == "tip receded (healed)", r
    kp, km = r["K_plus_over_KG"], r["K_minus_over_KG"]
    bp, bm = r["K_plus_bracket_over_KG"], r["K_minus_bracket_over_KG"]
    assert bp[1] == kp and 0 < kp - bp[0] <= step + 1e-12, (kp, bp)
    assert bm[0] == km and 0 < bm[1] - km <= step + 1e-12, (km, bm)
    # thermodynamics (the scan started below K_G, so neither holds by construction)
    assert kp >= 1.0 - 1e-9, (lat, bp)
    assert bm[1] <= 1.0 + 1e-9, (lat, bm)
    assert r["K_plus"] == pytest.approx(kp * r["K_G"], rel=1e-12)
    assert r["K_minus"] == pytest.approx(km * r["K_G"], rel=1e-12)
    assert r["griffith_bracketed"] is True, (bm, bp)  # K_G strictly inside both brackets
    assert bp[0] >= 1.0 - 1e-9 and bm[1] <= 1.0 + 1e-9
    # the tip moves forwards only while K rises and backwards only while it falls
    h = r["tip_history"]
    up = [x["tip_x"] for x in h if x["stage"] in ("start", "load")]
    dn = [x["tip_x"] for x in h if x["stage"] == "heal"]
    assert all(b >= a - 1e-9 for a, b in zip(up, up[1:], strict=False)), up
    assert all(b <= a + 1e-9 for a, b in zip(dn, dn[1:], strict=False)), dn
    if lat == "triangular":  # no hysteresis at this resolution (README)
        assert r["tip_hysteresis"] is not None and r["tip_hysteresis"] <= 1e-6, r


def test_output_files(quick_run):
    import ase.io
    import numpy as np

    outdir, data, _ = quick_run
    for lat, r in data.items():
        frames = ase.io.read(outdir / f"{lat}_atoms.extxyz", index=":")
        assert len(frames) == r["frames"] == len(r["tip_history"])
        assert "displacement" in frames[0].arrays and "region" in frames[0].arrays
        element = "Cu" if lat == "fcc" else "X"  # the pair potential names no element
        assert set(frames[0].get_chemical_symbols()) == {element}
        ref = None
        for f in frames:
            frac = f.positions @ np.linalg.inv(f.cell.array)
            open_axes = [k for k in range(3) if not f.pbc[k]]
            assert (frac[:, open_axes] >= 0).all() and (frac[:, open_axes] <= 1).all()
            X = f.positions + f.info["frame_origin"] - f.arrays["displacement"]
            ref = X if ref is None else ref
            np.testing.assert_allclose(X, ref, atol=1e-6)  # the same reference sites
        # positions are in the crack-tip frame again: the sites next to the tip (origin)
        assert np.linalg.norm(ref[:, :2], axis=1).min() < 2.0
        assert (outdir / f"{lat}_continuum.bp").is_dir()
        assert (outdir / f"{lat}_trapping.png").stat().st_size > 10_000


@pytest.mark.parametrize("kw, match", [({"K_step": 0.0}, "K_step"),
                                       ({"K_start": float("nan")}, "K_start"),
                                       ({"K_start": 1.7}, "K_min < K_start < K_max"),
                                       ({"K_min": 1.2}, "K_min < K_start < K_max")])
def test_trapping_scan_refuses_bad_K_before_any_work(kw, match):
    from coupling.qc.trapping import trapping_scan
    from fe2qc.errors import InputError

    with pytest.raises(InputError, match=match):
        trapping_scan(None, None, **kw)  # refused before the system is touched
