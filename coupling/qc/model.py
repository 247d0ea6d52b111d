"""Quasicontinuum energies, residuals and Jacobians over the finite-element nodes.

Every QC scheme here works on one set of unknowns: the displacements ``U`` (m nodes × c
components) of a P1 mesh whose nodes are lattice sites. In the atomistic region the mesh is
fully refined, so every atom there is a node; the positions of all other atoms the schemes
need (padding atoms) are interpolated from the elements, ``x_s = X_s + (P U)_s``, with
``P`` the P1 interpolation matrix (a unit row for a site that is a node). The continuum is
the Cauchy-Born site energy ``e(F)`` per element (constant F in a P1 element), counted as
``|T|/omega`` sites, with ``omega`` the measure (length, area) per site. It is assembled by
DOLFINx forms at the Gauss points from a 3D material point (:mod:`coupling.qc.continuum`;
by default the Cauchy-Born point of the system's own potential, any other through
``material=``).

The blended energy (``beta = 0`` atomistic, ``1`` continuum, given per site)::

    E_beta(U) = sum_s (1 - beta_s) E_s(x(U)) + sum_T |T|/omega * mean(beta at T's nodes) e(F_T)

* ``qce``: ``beta`` is the indicator of the continuum (a sharp interface): energy-based
  quasicontinuum. It has ghost forces.
* ``bqce``: ``beta`` is a smooth ramp across a handshake band (blended QCE).
* ``bgfc``: ``E_beta(U) - <g_F, U>``, where ``g_F = grad E_beta`` of the defect-free
  lattice at the homogeneous deformation ``F_ref`` (blended ghost-force correction; Van
  Koten, Luskin, Ortner). Exact under ``F_ref``; ghost forces of other states are second
  order in the blending width.
* ``qcf``: force-based: atoms of the atomistic region get their exact atomistic forces
  (neighbours from the padding), every other node gets the full Cauchy-Born nodal force.
  No energy; the Jacobian is not symmetric.
* ``gfc``: ``qce`` plus the dead load ``g_k = grad E_qce(U_k) - R_qcf(U_k)``, recomputed
  after each relaxation until it stops changing (Shenoy et al. 1999); its fixed point
  solves the ``qcf`` equations.

Residuals are gradients (eV/Å per node component): the force on a node is minus the
residual. Degrees of freedom are ordered node-major: ``dof = c * node + component``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from atomistic.calculator import Calculator
from atomistic.structure import Configuration
from coupling.qc.system import QCSystem, check_scheme
from fe2qc.checks import MAX_COORDINATE, MAX_F_ENTRY, require_finite
from fe2qc.errors import InputError

__all__ = ["QCModel", "CONTINUA", "element_min_stretch", "MIN_STRETCH"]


def _as_U(system, U) -> np.ndarray:
    """Nodal displacements ``(m, c)``, checked finite (Å)."""
    U = require_finite("U (nodal displacements)", U, bound=MAX_COORDINATE)
    return U.reshape(system.n_nodes, system.ncomp)


#: smallest stretch (singular value of the P1 deformation gradient) the padding accepts; the
#: Cauchy-Born kernel refuses the same limit (:mod:`atomistic.cb_batch`): a crystal compressed
#: 4x along some direction has overlapping atoms.
MIN_STRETCH = 0.25
#: headroom of a rebuilt padding: it is sized for 0.95 times the stretch that triggered the
#: rebuild, so that Newton's small fluctuations do not rebuild it at every iteration.
_PAD_HEADROOM = 0.95


def element_min_stretch(system: QCSystem, cells_k: np.ndarray, U: np.ndarray):
    """Smallest singular value of the P1 deformation gradient over ``cells_k`` (capped at 1).

    Returns ``(sigma, cell)``: the value and the element where it is attained (-1 if none).
    ``F`` is the full 3x3 gradient (identity columns for the directions the mesh does not
    span), so ``sigma <= 1`` always.
    """
    cells_k = np.asarray(cells_k, np.int64)
    if len(cells_k) == 0:
        return 1.0, -1
    c, d = system.ncomp, system.mesh.dim
    Ue = np.asarray(U, float).reshape(system.n_nodes, c)[system.mesh.cells_kv[cells_k]]
    F = np.broadcast_to(np.eye(3), (len(cells_k), 3, 3)).copy()
    F[:, :c, :d] += np.matmul(Ue.transpose(0, 2, 1), system.mesh.grad_kvd[cells_k])
    if not np.isfinite(F).all():
        k = int(cells_k[np.flatnonzero(~np.isfinite(F).all(axis=(1, 2)))[0]])
        raise InputError(f"the displacements of mesh cell {k} (nodes "
                         f"{system.mesh.cells_kv[k].tolist()}) are not finite numbers")
    s = np.linalg.svd(F, compute_uv=False)[:, -1]
    j = int(np.argmin(s))
    return float(min(1.0, s[j])), int(cells_k[j])


class _Cluster:
    """The atoms whose (weighted) site energies a scheme needs, and their padding.

    The padding is every present site within ``cutoff / sigma`` (in the reference) of an
    atom with non-zero weight, where ``sigma <= 1`` bounds from below the stretch (smallest
    singular value of the P1 deformation gradient) of every element near the cluster. An
    atom farther than that in the reference stays beyond the cutoff in the deformed state
    (pull the deformed segment of length <= cutoff back through the map: its reference
    length is at most cutoff / sigma). The bound is re-checked at every evaluation
    (:meth:`positions`), and the cluster is rebuilt for a smaller ``sigma`` as soon as the
    current displacements compress some element near it beyond what the padding covers;
    under tension (sigma = 1) the padding is the cutoff, as in the reference lattice.

    With ``halo_of`` (a site mask, the force-based scheme) the weights are 1 on those sites
    and on every site that can come within the cutoff of them (the same radius), so that
    their forces are exact.
    """

    def __init__(self, system: QCSystem, weights_s: np.ndarray | None, *, present_s=None,
                 halo_of: np.ndarray | None = None):
        self.system = system
        self.present = system.present_s if present_s is None else np.asarray(present_s, bool)
        self.weights_s = None if weights_s is None else np.asarray(weights_s, float)
        self.halo_of = None if halo_of is None else np.asarray(halo_of, bool)
        self.rebuilds = 0
        self._build(1.0)

    def _radius(self, sigma: float) -> float:
        return self.system.potential.cutoff / sigma + 1e-6

    def _build(self, sigma: float) -> None:
        system = self.system
        pot = system.potential
        present = self.present
        pad = self._radius(sigma)
        if self.halo_of is not None:
            base = self.halo_of & present
            halo = system.neighbours_within(base, pad, present_s=present)
            weights_s = (base | halo).astype(float)
        else:
            weights_s = self.weights_s
        w = np.where(present, weights_s, 0.0)
        active = w != 0.0
        near = system.neighbours_within(active, pad, present_s=present)
        idx = np.flatnonzero((near | active) & present)
        self.sigma = float(sigma)
        self.idx = idx
        self.w = w[idx]
        ref = system.reference
        self.X = ref.positions_nc[idx]
        self.config = Configuration(self.X.copy(), ref.cell_cc, ref.pbc, ref.types_n[idx])
        self.calc = Calculator(pot, skin=0.5, multiple_images=any(ref.pbc),
                               exclude=system.bond_exclusion(self.X))
        self.Pd, used_nodes = self._interpolation(system, idx)
        # the elements the bound must hold on: every element with a node the cluster uses
        touch = np.zeros(system.n_nodes, bool)
        touch[used_nodes] = True
        self.cells_near = np.flatnonzero(touch[system.mesh.cells_kv].any(axis=1))

    def ensure(self, U: np.ndarray) -> None:
        """Rebuild the padding if ``U`` compresses an element near the cluster beyond its cover.

        Refuse stretches below :data:`MIN_STRETCH`.
        """
        for _ in range(20):
            sigma, cell = element_min_stretch(self.system, self.cells_near, U)
            if sigma >= self.sigma:
                return
            if sigma <= MIN_STRETCH:
                from fe2qc.errors import CalculationFailed

                nodes = self.system.mesh.cells_kv[cell].tolist()
                raise CalculationFailed(
                    f"mesh cell {cell} (nodes {nodes}) is compressed to a stretch of "
                    f"{sigma:.3g} (smallest singular value of its deformation gradient; the "
                    f"limit is {MIN_STRETCH}): atoms would overlap; the step was too large or "
                    "the mesh has slivers")
            self._build(max(MIN_STRETCH, _PAD_HEADROOM * sigma))
            self.rebuilds += 1
        raise RuntimeError("the QC padding did not settle after 20 rebuilds")  # pragma: no cover

    @staticmethod
    def _interpolation(system: QCSystem, idx: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """``(P over dofs (3 per atom, c per node), the nodes P uses)``."""
        c = system.ncomp
        nodes = system.mesh.node_of_site[idx]
        is_node = nodes >= 0
        rows, cols, vals = [np.flatnonzero(is_node)], [nodes[is_node]], [np.ones(is_node.sum())]
        if not is_node.all():
            q = np.flatnonzero(~is_node)
            Pq = system.interpolate(system.reference.positions_nc[idx[q], :system.mesh.dim])
            Pq = sp.coo_matrix(Pq)
            rows.append(q[Pq.row])
            cols.append(Pq.col)
            vals.append(Pq.data)
        r, cl, v = (np.concatenate(a) for a in (rows, cols, vals))
        P = sp.csr_matrix((v, (r, cl)), shape=(len(idx), system.n_nodes))
        # expand to dofs: atom component i (of 3) <- node component i (i < c)
        E = sp.csr_matrix((np.ones(c), (np.arange(c), np.arange(c))), shape=(3, c))
        return sp.kron(P, E, format="csr"), np.unique(cl)

    def positions(self, U: np.ndarray) -> np.ndarray:
        """Deformed positions of the cluster's atoms (the padding is checked first)."""
        self.ensure(U)
        return self.X + (self.Pd @ U.ravel()).reshape(-1, 3)

    def energy_gradient(self, U: np.ndarray):
        """Weighted energy and its gradient with respect to the nodal dofs."""
        self.config.positions_nc = self.positions(U)
        res = self.calc.compute(self.config, self.w)
        E = float(self.w @ res.site_energies_n)
        return E, -(self.Pd.T @ res.forces_nc.ravel())

    def hessian(self, U: np.ndarray) -> sp.csr_matrix:
        self.config.positions_nc = self.positions(U)
        H = self.calc.hessian(self.config, self.w)
        return (self.Pd.T @ H @ self.Pd).tocsr()


