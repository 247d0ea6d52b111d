"""`fe2qc run` of a concurrent problem (``[mesh] generator = "crack_disc"``, coupling.qc.run).

* The schema: demos/crack_concurrent.toml parses; every input the concurrent solver cannot
  take is refused with an InputError naming section and key, before any work.
* End to end: ``fe2qc run demos/crack_concurrent.toml`` from a scratch working directory
  writes its outputs where the TOML says; the relaxed crack follows the K-field of the
  crystal (LEFM, an outside reference): the free far-field nodes fit K to 1 %, the opening
  behind the tip far from the atoms and sigma_yy at the Gauss points ahead of it are the LEFM
  ones to 10 %, and every K is relaxed to 1e-8 eV/Å.
* The same problem with a Cauchy-Born continuum gives the perfect-RVE answer to 1e-9 Å (a
  perfect Bravais RVE relaxes nothing); without ``[atomistic]`` (no atoms, the continuum in
  every cell; with RVEs: an RVE in every cell) the answer differs near the tip and follows
  LEFM far from it.
* ``mpirun -n 2 fe2qc run ... --workers 1`` (one RVE worker) and ``--workers 0`` (two macro
  ranks sharing the RVEs) give bitwise the serial displacements.
"""

import copy
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from coupling.config import ATOMISTIC_SCHEMES, load_config, parse_config
from fe2qc.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demos" / "crack_concurrent.toml"
BIN = Path(sys.executable).parent
#: one BLAS thread: bitwise comparisons between runs must not depend on the thread count
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _demo() -> dict:
    return tomllib.loads(DEMO.read_text())


def _parse(data: dict):
    return parse_config(data, base_dir=DEMO.parent, source=DEMO)


# -- schema (< 0.1 s each) --------------------------------------------------------------------
def test_demo_parses_as_a_concurrent_problem():
    from coupling.qc.concurrent import ENERGY_SCHEMES

    assert ATOMISTIC_SCHEMES == ENERGY_SCHEMES
    cfg = load_config(DEMO)
    assert cfg.mesh.concurrent and cfg.mesh.generator == "crack_disc"
    assert cfg.mesh.radius == 43.38 and cfg.mesh.growth == 1.5
    assert cfg.atomistic.radius == 10.845 and cfg.atomistic.scheme == "bgfc"
    assert cfg.atomistic.handshake is None and cfg.atomistic.rve_radius is None
    assert cfg.material.type == "rve" and cfg.material.size == (1, 1, 1)
    assert cfg.loading.mode == "K" and cfg.loading.load_factors() == [0.5, 1.0]
    assert cfg.output.directory == Path("results/crack_concurrent_run")
    del_atoms = _demo()
    del del_atoms["atomistic"]
    assert _parse(del_atoms).atomistic is None


def _with(changes: dict, drop: tuple = ()) -> dict:
    data = copy.deepcopy(_demo())
    for section, keys in changes.items():
        if keys is None:
            data[section] = None
            continue
        data.setdefault(section, {})
        for k, v in keys.items():
            if v is None:
                data[section].pop(k, None)
            else:
                data[section][k] = v
    for section in drop:
        data.pop(section)
    return data


