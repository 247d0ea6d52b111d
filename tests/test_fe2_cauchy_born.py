"""FE² with atomistic material points under a homogeneous stretch.

At every Gauss point the stress is that of a single Cauchy-Born cell / RVE at that F (serial
and on 2 ranks).
"""

import numpy as np
import pytest

import fe2qc.mpi
from atomistic.cauchy_born import CauchyBorn
from atomistic.lattice import crystal
from atomistic.rve import AtomisticRVE
from fe2qc.material import DelegatingMaterial, PointMaterial
from fe2qc.tensors import embed_F

F2 = np.array([[1.02, 0.01], [-0.005, 0.99]])


class Recorder(DelegatingMaterial):
    """Passes a material point through and keeps the last P it returned."""

    def __init__(self, inner):
        super().__init__(inner)
        self.P = None

    def evaluate(self, F_qij):
        P, A = self.inner.evaluate(F_qij)
        self.F, self.P = F_qij.copy(), P
        return P, A


def _homogeneous_stretch(comm, material):
    dolfinx = fe2qc.mpi.dolfinx()
    from dolfinx import mesh as dmesh

    from fe2.solver import Dirichlet, Problem

    msh = dmesh.create_rectangle(comm, [[0.0, 0.0], [200.0, 100.0]], [6, 3],
                                 cell_type=dmesh.CellType.triangle)
    G = F2 - np.eye(2)

    def everywhere(x):
        return np.full(x.shape[1], True)

    def u_affine(x):
        return G @ x[:2]

    rec = Recorder(material)
    pb = Problem(msh, rec, degree=1, bcs=[Dirichlet(everywhere, u_affine)])
    pb.solve([0.5, 1.0])
    assert dolfinx is not None
    return pb, rec


@pytest.mark.parametrize("kind", ["cauchy_born", "rve"])
def test_homogeneous_stretch_gives_single_cell_stress_everywhere(kind, cu_u3, cu_u3_a0):
    comm = fe2qc.mpi.mpi().COMM_WORLD
    cu = cu_u3
    if kind == "cauchy_born":
        mat = CauchyBorn(cu, "fcc", cu_u3_a0, dim=2)
    else:
        mat = PointMaterial(AtomisticRVE(cu, crystal("fcc", cu_u3_a0, size=(2, 2, 2)), dim=2,
                                         multiple_images=True))
    pb, rec = _homogeneous_stretch(comm, mat)
    assert np.allclose(rec.F, F2, atol=1e-10)
    F3 = embed_F(F2)
    P_single = CauchyBorn(cu, "fcc", cu_u3_a0).evaluate_one(F3)[0][:2, :2]
    assert np.abs(rec.P - P_single).max() < 1e-10 * np.abs(P_single).max()


@pytest.mark.mpi
def test_homogeneous_stretch_on_two_ranks_gives_cauchy_born_stress_everywhere(cu_u3, cu_u3_a0):
    test_homogeneous_stretch_gives_single_cell_stress_everywhere("cauchy_born", cu_u3, cu_u3_a0)
