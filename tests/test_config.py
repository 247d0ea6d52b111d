"""The TOML problem schema refuses bad input with messages that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from coupling.config import load_config, parse_config
from fe2qc.errors import InputError


def _write(tmp_path, text: str):
    p = tmp_path / "problem.toml"
    p.write_text(text)
    return p


def test_defaults_and_the_relative_path_rule(tmp_path):
    """Input files named in the TOML are found next to it; the output folder is not.

    The output folder is relative to the working directory (issue 9, item 1: the demo's
    outputs split between two folders).
    """
    (tmp_path / "plate.msh").write_text("")
    cfg = load_config(_write(tmp_path, '[mesh]\nfile = "plate.msh"\n[loading]\n'
                                       'mode = "traction"\n[material]\ntype = "neo-hookean"\n'
                                       'mu = 40.0\n[output]\ndirectory = "out/a"\n'))
    assert cfg.material.type == "neo-hookean" and cfg.material.mu == 40.0
    assert cfg.mesh.file == tmp_path / "plate.msh"
    assert cfg.output.directory == Path("out/a") and not cfg.output.directory.is_absolute()
    assert cfg.loading.load_factors() == [0.25, 0.5, 0.75, 1.0]
    # no [output] directory: results/<TOML name> under the working directory
    cfg = load_config(_write(tmp_path, '[material]\ntype = "neo-hookean"\nmu = 40.0\n'))
    assert cfg.output.directory == Path("results/problem")
    assert parse_config({"material": {"type": "neo-hookean", "mu": 40.0}},
                        base_dir=tmp_path).output.directory == Path("results")
    # absolute output folders stay as given
    cfg = parse_config({"material": {"type": "neo-hookean", "mu": 40.0},
                        "output": {"directory": str(tmp_path / "abs")}}, base_dir="/nonexistent")
    assert cfg.output.directory == tmp_path / "abs"


def test_unknown_key_names_the_key_section_and_allowed_keys(tmp_path):
    with pytest.raises(InputError, match=r"unknown key 'xyz' in \[material\]; allowed: .*fmax"):
        load_config(_write(tmp_path, "[material]\nxyz = 1\n"))


def test_unknown_section_lists_the_sections():
    with pytest.raises(InputError, match=r"unknown section \[meshes\]; allowed: \[mesh\]"):
        parse_config({"meshes": {}})


@pytest.mark.parametrize("section, key, value, want", [
    ("solver", "max_iterations", "ten", "an integer"),
    ("solver", "rtol", True, "a finite number"),
    ("material", "size", [2, 2], "three positive integers"),
    ("mesh", "tip_size", -1.0, "a positive number"),
    ("output", "vtx", "yes", "true or false"),
    ("loading", "steps", [0.5, 0.2], "increasing"),
    ("mpi", "workers", -1, "integer >= 0"),
])
def test_wrong_type_names_the_key_and_the_expected_type(section, key, value, want):
    with pytest.raises(InputError, match=rf"\[{section}\] '{key}' must be .*{want}"):
        parse_config({section: {key: value}}, check_files=False)


def test_bad_material_type_lists_the_allowed_types():
    with pytest.raises(InputError, match=r"\[material\] 'type' = 'lj' is not allowed; allowed "
                                         r"values: 'neo-hookean', 'cauchy-born', 'rve'"):
        parse_config({"material": {"type": "lj"}})


def test_key_of_another_material_type_is_refused():
    with pytest.raises(InputError, match=r"'fmax' in \[material\] does not apply to type = "
                                         r"'neo-hookean'"):
        parse_config({"material": {"type": "neo-hookean", "fmax": 1e-6}})


def test_missing_potential_file_names_the_key_and_the_file(tmp_path):
    with pytest.raises(InputError, match=r"\[material\] 'potential' = 'nowhere/Cu.eam'.*not "
                                         r"found"):
        parse_config({"material": {"type": "rve", "potential": "nowhere/Cu.eam"}},
                     base_dir=tmp_path)


def test_missing_mesh_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match=r"\[mesh\] 'file': mesh file '.*plate\.msh' not found"):
        load_config(_write(tmp_path, '[mesh]\nfile = "plate.msh"\n[loading]\nmode = "traction"\n'
                                       '[material]\ntype = "neo-hookean"\n'))


def test_K_loading_needs_the_generated_cracked_plate(tmp_path):
    (tmp_path / "plate.msh").write_text("")
    with pytest.raises(InputError, match=r"mode = 'K' needs \[mesh\] generator"):
        load_config(_write(tmp_path, '[mesh]\nfile = "plate.msh"\n'
                                       '[material]\ntype = "neo-hookean"\n'))


def test_bad_loading_mode_and_invalid_toml(tmp_path):
    with pytest.raises(InputError, match=r"\[loading\] 'mode' = 'k' is not allowed; allowed "
                                         r"values: 'K', 'traction', 'displacement'"):
        parse_config({"loading": {"mode": "k"}}, check_files=False)
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(_write(tmp_path, "[mesh\n"))


def test_cli_run_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    from coupling.cli import main

    rc = main(["run", str(_write(tmp_path, "[solver]\ndegree = 3\n"))])
    assert rc == 2
    assert "'degree' = 3 is not allowed; allowed values: 1, 2" in capsys.readouterr().err


def test_rve_engine_and_ranks_per_rve_are_checked():
    cfg = parse_config({"material": {"engine": "lammps"}, "mpi": {"rve_ranks": 2}},
                       check_files=False)
    assert cfg.material.engine == "lammps" and cfg.mpi.rve_ranks == 2
    assert parse_config({}, check_files=False).mpi.rve_ranks == 1
    with pytest.raises(InputError, match=r"\[material\] 'engine' = 'gpu' is not allowed; "
                                         r"allowed values: 'native', 'lammps'"):
        parse_config({"material": {"engine": "gpu"}}, check_files=False)
    with pytest.raises(InputError, match=r"'rve_ranks' = 2 needs \[material\] engine = "
                                         r"'lammps'"):
        parse_config({"mpi": {"rve_ranks": 2}}, check_files=False)
    with pytest.raises(InputError, match="'engine' in \\[material\\] does not apply to type = "
                                         "'neo-hookean'"):
        parse_config({"material": {"type": "neo-hookean", "engine": "lammps"}},
                     check_files=False)
