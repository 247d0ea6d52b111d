"""Extra residual terms in fe2.Problem (``terms=[...]``).

An elastic foundation in the bulk and a spring on a boundary part match a pure-UFL solve of
the same energy; every term is set to the load, updated, committed and reverted with the
material; a failing term cuts the step back on every rank; bad terms and overlapping boundary
parts are refused.
"""

import numpy as np
import pytest

import fe2qc.mpi

MPI = fe2qc.mpi.mpi()
fe2qc.mpi.dolfinx()

import ufl  # noqa: E402
from dolfinx import fem, mesh  # noqa: E402

from fe2.materials import NeoHookean  # noqa: E402
from fe2.solver import Dirichlet, Problem, Traction  # noqa: E402
from fe2.terms import Term  # noqa: E402
from fe2qc.errors import CalculationFailed, InputError  # noqa: E402
from tests.fe2_helpers import (  # noqa: E402
    at_left,
    at_right,
    at_top,
    max_rel_diff,
    neo_hookean_energy,
    solve_stretched,
)

pytestmark = pytest.mark.dolfinx

MU, LMBDA = 1.0, 1.5
K_BULK, K_EDGE = 0.4, 2.0  # foundation stiffness per volume, edge spring per area
STRETCH, TRACTION = 0.3, (0.0, 0.1)
TOL = {"rtol": 1e-13, "atol": 1e-11}


class Foundation(Term):
    """Elastic foundation ``∫ k u · v dX`` (linear, Jacobian ``∫ k du · v dX``)."""

    name = "foundation"

    def __init__(self, k):
        self.k = k

    def residual(self, problem, v):
        return self.k * ufl.dot(problem.u, v) * ufl.dx(domain=problem.mesh)

    def jacobian(self, problem, v, du):
        return self.k * ufl.dot(du, v) * ufl.dx(domain=problem.mesh)


class EdgeSpring(Term):
    """Springs on a boundary part, ``∫_Γ k u · v dS``: claims its part from the Problem."""

    name = "edge spring"

    def __init__(self, where, k):
        self.where, self.k = where, k

    def setup(self, problem):
        self.marker = problem.mark_boundary(self.where, self.name)

    def residual(self, problem, v):
        return self.k * ufl.dot(problem.u, v) * problem.ds(self.marker)

    def jacobian(self, problem, v, du):
        return self.k * ufl.dot(du, v) * problem.ds(self.marker)


def _problem(comm, degree=1, terms=(), material=None, **kwargs):
    msh = mesh.create_unit_square(comm, 8, 8, mesh.CellType.triangle)
    bcs = [Dirichlet(at_left, (0.0, 0.0)), Dirichlet(at_right, STRETCH, component=0)]
    return Problem(msh, material or NeoHookean(MU, LMBDA, 2), degree=degree, bcs=bcs,
                   tractions=[Traction(at_top, TRACTION)], terms=terms, log=None,
                   **{**TOL, **kwargs})


def _ufl_reference(V, quadrature_degree, load_factors):
    """Neo-Hookean energy + foundation + edge spring, the traction on top, SNES."""
    msh = V.mesh
    u = fem.Function(V)
    v = ufl.TestFunction(V)
    lam = fem.Constant(msh, 0.0)
    fdim = 1
    top = mesh.locate_entities_boundary(msh, fdim, at_top)
    right = mesh.locate_entities_boundary(msh, fdim, at_right)
    facets = np.concatenate([top, right])
    values = np.concatenate([np.full(len(top), 1, np.int32), np.full(len(right), 2, np.int32)])
    order = np.argsort(facets)
    tags = mesh.meshtags(msh, fdim, facets[order], values[order])
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    T = fem.Constant(msh, np.array(TRACTION))
    Pi = (neo_hookean_energy(u, MU, LMBDA, quadrature_degree)
          + K_BULK / 2 * ufl.dot(u, u) * ufl.dx(domain=msh) + K_EDGE / 2 * ufl.dot(u, u) * ds(2))
    R = ufl.derivative(Pi, u, v) - lam * ufl.dot(T, v) * ds(1)
    return solve_stretched(R, u, lam, STRETCH, load_factors, "test_fe2_terms_reference_")


