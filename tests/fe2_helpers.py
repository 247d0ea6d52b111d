"""Shared pieces of the FE² solver tests: unit-square/cube boundaries and a pure-UFL reference.

The reference is the hyperelastic problem that ``fe2.Problem`` solves, written directly in UFL
(a compressible neo-Hookean energy) and solved with DOLFINx's SNES ``NonlinearProblem``: the
left face clamped, the right face stretched along x, the load factor scaling the stretch and
the caller's loads. ``test_fe2_solver`` and ``test_fe2_terms`` compare ``fe2.Problem`` with it.
"""

import numpy as np

import fe2qc.mpi

MPI = fe2qc.mpi.mpi()
fe2qc.mpi.dolfinx()

import ufl  # noqa: E402
from dolfinx import fem, mesh  # noqa: E402
from dolfinx.fem.petsc import NonlinearProblem  # noqa: E402


def at_left(x):
    """Return the mask of the points ``x`` (3, n) on the face x = 0."""
    return np.isclose(x[0], 0.0)


def at_right(x):
    """Return the mask of the points ``x`` (3, n) on the face x = 1."""
    return np.isclose(x[0], 1.0)


def at_top(x):
    """Return the mask of the points ``x`` (3, n) on the face y = 1."""
    return np.isclose(x[1], 1.0)


def neo_hookean_energy(u, mu: float, lmbda: float, quadrature_degree: int):
    """Return the compressible neo-Hookean energy of the displacement ``u`` as a UFL form.

    ``∫ mu/2 (tr C - d - 2 ln J) + lmbda/2 (ln J)² dX`` with ``F = I + grad u``, ``C = FᵀF``,
    ``J = det F``, integrated with the default quadrature scheme of ``quadrature_degree`` (the
    points where ``fe2.Problem`` evaluates its material).

    Args:
        u: the displacement (a ``fem.Function``).
        mu: the shear modulus.
        lmbda: the first Lamé parameter.
        quadrature_degree: the degree of the quadrature rule.
    """
    msh = u.function_space.mesh
    d = msh.geometry.dim
    F = ufl.Identity(d) + ufl.grad(u)
    J = ufl.det(F)
    psi = mu / 2 * (ufl.tr(F.T * F) - d - 2 * ufl.ln(J)) + lmbda / 2 * ufl.ln(J) ** 2
    dx_q = ufl.dx(domain=msh, metadata={"quadrature_degree": quadrature_degree,
                                        "quadrature_scheme": "default"})
    return psi * dx_q


def solve_stretched(R, u, lam, stretch: float, load_factors, prefix: str):
    """Solve ``R = 0`` for ``u`` with SNES at each load factor: left face clamped, right stretched.

    At load factor ``f`` the right face's x displacement is ``f * stretch`` (its other
    components are free) and ``lam`` holds ``f``. Newton with a basic line search and an LU
    (MUMPS) solve, to rtol 1e-14 and atol 1e-12 (at most 30 iterations); each step starts
    from the previous solution.

    Args:
        R: the residual form of ``u`` (the load terms scaled by ``lam``).
        u: the displacement (a ``fem.Function``), solved in place.
        lam: the ``fem.Constant`` load factor in ``R``.
        stretch: the right face's x displacement at load factor 1.
        load_factors: the load factors, in order.
        prefix: the PETSc options prefix of the solver.

    Returns:
        ``u``, the solution at the last load factor.
    """
    V = u.function_space
    msh = V.mesh
    fdim = msh.topology.dim - 1
    left_dofs = fem.locate_dofs_topological(V, fdim, mesh.locate_entities_boundary(
        msh, fdim, at_left))
    V0, _ = V.sub(0).collapse()
    right_dofs = fem.locate_dofs_topological(
        (V.sub(0), V0), fdim, mesh.locate_entities_boundary(msh, fdim, at_right))
    g = fem.Function(V0)
    bcs = [fem.dirichletbc(np.zeros(msh.geometry.dim), left_dofs, V),
           fem.dirichletbc(g, right_dofs, V.sub(0))]
    problem = NonlinearProblem(
        R, u, bcs=bcs, petsc_options_prefix=prefix,
        petsc_options={"snes_type": "newtonls", "snes_linesearch_type": "basic",
                       "snes_rtol": 1e-14, "snes_atol": 1e-12, "snes_stol": 0.0,
                       "snes_max_it": 30, "ksp_type": "preonly", "pc_type": "lu",
                       "pc_factor_mat_solver_type": "mumps"})
    for factor in load_factors:
        lam.value = factor
        g.x.array[:] = factor * stretch
        problem.solve()
        reason = problem.solver.getConvergedReason()
        assert reason > 0, f"UFL reference SNES did not converge (reason {reason})"
    return u


def max_rel_diff(u, u_ref) -> float:
    """Return max |u - u_ref| / max |u_ref| over the owned dofs of all ranks."""
    comm = u.function_space.mesh.comm
    n = u.function_space.dofmap.index_map.size_local * u.function_space.dofmap.index_map_bs
    diff = comm.allreduce(np.abs(u.x.array[:n] - u_ref.x.array[:n]).max(initial=0), op=MPI.MAX)
    scale = comm.allreduce(np.abs(u_ref.x.array[:n]).max(initial=0), op=MPI.MAX)
    return diff / scale
