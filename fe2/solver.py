"""Total-Lagrangian quasi-static finite-strain solver with a material point at each Gauss point.

The macro problem is: find u with  ∫ P(F) : grad v dX = ∫ B·v dX + ∫ T·v dS  for all v,
F = I + grad u, with P and its tangent A = dP/dF supplied by a
:class:`fe2qc.material.MaterialPoint` (an analytic law, a Cauchy-Born lattice, or a
dispatcher that relaxes atomistic RVEs). The residual and Jacobian are sums of terms
(:mod:`fe2.terms`): the bulk material, the body force and tractions, and any extra
``terms=[...]`` (a cohesive interface, a phase-field coupling). One Newton iteration:

1. ``F_qij`` at the owned cells' Gauss points via one ``fem.Expression`` (built once);
2. ``P_qij, A_qijkl = material.evaluate(F_qij)`` (one call, contiguous (nq_owned, d, d)),
   and every other term's update;
3. P and A written into quadrature-element Functions (owned part, then ``scatter_forward``);
4. residual and Jacobian assembled from forms compiled once; MUMPS LU; u -= du.

Load stepping (:class:`fe2qc.stepping.LoadStepper`) cuts the increment in half when Newton
diverges, runs out of iterations, the linear solver fails, or a term (the material) raises
:class:`~fe2qc.errors.InputError` / :class:`~fe2qc.errors.CalculationFailed`
(e.g. det F <= 0). The terms (the material) are committed only after a step converged and
reverted after a failed attempt. Failures on one rank are all-reduced so every
rank takes the same branch. An interrupt (KeyboardInterrupt or SystemExit, also when numba
wraps it in a ``SystemError``) is never a material failure: it propagates at once, without a
cut-back, and the caller ends every rank (``coupling.interrupts``).

Example::

    problem = Problem(mesh, NeoHookean(1.0, 1.0, 2), degree=1,
                      bcs=[Dirichlet(left, (0.0, 0.0)), Dirichlet(right, 0.3, component=0)])
    reports = problem.solve(np.linspace(0, 1, 6)[1:])
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import numpy as np  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem  # noqa: E402
from dolfinx import mesh as dmesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from fe2.quadrature import QuadratureLayout  # noqa: E402
from fe2.terms import BodyForce, BulkMaterial, Term, TractionLoad  # noqa: E402
from fe2qc.errors import CalculationFailed, InputError, raise_if_interrupt  # noqa: E402
from fe2qc.stepping import LoadStepper  # noqa: E402

__all__ = ["Dirichlet", "Traction", "StepReport", "Problem"]

# Failures of a trial step that a smaller load increment may cure.
_RECOVERABLE = (InputError, CalculationFailed, np.linalg.LinAlgError, FloatingPointError)

_instance_counter = itertools.count()


@dataclass(frozen=True)
class Dirichlet:
    """Prescribed displacement on part of the boundary.

    Args:
        where: a locator ``x -> bool array`` (x of shape (3, n)) for boundary facets, a pair
            ``(facet_tags, marker)``, or an array of local facet indices.
        value: the displacement at full load: a scalar (with ``component``), a vector of
            length d (without), or a callable ``x -> values`` of shape (n,) or (d, n).
        component: the displacement component constrained, or None for all.
        scale_with_load: multiply ``value`` by the load factor (default) or keep it fixed.
    """

    where: Any
    value: Any
    component: int | None = None
    scale_with_load: bool = True


@dataclass(frozen=True)
class Traction:
    """Nominal (first Piola) traction on part of the boundary: force per reference area.

    ``value`` is a vector of length d at full load, scaled by the load factor (dead load).
    """

    where: Any
    value: Sequence[float]


@dataclass
class StepReport:
    """What happened in one converged load increment."""

    step: int  # index of the requested load step this increment belongs to
    load_factor: float
    increment: float
    iterations: int
    residual_norms: list[float]
    cutbacks: int = 0  # failed attempts before this increment converged
    failures: list[str] = field(default_factory=list)  # why those attempts failed
    timings: dict[str, float] = field(default_factory=dict)  # seconds, this increment only
    wall_time: float = 0.0
    #: the load stepper after this increment (:meth:`fe2qc.stepping.LoadStepper.state`): what
    #: a restart from here needs to take the same increments as an uninterrupted run
    stepper: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """One progress line: load, Newton iterations, residuals, cut-backs, timings."""
        r = self.residual_norms
        t = self.timings
        return (
            f"step {self.step:3d}  load {self.load_factor:.6g} (+{self.increment:.3g})  "
            f"newton {self.iterations:2d}  |R| {r[0]:.2e} -> {r[-1]:.2e}  "
            f"cutbacks {self.cutbacks}  "
            f"time {self.wall_time:.2f}s (material {t.get('material', 0):.2f}, "
            f"assembly {t.get('assembly', 0):.2f}, solve {t.get('linear_solve', 0):.2f})"
        )


class _StepFailed(Exception):
    """A trial increment failed in a way a smaller increment may cure (same on all ranks)."""


class Problem:
    """Quasi-static finite-strain boundary-value problem driven by a batched material point.

    Args:
        mesh: DOLFINx mesh (triangles/quadrilaterals: plane strain; tetrahedra/hexahedra: 3D).
        material: anything with ``evaluate(F_qij) -> (P_qij, A_qijkl)``, ``commit()``,
            ``revert()`` and ``dim`` (see :class:`fe2qc.material.MaterialPoint`). It is called
            with the owned Gauss points of this rank only, in the order of
            :attr:`quadrature_point_ids` / :attr:`quadrature_points_x`. An exception it raises
            may carry ``point_index`` (index into that batch) to name the failing point.
        degree: Lagrange degree of the displacement (1 or 2).
        quadrature_degree: degree of the Gauss rule (default: 2 (degree - 1), at least 1, on
            simplices - one point per P1 cell; 2 degree on quadrilaterals/hexahedra).
        bcs: Dirichlet conditions.
        tractions: nominal tractions on boundary parts.
        body_force: body force per reference volume at full load (vector of length d).
        terms: extra :class:`fe2.terms.Term` objects added to the residual and Jacobian after
            the bulk material, the body force and the tractions (in that order).
        rtol, atol: Newton stops when ``|R| <= max(atol, rtol |R_0|)`` (l2 norm of the
            residual with Dirichlet rows, R_0 at the start of the increment).
        max_iterations: Newton iterations per increment before it counts as failed.
        divergence_factor: an increment fails when ``|R| > divergence_factor |R_0|``.
        petsc_options: extra options for the KSP (default: preonly + MUMPS LU).
        petsc_options_prefix: prefix of the KSP (default: unique ``fe2_solver_<n>_``).
        log: called with a progress line per converged increment on rank 0 (None: silent).

    Attributes:
        terms: the residual's terms, in assembly order: :attr:`bulk`, the body force, the
            tractions, then ``terms``.
        bulk: the :class:`fe2.terms.BulkMaterial` term; :attr:`material`, :attr:`P`,
            :attr:`A`, :attr:`F_qij`, :attr:`P_qij` are its.
        ds: the boundary measure over the parts claimed with :meth:`mark_boundary` (None
            when no term claimed one).
        u, V, layout, load_factor: displacement, its space, the Gauss points, the last
            converged load factor.
    """

    def __init__(
        self,
        mesh,
        material,
        *,
        degree: int = 1,
        quadrature_degree: int | None = None,
        bcs: Sequence[Dirichlet] = (),
        tractions: Sequence[Traction] = (),
        body_force: Sequence[float] | None = None,
        terms: Sequence[Term] = (),
        rtol: float = 1e-9,
        atol: float = 1e-12,
        max_iterations: int = 25,
        divergence_factor: float = 1e6,
        petsc_options: dict | None = None,
        petsc_options_prefix: str | None = None,
        log: Callable[[str], None] | None = print,
    ):
        d = mesh.geometry.dim
        if mesh.topology.dim != d or d not in (2, 3):
            raise InputError(
                f"need a 2D or 3D mesh with tdim == gdim, got tdim={mesh.topology.dim}, gdim={d}"
            )
        if getattr(material, "dim", d) != d:
            raise InputError(f"material dim {material.dim} does not match the mesh dimension {d}")
        for name in ("evaluate", "commit", "revert"):
            if not callable(getattr(material, name, None)):
                raise InputError(f"material {material!r} has no method {name}()")
        if degree not in (1, 2):
            raise InputError(f"displacement degree must be 1 or 2, got {degree}")
        if quadrature_degree is None:
            # exact stiffness for a linear law; no hourglass modes on quadrilaterals/hexahedra
            simplex = mesh.topology.cell_name() in ("triangle", "tetrahedron")
            quadrature_degree = max(2 * (degree - 1), 1) if simplex else 2 * degree
        if max_iterations < 1 or not (rtol >= 0 and atol >= 0):
            raise InputError("need max_iterations >= 1, rtol >= 0 and atol >= 0")

        for term in terms:
            if not isinstance(term, Term):
                raise InputError(f"terms must be fe2.terms.Term objects (subclass Term), got "
                                 f"{term!r}")

        self.mesh = mesh
        self.comm = mesh.comm
        self.dim = d
        self.degree = degree
        self.rtol, self.atol = float(rtol), float(atol)
        self.max_iterations = int(max_iterations)
        self.divergence_factor = float(divergence_factor)
        self.log = log
        self.load_factor = 0.0

        tdim = d
        fdim = tdim - 1
        mesh.topology.create_connectivity(fdim, tdim)

        # -- spaces and functions ------------------------------------------------------------
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (d,)))
        self.u = fem.Function(self.V, name="displacement")
        self.layout = QuadratureLayout(mesh, quadrature_degree)
        self.quadrature_degree = self.layout.degree

        # F = I + grad u at the Gauss points: one Expression, built once
        self._F_expr = fem.Expression(ufl.Identity(d) + ufl.grad(self.u), self.layout.points_X)

        # -- terms: bulk material, loads, extra terms ----------------------------------------
        self._bcs, self._bc_updates = self._make_bcs(bcs)
        self.bulk = BulkMaterial(material)
        loads: list[Term] = [] if body_force is None else [BodyForce(body_force)]
        loads += [TractionLoad(t.where, t.value) for t in tractions]
        self.terms: list[Term] = [self.bulk, *loads, *terms]
        self._boundary_parts: list[tuple[np.ndarray, str]] = []
        self.ds = None
        for term in self.terms:
            term.setup(self)
        if self._boundary_parts:
            tags = self._facet_tags(self._boundary_parts)
            self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=tags)
        v = ufl.TestFunction(self.V)
        du = ufl.TrialFunction(self.V)
        R = a = None
        for term in self.terms:
            R_t = term.residual(self, v)
            a_t = term.jacobian(self, v, du)
            if R_t is not None:
                R = R_t if R is None else R + R_t
            if a_t is not None:
                a = a_t if a is None else a + a_t
        self._R_form = fem.form(R)
        self._a_form = fem.form(a)

        # -- linear algebra ------------------------------------------------------------------
        self._Amat = fem_petsc.create_matrix(self._a_form)
        self._b = fem_petsc.create_vector(self.V)
        self._du = fem_petsc.create_vector(self.V)
        self.petsc_options_prefix = petsc_options_prefix or f"fe2_solver_{next(_instance_counter)}_"
        self._ksp = PETSc.KSP().create(self.comm)
        self._ksp.setOperators(self._Amat)
        self._ksp.setOptionsPrefix(self.petsc_options_prefix)
        self._Amat.setOptionsPrefix(f"{self.petsc_options_prefix}A_")
        options = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
        options.update(petsc_options or {})
        opts = PETSc.Options()
        opts.prefixPush(self.petsc_options_prefix)
        for key, val in options.items():
            opts[key] = val
        self._ksp.setFromOptions()
        for key in options:
            del opts[key]
        opts.prefixPop()

        self._u_committed = self.u.x.array.copy()
        self._timings: dict[str, float] = {}

    # -- the bulk material term --------------------------------------------------------------
    @property
    def material(self):
        """The material point of the bulk term (may be replaced between solves)."""
        return self.bulk.material

    @material.setter
    def material(self, material) -> None:
        self.bulk.material = material

    @property
    def P(self):
        """Quadrature Function of the first Piola stress (bulk term)."""
        return self.bulk.P

    @property
    def A(self):
        """Quadrature Function of the tangent dP/dF (bulk term)."""
        return self.bulk.A

    @property
    def F_qij(self) -> np.ndarray | None:
        """F at the owned points of the last successful material evaluation."""
        return self.bulk.F_qij

    @property
    def P_qij(self) -> np.ndarray | None:
        """P at the owned points of the last successful material evaluation."""
        return self.bulk.P_qij

    @property
    def num_material_calls(self) -> int:
        """Number of ``material.evaluate`` calls that returned."""
        return self.bulk.num_calls

    # -- set-up helpers ----------------------------------------------------------------------
    def mark_boundary(self, where, name: str) -> int:
        """Claim a boundary part for a term's integral; returns its marker for :attr:`ds`.

        Call it from :meth:`fe2.terms.Term.setup`; after every term's set-up, ``self.ds`` is
        the measure over one facet tag set holding every claimed part (parts must not
        overlap).

        Args:
            where: a locator ``x -> bool array``, a pair ``(facet_tags, marker)`` or an array
                of local facet indices.
            name: the claiming term, for error messages.
        """
        if self.ds is not None:
            raise RuntimeError("boundary parts are claimed in Term.setup(), before the forms")
        self._boundary_parts.append((self._facets(where), name))
        return len(self._boundary_parts)

    def _facets(self, where) -> np.ndarray:
        fdim = self.dim - 1
        if callable(where):
            return dmesh.locate_entities_boundary(self.mesh, fdim, where)
        if isinstance(where, tuple) and len(where) == 2:
            tags, marker = where
            return np.asarray(tags.find(marker), dtype=np.int32)
        arr = np.asarray(where)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError(
                "a boundary part must be a locator x -> bool, (facet_tags, marker) or an "
                f"array of facet indices, got {where!r}"
            )
        return arr.astype(np.int32)

    def _facet_tags(self, parts):
        fdim = self.dim - 1
        facets, values = [], []
        for n, (f, _) in enumerate(parts):
            facets.append(f)
            values.append(np.full(len(f), n + 1, dtype=np.int32))
        facets = np.concatenate(facets)
        values = np.concatenate(values)
        if len(np.unique(facets)) != len(facets):
            names = ", ".join(f"{name} (part {n + 1})" for n, (_, name) in enumerate(parts))
            raise InputError(f"boundary parts overlap; give each facet one traction or boundary "
                             f"term (parts: {names})")
        order = np.argsort(facets)
        return dmesh.meshtags(self.mesh, fdim, facets[order], values[order])

    def _make_bcs(self, bcs):
        fdim = self.dim - 1
        out, updates = [], []
        for bc in bcs:
            if not isinstance(bc, Dirichlet):
                raise InputError(f"bcs must be Dirichlet(...) objects, got {bc!r}")
            facets = self._facets(bc.where)
            c = bc.component
            if c is None:
                Vc = self.V
                dofs = fem.locate_dofs_topological(Vc, fdim, facets)
                shape = (self.dim,)
            else:
                if c not in range(self.dim):
                    raise InputError(f"Dirichlet component must be in 0..{self.dim - 1}, got {c}")
                Vc, _ = self.V.sub(c).collapse()
                dofs = fem.locate_dofs_topological((self.V.sub(c), Vc), fdim, facets)
                shape = ()
            g = fem.Function(Vc)
            if callable(bc.value):
                g.interpolate(bc.value)
            else:
                val = np.asarray(bc.value, dtype=float)
                if val.shape != shape:
                    raise InputError(
                        f"Dirichlet value for component {c} must have shape {shape}, got "
                        f"{val.shape}"
                    )
                g.x.array.reshape(-1, *shape)[:] = val  # Lagrange dofs are point values
            g0 = g.x.array.copy()
            out.append(fem.dirichletbc(g, dofs) if c is None else
                       fem.dirichletbc(g, dofs, self.V.sub(c)))
            updates.append((g, g0, bc.scale_with_load))
        return out, updates

    def _set_load(self, lam: float) -> None:
        for g, g0, scaled in self._bc_updates:
            g.x.array[:] = lam * g0 if scaled else g0
        for term in self.terms:
            term.set_load(lam)

    # -- quadrature-point views for a dispatcher ----------------------------------------------
    @property
    def num_owned_points(self) -> int:
        """Gauss points of the cells this rank owns (the material's batch size)."""
        return self.layout.num_owned_points

    @property
    def num_global_points(self) -> int:
        """Gauss points over all ranks."""
        return self.layout.num_global_points

    @property
    def quadrature_points_x(self) -> np.ndarray:
        """(nq_owned, d) reference coordinates of the Gauss points passed to the material."""
        return self.layout.point_coordinates()

    @property
    def quadrature_point_ids(self) -> np.ndarray:
        """(nq_owned, 2): (global cell index, point index) of each point, in batch order."""
        return self.layout.point_ids()

    def describe_point(self, q: int) -> str:
        """Name owned batch point ``q`` globally (rank, cell, point, coordinates)."""
        cell, p = self.layout.point_ids()[q]
        x = self.layout.point_coordinates()[q]
        return (
            f"Gauss point {p} of cell {cell} (rank {self.comm.rank}, batch index {q}) at "
            f"X = {np.array2string(x, precision=4)}"
        )

    # -- kinematics and material --------------------------------------------------------------
    def deformation_gradients(self) -> np.ndarray:
        """F = I + grad u at the owned Gauss points, (nq_owned, d, d), contiguous."""
        F = self._F_expr.eval(self.mesh, self.layout.owned_cells)
        return np.ascontiguousarray(F.reshape(self.num_owned_points, self.dim, self.dim))

    def add_timing(self, key: str, t0: float) -> None:
        """Add ``time.perf_counter() - t0`` seconds to this increment's timing ``key``."""
        self._timings[key] = self._timings.get(key, 0.0) + time.perf_counter() - t0

    def _update_material(self) -> None:
        """Update every term (the material) at the current u on owned points; collective.

        A failure in any term on any rank is all-reduced: recoverable ones raise
        ``_StepFailed`` on every rank (cut-back), others stop every rank.
        """
        err: BaseException | None = None
        message = None
        for term in self.terms:
            try:
                term.update(self)
            except Exception as exc:  # noqa: BLE001 - reduced below so no rank is left hanging
                # Ctrl-C (also as numba's SystemError around it) is not a material failure:
                # no cut-back; the caller ends the run on every rank (comm.Abort)
                raise_if_interrupt(exc)
                err = exc
                message = (f"rank {self.comm.rank}: {type(exc).__name__}: {exc}"
                           f"{term.describe_failure(self, exc)}")
                break
        status = 0 if err is None else (1 if isinstance(err, _RECOVERABLE) else 2)
        status = self.comm.allreduce(status, op=MPI.MAX)
        if status:
            messages = [m for m in self.comm.allgather(message) if m]
            text = "; ".join(messages)
            if status == 2:  # a bug, not a hard load: stop on every rank
                if err is not None and not isinstance(err, _RECOVERABLE):
                    raise err
                raise RuntimeError(f"material evaluation raised on another rank: {text}")
            raise _StepFailed(f"material failed: {text}")
        for term in self.terms:
            term.assign(self)

    # -- Newton --------------------------------------------------------------------------------
    def _residual(self) -> float:
        b = self._b
        with b.localForm() as b_local:
            b_local.set(0.0)
        fem_petsc.assemble_vector(b, self._R_form)
        x0 = self.u.x.petsc_vec
        fem_petsc.apply_lifting(b, [self._a_form], bcs=[self._bcs], x0=[x0], alpha=-1.0)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        fem_petsc.set_bc(b, self._bcs, x0, -1.0)
        return b.norm()

    def _newton(self, lam: float) -> tuple[int, list[float]]:
        self._set_load(lam)
        norms: list[float] = []
        for it in range(self.max_iterations + 1):
            self._update_material()
            t0 = time.perf_counter()
            r = self._residual()
            self.add_timing("assembly", t0)
            norms.append(r)
            if not np.isfinite(r):
                raise _StepFailed(f"residual is not finite at Newton iteration {it}")
            if r <= max(self.atol, self.rtol * norms[0]):
                return it, norms
            if r > self.divergence_factor * norms[0]:
                raise _StepFailed(
                    f"Newton diverged: |R| = {r:.3e} > {self.divergence_factor:g} |R_0| at "
                    f"iteration {it}"
                )
            if it == self.max_iterations:
                break
            t0 = time.perf_counter()
            self._Amat.zeroEntries()
            fem_petsc.assemble_matrix(self._Amat, self._a_form, bcs=self._bcs)
            self._Amat.assemble()
            self.add_timing("assembly", t0)
            t0 = time.perf_counter()
            self._ksp.solve(self._b, self._du)
            reason = self._ksp.getConvergedReason()
            self.add_timing("linear_solve", t0)
            if reason <= 0:
                raise _StepFailed(f"linear solver failed (KSP converged reason {reason})")
            self._du.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            self.u.x.petsc_vec.axpy(-1.0, self._du)
            self.u.x.scatter_forward()
        raise _StepFailed(
            f"Newton did not converge in {self.max_iterations} iterations "
            f"(|R| {norms[0]:.3e} -> {norms[-1]:.3e})"
        )

    # -- load stepping -------------------------------------------------------------------------
    def solve(
        self,
        load_steps: int | Sequence[float],
        *,
        min_increment: float = 1e-4,
        callback: Callable[[StepReport], None] | None = None,
        resume: tuple[int, dict[str, float]] | None = None,
    ) -> list[StepReport]:
        """Apply the load factors in ``load_steps`` one after the other, with cut-back.

        Each target is reached by :class:`fe2qc.stepping.LoadStepper`: one increment, halved
        after a failed attempt (Newton, linear solver or a term), doubled after a converged
        one up to the whole step.

        Args:
            load_steps: target load factors, e.g. ``np.linspace(0, 1, 11)[1:]``, or an int n
                for n equal steps to 1.
            min_increment: smallest load-factor increment tried before giving up.
            callback: called with each converged increment's report (all ranks).
            resume: ``(step, stepper)`` of the last converged increment of an earlier run
                (:attr:`StepReport.step` and :attr:`StepReport.stepper`), after
                :meth:`restore`: the targets before ``step`` are skipped and target ``step``
                continues with that stepper, so the increments are those the earlier run
                would have taken.

        Returns:
            One :class:`StepReport` per converged increment.

        Raises:
            CalculationFailed: the increment was cut below ``min_increment``; the message
                gives the last converged load factor and why the last attempt failed.
        """
        if isinstance(load_steps, int | np.integer):
            if load_steps < 1:
                raise InputError(f"number of load steps must be >= 1, got {load_steps}")
            targets = list(np.linspace(0.0, 1.0, int(load_steps) + 1)[1:])
        else:
            targets = [float(t) for t in load_steps]
        if not all(np.isfinite(targets)):
            raise InputError(f"load factors must be finite, got {targets}")
        first = 0 if resume is None else int(resume[0])
        if not 0 <= first < max(len(targets), 1):
            raise InputError(f"cannot resume at load step {first}: the run has "
                             f"{len(targets)} load steps")
        reports: list[StepReport] = []
        for n, target in enumerate(targets):
            if n < first:
                continue
            if n == first and resume is not None:
                if resume[1]["target"] != target:
                    raise InputError(f"cannot resume load step {n}: its target load factor was "
                                     f"{resume[1]['target']:.6g}, it is {target:.6g} now")
                stepper = LoadStepper.resume(resume[1], min_increment=min_increment)
            else:
                stepper = LoadStepper(self.load_factor, target, min_increment=min_increment)
            for lam in stepper:
                self._timings = {}
                t_start = time.perf_counter()
                try:
                    iterations, norms = self._newton(lam)
                except _StepFailed as exc:
                    for term in self.terms:
                        term.revert()
                    self.u.x.array[:] = self._u_committed
                    if not stepper.cut_back(f"load {lam:.6g}: {exc}"):
                        self._set_load(self.load_factor)
                        raise CalculationFailed(
                            f"load stepping failed: reached load factor {self.load_factor:.6g} "
                            f"of {target:.6g} (step {n}); the increment was cut back below "
                            f"min_increment={min_increment:g} after {stepper.cutbacks} failed "
                            f"attempts. Last failure: {stepper.failures[-1]}"
                        ) from None
                    continue
                for term in self.terms:
                    term.commit()
                self._u_committed[:] = self.u.x.array
                report = StepReport(
                    step=n,
                    load_factor=lam,
                    increment=lam - self.load_factor,
                    iterations=iterations,
                    residual_norms=norms,
                    cutbacks=stepper.cutbacks,
                    failures=list(stepper.failures),
                    timings=dict(self._timings),
                    wall_time=time.perf_counter() - t_start,
                )
                stepper.accept()
                report.stepper = stepper.state()
                self.load_factor = lam
                reports.append(report)
                if self.log is not None and self.comm.rank == 0:
                    self.log(report.line())
                if callback is not None:
                    callback(report)
        return reports

    def restore(self, u_values: np.ndarray, load_factor: float) -> None:
        """Set the converged state of an earlier run: this rank's dofs and the load factor.

        Args:
            u_values: the values of ``u.x.array`` (owned and ghost dofs), e.g. read from a
                checkpoint; they become the committed displacement.
            load_factor: the load factor they converged at.
        """
        u = np.asarray(u_values, dtype=self.u.x.array.dtype)
        if u.shape != self.u.x.array.shape:
            raise InputError(f"restore: {u.shape[0]} displacement values for "
                             f"{self.u.x.array.shape[0]} dofs on this rank")
        self.u.x.array[:] = u
        self._u_committed[:] = u
        self.load_factor = float(load_factor)
        self._set_load(self.load_factor)

    # -- post-processing -----------------------------------------------------------------------
    def energy(self) -> float:
        """Stored energy ∫ W(F) dX at the current u (needs ``material.energy_density``)."""
        if not hasattr(self, "_W"):
            self._W = fem.Function(self.layout.space(()), name="W")
            self._energy_form = fem.form(self._W * self.layout.measure())
        W_q = np.asarray(self.material.energy_density(self.deformation_gradients()), dtype=float)
        self.layout.write_owned(self._W, W_q)
        local = fem.assemble_scalar(self._energy_form)
        return float(self.comm.allreduce(local, op=MPI.SUM))

    def displacement_norm(self) -> float:
        """||u||_L2 over the mesh (collective)."""
        local = fem.assemble_scalar(fem.form(ufl.inner(self.u, self.u) * ufl.dx))
        return float(np.sqrt(self.comm.allreduce(local, op=MPI.SUM)))

    def destroy(self) -> None:
        """Free the PETSc solver objects now.

        Collective over the mesh communicator (MUMPS' clean-up is a collective call): call it
        on every rank at the same point. Left to the garbage collector, it runs whenever a
        rank happens to collect the Problem, and ranks that do so at different times (or
        after another rank's MPI_Finalize) wait for each other forever.
        """
        for name in ("_ksp", "_Amat", "_b", "_du"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()
                setattr(self, name, None)

    def __del__(self):
        self.destroy()