#: the continuum implementations :class:`QCModel` takes: the DOLFINx forms of
#: :mod:`coupling.qc.continuum` (any 3D material point; issue 11 removed the own P1 kernel)
CONTINUA = ("dolfinx",)


class QCModel:
    """One QC scheme on a :class:`QCSystem`.

    Args:
        system: sites, mesh, regions and blending weights.
        scheme: one of :data:`SCHEMES`.
        F_ref: the homogeneous deformation at which ``bgfc`` takes its correction (default I).
        continuum: ``"dolfinx"``, the only implementation
            (:class:`coupling.qc.continuum.DolfinxContinuum`, serial, for every continuum
            the scheme builds: the blended one, the full one of ``qcf``/``gfc`` and
            ``bgfc``'s correction at ``F_ref``).
        material: the continuum's 3D material point (default:
            :class:`coupling.qc.continuum.LatticeCauchyBorn` of the system's own potential
            and lattice). It must be the atoms' crystal: the system's volume per site, its
            lattice orientation and its potential (:func:`coupling.qc.points.check_material`;
            :func:`coupling.qc.points.rve_point_model` builds the matching atomistic RVE).
        allow_interface: accept a material point whose potential differs from the atoms'
            (with a :class:`coupling.qc.points.MaterialInterfaceWarning`: the handshake then
            carries a material interface and the patch test no longer holds).

    A material with history (an atomistic RVE's :class:`fe2qc.material.PointMaterial`) is
    only ever evaluated for trial states here; :meth:`commit` accepts the states of the last
    evaluation and :meth:`revert` drops them (the QC solver calls them after a converged or a
    failed relaxation, :mod:`coupling.qc.solver`). ``bgfc``'s correction at ``F_ref`` is a
    trial that is reverted at once.
    """

    #: :meth:`energy_residual` and :meth:`qcf_residual` take ``tangent`` (the solver's hint)
    residual_keeps_tangent = True

    def __init__(self, system: QCSystem, scheme: str, *, F_ref: np.ndarray | None = None,
                 continuum: str = "dolfinx", material=None, allow_interface: bool = False):
        self.system = s = system
        self.scheme = check_scheme(scheme)
        self.F_ref = (np.eye(3) if F_ref is None
                      else require_finite("F_ref", F_ref, bound=MAX_F_ENTRY))
        if self.F_ref.shape != (3, 3) or not np.linalg.det(self.F_ref) > 0:
            raise InputError(f"F_ref must be a 3x3 deformation gradient with det F > 0, got "
                             f"{self.F_ref.tolist()}")
        self.allow_interface = bool(allow_interface)  # read by _continuum_factory
        make_continuum = self._continuum_factory(continuum, material)
        beta_nodes = s.beta_s[s.mesh.node_site_m]
        frac = beta_nodes[s.mesh.cells_kv].mean(axis=1)
        self.energy_based = self.scheme in ("qce", "bqce", "bgfc", "gfc")
        if self.scheme in ("qce", "bqce", "bgfc", "gfc"):
            self.atoms = _Cluster(s, 1.0 - s.beta_s)
            self.cont = make_continuum(frac)
        if self.scheme in ("qcf", "gfc"):
            # weights 1 on the atoms and on every site that can reach them (the halo)
            self.qcf_atoms = _Cluster(s, None, halo_of=s.atomistic_s & s.present_s)
            self.qcf_cont = make_continuum(np.ones(s.mesh.n_cells))
            node_is_atom = s.atomistic_s[s.mesh.node_site_m]
            self.atom_dof = np.repeat(node_is_atom, s.ncomp)
        self.dead_load = np.zeros(s.n_dofs)
        if self.scheme == "bgfc":
            perfect = _Cluster(s, 1.0 - s.beta_s, present_s=np.ones(len(s.reference), bool))
            UF = s.homogeneous(self.F_ref)
            _, g1 = perfect.energy_gradient(UF)
            _, g2, _ = self.cont.energy_gradient(UF)
            self.dead_load = g1 + g2
            self.revert()  # the material's trial at F_ref is never committed

    def _continuum_factory(self, continuum: str, material):
        """``weights_k -> continuum`` for the chosen implementation (validated here)."""
        s = self.system
        key = str(continuum).strip().lower()
        if key not in CONTINUA:
            raise InputError(f"unknown QC continuum {continuum!r}; choose one of "
                             f"{', '.join(CONTINUA)} (DOLFINx forms with any 3D material "
                             "point)")
        self.continuum = key
        from coupling.qc.continuum import DolfinxContinuum, LatticeCauchyBorn, QCSpace
        from coupling.qc.points import check_material

        self.material = LatticeCauchyBorn.of_system(s) if material is None else material
        # the atoms' crystal: volume per site (qc_thickness), orientation, potential
        t = check_material(s, self.material, allow_interface=self.allow_interface)
        space = QCSpace(s.mesh, s.ncomp)  # one DOLFINx mesh for every continuum of the scheme
        return lambda w_k: DolfinxContinuum(space, self.material, w_k, thickness=t)

    # -- the material's history ----------------------------------------------------------------
    def _continua(self) -> list:
        return [getattr(self, name) for name in ("cont", "qcf_cont") if hasattr(self, name)]

    def commit(self) -> None:
        """Accept the continuum material's trial states (those of the last evaluation).

        Call it after a converged relaxation, once the last evaluation was at the converged
        displacements. Forwarded to the material's ``commit()`` (Cauchy-Born: nothing).
        """
        self._history("commit")

    def revert(self) -> None:
        """Drop the continuum material's trial states (a failed or rejected relaxation).

        Forwarded to the material's ``revert()`` (Cauchy-Born: nothing).
        """
        self._history("revert")

    def _history(self, what: str) -> None:
        for cont in self._continua():  # a kept evaluation would hide the new history
            cont.forget()
        call = getattr(self.material, what, None)
        if callable(call):
            call()

    # -- energies and residuals ---------------------------------------------------------------
    def energy(self, U: np.ndarray) -> float | None:
        """The scheme's energy (eV) including any dead load; None for ``qcf``."""
        if not self.energy_based:
            return None
        U = _as_U(self.system, U)
        Ea, _ = self.atoms.energy_gradient(U)
        Ec, _, _ = self.cont.energy_gradient(U)
        return Ea + Ec - float(self.dead_load @ U.ravel())

    def energy_residual(self, U: np.ndarray, *, tangent: bool = False):
        """``(E, grad E)`` of the energy-based part (qce/bqce/bgfc/gfc inner problem).

        ``tangent``: a :meth:`jacobian` at the same U follows (Newton): the continuum
        evaluates its material's tangent now and keeps it (one material evaluation for both).
        """
        U = _as_U(self.system, U)
        Ea, ga = self.atoms.energy_gradient(U)
        Ec, gc, _ = self.cont.energy_gradient(U, keep_tangent=tangent)
        return Ea + Ec - float(self.dead_load @ U.ravel()), ga + gc - self.dead_load

    def qcf_residual(self, U: np.ndarray, *, tangent: bool = False) -> np.ndarray:
        """Minus the force-based scheme's forces, flat over dofs (eV/Å).

        ``tangent``: as for :meth:`energy_residual`.
        """
        U = _as_U(self.system, U)
        _, ga = self.qcf_atoms.energy_gradient(U)
        _, gc, _ = self.qcf_cont.energy_gradient(U, keep_tangent=tangent)
        return np.where(self.atom_dof, ga, gc)

    def residual(self, U: np.ndarray) -> np.ndarray:
        """Minus the nodal forces of the scheme, flat over dofs (eV/Å)."""
        U = _as_U(self.system, U)
        if self.scheme == "qcf":
            return self.qcf_residual(U)
        return self.energy_residual(U)[1]

    def jacobian(self, U: np.ndarray) -> sp.csr_matrix:
        """Jacobian d residual / dU (symmetric for the energy-based schemes)."""
        U = _as_U(self.system, U)
        if self.scheme == "qcf":
            Ha = self.qcf_atoms.hessian(U)
            _, _, Kc = self.qcf_cont.energy_gradient(U, order=2)
            Da = sp.diags(self.atom_dof.astype(float))
            Dc = sp.diags((~self.atom_dof).astype(float))
            return (Da @ Ha + Dc @ Kc).tocsr()
        Ha = self.atoms.hessian(U)
        _, _, Kc = self.cont.energy_gradient(U, order=2)
        return (Ha + Kc).tocsr()

    def ghost_force(self, U: np.ndarray) -> np.ndarray:
        """``grad E_qce(U) - R_qcf(U)`` (gfc's dead load), flat over dofs."""
        U = _as_U(self.system, U)
        return self.energy_residual(U)[1] + self.dead_load - self.qcf_residual(U)

    def node_forces(self, U: np.ndarray) -> np.ndarray:
        """Forces (m, c) on the free nodes (zero on fixed nodes); for gfc the qcf forces."""
        s = self.system
        U = _as_U(s, U)
        r = self.qcf_residual(U) if self.scheme == "gfc" else self.residual(U)
        f = -r.reshape(s.n_nodes, s.ncomp)
        f[s.fixed_m] = 0.0
        return f
