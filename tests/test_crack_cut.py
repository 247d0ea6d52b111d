"""Pre-cut cracks: bonds excluded from a calculator, and a QC crack whose faces cannot re-bond.

* Cutting every bond across a plane splits a crystal into two independent halves: the
  energy and forces are those of the two halves computed separately (pair potential and
  EAM, whose excluded pairs must drop out of the density too). A calculator that ignored
  the rule, or cut the wrong pairs, would count the cross-plane bonds.
* The Hessian with a partial cut agrees with finite differences of the forces.
* A QC crack with ``cut=True`` and the fully atomistic reference exclude the same bonds:
  at the same K the near-tip displacements agree (the benchmark's measure, small domain),
  and the cut crack cannot heal: at 0.3 K_G its faces stay apart, while the uncut crack
  closes behind the tip.
"""

from __future__ import annotations

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.fracture import crack_cut
from atomistic.lattice import cluster
from atomistic.potentials.factory import load_potential
from atomistic.structure import Configuration


def _halves(conf: Configuration, y0: float):
    up = conf.positions_nc[:, 1] > y0
    return (Configuration(conf.positions_nc[up], conf.cell_cc, conf.pbc),
            Configuration(conf.positions_nc[~up], conf.cell_cc, conf.pbc), up)


@pytest.mark.parametrize("spec,params,a0", [
    ("lj/smooth", dict(epsilon=0.4, sigma=2.2, cutoff=5.5), 3.5),
    ("Cu_u3.eam", {}, 3.615),
], ids=["lj", "Cu_u3.eam"])
def test_cutting_every_bond_across_a_plane_gives_two_independent_halves(spec, params, a0):
    pot = load_potential(spec, **params)
    conf = cluster("fcc", a0, 7.0)
    rng = np.random.default_rng(0)
    conf.positions_nc += 0.03 * rng.standard_normal(conf.positions_nc.shape)
    y0 = 0.3  # between atomic planes
    X = conf.positions_nc.copy()
    cut = Calculator(pot, exclude=crack_cut(X, conf.cell_cc, np.inf, y0))
    whole = Calculator(pot)
    top, bottom, up = _halves(conf, y0)
    res = cut.compute(conf)
    e_sep = Calculator(pot).energy(top) + Calculator(pot).energy(bottom)
    assert abs(res.energy - e_sep) < 1e-10 * abs(e_sep)
    assert abs(whole.energy(conf) - e_sep) > 1.0  # the cut matters (eV)
    f = np.empty_like(res.forces_nc)
    f[up] = Calculator(pot).compute(top).forces_nc
    f[~up] = Calculator(pot).compute(bottom).forces_nc
    assert np.abs(res.forces_nc - f).max() < 1e-10


def test_hessian_with_a_partial_cut_matches_finite_differences(cu_u3):
    pot = cu_u3
    conf = cluster("fcc", pot.lattice_constant, 6.5)
    X = conf.positions_nc.copy()
    calc = Calculator(pot, exclude=crack_cut(X, conf.cell_cc, 0.2, 0.3))
    rng = np.random.default_rng(1)
    conf.positions_nc += 0.04 * rng.standard_normal(conf.positions_nc.shape)
    n_all = len(Calculator(pot).pair_list(conf).i_p)
    assert 0 < n_all - len(calc.pair_list(conf).i_p) < n_all // 4  # a partial cut
    H = calc.hessian(conf).toarray()
    assert np.abs(H - H.T).max() < 1e-10 * np.abs(H).max()
    h = 1e-5
    for col in rng.choice(3 * len(conf), 10, replace=False):
        a, c = divmod(int(col), 3)
        fp, fm = conf.copy(), conf.copy()
        fp.positions_nc[a, c] += h
        fm.positions_nc[a, c] -= h
        dF = (calc.compute(fp).forces_nc - calc.compute(fm).forces_nc).ravel() / (2 * h)
        assert np.abs(H[:, col] + dF).max() < 1e-6 * np.abs(H).max()


def test_exclude_must_return_one_flag_per_pair():
    from fe2qc.errors import InputError

    pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
    conf = cluster("fcc", 3.5, 5.0)
    with pytest.raises(InputError, match="one bool per pair"):
        Calculator(pot, exclude=lambda i, j, s: np.zeros(3, bool)).compute(conf)


def _crack(cut: bool, R: float = 30.0, Ra: float = 10.0):
    from coupling.qc.crack import crack_system
    from coupling.qc.setups import short_range_setup

    setup = short_range_setup()
    return crack_system(2, "bgfc", radius=R, atomistic_radius=Ra, growth=0.1,
                        max_size=10 * setup[2], setup=setup, cut=cut, clamp_growth=0.3)


def test_pre_cut_qc_crack_matches_the_atomistic_reference_near_the_tip():
    from coupling.qc.crack import k_field
    from coupling.qc.model import QCModel
    from coupling.qc.reference import AtomisticModel, site_displacements
    from coupling.qc.solver import newton, relax

    system, field = _crack(True)
    a0 = system.info["a0"]
    K = 0.9 * field.K_G
    U, rep = relax(QCModel(system, "bgfc", F_ref=np.eye(3)), k_field(field, system, K), tol=1e-8)
    assert rep.converged
    ref = AtomisticModel(system)
    U0 = np.zeros((ref.n_nodes, 2))
    U0[:] = field.displacements(K, ref.X[:, :2])
    Ur, rep_r = newton(ref, U0, tol=1e-8)
    assert rep_r.converged
    near = ref.site[np.linalg.norm(ref.X[:, :2], axis=1) <= 5 * a0]
    uq = site_displacements(system, U, near)
    ur = Ur[np.searchsorted(ref.site, near)]
    err = np.linalg.norm(uq - ur) / np.linalg.norm(ur)
    uK = field.displacements(K, system.reference.positions_nc[near, :2])
    assert err < 0.01  # measured 2e-3
    assert np.linalg.norm(ur - uK) / np.linalg.norm(ur) > 5 * err  # QC beats the K-field


def test_a_pre_cut_crack_cannot_heal():
    from coupling.qc.crack import k_field
    from coupling.qc.model import QCModel
    from coupling.qc.solver import relax
    from coupling.qc.trapping import bond_lengths, crack_plane_bonds

    out = {}
    for cut in (True, False):
        system, field = _crack(cut)
        U, rep = relax(QCModel(system, "bgfc", F_ref=np.eye(3)),
                       k_field(field, system, 0.3 * field.K_G), tol=1e-8)
        assert rep.converged
        bonds = crack_plane_bonds(system)
        length = bond_lengths(system, U, bonds)
        behind = bonds.mid_x < -2 * system.info["a0"]
        out[cut] = length[behind].min() / bonds.d_nn
    # uncut: the faces re-bond (measured 1.004 d_nn); cut: they stay apart (1.12 d_nn; the
    # bond across the faces is cut at 1.26 d_nn, 3.2 Å, so the faces feel no attraction)
    assert out[False] < 1.02
    assert out[True] > 1.08
