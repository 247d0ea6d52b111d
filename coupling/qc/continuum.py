"""The QC continuum on DOLFINx: energy, forces and tangent from any material point.

The continuum region of a quasicontinuum is a P1 mesh whose nodes are lattice sites
(:class:`coupling.qc.mesh.QCMesh`). :class:`DolfinxContinuum` assembles its energy, its
gradient over the nodal displacements and its Hessian with DOLFINx forms at the Gauss points
(one per P1 cell), from a batched 3D material point (:class:`fe2qc.material.MaterialPoint`,
``dim=3``): Cauchy-Born (:class:`atomistic.cauchy_born.CauchyBorn`, or
:class:`LatticeCauchyBorn` over a system's own kernel), neo-Hookean for tests, the atomistic
RVE (:class:`fe2qc.material.PointMaterial`; its history is committed by the QC solver,
:mod:`coupling.qc.solver`)::

    E = t ∫ w W(F) dX,   g = t ∫ w P_cd : grad v dX,   K = t ∫ w (A_cdcd : grad du) : grad v dX

with ``F`` the full 3×3 ``I + [grad u]`` (the c×d block from the mesh, the rest identity),
``P_cd`` and ``A_cdcd`` the c×d blocks of the material's P and A, ``w`` a weight per cell
(the mean blending weight of its nodes, or 1) and ``t`` the thickness: the volume per site
over the measure per site ``omega`` in the mesh plane, so that ``t W |T| = |T|/omega e``
for the Cauchy-Born site energy ``e = V0 W`` (:func:`qc_thickness`). It is the only QC
continuum (:class:`coupling.qc.model.QCModel` builds every continuum of a scheme with it);
tests/test_qc_continuum.py checks it against an independent per-element Cauchy-Born
reference to round-off.

:class:`QCSpace` is the DOLFINx side of a QC mesh: the mesh (built by :func:`to_dolfinx`, also
used by the VTX writer of :mod:`coupling.qc.output`), the vector P1 space with ``c``
components and the permutations between QC node-major dofs (``c * node + component``) and
DOLFINx dofs. Serial for now: the mesh lives on ``MPI.COMM_SELF`` (a communicator with more
than one rank is refused), so ``energy_gradient`` takes and returns whole QC vectors and a
scipy CSR matrix.
"""

from __future__ import annotations

import inspect

import fe2qc.mpi

fe2qc.mpi.bootstrap()

import basix.ufl  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, la  # noqa: E402
from dolfinx import mesh as dmesh  # noqa: E402
from mpi4py import MPI  # noqa: E402

from atomistic.cb_batch import BatchCauchyBorn  # noqa: E402
from fe2.quadrature import QuadratureLayout  # noqa: E402
from fe2qc.errors import CalculationFailed, InputError  # noqa: E402

__all__ = ["DolfinxContinuum", "LatticeCauchyBorn", "QCSpace", "node_of_dof", "qc_site_volume",
           "qc_thickness", "to_dolfinx"]

_CELL = {1: "interval", 2: "triangle"}
#: Gauss rule of the P1 continuum: one point per cell (F is constant in a P1 cell)
_QUADRATURE_DEGREE = 1


def to_dolfinx(mesh, comm=None):
    """Return the DOLFINx mesh of a QC mesh and, per DOLFINx geometry node, its QC node.

    Args:
        mesh: a :class:`coupling.qc.mesh.QCMesh` (intervals in 1D, triangles in 2D).
        comm: the communicator (default ``MPI.COMM_SELF``); the whole mesh is given on rank 0
            and distributed by DOLFINx.

    Returns:
        ``(dolfinx mesh, (n_geometry_nodes,) int64 QC node index of each geometry node)``.
    """
    comm = MPI.COMM_SELF if comm is None else comm
    d = mesh.dim
    element = basix.ufl.element("Lagrange", _CELL[d], 1, shape=(d,))
    if comm.rank == 0:
        cells, x = mesh.cells_kv.astype(np.int64), mesh.points_md
    else:  # the whole mesh is given on rank 0 and distributed by DOLFINx
        cells, x = np.empty((0, d + 1), np.int64), np.empty((0, d))
    dm = dmesh.create_mesh(comm, cells, element, x)
    return dm, np.asarray(dm.geometry.input_global_indices, dtype=np.int64)


