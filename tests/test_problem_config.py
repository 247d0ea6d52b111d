"""A problem is a mesh generator and a TOML file: geometry and loading come from the config.

The ``rectangle`` generator (``meshes.rectangle``) with ``[[boundary]]`` entries by boundary
name, run by ``fe2qc run`` / ``coupling.driver.run_problem`` without any problem-specific code:
a neo-Hookean bar, u_x = 0 on the left, u_y = 0 on the bottom, pulled on the right by a
traction or a displacement. The exact solution is homogeneous (uniaxial stress in plane
strain), which P1 elements represent exactly, so the run must reproduce it to the Newton
tolerance at every node. Then the validation of the new keys: every mistake is refused before
any work, with a message naming the key and the allowed values.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from coupling.config import load_config, parse_config
from fe2qc.errors import InputError
from fe2qc.units import EV_PER_A3_IN_GPA

MU, LMBDA = 40.0, 60.0  # GPa
WIDTH, HEIGHT = 100.0, 50.0  # Å

BAR = f"""
[mesh]
generator = "rectangle"
width = {WIDTH}
height = {HEIGHT}
nx = 4
ny = 2

[material]
type = "neo-hookean"
mu = {MU}
lmbda = {LMBDA}

[solver]
degree = 1
rtol = 1e-12

[output]
directory = "out"
vtx = false
"""


def _loading(mode: str, value: float, right: str) -> str:
    """Return the ``[loading]`` and ``[[boundary]]`` entries of one loading mode.

    The left edge has u_x = 0, the bottom u_y = 0, the right edge the keys ``right``.
    """
    return f"""
[loading]
mode = "{mode}"
value = {value}
steps = [0.5, 1.0]

[[boundary]]
name = "left"
u_x = 0.0
[[boundary]]
name = "bottom"
u_y = 0.0
[[boundary]]
name = "right"
{right}
"""


LOADS = {
    # [loading] and [[boundary]] entries of the right edge: 4 GPa pull, or 3 Å stretch
    "traction": _loading("traction", 4.0, "traction = [1.0, 0.0]"),
    "displacement": _loading("displacement", 3.0, "u_x = 1.0\nloaded = true"),
}


def _uniaxial_stretches(*, traction: float | None = None, stretch: float | None = None):
    """Return the stretches (a, b) of uniaxial stress, F = diag(a, b).

    P_22 = 0 and P_11 = traction (eV/Å³), or a = stretch, for the plane-strain neo-Hookean law
    of fe2.materials (Newton on its own P and tangent).
    """
    from fe2.materials import NeoHookean

    law = NeoHookean(MU / EV_PER_A3_IN_GPA, LMBDA / EV_PER_A3_IN_GPA, 2)
    x = np.array([1.0 if stretch is None else stretch, 1.0])
    for _ in range(50):
        P, A = law.evaluate(np.diag(x)[None])
        if stretch is None:
            r = np.array([P[0, 0, 0] - traction, P[0, 1, 1]])
            J = np.array([[A[0, 0, 0, 0, 0], A[0, 0, 0, 1, 1]],
                          [A[0, 1, 1, 0, 0], A[0, 1, 1, 1, 1]]])
            dx = np.linalg.solve(J, r)
        else:
            dx = np.array([0.0, P[0, 1, 1] / A[0, 1, 1, 1, 1]])
        x -= dx
        if np.abs(dx).max() < 1e-15:
            break
    return x


def _nodal_displacements(outdir):
    """Coordinates and displacements of every dof node, from the run's checkpoint."""
    with np.load(outdir / "checkpoint.npz") as d:
        return d["x_dofs"][:, :2], d["u"]


