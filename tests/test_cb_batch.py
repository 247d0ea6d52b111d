"""The batched Cauchy-Born kernel equals the atomistic engine and its own finite differences.

The engine is the Calculator on the deformed primitive cell (itself checked against LAMMPS);
CauchyBorn (which delegates to the kernel) and its point evaluation equal it too.
"""

import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.cauchy_born import CauchyBorn
from atomistic.cb_batch import BatchCauchyBorn
from atomistic.potentials.factory import load_potential


class SingleCell:
    """Cauchy-Born P, A, W per reference volume of one deformed primitive cell.

    Computed by the Calculator (virial and deformation derivatives), independently of
    BatchCauchyBorn.
    """

    def __init__(self, cb: CauchyBorn):
        self.cell, self.V0 = cb.cell, cb.V0
        self.calc = Calculator(cb.potential, skin=0.5, multiple_images=True)

    def evaluate_one(self, F):
        conf = self.cell.copy()
        conf.cell_cc = self.cell.cell_cc @ F.T
        conf.positions_nc = self.cell.positions_nc @ F.T
        res = self.calc.compute(conf)
        P = -res.virial_cc @ np.linalg.inv(F).T / self.V0
        EFF, _, _ = self.calc.deformation_derivatives(conf, self.cell.cell_cc, mixed=False)
        return P, EFF / self.V0, res.energy / self.V0


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
    cb = SingleCell(CauchyBorn(pot, lattice, a0, dim=3 if lattice == "fcc" else 2))
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


def test_cauchy_born_material_and_point_are_the_batched_kernel_per_volume(cu_u3):
    cb = CauchyBorn(cu_u3, "fcc", 3.615, dim=2)
    batch = BatchCauchyBorn.from_lattice(cu_u3, "fcc", 3.615)
    F2 = np.eye(2) + 0.03 * np.random.default_rng(2).standard_normal((5, 2, 2))
    F3 = np.zeros((5, 3, 3))
    F3[:, :2, :2], F3[:, 2, 2] = F2, 1.0
    e, P, A = batch.evaluate(F3)
    Pq, Aq = cb.evaluate(F2)
    assert np.allclose(Pq, P[:, :2, :2] / cb.V0, rtol=1e-14, atol=0)
    assert np.allclose(Aq, A[:, :2, :2, :2, :2] / cb.V0, rtol=1e-14, atol=0)
    assert np.allclose(cb.energy_density(F2), e / cb.V0, rtol=1e-14, atol=0)
    for q in range(5):  # one point alone gives bitwise the result it has in the batch
        r = cb.evaluate_point(F2[q], cb.initial_state())
        assert np.array_equal(r.P, Pq[q]) and np.array_equal(r.A, Aq[q]) and r.state.size == 0
        assert not cb.evaluate_point(F2[q], r.state, tangent=False).A.any()
