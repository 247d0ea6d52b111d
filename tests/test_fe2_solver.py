"""The quadrature-point finite-strain solver against a pure-UFL hyperelastic solve.

Also its Newton convergence, cut-back, commit/revert discipline and parallel behaviour.
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
from fe2qc.errors import CalculationFailed  # noqa: E402
from tests.fe2_helpers import (  # noqa: E402
    at_left,
    at_right,
    at_top,
    max_rel_diff,
    neo_hookean_energy,
    solve_stretched,
)

MU, LMBDA = 1.0, 1.5
TOL = {"rtol": 1e-13, "atol": 1e-11}


def _mesh(comm, dim, simplex=True):
    if dim == 2:
        cell = mesh.CellType.triangle if simplex else mesh.CellType.quadrilateral
        return mesh.create_unit_square(comm, 8, 8, cell)
    cell = mesh.CellType.tetrahedron if simplex else mesh.CellType.hexahedron
    return mesh.create_unit_cube(comm, 4, 4, 4, cell)


def _loads(dim):
    """A stretch of 30 % with the left face clamped, a lateral traction on top, gravity."""
    traction = np.zeros(dim)
    traction[1] = 0.1
    body = np.zeros(dim)
    body[1] = -0.05
    return 0.3, traction, body


def _problem(comm, dim, degree, material=None, simplex=True, **kwargs):
    msh = _mesh(comm, dim, simplex)
    stretch, traction, body = _loads(dim)
    material = material or NeoHookean(MU, LMBDA, dim)
    bcs = [Dirichlet(at_left, np.zeros(dim)), Dirichlet(at_right, stretch, component=0)]
    kwargs = {**TOL, "log": None, **kwargs}
    return Problem(
        msh,
        material,
        degree=degree,
        bcs=bcs,
        tractions=[Traction(at_top, traction)],
        body_force=body,
        **kwargs,
    )


def _ufl_reference(V, quadrature_degree, load_factors):
    """The same problem written as a UFL neo-Hookean energy, solved with SNES (newtonls)."""
    msh = V.mesh
    d = msh.geometry.dim
    stretch, traction, body = _loads(d)
    u = fem.Function(V)
    v = ufl.TestFunction(V)
    lam = fem.Constant(msh, 0.0)
    fdim = d - 1
    top = mesh.locate_entities_boundary(msh, fdim, at_top)
    tags = mesh.meshtags(msh, fdim, np.sort(top), np.full(len(top), 1, dtype=np.int32))
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    T = fem.Constant(msh, traction)
    B = fem.Constant(msh, body)
    R = (
        ufl.derivative(neo_hookean_energy(u, MU, LMBDA, quadrature_degree), u, v)
        - lam * ufl.dot(B, v) * ufl.dx(domain=msh)
        - lam * ufl.dot(T, v) * ds(1)
    )
    return solve_stretched(R, u, lam, stretch, load_factors, f"test_ufl_reference_{d}d_")


def _check_quadratic(norms, C=3.0, floor=1e-10):
    """r_{k+1} <= C r_k^2 for every iteration after the first (which carries the BC jump).

    Measured r_{k+1}/r_k^2 over the cases below: 0.47-2.81 (the largest in 3D P2); residuals under
    ``floor`` are round-off and not checked.
    """
    for r_k, r_next in zip(norms[1:-1], norms[2:], strict=True):
        assert r_next <= max(C * r_k**2, floor), f"not quadratic: {norms}"


@pytest.mark.parametrize(
    "dim,degree,simplex",
    [(2, 1, True), (2, 2, True), (3, 1, True), (3, 2, True), (2, 1, False), (3, 1, False)],
)
def test_quadrature_point_solver_matches_pure_ufl_neo_hookean(dim, degree, simplex):
    steps = [0.25, 0.5, 0.75, 1.0]
    problem = _problem(MPI.COMM_WORLD, dim, degree, simplex=simplex)
    reports = problem.solve(steps)
    assert [r.load_factor for r in reports] == steps
    u_ref = _ufl_reference(problem.V, problem.quadrature_degree, steps)
    assert max_rel_diff(problem.u, u_ref) < 1e-10
    for r in reports:
        assert r.iterations <= 6
        _check_quadratic(r.residual_norms)
        assert set(r.timings) >= {"material", "assembly", "linear_solve", "kinematics"}


def test_newton_converges_quadratically_with_consistent_tangent():
    problem = _problem(MPI.COMM_WORLD, 2, 1)
    (report,) = problem.solve([1.0])
    norms = report.residual_norms
    # the last reductions are by orders of magnitude and follow r_{k+1} ~ r_k^2
    assert norms[-2] / norms[-1] > 1e3
    _check_quadratic(norms, C=1.0)  # measured 0.47, 0.60, 0.79


class _ScaledTangent(NeoHookean):
    """Neo-Hookean stress with a wrong (scaled) tangent: Newton must drop to linear convergence."""

    def evaluate(self, F_qij):
        P, A = super().evaluate(F_qij)
        return P, 1.5 * A


def test_inconsistent_tangent_loses_quadratic_convergence():
    problem = _problem(MPI.COMM_WORLD, 2, 1, material=_ScaledTangent(MU, LMBDA, 2))
    (report,) = problem.solve([0.25])
    assert report.iterations > 8  # linear rate ~ 1/3 per iteration


def test_inverting_single_step_is_cut_back_and_reaches_full_load():
    msh = _mesh(MPI.COMM_WORLD, 2)
    bcs = [
        Dirichlet(lambda x: np.isclose(x[1], 0.0), (0.0, 0.0)),
        Dirichlet(at_top, (1.5, 0.0)),  # shear by 150 %: one Newton step inverts elements
    ]
    problem = Problem(msh, NeoHookean(MU, LMBDA, 2), bcs=bcs, log=None, **TOL)
    reports = problem.solve([1.0])
    assert reports[0].cutbacks >= 1
    assert "det F" in reports[0].failures[0]
    assert "Gauss point" in reports[0].failures[0]
    assert reports[-1].load_factor == 1.0

    reference = Problem(_mesh(MPI.COMM_WORLD, 2), NeoHookean(MU, LMBDA, 2), bcs=bcs, log=None,
                        **TOL)
    reference.solve(8)
    assert max_rel_diff(problem.u, reference.u) < 1e-9


def test_impossible_load_raises_calculation_failed_with_load_factor_reached():
    msh = _mesh(MPI.COMM_WORLD, 2)
    bcs = [Dirichlet(at_left, (0.0, 0.0)), Dirichlet(at_right, (-1.2, 0.0))]  # past the left edge
    problem = Problem(msh, NeoHookean(MU, LMBDA, 2), bcs=bcs, log=None, max_iterations=15)
    with pytest.raises(CalculationFailed, match=r"reached load factor .* of 1"):
        problem.solve([1.0], min_increment=0.02)
    assert 0.0 < problem.load_factor < 1.0
    # the state is the last converged one: the residual there is still small
    problem._set_load(problem.load_factor)
    problem._update_material()
    assert problem._residual() < 1e-6


class _WarmStartRVE(NeoHookean):
    """A history-carrying stand-in for an atomistic RVE.

    Its 'relaxation' fails when the trial F is too far from the committed one, and it records
    commit/revert calls.
    """

    def __init__(self, *args, max_jump=0.08, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_jump = max_jump
        self.F_committed = None
        self.F_trial = None
        self.commits = self.reverts = 0

    def evaluate(self, F_qij):
        if self.F_committed is None:
            self.F_committed = np.broadcast_to(np.eye(self.dim), F_qij.shape).copy()
        jump = np.abs(F_qij - self.F_committed).max(initial=0.0)
        if jump > self.max_jump:
            raise CalculationFailed(f"RVE relaxation failed: |F - F_committed| = {jump:.3f}")
        self.F_trial = F_qij.copy()
        return super().evaluate(F_qij)

    def commit(self):
        self.commits += 1
        self.F_committed = self.F_trial.copy()

    def revert(self):
        self.reverts += 1
        self.F_trial = None


def test_material_history_is_committed_only_after_convergence_and_reverted_on_cutback():
    rve = _WarmStartRVE(MU, LMBDA, 2)
    problem = _problem(MPI.COMM_WORLD, 2, 1, material=rve)
    reports = problem.solve([1.0])
    assert len(reports) > 1 and sum(r.cutbacks for r in reports) >= 1
    assert rve.commits == len(reports)
    assert rve.reverts == sum(r.cutbacks for r in reports)
    # the committed history is the converged state, not a trial one
    assert np.allclose(rve.F_committed, problem.deformation_gradients(), atol=1e-12)
    reference = _problem(MPI.COMM_WORLD, 2, 1)
    reference.solve(4)
    assert max_rel_diff(problem.u, reference.u) < 1e-9


def test_quadrature_points_are_named_and_located_for_a_dispatcher():
    problem = _problem(MPI.COMM_WORLD, 2, 2)
    x = problem.quadrature_points_x
    ids = problem.quadrature_point_ids
    assert x.shape == (problem.num_owned_points, 2) and ids.shape == (problem.num_owned_points, 2)
    assert problem.layout.points_per_cell == 3
    assert ((x >= 0) & (x <= 1)).all()
    assert (ids[:, 1] < 3).all()
    # the global cell ids are the owned range of the cell index map, three points each
    imap = problem.mesh.topology.index_map(2)
    assert (np.unique(ids[:, 0]) == np.arange(*imap.local_range)).all()
    counts = MPI.COMM_WORLD.allreduce(len(np.unique(ids, axis=0)), op=MPI.SUM)
    assert counts == problem.num_global_points


def test_results_are_written_for_paraview(tmp_path):
    from fe2.io import ResultWriter

    problem = _problem(MPI.COMM_WORLD, 2, 2)
    path = MPI.COMM_WORLD.bcast(str(tmp_path), root=0)
    with ResultWriter(problem, f"{path}/plate") as writer:
        writer.write(0.0)
        problem.solve([0.5, 1.0], callback=lambda r: writer.write(r.load_factor))
        assert writer.von_mises.x.array.max() > 0
        detF = writer.det_F.x.array
        assert (detF > 0.5).all() and (detF < 2).all()
    MPI.COMM_WORLD.Barrier()
    import os

    assert os.path.isdir(f"{path}/plate_displacement.bp")
    assert os.path.isdir(f"{path}/plate_cells.bp")


# -- parallel ---------------------------------------------------------------------------------


class _CountingMaterial(NeoHookean):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes = []

    def evaluate(self, F_qij):
        assert F_qij.flags.c_contiguous
        self.batch_sizes.append(len(F_qij))
        return super().evaluate(F_qij)


@pytest.mark.mpi
@pytest.mark.parametrize("dim,degree", [(2, 1), (3, 2)])
def test_parallel_solution_matches_serial_and_evaluates_owned_points_once(dim, degree):
    comm = MPI.COMM_WORLD
    counting = _CountingMaterial(MU, LMBDA, dim)
    problem = _problem(comm, dim, degree, material=counting)
    reports = problem.solve([0.5, 1.0])
    # every Gauss point evaluated exactly once per call across ranks (no ghosts)
    points_per_cell = problem.layout.points_per_cell
    num_cells = problem.mesh.topology.index_map(dim).size_global
    for n in counting.batch_sizes:
        assert comm.allreduce(n, op=MPI.SUM) == num_cells * points_per_cell
    assert len(counting.batch_sizes) == sum(len(r.residual_norms) for r in reports)
    norm, energy = problem.displacement_norm(), problem.energy()

    serial = _problem(MPI.COMM_SELF, dim, degree)
    serial.solve([0.5, 1.0])
    assert abs(norm - serial.displacement_norm()) <= 1e-11 * norm
    assert abs(energy - serial.energy()) <= 1e-11 * abs(energy)

    u_ref = _ufl_reference(problem.V, problem.quadrature_degree, [0.5, 1.0])
    assert max_rel_diff(problem.u, u_ref) < 1e-10


@pytest.mark.mpi
def test_material_failure_on_one_rank_cuts_back_on_all_ranks():
    comm = MPI.COMM_WORLD

    class FailsOnRankZeroFirst(NeoHookean):
        calls = 0

        def evaluate(self, F_qij):
            type(self).calls += 1
            if comm.rank == 0 and type(self).calls == 1:
                raise CalculationFailed("RVE on rank 0 did not relax")
            return super().evaluate(F_qij)

    problem = _problem(comm, 2, 1, material=FailsOnRankZeroFirst(MU, LMBDA, 2))
    reports = problem.solve([1.0])
    assert reports[0].cutbacks == 1
    assert "rank 0" in reports[0].failures[0]
    assert reports[-1].load_factor == 1.0