def node_of_dof(V, node_of_geom: np.ndarray) -> np.ndarray:
    """QC node of each (block) dof of a P1 space ``V`` on a mesh from :func:`to_dolfinx`.

    P1 dofs and P1 geometry nodes follow the same local vertex order in every cell, so the
    cell dofmaps give the correspondence.

    Args:
        V: a Lagrange degree-1 space (any value shape) on the DOLFINx mesh.
        node_of_geom: the QC node of each geometry node (second result of :func:`to_dolfinx`).

    Returns:
        (local + ghost blocks,) int64 QC node index of each dof block.
    """
    dm = V.mesh
    nloc = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
    out = np.full(nloc, -1, dtype=np.int64)
    out[np.asarray(V.dofmap.list)] = node_of_geom[np.asarray(dm.geometry.dofmaps[0])]
    if np.any(out < 0):  # pragma: no cover - DOLFINx invariant
        raise RuntimeError("a dof is not attached to any mesh node")
    return out


def _det33(F: np.ndarray) -> np.ndarray:
    """Determinants of (n, 3, 3) matrices, vectorised (no LAPACK call per matrix)."""
    return (F[:, 0, 0] * (F[:, 1, 1] * F[:, 2, 2] - F[:, 1, 2] * F[:, 2, 1])
            - F[:, 0, 1] * (F[:, 1, 0] * F[:, 2, 2] - F[:, 1, 2] * F[:, 2, 0])
            + F[:, 0, 2] * (F[:, 1, 0] * F[:, 2, 1] - F[:, 1, 1] * F[:, 2, 0]))


class QCSpace:
    """A QC mesh on DOLFINx with its vector P1 displacement space (``c`` components).

    Args:
        mesh: the :class:`coupling.qc.mesh.QCMesh`.
        ncomp: displacement components per node ``c`` (1 chain, 2 triangular, 3 slab).
        comm: the communicator (default ``MPI.COMM_SELF``). Serial for now: a communicator
            with more than one rank is refused.

    Attributes:
        qc_mesh, ncomp: as given.
        mesh: the DOLFINx mesh.
        V: the space ``("Lagrange", 1, (c,))``.
        node_of_dof: (m,) QC node of each DOLFINx dof block.
        qc_dof: (m c,) QC dof (``c * node + component``) of each DOLFINx scalar dof.
        qc_cell: (k,) QC cell of each DOLFINx cell.
        layout: the Gauss points (:class:`fe2.quadrature.QuadratureLayout`, one per cell).
        evaluations: material evaluations made so far by the continua on this space (a
            :class:`DolfinxContinuum` reuses its last evaluation only if no continuum of the
            space evaluated the material since).
    """

    def __init__(self, mesh, ncomp: int, *, comm=None):
        comm = MPI.COMM_SELF if comm is None else comm
        if comm.size != 1:
            raise InputError(f"the DOLFINx QC continuum is serial for now: give a communicator "
                             f"with one rank (MPI.COMM_SELF), got {comm.size} ranks")
        if int(ncomp) not in (1, 2, 3) or int(ncomp) < mesh.dim:
            raise InputError(f"ncomp must be 1, 2 or 3 and at least the mesh dimension "
                             f"{mesh.dim}, got {ncomp!r}")
        self.qc_mesh = mesh
        self.ncomp = c = int(ncomp)
        self.mesh, node_of_geom = to_dolfinx(mesh, comm)
        self.V = fem.functionspace(self.mesh, ("Lagrange", 1, (c,)))
        self.node_of_dof = node_of_dof(self.V, node_of_geom)
        if len(self.node_of_dof) != mesh.n_nodes:
            raise InputError(f"the QC mesh has {mesh.n_nodes} nodes but its cells use "
                             f"{len(self.node_of_dof)}: every node must belong to a cell")
        self.qc_dof = (c * self.node_of_dof[:, None] + np.arange(c)).ravel()
        tdim = self.mesh.topology.dim
        ncell = self.mesh.topology.index_map(tdim).size_local
        self.qc_cell = np.asarray(self.mesh.topology.original_cell_index,
                                  dtype=np.int64)[:ncell]
        self.layout = QuadratureLayout(self.mesh, _QUADRATURE_DEGREE)
        self.evaluations = 0

    @property
    def n_dofs(self) -> int:
        """Number of QC degrees of freedom ``m c``."""
        return len(self.qc_dof)

    def set_displacements(self, u, U) -> None:
        """Write QC nodal displacements U ((m, c) or flat node-major) into the Function u."""
        c = self.ncomp
        U = np.asarray(U, dtype=float)
        if U.size != self.n_dofs:
            raise InputError(f"nodal displacements must have {self.n_dofs} entries "
                             f"({self.qc_mesh.n_nodes} nodes x {c}), got shape {U.shape}")
        u.x.array.reshape(-1, c)[:] = U.reshape(-1, c)[self.node_of_dof]

    def to_qc_vector(self, b: np.ndarray) -> np.ndarray:
        """A DOLFINx dof vector as a flat QC node-major vector."""
        out = np.empty(self.n_dofs)
        out[self.qc_dof] = b[: self.n_dofs]
        return out


