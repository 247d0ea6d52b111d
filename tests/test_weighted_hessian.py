"""The Hessian of weighted site energies (the quasicontinuum's blended energy) is exact."""

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.lattice import cluster
from atomistic.potentials.factory import load_potential


@pytest.mark.parametrize("spec,params,a0", [
    ("Cu_u3.eam", {}, 3.615),
    ("morse", dict(D0=0.5, alpha=1.6, r0=2.6, cutoff=5.0), 3.7),
], ids=["Cu_u3.eam", "morse"])
def test_weighted_hessian_matches_finite_differences_of_weighted_forces(spec, params, a0):
    pot = load_potential(spec, **params)
    conf = cluster("fcc", a0, 6.0)
    rng = np.random.default_rng(3)
    conf.positions_nc += 0.05 * rng.standard_normal(conf.positions_nc.shape)
    w = rng.uniform(0.0, 1.0, len(conf))
    w[:3] = 0.0
    calc = Calculator(pot)
    H = calc.hessian(conf, weights_n=w).toarray()
    assert np.abs(H - H.T).max() < 1e-10 * np.abs(H).max()
    h = 1e-5
    cols = rng.choice(3 * len(conf), 12, replace=False)
    for col in cols:
        a, c = divmod(int(col), 3)
        fp, fm = conf.copy(), conf.copy()
        fp.positions_nc[a, c] += h
        fm.positions_nc[a, c] -= h
        dF = (calc.compute(fp, w).forces_nc - calc.compute(fm, w).forces_nc).ravel() / (2 * h)
        assert np.abs(H[:, col] + dF).max() < 1e-6 * max(1.0, np.abs(H).max())
    # all weights one is the plain Hessian
    assert np.allclose(calc.hessian(conf, np.ones(len(conf))).toarray(),
                       calc.hessian(conf).toarray(), atol=1e-12)