@pytest.mark.parametrize("degree", [1, 2])
def test_foundation_and_edge_spring_terms_match_a_pure_ufl_solve(degree):
    steps = [0.5, 1.0]
    terms = [Foundation(K_BULK), EdgeSpring(at_right, K_EDGE)]
    problem = _problem(MPI.COMM_WORLD, degree, terms=terms)
    assert problem.terms[-2:] == terms
    reports = problem.solve(steps)
    assert [r.load_factor for r in reports] == steps
    u_ref = _ufl_reference(problem.V, problem.quadrature_degree, steps)
    assert max_rel_diff(problem.u, u_ref) < 1e-10
    # the springs change the answer: without them it is a different solution
    plain = _problem(MPI.COMM_WORLD, degree)
    plain.solve(steps)
    assert max_rel_diff(plain.u, u_ref) > 1e-3
    # consistent Jacobians: Newton converges quadratically (as without extra terms)
    assert all(r.iterations <= 6 for r in reports)


class Recorder(Term):
    """Records the calls the Problem makes; fails its update at the first trial at λ = 1."""

    name = "recorder"

    def __init__(self, fail_at=1.0, rank=None):
        self.calls = []
        self.lam = None
        self.fail_at, self.rank, self.failed = fail_at, rank, False

    def setup(self, problem):
        self.calls.append("setup")

    def set_load(self, lam):
        self.lam = lam
        self.calls.append(("set_load", lam))

    def update(self, problem):
        self.calls.append("update")
        mine = self.rank is None or problem.comm.rank == self.rank
        if mine and self.lam == self.fail_at and not self.failed:
            self.failed = True
            raise CalculationFailed("the recorder refuses this load")

    def assign(self, problem):
        self.calls.append("assign")

    def describe_failure(self, problem, exc):
        return " [recorder at the interface]"

    def commit(self):
        self.calls.append("commit")

    def revert(self):
        self.calls.append("revert")


class CountingNeoHookean(NeoHookean):
    def __init__(self, *args):
        super().__init__(*args)
        self.commits = self.reverts = 0

    def commit(self):
        self.commits += 1
        super().commit()

    def revert(self):
        self.reverts += 1
        super().revert()


def _compress(calls):
    """Collapse runs of update/assign into ('newton', n)."""
    out = []
    for c in calls:
        if c in ("update", "assign"):
            if out and out[-1][0] == "newton":
                out[-1] = ("newton", out[-1][1] + (c == "update"))
            else:
                out.append(("newton", 1))
        else:
            out.append(c)
    return out


def test_terms_are_loaded_updated_committed_and_reverted_with_the_material():
    rec = Recorder(fail_at=1.0)
    material = CountingNeoHookean(MU, LMBDA, 2)
    problem = _problem(MPI.COMM_WORLD, terms=[rec], material=material)
    reports = problem.solve([1.0])
    # the first trial at 1.0 fails in the recorder: cut back to 0.5, then 1.0 again
    assert [r.load_factor for r in reports] == [0.5, 1.0]
    assert reports[0].cutbacks == 1
    assert "the recorder refuses this load [recorder at the interface]" in reports[0].failures[0]
    n0, n1 = (len(r.residual_norms) for r in reports)
    # failed in its first update: no assign, no Newton step, reverted
    assert rec.calls[:4] == ["setup", ("set_load", 1.0), "update", "revert"]
    assert _compress(rec.calls[4:]) == [
        ("set_load", 0.5), ("newton", n0), "commit",
        ("set_load", 1.0), ("newton", n1), "commit",
    ]
    assert rec.calls.count("update") == rec.calls.count("assign") + 1
    assert (material.commits, material.reverts) == (2, 1)
    assert problem.num_material_calls == n0 + n1 + 1


@pytest.mark.mpi
def test_a_term_failing_on_one_rank_cuts_back_on_all_ranks():
    comm = MPI.COMM_WORLD
    rec = Recorder(fail_at=1.0, rank=0)
    problem = _problem(comm, terms=[rec])
    reports = problem.solve([1.0])
    assert [r.load_factor for r in reports] == [0.5, 1.0]
    assert reports[0].cutbacks == 1 and "rank 0" in reports[0].failures[0]
    assert rec.calls.count("revert") == 1 and rec.calls.count("commit") == 2


def test_bad_terms_and_overlapping_boundary_parts_are_refused():
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 2, 2, mesh.CellType.triangle)
    with pytest.raises(InputError, match="Term"):
        Problem(msh, NeoHookean(MU, LMBDA, 2), terms=[object()], log=None)
    with pytest.raises(InputError, match="overlap"):
        Problem(msh, NeoHookean(MU, LMBDA, 2), tractions=[Traction(at_top, TRACTION)],
                terms=[EdgeSpring(at_top, K_EDGE)], log=None)
