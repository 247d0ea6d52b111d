"""Non-finite (NaN, inf) and absurd (1e300) input is refused by ``atomistic``.

At every public entry point, with an InputError naming the offending entry, before any numba
kernel runs.

The regression: a NaN in ``positions_nc`` of a 108-atom Cu crystal, set after the
configuration was built, made ``Calculator.compute`` drop the atom silently
(-377.46 eV instead of -382.32 eV).
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.cauchy_born import CauchyBorn
from atomistic.elastic import elastic_constants, equilibrium_lattice_constant
from atomistic.lattice import cluster, crystal, primitive_cell
from atomistic.neighbors import NeighborList
from atomistic.potentials import load_potential
from atomistic.potentials.pair import LennardJones, LennardJonesSmooth, Morse
from atomistic.relax import relax
from atomistic.rve import AtomisticRVE
from atomistic.structure import Configuration
from fe2qc.checks import MAX_COORDINATE, require_finite
from fe2qc.errors import InputError
from fe2qc.material import PointMaterial

BAD = [np.nan, np.inf, -np.inf]


def _name(x: float) -> str:
    return repr(float(x))  # 'nan', 'inf', '-inf'


@pytest.fixture(scope="module")
def cu(cu_u3):
    return cu_u3


@pytest.fixture(scope="module")
def lj():
    return LennardJones(0.4, 2.2, 5.5)


def test_require_finite_names_the_first_offending_index():
    a = np.zeros((5, 3))
    a[3, 1] = np.inf
    a[4, 0] = np.nan
    with pytest.raises(InputError, match=r"^x\[3, 1\] is inf: "):
        require_finite("x", a)
    with pytest.raises(InputError, match=r"^s is nan"):
        require_finite("s", float("nan"))
    with pytest.raises(InputError, match=r"y\[1\] = 1e\+300 Å is beyond the supported range"):
        require_finite("y", [0.0, 1e300], bound=1e8, unit=" Å")
    big = np.full(4, 1e308)  # the sum overflows, the entries are finite: accepted
    assert require_finite("z", big) is not None


@pytest.mark.parametrize("bad", BAD)
def test_calculator_refuses_a_nan_position_set_after_construction(cu, bad):
    conf = crystal("fcc", cu.lattice_constant, size=(3, 3, 3))
    assert len(conf) == 108
    calc = Calculator(cu)
    e0 = calc.compute(conf).energy
    assert e0 == pytest.approx(-382.32, abs=5e-3)
    conf.positions_nc[17, 2] = bad
    msg = rf"positions_nc\[17, 2\] is {_name(bad)}"
    for call in (calc.compute, calc.energy, calc.hessian, calc.born_tensor,
                 lambda c: calc.compute(c, np.ones(len(c))),
                 lambda c: calc.hessian(c, np.ones(len(c))),
                 lambda c: calc.deformation_derivatives(c, c.cell_cc),
                 Calculator(cu).compute):  # a fresh calculator builds a new list
        with pytest.raises(InputError, match=msg):
            call(conf)


@pytest.mark.parametrize("bad", BAD)
def test_calculator_refuses_a_bad_cell_and_bad_weights(lj, bad):
    conf = crystal("fcc", 3.41, size=(4, 4, 4))
    calc = Calculator(lj)
    calc.compute(conf)
    conf.cell_cc[1, 0] = bad
    with pytest.raises(InputError, match=rf"cell_cc\[1, 0\] is {_name(bad)}"):
        calc.compute(conf)
    conf = crystal("fcc", 3.41, size=(4, 4, 4))
    w = np.ones(len(conf))
    w[5] = bad
    with pytest.raises(InputError, match=rf"weights_n\[5\] is {_name(bad)}"):
        calc.compute(conf, w)
    with pytest.raises(InputError, match=rf"weights_n\[5\] is {_name(bad)}"):
        calc.hessian(conf, w)


@pytest.mark.parametrize("bad", BAD)
def test_configuration_refuses_bad_arrays(bad):
    pos = np.zeros((3, 3))
    pos[1] = [1.5, 0, 0]
    pos[2] = [0, 1.5, bad]
    with pytest.raises(InputError, match=rf"positions_nc\[2, 2\] is {_name(bad)}"):
        Configuration(pos, np.eye(3) * 10)
    cell = np.eye(3) * 10
    cell[2, 2] = bad
    with pytest.raises(InputError, match=rf"cell_cc\[2, 2\] is {_name(bad)}"):
        Configuration(np.zeros((1, 3)), cell)
    with pytest.raises(InputError, match=rf"masses_n\[0\] is {_name(bad)}"):
        Configuration(np.zeros((1, 3)), np.eye(3) * 10, masses_n=[bad])
    with pytest.raises(InputError, match=rf"velocities_nc\[0, 1\] is {_name(bad)}"):
        Configuration(np.zeros((1, 3)), np.eye(3) * 10, velocities_nc=[[0.0, bad, 0.0]])
    F = np.eye(3)
    F[0, 2] = bad
    with pytest.raises(InputError, match=rf"F\[0, 2\] is {_name(bad)}"):
        Configuration(np.zeros((1, 3)), np.eye(3) * 10).deformed(F)


def test_absurd_positions_are_refused_before_the_neighbour_grid(cu):
    conf = crystal("fcc", cu.lattice_constant, size=(3, 3, 3))
    conf.positions_nc[4, 0] = 1e300  # overflows to inf inside the cell wrapping
    with pytest.raises(InputError, match=r"positions_nc\[4, 0\] = 1e\+300 Å is beyond"):
        Calculator(cu).compute(conf)
    with pytest.raises(InputError, match=r"cell_cc\[0, 0\] = 1e\+300 Å"):
        Configuration(np.zeros((1, 3)), np.eye(3) * 1e300)
    assert MAX_COORDINATE >= 1e6  # a realistic QC domain (1e4 Å) is far inside


def test_sparse_atoms_far_apart_do_not_explode_the_neighbour_grid(lj):
    # two dimers 1e7 Å apart in an open box: a bin grid of cutoff size would need ~1e19 bins
    pos = np.array([[0, 0, 0], [2.5, 0, 0], [1e7, 1e7, 1e7], [1e7 + 2.5, 1e7, 1e7]])
    conf = Configuration(pos, np.eye(3), pbc=(False, False, False))
    res = Calculator(lj).compute(conf)
    assert res.energy == pytest.approx(2 * lj.pair_function(2.5)[0][0], rel=1e-14)


@pytest.mark.parametrize("bad", BAD)
def test_neighbor_list_refuses_bad_positions(lj, bad):
    conf = crystal("fcc", 3.41, size=(4, 4, 4))
    nl = NeighborList(conf, lj.cutoff)
    x = conf.positions_nc.copy()
    x[7, 1] = bad
    for call in (lambda: nl.update(x, conf.cell_cc), lambda: nl.build(x, conf.cell_cc)):
        with pytest.raises(InputError, match=rf"positions_nc\[7, 1\] is {_name(bad)}"):
            call()
    with pytest.raises(InputError, match="neighbour cutoff"):
        NeighborList(conf, bad)
    with pytest.raises(InputError, match="neighbour skin"):
        NeighborList(conf, 5.0, skin=bad)


@pytest.mark.parametrize("pot", ["cu", "lj"])
@pytest.mark.parametrize("bad", BAD)
def test_potential_kernels_are_never_reached_with_bad_distances(pot, bad, request):
    p = request.getfixturevalue(pot)
    r = np.array([2.5, 2.6, bad])
    i = np.zeros(3, np.int64)
    j = np.array([1, 2, 3])
    t = np.zeros(4, np.int64)
    with pytest.raises(InputError, match=rf"r_p\[2\] is {_name(bad)}"):
        p.first_order(r, i, j, t)
    with pytest.raises(InputError, match=rf"r_p\[2\] is {_name(bad)}"):
        p.second_order(r, i, j, t)
    w = np.ones(4)
    w[3] = bad
    with pytest.raises(InputError, match=rf"weights_n\[3\] is {_name(bad)}"):
        p.first_order(r[:2], i[:2], j[:2], t, w)


@pytest.mark.parametrize("bad", [*BAD, 0.0, -1.0])
def test_pair_potential_parameters_are_refused(bad):
    for make, name in ((lambda x: LennardJones(x, 2.2, 5.5), "epsilon"),
                       (lambda x: LennardJones(0.4, x, 5.5), "sigma"),
                       (lambda x: LennardJonesSmooth(0.4, 2.2, x), "cutoff"),
                       (lambda x: Morse(x, 1.3, 2.8, 6.0), "D0"),
                       (lambda x: Morse(0.3, x, 2.8, 6.0), "alpha"),
                       (lambda x: Morse(0.3, 1.3, x, 6.0), "r0"),
                       (lambda x: LennardJones(0.4, 2.2, 5.5, mass=x), "mass")):
        with pytest.raises(InputError, match=name):
            make(bad)


def test_eam_file_with_a_nan_table_entry_is_refused(tmp_path, cu):
    lines = cu.path.read_text().splitlines()
    words = lines[10].split()
    words[1] = "nan"
    lines[10] = " ".join(words)
    bad = tmp_path / "Bad.eam"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"entry \d+ of F\(rho\) is nan"):
        load_potential(str(bad))
    lines = cu.path.read_text().splitlines()
    lines[2] = "500 nan 500 0.01 4.95"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="invalid grid"):
        load_potential(str(bad))


@pytest.mark.parametrize("bad", BAD)
def test_material_points_refuse_bad_F_naming_the_entry(cu, bad):
    F = np.tile(np.eye(3), (2, 1, 1))
    F[1, 0, 2] = bad
    cb = CauchyBorn(cu, "fcc", cu.lattice_constant)
    for call in (cb.evaluate, cb.energy_density, lambda F: cb.evaluate_one(F[1])):
        with pytest.raises(InputError, match=r"F(_qij\[1, |\[)0, 2\] is " + _name(bad)):
            call(F)
    rve = AtomisticRVE.from_lattice(cu, "fcc", cu.lattice_constant, size=(3, 3, 3))
    material = PointMaterial(rve)
    for call in (material.evaluate, material.energy_density, lambda F: rve.evaluate_one(F[1])):
        with pytest.raises(InputError, match=r"F(_qij\[1, |\[)0, 2\] is " + _name(bad)):
            call(F)
    u = np.zeros((rve.n_atoms, 3))
    u[3, 1] = bad
    with pytest.raises(InputError, match=rf"u0_nc\[3, 1\] is {_name(bad)}"):
        rve.evaluate_one(np.eye(3), u)


def test_absurd_F_is_refused_and_det_F_le_0_still_is(cu):
    cb = CauchyBorn(cu, "fcc", cu.lattice_constant)
    F = np.eye(3)
    F[1, 1] = 1e300
    with pytest.raises(InputError, match=r"F_qij\[0, 1, 1\] = 1e\+300 is beyond"):
        cb.evaluate(F[None])
    F = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(InputError, match="det F"):
        cb.evaluate(F[None])


@pytest.mark.parametrize("bad", [*BAD, 0.0, -1.0])
def test_rve_relax_and_builder_parameters(cu, bad):
    conf = crystal("fcc", cu.lattice_constant, size=(3, 3, 3))
    calc = Calculator(cu)
    for method in ("newton", "lbfgs", "fire"):
        with pytest.raises(InputError, match="fmax"):
            relax(conf, calc, method=method, fmax=bad)
    with pytest.raises(InputError, match="fmax"):
        AtomisticRVE(cu, conf, fmax=bad)
    with pytest.raises(InputError, match="a0"):
        crystal("fcc", bad)
    with pytest.raises(InputError, match="a0"):
        primitive_cell("bcc", bad)
    with pytest.raises(InputError, match="a0"):
        cluster("fcc", bad, 5.0)
    with pytest.raises(InputError, match="a0"):
        CauchyBorn(cu, "fcc", bad)
    with pytest.raises(InputError, match="guess a0"):
        equilibrium_lattice_constant(cu, "fcc", bad)
    with pytest.raises(InputError, match="guess a0"):
        elastic_constants(cu, "fcc", bad)
    if bad != 0.0:  # a void of radius 0 is no void
        with pytest.raises(InputError, match="void_radius"):
            AtomisticRVE.from_lattice(cu, "fcc", cu.lattice_constant, void_radius=bad)
    with pytest.raises(InputError, match="min_distance"):
        Calculator(cu, min_distance=np.nan)
    with pytest.raises(InputError, match="max_iter"):
        relax(conf, calc, max_iter=0)


@pytest.mark.parametrize("bad", BAD)
def test_relax_refuses_bad_positions(cu, bad):
    conf = crystal("fcc", cu.lattice_constant, size=(3, 3, 3))
    conf.positions_nc[5, 0] = bad
    for method in ("newton", "lbfgs", "fire"):
        with pytest.raises(InputError, match=rf"positions_nc\[5, 0\] is {_name(bad)}"):
            relax(conf, Calculator(cu), method=method)


@pytest.mark.parametrize("size", [(np.nan, 1, 1), (1, np.inf, 1), (2.5, 1, 1), (0, 1, 1)])
def test_lattice_sizes_must_be_integers(size):
    a0 = 3.615  # any lattice constant (Å)
    with pytest.raises(InputError, match="size"):
        crystal("fcc", a0, size=size)
    with pytest.raises(InputError, match="size"):
        primitive_cell("fcc", a0).repeat(size)
    assert len(crystal("fcc", a0, size=(2.0, 1, 1))) == 8  # integral floats are fine


@pytest.mark.parametrize("bad", BAD)
def test_batched_cauchy_born_refuses_bad_lattice_and_F(lj, bad):
    from atomistic.cb_batch import BatchCauchyBorn
    from fe2qc.errors import CalculationFailed

    with pytest.raises(InputError, match=r"a0 is " + _name(bad)):
        BatchCauchyBorn.from_lattice(lj, "fcc", bad)
    P = np.eye(3)
    P[0, 1] = bad
    with pytest.raises(InputError, match=r"primitive_cc\[0, 1\] is " + _name(bad)):
        BatchCauchyBorn(lj, P)
    cb = BatchCauchyBorn.from_lattice(lj, "fcc", 3.41)
    F = np.tile(np.eye(3), (3, 1, 1))
    F[2, 1, 1] = bad
    # a non-finite F inside QC comes from a diverged solve: a failed step (cut back), never
    # a kernel call
    with pytest.raises(CalculationFailed, match="collapsed or inverted"):
        cb.evaluate(F)