REFUSED = {
    "atoms_on_cracked_plate": (
        {"mesh": {"generator": "cracked_plate", "radius": None, "growth": None}},
        r"\[atomistic\] needs \[mesh\] generator = 'crack_disc'.*symmetry planes.*cut the "
        r"lattice"),
    "atoms_on_rectangle": (
        {"mesh": {"generator": "rectangle", "radius": None, "growth": None},
         "loading": {"mode": "traction"}},
        r"\[atomistic\] needs \[mesh\] generator = 'crack_disc'"),
    "mode_traction": ({"loading": {"mode": "traction"}},
                      r"\[loading\] mode = 'traction' is not allowed .*'K'"),
    "bcc": ({"material": {"lattice": "bcc"}}, r"\[material\] lattice = 'bcc'.*'fcc'"),
    "neo_hookean": ({"material": {"type": "neo-hookean", "potential": None, "lattice": None,
                                  "size": None, "fmax": None}},
                    r"\[material\] type = 'neo-hookean' does not apply.*crack_disc"),
    "unknown_atomistic_key": ({"atomistic": {"width": 3.0}},
                              r"unknown key 'width' in \[atomistic\]; allowed: radius, scheme"),
    "scheme_qcf": ({"atomistic": {"scheme": "qcf"}},
                   r"\[atomistic\] 'scheme' = 'qcf' is not allowed.*'bgfc', 'bqce', 'qce'"),
    "atoms_fill_the_disc": ({"atomistic": {"radius": 24.0}},
                            r"\[atomistic\] 'radius' = 24 Å leaves no room inside \[mesh\] "
                            r"radius = 43.38 Å"),
    "handshake_below_cutoff": ({"atomistic": {"handshake": 3.0}},
                               r"\[atomistic\] 'handshake' = 3 Å is narrower than the "
                               r"potential's cutoff 4.95"),
    "no_atomistic_radius": ({"atomistic": {"radius": None}},
                            r"\[atomistic\] needs 'radius'"),
    "no_disc_radius": ({"mesh": {"radius": None}}, r"\[mesh\] .*crack_disc' needs 'radius'"),
    "rve_radius_beyond_disc": ({"atomistic": {"rve_radius": 50.0}},
                               r"\[atomistic\] 'rve_radius' = 50 Å must be in \[0"),
    "rve_radius_with_cauchy_born": (
        {"material": {"type": "cauchy-born", "size": None, "fmax": None},
         "atomistic": {"rve_radius": 20.0}},
        r"\[atomistic\] 'rve_radius' applies to \[material\] type = 'rve'"),
    "solver_rtol": ({"solver": {"rtol": 1e-6}}, r"\[solver\] 'rtol' does not apply"),
    "checkpoint": ({"output": {"checkpoint": True}}, r"\[output\] 'checkpoint' does not apply"),
    "negative_K": ({"loading": {"value": -0.45}}, r"\[loading\] 'value' = -0.45 must be "
                                                    r"positive"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_before_any_work(case):
    changes, match = REFUSED[case]
    with pytest.raises(InputError, match=match):
        _parse(_with(changes))


def test_boundary_entries_refused():
    data = _with({})
    data["boundary"] = [{"name": "outer", "u_x": 0.0}]
    with pytest.raises(InputError, match=r"\[\[boundary\]\] entries do not apply to generator "
                                         "= 'crack_disc'"):
        _parse(data)


def test_run_time_refusals_before_the_solve(tmp_path):
    """Workers without RVEs, and a disc too small for the no-atoms tip region (~2 s)."""
    import fe2qc.mpi
    from coupling.driver import make_simulation

    comm = fe2qc.mpi.mpi().COMM_WORLD
    cb = {"material": {"type": "cauchy-born", "size": None, "fmax": None}}
    cfg = _parse(_with(dict(cb, mpi={"workers": 1})))
    cfg.output.directory = tmp_path / "a"
    with pytest.raises(InputError, match=r"\[mpi\] 'workers' = 1 needs \[material\] type = "
                                         "'rve'"):
        make_simulation(cfg, comm)
    cfg = _parse(_with(dict(cb, mesh={"radius": 30.0}), drop=("atomistic",)))
    cfg.output.directory = tmp_path / "b"
    with pytest.raises(InputError, match=r"\[mesh\] radius = 30 Å is too small for the "
                                         r"resolved tip region \(3 a0"):
        make_simulation(cfg, comm)


# -- runs -------------------------------------------------------------------------------------
def _cli(cwd: Path, *args, ranks: int = 1) -> dict:
    cmd = [str(BIN / "fe2qc"), "run", str(DEMO), "--json", *args]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-n", str(ranks)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "fe2qc run: done in" in out.stderr  # progress on stderr with --json
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    """``fe2qc run demos/crack_concurrent.toml`` from a scratch directory (~6 s)."""
    cwd = tmp_path_factory.mktemp("scratch")
    return cwd, _cli(cwd)


def _in_process(tmp_path, data: dict) -> dict:
    import fe2qc.mpi
    from coupling.driver import run_problem

    cfg = _parse(data)
    cfg.output.directory = tmp_path
    cfg.output.vtx = False
    return run_problem(cfg, fe2qc.mpi.mpi().COMM_WORLD, log=None)


def _opening(summary, k=-1) -> np.ndarray:
    return np.asarray(summary["records"][k]["opening"]["delta"])


def test_cli_run_end_to_end(serial_run):
    """Outputs where the TOML says; the crack follows the crystal's K-field (~6 s, shared)."""
    cwd, s = serial_run
    out = cwd / "results" / "crack_concurrent_run"
    assert Path(s["output"]) == Path("results/crack_concurrent_run")
    assert sorted(p.name for p in out.iterdir()) == [
        "crack_atoms.extxyz", "crack_continuum.bp", "steps.jsonl", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["U_sha256"] == s["U_sha256"]
    steps = [json.loads(line) for line in (out / "steps.jsonl").open()]
    assert [st["load_factor"] for st in steps] == [0.5, 1.0]
    assert (out / "crack_atoms.extxyz").read_text().count("K_over_KG") == 2  # a frame per K
    assert steps[-1]["U_sha256"] == s["U_sha256"]
    assert s["atoms"] and s["scheme"] == "bgfc" and s["atomistic_sites"] > 100
    assert 0 < s["rve_points"] < s["gauss_points"]
    # K in units of the crystal's Griffith K_G (K_G of Cu_u3 {100}: 0.5623 MPa sqrt(m))
    assert s["K_G_MPa_sqrt_m"] == pytest.approx(0.5623, abs=1e-4)
    assert s["K_over_KG"] == pytest.approx([0.225 / s["K_G_MPa_sqrt_m"],
                                            0.45 / s["K_G_MPa_sqrt_m"]], rel=1e-12)
    for rec in s["records"]:
        assert rec["max_force"] <= 1e-8
        ff = rec["far_field"]  # least-squares K of the free far-field nodes (LEFM field)
        assert ff["nodes"] > 20 and ff["K_fit_own_over_K"] == pytest.approx(1.0, abs=0.01)
        o = rec["opening"]
        far = np.asarray(o["x"]) < -25.0  # well behind the tip, beyond the atoms
        assert np.allclose(np.asarray(o["delta"])[far], np.asarray(o["lefm"])[far], rtol=0.1)
        sig = rec["sigma_yy_GPa"]  # Gauss points ahead of the tip vs K / sqrt(2 pi r)
        x = np.asarray(sig["continuum_x"])
        lefm = np.interp(x, sig["lefm_x"], sig["lefm"])
        sel = x > 15.0
        assert sel.sum() >= 3
        assert np.allclose(np.asarray(sig["continuum"])[sel], lefm[sel], rtol=0.1)


def test_cauchy_born_equals_perfect_rve_and_no_atoms_differs(serial_run, tmp_path):
    """Cauchy-Born = perfect RVE to 1e-9 Å; no atoms: another near-tip answer (~3 s)."""
    import fe2qc.mpi
    from coupling.driver import make_simulation

    _, rve = serial_run
    cb_material = {"material": {"type": "cauchy-born", "size": None, "fmax": None}}
    cb = _in_process(tmp_path / "cb", _with(cb_material))
    assert cb["rve_points"] == 0 and cb["atoms"]
    for k in range(2):
        assert np.abs(_opening(cb, k) - _opening(rve, k)).max() <= 1e-9
    assert cb["max_displacement_A"] == pytest.approx(rve["max_displacement_A"], abs=1e-9)
    # no atoms (Cauchy-Born in every cell): LEFM far from the tip, another answer near it
    bare = _in_process(tmp_path / "bare", _with(cb_material, drop=("atomistic",)))
    assert not bare["atoms"] and bare["atomistic_sites"] == 0 and bare["scheme"] == "continuum"
    o = bare["records"][-1]["opening"]
    far = np.asarray(o["x"]) < -25.0
    assert far.sum() >= 3
    assert np.allclose(np.asarray(o["delta"])[far], np.asarray(o["lefm"])[far], rtol=0.1)
    near = np.abs(np.asarray(o["x"])) < 8.0
    assert np.abs(_opening(bare)[near] - _opening(rve)[near]).max() > 1e-2
    # no atoms with [material] type = "rve": the RVE in every cell (built, not solved: ~1 s)
    cfg = _parse(_with({}, drop=("atomistic",)))
    cfg.output.directory = tmp_path / "rve_everywhere"
    sim = make_simulation(cfg, fe2qc.mpi.mpi().COMM_WORLD, log=None)
    assert not sim.crack.atoms
    assert sim.crack.n_far_points == sim.crack.n_gauss_points == sim.system.mesh.n_cells


@pytest.mark.parametrize("workers", [1, 0])
def test_two_ranks_give_the_serial_displacements_bitwise(serial_run, tmp_path, workers):
    """``mpirun -n 2 fe2qc run ... --workers W`` (~10 s each): bitwise the serial U.

    One worker relaxes every RVE; without workers the two macro ranks run the replicated QC and
    each relaxes half of the RVEs (the RVE rebuilds its neighbour list for every point, so a
    point's bits do not depend on which points its rank evaluated before).
    """
    _, ref = serial_run
    got = _cli(tmp_path, "--workers", str(workers), ranks=2)
    assert got["ranks"] == 2 and got["workers"] == workers
    assert got["newton_iterations"] == ref["newton_iterations"]
    assert got["U_sha256"] == ref["U_sha256"]
    steps = [json.loads(line) for line in
             (tmp_path / "results" / "crack_concurrent_run" / "steps.jsonl").open()]
    assert len(steps) == 2  # written by rank 0 only: two lines, not four
