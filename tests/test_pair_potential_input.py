"""Pair potentials from the TOML problem file and the CLI, in LAMMPS's vocabulary.

``[material.potential]`` in the problem file and
``fe2qc elastic --pair-style ... --pair-coeff ...`` on the command line.

Regression: ``potential = "lj"`` passed validation and then failed with
``LennardJones.__init__() missing 3 required positional arguments``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from atomistic.potentials.factory import pair_potential_from_lammps, pair_potential_from_table
from atomistic.potentials.pair import LennardJones, LennardJonesSmooth, Morse
from coupling.cli import main
from coupling.config import load_config, parse_config
from fe2qc.errors import InputError

LJ_TOML = """
[material]
type = "cauchy-born"
lattice = "fcc"

[material.potential]
style = "lj/cut"
cutoff = 5.5
coeff = [0.4, 2.2]
"""


def test_toml_lj_cut_table_gives_the_stress_of_the_potential_built_directly(tmp_path):
    from atomistic.cauchy_born import CauchyBorn
    from coupling.materials import make_point_model

    f = tmp_path / "lj.toml"
    f.write_text(LJ_TOML)
    cfg = load_config(f)
    assert cfg.material.potential == {"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, 2.2]}
    mat = make_point_model(cfg, 3)
    pot = LennardJones(0.4, 2.2, 5.5)
    assert mat.potential.lammps_commands() == pot.lammps_commands()
    rng = np.random.default_rng(3)
    F = np.eye(3) + 0.02 * rng.standard_normal((4, 3, 3))
    direct = CauchyBorn(pot, "fcc", mat.a0)
    P, A = mat.evaluate(F)
    P0, A0 = direct.evaluate(F)
    assert np.array_equal(P, P0) and np.array_equal(A, A0)
    assert np.abs(P).max() > 1e-3  # a real stress, not zeros on both sides


@pytest.mark.parametrize("table, cls, params", [
    ({"style": "lj/cut", "cutoff": 5.5, "epsilon": 0.4, "sigma": 2.2, "shift": True},
     LennardJones, {"epsilon": 0.4, "sigma": 2.2, "cutoff": 5.5, "shift": True}),
    ({"style": "lj/smooth/linear", "cutoff": 5.5, "coeff": [0.4, 2.2]},
     LennardJonesSmooth, {"epsilon": 0.4, "sigma": 2.2, "cutoff": 5.5}),
    ({"style": "morse", "cutoff": 6.0, "coeff": [0.3, 1.3, 2.8], "element": "Cu",
      "mass": 63.546}, Morse, {"D0": 0.3, "alpha": 1.3, "r0": 2.8, "cutoff": 6.0}),
    ({"style": "lj/cut", "cutoff": 9.0, "coeff": [0.4, 2.2, 5.0]},  # pair_coeff's cutoff wins
     LennardJones, {"cutoff": 5.0}),
])
def test_table_styles_and_keys(table, cls, params):
    pot = pair_potential_from_table(table)
    assert type(pot) is cls
    for k, v in params.items():
        assert getattr(pot, k) == v
    if "element" in table:
        assert pot.elements == ("Cu",) and pot.masses == (63.546,)
    cfg = parse_config({"material": {"type": "rve", "potential": table}})
    assert cfg.material.potential == table


@pytest.mark.parametrize("potential, match", [
    ("lj", r"'lj' is a pair style without its coefficients; write the pair potential as a "
           r"table: \[material.potential\] with style = \"lj/cut\""),
    ("morse", r"pair style without its coefficients.*coeff = \[0.3, 1.3, 2.8\]"),
    ({"cutoff": 5.5, "coeff": [0.4, 2.2]}, "needs 'style'"),
    ({"style": "lj/smooth", "cutoff": 5.5, "coeff": [0.4, 2.2]}, "'lj/smooth/linear'"),
    ({"style": "buck", "cutoff": 5.5, "coeff": [0.4, 2.2]}, "'buck' is not allowed"),
    ({"style": "eam", "file": "Cu_u3.eam"}, "give an EAM file as a string"),
    ({"style": "lj/cut", "coeff": [0.4, 2.2]}, "needs 'cutoff'"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4]}, "list of 2 numbers"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, 2.2], "sigma": 2.2}, "not both"),
    ({"style": "lj/cut", "cutoff": 5.5, "epsilon": 0.4}, "missing sigma"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, 2.2], "rc": 5}, "unknown key 'rc'"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, "2.2"]}, "'sigma' must be a number"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, -2.2]}, "'sigma' must be a positive"),
    ({"style": "lj/cut", "cutoff": float("nan"), "coeff": [0.4, 2.2]}, "'cutoff' must be a pos"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [float("inf"), 2.2]}, "'epsilon' must be a p"),
    ({"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, 2.2], "shift": 1}, "'shift' must be tr"),
    ({"style": "lj/smooth/linear", "cutoff": 5.5, "coeff": [0.4, 2.2], "shift": True},
     "unknown key 'shift'"),
    ({"style": "morse", "cutoff": 6, "D0": 0.3, "alpha": 1.3, "r0": 2.8, "mass": 0},
     "'mass' must be a positive"),
    (3, r"\[material\] 'potential' must be a file name \(string\) or a \[material.potential\]"),
])
def test_bad_potentials_are_refused_at_validation(potential, match):
    with pytest.raises(InputError, match=match):
        parse_config({"material": {"type": "cauchy-born", "potential": potential}},
                     check_files=False)


def test_lammps_style_arguments():
    pot = pair_potential_from_lammps("lj/cut 5.5", "* * 0.4 2.2")
    assert pot.lammps_commands() == ["pair_style lj/cut 5.5", "pair_coeff * * 0.4 2.2"]
    pot = pair_potential_from_lammps("morse", "0.3 1.3 2.8", cutoff=6.0, shift=True)
    assert pot.lammps_commands()[-1] == "pair_modify shift yes"
    with pytest.raises(InputError, match="either in --pair-style or as --cutoff"):
        pair_potential_from_lammps("lj/cut 5.5", "0.4 2.2", cutoff=5.5)
    with pytest.raises(InputError, match="needs --pair-coeff"):
        pair_potential_from_lammps("lj/cut 5.5", None)
    with pytest.raises(InputError, match="'x' is not a number"):
        pair_potential_from_lammps("lj/cut 5.5", "0.4 x")


def _elastic(capsys, *args):
    code = main(["elastic", "--lattice", "fcc", "--json", *args])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if code == 0 else None), cap.err


@pytest.mark.parametrize("args, match", [
    (["--pair-style", "lj/cut 5.5"], "needs --pair-coeff"),
    (["--pair-style", "lj/cut 5.5", "--pair-coeff", "0.4 2.2", "--potential", "Cu_u3.eam"],
     "either --potential"),
    ([], "either --potential"),
    (["--potential", "Cu_u3.eam", "--pair-coeff", "0.4 2.2"], "--pair-coeff belongs"),
    (["--pair-style", "lj 5.5", "--pair-coeff", "0.4 2.2"], "use the LAMMPS name 'lj/cut'"),
    (["--pair-style", "lj/cut 5.5", "--pair-coeff", "0.4 nan"], "'sigma' must be a positive"),
])
def test_cli_pair_style_bad_input_exits_2(capsys, args, match):
    code, _, err = _elastic(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(match, err)


def test_cli_repulsive_pair_potential_is_a_failed_calculation_exit_3(capsys):
    # LJ's minimum 2^(1/6) sigma = 2.47 Å lies beyond the cutoff 2.3 Å: no zero-pressure state
    code, _, err = _elastic(capsys, "--pair-style", "lj/cut 2.3", "--pair-coeff", "0.4 2.2")
    assert code == 3
    assert "calculation failed: found no zero-pressure fcc lattice" in err


@pytest.mark.lammps
@pytest.mark.parametrize("style, coeff, guess", [("lj/cut 5.5", "0.4 2.2", 3.4),
                                                 ("morse 6.0", "0.3 1.3 2.8", 3.5)])
def test_cli_pair_potential_elastic_constants_match_lammps(capsys, style, coeff, guess):
    from atomistic.lammps import lammps_cubic_elastic

    code, out, _ = _elastic(capsys, "--pair-style", style, "--pair-coeff", coeff,
                            "--element", "Cu")
    assert code == 0 and out["element"] == "Cu"
    pot = pair_potential_from_lammps(style, coeff)
    assert out["potential"] == pot.lammps_commands()
    ref = lammps_cubic_elastic(pot.lammps_commands(), guess)
    # measured: a0 0, ecoh 2.4e-14, C 2.1e-9 relative (LAMMPS's ±1e-5 strain differences)
    assert out["a0"] == pytest.approx(ref["a0"], rel=1e-14)
    assert out["ecoh"] == pytest.approx(ref["ecoh"], rel=1e-13)
    for key in ("C11", "C12", "C44"):
        assert out[key] == pytest.approx(ref[key], rel=3e-9), key
    # Cauchy relation of central pair forces at zero pressure (every site a centre of inversion)
    assert out["C12"] == pytest.approx(out["C44"], rel=1e-13)
    assert abs(out["C11"] - out["C12"]) > 0.1 * out["C11"]
