"""The batched Cauchy-Born kernel equals the single-cell CauchyBorn (itself checked against
LAMMPS elastic constants) and its own finite differences."""

import numpy as np
import pytest

from atomistic.cauchy_born import CauchyBorn
from atomistic.cb_batch import BatchCauchyBorn
from atomistic.potentials.factory import load_potential


@pytest.mark.parametrize("spec,lattice,a0", [("Cu_u3.eam", "fcc", 3.615),
                                             ("lj/smooth", "triangular", 1.12)])
def test_batched_cauchy_born_matches_single_cell_and_finite_differences(spec, lattice, a0):
    pot = load_potential(spec) if spec.endswith(".eam") else load_potential(
        spec, epsilon=1.0, sigma=1.0, cutoff=2.5)
    batch = BatchCauchyBorn.from_lattice(pot, lattice, a0)
    rng = np.random.default_rng(1)
    F = np.eye(3) + 0.05 * rng.standard_normal((3, 3, 3))
    if lattice == "triangular":
        F[:, 2, :] = 0.0
        F[:, :, 2] = 0.0
        F[:, 2, 2] = 1.0
    e, P, A = batch.evaluate(F)
    cb = CauchyBorn(pot, lattice, a0, dim=3 if lattice == "fcc" else 2)
    for t in range(len(F)):
        P1, A1, W1 = cb.evaluate_one(F[t])
        assert abs(e[t] - W1 * cb.V0) < 1e-12 * abs(e[t])
        assert np.abs(P[t] - P1 * cb.V0).max() < 1e-12 * max(1.0, np.abs(P[t]).max())
        assert np.abs(A[t] - A1 * cb.V0).max() < 1e-11 * np.abs(A[t]).max()
    h = 1e-6
    for i, J in [(0, 0), (0, 1), (1, 0)]:
        Fp, Fm = F.copy(), F.copy()
        Fp[:, i, J] += h
        Fm[:, i, J] -= h
        ep, Pp, _ = batch.evaluate(Fp, order=1)
        em, Pm, _ = batch.evaluate(Fm, order=1)
        assert np.allclose((ep - em) / (2 * h), P[:, i, J], rtol=1e-7, atol=1e-8)
        assert np.allclose((Pp - Pm) / (2 * h), A[:, :, :, i, J], rtol=1e-6, atol=1e-6)
