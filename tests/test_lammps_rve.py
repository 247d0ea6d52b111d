"""The RVE relaxed by LAMMPS (atomistic.lammps.rve.LammpsRVE) against the native RVE.

Same cell (2×2×2 Cu_u3 with a vacancy, plane strain), same F, same fmax: LAMMPS's conjugate
gradients and our Newton relaxation reach the same minimum, so P and W agree to the relaxation
tolerance (measured 6e-11 relative, 4e-15 eV/Å³), and the central-difference tangent agrees
with the analytic relaxed tangent to the differences' accuracy (measured 1.4e-7 relative).
The relaxed internal displacements agree up to a rigid translation (LAMMPS keeps the centre of
mass, the native RVE pins atom 0): measured 2e-11 Å.
"""

import numpy as np
import pytest

from atomistic.rve import AtomisticRVE
from fe2qc.errors import CalculationFailed, InputError

pytestmark = pytest.mark.lammps


@pytest.fixture(scope="module")
def rves(cu_u3):
    from atomistic.lammps.rve import LammpsRVE

    rve = AtomisticRVE.from_lattice(cu_u3, "fcc", 3.615, size=(2, 2, 2), vacancy=True, dim=2,
                                    multiple_images=True)
    return rve, LammpsRVE(rve)


def test_lammps_relaxation_gives_the_native_stress_energy_tangent_and_state(rves):
    rve, lmp = rves
    F = np.array([[1.01, 0.005], [-0.003, 0.995]])
    a = rve.evaluate_point(F, rve.initial_state())
    b = lmp.evaluate_point(F, lmp.initial_state())
    assert np.abs(a.P - b.P).max() <= 1e-9 * np.abs(a.P).max()
    assert abs(a.W - b.W) <= 1e-12
    assert np.abs(a.A - b.A).max() <= 1e-5 * np.abs(a.A).max()
    du = a.state.reshape(-1, 3) - b.state.reshape(-1, 3)
    assert np.abs(du - du.mean(axis=0)).max() <= 1e-9
    assert np.abs(a.state).max() > 1e-3 and b.work > 0  # the vacancy relaxes
    # warm start from the relaxed state: nothing left to do, the same answer
    c = lmp.evaluate_point(F, b.state, tangent=False)
    assert np.abs(c.P - b.P).max() <= 1e-9 * np.abs(b.P).max() and not c.A.any()


def test_lammps_rve_refuses_a_bad_state_and_reports_an_unfinished_relaxation(rves):
    from atomistic.lammps.rve import LammpsRVE

    rve, lmp = rves
    with pytest.raises(InputError, match="RVE state has 5 values"):
        lmp.evaluate_point(np.eye(2), np.zeros(5))
    short = LammpsRVE(rve, max_iterations=2)
    with pytest.raises(CalculationFailed, match="LAMMPS relaxation of the RVE stopped"):
        short.evaluate_point(np.array([[1.02, 0.0], [0.0, 0.99]]), short.initial_state())