def qc_site_volume(system) -> float:
    """Volume per lattice site V0 of a QC system (Å³), the convention of Cauchy-Born.

    The fcc slab: the primitive cell's volume ``a0³/4``. The planar lattices count a layer of
    unit (1 Å) thickness, as :class:`atomistic.cauchy_born.CauchyBorn` does: the triangular
    lattice's primitive cell area × 1 Å, the chain's spacing × 1 Å².
    """
    prim = np.asarray(system.cauchy_born.primitive_cc, float)
    d = system.mesh.dim
    if d == 1 and system.ncomp == 1:  # the chain: spacing along x, unit cross-section
        return float(abs(prim[0, 0]))
    if d == 2 and system.ncomp == 2:  # a layer: in-plane cell area, unit thickness
        return float(np.linalg.norm(np.cross(prim[0], prim[1])))
    return float(abs(np.linalg.det(prim)))


def qc_thickness(system, material=None) -> float:
    """The thickness ``t = V0 / omega`` that makes ``t W |T| = |T|/omega e`` (Å^(3-d)).

    ``V0`` is the volume per site (:func:`qc_site_volume`) and ``omega`` the measure per site
    in the mesh plane: 1 Å for the triangular lattice, ``a0`` for the slab, 1 Å² for the
    chain.

    Raises:
        InputError: ``material`` has a ``V0`` (a Cauchy-Born point) that is not the system's
            volume per site: its lattice (or lattice constant) is not the system's.
    """
    V0 = qc_site_volume(system)
    # the material's volume per site: ``site_volume`` (CauchyBorn: its V0; an RVE: its cell's
    # V0 / n_sites; PointMaterial forwards its model's), else ``V0`` (LatticeCauchyBorn)
    V0_material = getattr(material, "site_volume", None)
    if V0_material is None:
        V0_material = getattr(material, "V0", None)
    if V0_material is not None and not np.isclose(float(V0_material), V0, rtol=1e-12,
                                                  atol=0.0):
        raise InputError(
            f"the material's volume per site V0 = {float(V0_material):.12g} Å³ is not the QC "
            f"lattice's {V0:.12g} Å³: build the Cauchy-Born point with the system's lattice "
            "and lattice constant (an RVE: the same lattice, lattice constant and orientation)")
    return V0 / float(system.omega)


class LatticeCauchyBorn:
    """The Cauchy-Born material point (3D) of a :class:`BatchCauchyBorn` kernel, per volume V0.

    ``W = e / V0``, ``P = (de/dF) / V0``, ``A = (d²e/dF²) / V0`` for 3×3 F. It is the
    default material of the DOLFINx QC continuum (the system's own kernel, so the continuum
    uses exactly the atomistic engine's energy), and works for any lattice the kernel does,
    the chain included. No history: :meth:`commit` and :meth:`revert` do nothing.

    Args:
        batch: the Cauchy-Born kernel (e.g. ``QCSystem.cauchy_born``).
        V0: volume per site (Å³), e.g. :func:`qc_site_volume`.
    """

    dim = 3

    def __init__(self, batch: BatchCauchyBorn, V0: float):
        if not (np.isfinite(V0) and V0 > 0):
            raise InputError(f"V0 must be a positive volume per site (Å³), got {V0!r}")
        self.batch = batch
        self.V0 = float(V0)

    @classmethod
    def of_system(cls, system) -> LatticeCauchyBorn:
        """The Cauchy-Born point of a QC system's own potential and lattice."""
        return cls(system.cauchy_born, qc_site_volume(system))

    def energy_stress_tangent(self, F_q33: np.ndarray, *, tangent: bool = True):
        """``(W_q, P_q33, A_q3333 or None)`` in one kernel call (eV/Å³)."""
        e, P, A = self.batch.evaluate(F_q33, order=2 if tangent else 1)
        return e / self.V0, P / self.V0, None if A is None else A / self.V0

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return P (nq, 3, 3) and A (nq, 3, 3, 3, 3) in eV/Å³."""
        _, P, A = self.energy_stress_tangent(F_qij)
        return P, A

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return W (nq,) in eV/Å³ (absolute: includes the cohesive energy)."""
        return self.energy_stress_tangent(F_qij, tangent=False)[0]

    def commit(self) -> None:
        """No history."""

    def revert(self) -> None:
        """No history."""