@pytest.mark.parametrize("mode", ["traction", "displacement"])
def test_rectangle_from_toml_alone_matches_the_homogeneous_uniaxial_solution(
        tmp_path, monkeypatch, capsys, mode):
    """`fe2qc run bar.toml` on the rectangle generator gives the exact homogeneous solution.

    Every node moves as u = (F - I) X with F = diag(a, b) the uniaxial plane-strain stretch of
    the neo-Hookean law (4 GPa nominal stress, or 3 Å on a 100 Å bar), to 1e-11 of max |u|
    (measured 1e-13).
    """
    from coupling.cli import main

    monkeypatch.chdir(tmp_path)  # the output folder is relative to the working directory
    (tmp_path / "bar.toml").write_text(BAR + LOADS[mode])
    assert main(["run", "bar.toml", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["load_factor"] == 1.0 and summary["increments"] == 2
    assert summary["K_applied_MPa_sqrt_m"] is None
    if mode == "traction":
        a, b = _uniaxial_stretches(traction=4.0 / EV_PER_A3_IN_GPA)
        assert summary["sigma_remote_GPa"] == pytest.approx(4.0, rel=1e-14)
    else:
        a, b = _uniaxial_stretches(stretch=1.0 + 3.0 / WIDTH)
        assert summary["sigma_remote_GPa"] is None
    assert a > 1.01 and b < 0.995  # a finite, nonlinear stretch with lateral contraction
    x, u = _nodal_displacements(tmp_path / "out")
    assert len(x) == 5 * 3
    exact = np.column_stack([(a - 1.0) * x[:, 0], (b - 1.0) * x[:, 1]])
    assert np.abs(u - exact).max() <= 1e-11 * np.abs(exact).max()


def test_rectangle_default_boundary_conditions_are_the_uniaxial_bar(tmp_path, monkeypatch):
    """Without [[boundary]] entries the rectangle is the same bar (its generator's defaults).

    The nodal displacements are the same, bitwise, as with the explicit entries.
    """
    import fe2qc.mpi
    from coupling.driver import run_problem

    comm = fe2qc.mpi.mpi().COMM_WORLD
    monkeypatch.chdir(tmp_path)
    explicit = BAR + LOADS["traction"]
    implicit = explicit[:explicit.index("[[boundary]]")]
    results = []
    for name, text in (("explicit", explicit), ("defaults", implicit)):
        (tmp_path / f"{name}.toml").write_text(text.replace('directory = "out"',
                                                            f'directory = "{name}"'))
        cfg = load_config(tmp_path / f"{name}.toml")
        assert (cfg.boundaries is None) == (name == "defaults")
        run_problem(cfg, comm, log=None)
        results.append(_nodal_displacements(tmp_path / name))
    (x0, u0), (x1, u1) = results
    assert np.array_equal(x0, x1) and np.array_equal(u0, u1)


def test_mesh_file_boundaries_are_its_physical_group_names(tmp_path):
    """A gmsh file names its boundary parts with its physical groups.

    [[boundary]] entries are checked against them before any work (cracked_plate writes its
    groups with names).
    """
    import fe2qc.mpi
    from meshes.crack import TAGS, cracked_plate
    from meshes.tagged import msh_boundary_names

    comm = fe2qc.mpi.mpi().COMM_SELF
    cracked_plate(comm, width=1000.0, height=1000.0, crack_length=200.0, tip_size=100.0,
                  far_size=500.0, grading=0.6, path=tmp_path / "plate.msh")
    assert msh_boundary_names(tmp_path / "plate.msh") == TAGS
    base = {"mesh": {"file": "plate.msh"}, "material": {"type": "neo-hookean"},
            "loading": {"mode": "traction"}}
    good = [{"name": "left", "u_x": 0.0}, {"name": "ligament", "u_y": 0.0},
            {"name": "right", "traction": [1.0, 0.0]}]
    cfg = parse_config({**base, "boundary": good}, base_dir=tmp_path)
    assert [b.name for b in cfg.boundary_conditions()] == ["left", "ligament", "right"]
    with pytest.raises(InputError, match=r"name = 'rigth' is not a boundary part of the mesh "
                                         r"of \[mesh\] file = '.*plate\.msh'; available names: "
                                         r"'top', 'ligament', 'left', 'right', 'crack'"):
        parse_config({**base, "boundary": good[:2] + [{"name": "rigth", "traction": [1, 0]}]},
                     base_dir=tmp_path)


def test_cracked_plate_defaults_are_the_quarter_model_of_every_existing_problem_file():
    """No [[boundary]]: symmetry on the left edge and the ligament, the load on the top."""
    cfg = parse_config({"material": {"type": "neo-hookean"}})
    assert cfg.boundaries is None and cfg.loading.mode == "K"
    bcs = cfg.boundary_conditions()
    assert [(b.name, b.u_x, b.u_y, b.traction, b.loaded) for b in bcs] == [
        ("left", 0.0, None, None, False), ("ligament", None, 0.0, None, False),
        ("top", None, None, (0.0, 1.0), True)]
    cfg.loading.mode = "displacement"
    assert [(b.name, b.u_y, b.loaded) for b in cfg.boundary_conditions()][2] == ("top", 1.0,
                                                                                True)
    from meshes.crack import center_crack_K

    assert cfg.mesh.stress_intensity() == center_crack_K(1.0, 200.0, 2000.0)


# -- validation of the new keys ---------------------------------------------------------------
def _bar(boundary=None, mode="traction", **mesh):
    data = {"mesh": {"generator": "rectangle", **mesh}, "material": {"type": "neo-hookean"},
            "loading": {"mode": mode}}
    if boundary is not None:
        data["boundary"] = boundary
    return data


def test_unknown_boundary_name_lists_the_names_of_the_mesh():
    """A misspelt boundary name is refused with the names the mesh has."""
    with pytest.raises(InputError, match=r"\[\[boundary\]\] name = 'rigth' is not a boundary "
                                         r"part of the mesh of \[mesh\] generator = "
                                         r"'rectangle'; available names: 'left', 'right', "
                                         r"'bottom', 'top'"):
        parse_config(_bar([{"name": "left", "u_x": 0.0}, {"name": "rigth",
                                                           "traction": [1.0, 0.0]}]))


def test_unknown_or_missing_key_in_a_boundary_entry_names_the_allowed_keys():
    """Unknown keys, a missing name, a bad traction and a [boundary] table are refused."""
    with pytest.raises(InputError, match=r"unknown key 'ux' in \[\[boundary\]\] entry 1 "
                                         r"\(name = 'left'\); allowed: name, u_x, u_y, "
                                         r"traction, loaded"):
        parse_config(_bar([{"name": "left", "ux": 0.0}]))
    with pytest.raises(InputError, match=r"\[\[boundary\]\] entry 2 has no 'name'"):
        parse_config(_bar([{"name": "left", "u_x": 0.0}, {"traction": [1.0, 0.0]}]))
    with pytest.raises(InputError, match=r"entry 1 \(name = 'right'\): 'traction' must be a "
                                         r"list of two finite numbers"):
        parse_config(_bar([{"name": "right", "traction": [1.0]}]))
    with pytest.raises(InputError, match=r"must be an array of tables: write each entry as "
                                         r"\[\[boundary\]\]"):
        parse_config(_bar({"name": "right", "traction": [1.0, 0.0]}))


def test_K_loading_is_refused_on_a_geometry_without_a_K_calibration():
    """Mode K needs the geometry's K calibration and its own boundary conditions."""
    with pytest.raises(InputError, match=r"mode = 'K' needs \[mesh\] generator = "
                                         r"'cracked_plate' .*\[mesh\] generator = 'rectangle' "
                                         r"has none: use mode 'traction' or 'displacement'"):
        parse_config(_bar(mode="K"))
    # the cracked plate's calibration holds for its own boundary conditions only
    with pytest.raises(InputError, match=r"mode = 'K' loads the default boundary conditions "
                                         r"of \[mesh\] generator = 'cracked_plate'"):
        parse_config({"material": {"type": "neo-hookean"},
                      "boundary": [{"name": "top", "traction": [0.0, 1.0]}]})


def test_loaded_conditions_must_fit_the_loading_mode():
    """Tractions go with mode traction, loaded displacements with mode displacement."""
    fixed = [{"name": "left", "u_x": 0.0}]
    with pytest.raises(InputError, match=r"traction on 'right' needs \[loading\] mode = "
                                         r"'traction'"):
        parse_config(_bar(fixed + [{"name": "right", "traction": [1.0, 0.0]}],
                          mode="displacement"))
    with pytest.raises(InputError, match=r"'loaded = true' on 'right' needs \[loading\] mode = "
                                         r"'displacement'"):
        parse_config(_bar(fixed + [{"name": "right", "u_x": 1.0, "loaded": True}]))
    with pytest.raises(InputError, match=r"no \[\[boundary\]\] entry carries a traction"):
        parse_config(_bar(fixed))
    with pytest.raises(InputError, match=r"both displacements and a traction"):
        parse_config(_bar([{"name": "right", "u_y": 0.0, "traction": [1.0, 0.0]}]))
    with pytest.raises(InputError, match=r"'u_x' on 'left' is given twice"):
        parse_config(_bar(fixed + fixed + [{"name": "right", "traction": [1.0, 0.0]}]))


def test_mesh_keys_follow_the_chosen_generator():
    """[mesh] takes the parameters of the chosen generator only, of the right kinds."""
    with pytest.raises(InputError, match=r"key 'crack_length' in \[mesh\] does not apply to "
                                         r"generator = 'rectangle'; allowed for it: generator, "
                                         r"width, height, nx, ny"):
        parse_config(_bar(crack_length=10.0))
    with pytest.raises(InputError, match=r"\[mesh\] 'nx' must be an integer"):
        parse_config(_bar(nx=2.5))
    with pytest.raises(InputError, match=r"\[mesh\] 'generator' = 'disc' is not allowed; "
                                         r"allowed values: 'cracked_plate', 'rectangle'"):
        parse_config({"mesh": {"generator": "disc"}, "material": {"type": "neo-hookean"}})
    cfg = parse_config(_bar(nx=8, width=20.0))
    assert (cfg.mesh.nx, cfg.mesh.ny, cfg.mesh.width) == (8, 4, 20.0)