class DolfinxContinuum:
    """The QC continuum's energy, gradient and Hessian, assembled by DOLFINx forms.

    The continuum of :class:`coupling.qc.model.QCModel`:
    :meth:`energy_gradient` takes the nodal displacements and returns ``(E, g, K)`` over
    the QC's node-major dofs. Cells with zero weight are neither evaluated nor integrated
    (a material evaluation per Gauss point is the expensive part with RVEs).

    The weight and the thickness are folded into the Gauss-point values (``t w W``,
    ``t w P``, ``t w A`` in quadrature Functions), so no DG0 coefficient is needed; the
    integrals run over the cells of non-zero weight only (``subdomain_data``), and the
    Hessian's sparsity is theirs (the element blocks of the active cells). The forms are
    compiled once; the gradient's array and the Hessian's sparsity (and its permutation to QC
    order) are built once and reused.

    One material evaluation per displacement: the last evaluation (U, E, g and, when it was
    made with the tangent, the tangent written to its quadrature Function) is kept, and a
    request at the same U is served from it as long as no continuum of the same
    :class:`QCSpace` (nor anything else, for a material that counts its ``calls``) evaluated
    the material since. A Newton iteration's residual (``keep_tangent=True``) and Jacobian
    (``order=2``) at one U then cost one material evaluation, and the material's trial
    states stay those of U. The values are the same bits as a new evaluation's. :meth:`forget`
    drops the kept evaluation (the owner calls it when the material's history is committed or
    reverted).

    Args:
        space: the :class:`QCSpace` of the mesh (may be shared by several continua).
        material: a batched 3D material point (``dim == 3``): ``evaluate(F_q33) -> (P, A)``
            and ``energy_density(F_q33) -> W`` per reference volume (eV/Å³). If it has
            ``energy_stress_tangent(F, tangent=...) -> (W, P, A)`` (e.g.
            :class:`LatticeCauchyBorn`), one call gives all three. Only trial evaluations
            are made: committing the material's state is the caller's.
        weights_k: (k,) weight per QC cell (mean blending weight of its nodes, or 1).
        thickness: ``t`` (Å^(3-d)), see :func:`qc_thickness`.
    """

    def __init__(self, space: QCSpace, material, weights_k, *, thickness: float):
        if getattr(material, "dim", None) != 3:
            raise InputError(f"the QC continuum needs a 3D material point (dim=3; F is the "
                             f"full 3x3 gradient), got {material!r} with dim "
                             f"{getattr(material, 'dim', None)}")
        for name in ("evaluate", "energy_density"):
            if not callable(getattr(material, name, None)):
                raise InputError(f"material {material!r} has no method {name}()")
        w = np.asarray(weights_k, dtype=float).reshape(-1)
        if w.shape != (space.qc_mesh.n_cells,) or not np.isfinite(w).all():
            raise InputError(f"weights_k must be {space.qc_mesh.n_cells} finite numbers (one per "
                             f"cell), got shape {w.shape}")
        if not (np.isfinite(thickness) and thickness > 0):
            raise InputError(f"thickness must be positive, got {thickness!r}")
        self.space = space
        self.material = material
        self.thickness = float(thickness)
        c, d = space.ncomp, space.qc_mesh.dim
        self._c, self._d = c, d
        w_cell = w[space.qc_cell]  # per DOLFINx cell
        self.cells = np.flatnonzero(w_cell != 0.0).astype(np.int32)  # active DOLFINx cells
        layout = space.layout
        self._nq = len(self.cells) * layout.points_per_cell
        self._tw_q = np.repeat(self.thickness * w_cell[self.cells], layout.points_per_cell)
        self._fast = callable(getattr(material, "energy_stress_tangent", None))
        # Gauss points numbered over the whole (shared) QCSpace: several continua on different
        # cell subsets (gfc's blended and full ones) then share one material and its history
        # (a PointMaterial keyed by ``points``) instead of resetting it at each switch
        ppc = layout.points_per_cell
        self._points = (self.cells.astype(np.int64)[:, None] * ppc
                        + np.arange(ppc)).reshape(-1)
        self._keyed = self._fast and "points" in inspect.signature(
            material.energy_stress_tangent).parameters
        n = space.n_dofs
        self._b = np.zeros(n)
        self._kept: dict | None = None  # the last evaluation (see the class)
        if len(self.cells) == 0:
            return
        mesh = space.mesh
        self.u = fem.Function(space.V, name="displacement")
        self._grad_expr = fem.Expression(ufl.grad(self.u), layout.points_X)
        QW, QP, QA = layout.space(()), layout.space((c, d)), layout.space((c, d, c, d))
        self.W, self.P, self.A = (fem.Function(QW, name="W"), fem.Function(QP, name="P"),
                                  fem.Function(QA, name="A"))
        self._dofs = {f: np.asarray(f.function_space.dofmap.list)[self.cells].reshape(-1)
                      for f in (self.W, self.P, self.A)}
        md = {"quadrature_degree": layout.degree, "quadrature_scheme": "default"}
        dx = ufl.Measure("dx", domain=mesh, subdomain_data=[(1, self.cells)], metadata=md)(1)
        v, du = ufl.TestFunction(space.V), ufl.TrialFunction(space.V)
        i, j, k, l = ufl.indices(4)
        A_grad_du = ufl.as_tensor(self.A[i, j, k, l] * ufl.grad(du)[k, l], (i, j))
        self._E_form = fem.form(self.W * dx)
        self._g_form = fem.form(ufl.inner(self.P, ufl.grad(v)) * dx)
        self._K_form = fem.form(ufl.inner(A_grad_du, ufl.grad(v)) * dx)
        # the Hessian: DOLFINx CSR (scalar, expanded blocks) and its permutation to QC order
        self._K = fem.create_matrix(self._K_form, block_mode=la.BlockMode.expanded)
        indptr = np.asarray(self._K.indptr, dtype=np.int64)
        rows = space.qc_dof[np.repeat(np.arange(n), np.diff(indptr[: n + 1]))]
        cols = space.qc_dof[np.asarray(self._K.indices[: indptr[n]])]
        self._K_order = np.lexsort((cols, rows))
        self._K_indices = cols[self._K_order].astype(np.int32)
        self._K_indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])

    # -- kinematics and material ------------------------------------------------------------
    def F(self, U) -> np.ndarray:
        """F = I + [grad u] (nq, 3, 3) at the Gauss points of the active cells."""
        c, d = self._c, self._d
        self.space.set_displacements(self.u, U)
        G = self._grad_expr.eval(self.space.mesh, self.cells).reshape(self._nq, c, d)
        F = np.broadcast_to(np.eye(3), (self._nq, 3, 3)).copy()
        F[:, :c, :d] += G
        return F

    def _evaluate(self, F: np.ndarray, tangent: bool):
        """``(W, P, A or None)`` of the material at F; a failure is a CalculationFailed."""
        det = _det33(F)  # NaN where F is not finite
        if not (det > 0).all():
            q = int(np.flatnonzero(~(det > 0))[0])
            raise CalculationFailed(
                f"a continuum element is collapsed or inverted (cell {self._qc_cell_of(q)}: "
                f"det F = {det[q]:.3g}); the step was too large or the mesh has slivers")
        try:
            if self._fast:
                if self._keyed:
                    W, P, A = self.material.energy_stress_tangent(F, tangent=tangent,
                                                                  points=self._points)
                else:
                    W, P, A = self.material.energy_stress_tangent(F, tangent=tangent)
            else:
                W = self.material.energy_density(F)
                P, A = self.material.evaluate(F) if tangent else (self.material.evaluate(F)[0],
                                                                  None)
        except InputError as exc:
            # F comes from the solver's displacements: a failed state, cut back by the caller
            raise CalculationFailed(f"the continuum material refused a deformation gradient "
                                    f"of the current displacements: {exc}") from exc
        nq = self._nq
        W = np.asarray(W, dtype=float).reshape(-1)
        P = np.asarray(P, dtype=float)
        if W.shape != (nq,) or P.shape != (nq, 3, 3) or (
                tangent and np.shape(A) != (nq, 3, 3, 3, 3)):
            raise TypeError(f"the material returned W {W.shape}, P {P.shape}, A {np.shape(A)}; "
                            f"expected ({nq},), ({nq}, 3, 3), ({nq}, 3, 3, 3, 3)")
        if tangent:
            A = np.asarray(A, dtype=float)
        if not (np.isfinite(W).all() and np.isfinite(P).all()
                and (not tangent or np.isfinite(A).all())):
            finite = np.isfinite(W) & np.isfinite(P).all(axis=(1, 2))
            if tangent:
                finite &= np.isfinite(A.reshape(nq, -1)).all(axis=1)
            q = int(np.flatnonzero(~finite)[0])
            raise CalculationFailed(f"the continuum material returned NaN/inf at the Gauss "
                                    f"point of cell {self._qc_cell_of(q)}")
        return W, P, A

    def _qc_cell_of(self, q: int) -> int:
        return int(self.space.qc_cell[self.cells[q // self.space.layout.points_per_cell]])

    def _write(self, fun, values: np.ndarray) -> None:
        bs = fun.function_space.dofmap.bs
        dofs = self._dofs[fun]
        fun.x.array.reshape(-1, bs)[dofs] = values.reshape(len(dofs), bs)

    # -- energy, gradient, Hessian ----------------------------------------------------------
    def energy_gradient(self, U, *, order: int = 1, keep_tangent: bool = False):
        """``(E, g, K)``: energy (eV), gradient (eV/Å) and Hessian (eV/Å², CSR; order 2).

        Served from the last evaluation when it was at the same U (and, for order 2, made
        with the tangent) and nothing evaluated the material since (see the class).

        Args:
            U: nodal displacements (m, c) or flat node-major (Å).
            order: 1 (K is None) or 2.
            keep_tangent: with order 1, evaluate the material's tangent as well and keep it,
                so that an order-2 call at the same U that follows assembles K without
                evaluating the material again (a Newton solver's residual before its
                Jacobian).

        Raises:
            CalculationFailed: an element is inverted, or the material failed or refused a
                deformation gradient (the solver cuts the step back).
        """
        n = self.space.n_dofs
        if len(self.cells) == 0:
            return 0.0, np.zeros(n), (sp.csr_matrix((n, n)) if order > 1 else None)
        tangent = order > 1
        U_flat = np.asarray(U, dtype=float).reshape(-1)
        kept = self._kept
        if (kept is not None and kept["stamp"] == self._stamp() and (kept["A"] or not tangent)
                and np.array_equal(kept["U"], U_flat)):
            return kept["E"], kept["g"].copy(), (self._assemble_K() if tangent else None)
        self._kept = None
        self.space.evaluations += 1  # any attempt: the material's trial may have changed
        c, d = self._c, self._d
        with_A = tangent or keep_tangent
        W, P, A = self._evaluate(self.F(U), with_A)
        tw = self._tw_q
        self._write(self.W, tw * W)
        self._write(self.P, tw[:, None, None] * P[:, :c, :d])
        E = float(fem.assemble_scalar(self._E_form))
        self._b[:] = 0.0
        fem.assemble_vector(self._b, self._g_form)
        g = self.space.to_qc_vector(self._b)
        if with_A:
            self._write(self.A, tw[:, None, None, None, None] * A[:, :c, :d, :c, :d])
        self._kept = {"U": U_flat.copy(), "E": E, "g": g.copy(), "A": with_A,
                      "stamp": self._stamp()}
        return E, g, (self._assemble_K() if tangent else None)

    def _stamp(self) -> tuple:
        """What must not have changed for the kept evaluation to hold (see the class)."""
        return self.space.evaluations, getattr(self.material, "calls", None)

    def _assemble_K(self) -> sp.csr_matrix:
        """The Hessian (QC order, CSR) from the tangent in the quadrature Function ``A``."""
        n = self.space.n_dofs
        self._K.data[:] = 0.0
        fem.assemble_matrix(self._K, self._K_form)
        return sp.csr_matrix((self._K.data[self._K_order], self._K_indices.copy(),
                              self._K_indptr.copy()), shape=(n, n))

    def forget(self) -> None:
        """Drop the kept evaluation: the next call evaluates the material."""
        self._kept = None
