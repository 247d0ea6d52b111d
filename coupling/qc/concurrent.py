"""The concurrent crack: explicit atoms at a mode-I crack tip, RVE material points far away.

A straight crack in the Cu slab (:func:`coupling.qc.crack.crack_system` geometry: x = [100],
y = [010], z = [001] periodic with one period, tip at the origin) is loaded by the mode-I
K-field on its clamped outer boundary, K raised in steps. The atoms around the tip are explicit
(the QC atomistic region, ``bgfc`` coupling); the continuum around them is assembled by
DOLFINx from a 3D material point (:class:`coupling.qc.continuum.DolfinxContinuum`), zoned by
:class:`ZonedMaterial`: the system's own Cauchy-Born point in the cells near the tip (the
handshake band, where the continuum overlaps perfect atoms), and a *far* material beyond
``rve_radius``: an atomistic RVE (:class:`fe2qc.material.PointMaterial`, or
:class:`coupling.dispatch.DispatchedMaterial` to evaluate it on MPI worker ranks), perfect or
with a vacancy. ``rve_radius=0`` puts the far material in every continuum cell.
:class:`ContinuumCrackModel` is the same mesh, material and clamped K-field with no atoms at
all (every cell a continuum cell): the pure FE² comparison.

What :meth:`ConcurrentCrack.solve` records per K (units of Griffith's ``K_G`` of the perfect
crystal, :attr:`coupling.qc.crack.CrackField.K_G`):

* the relaxation (Newton iterations, largest force) and the crack-tip position
  (:func:`coupling.qc.trapping.crack_tip_position`, broken-bond criterion);
* the near-tip opening ``delta(x) = u_y(x, +y1) - u_y(x, -y1)`` behind the tip, over the
  lattice rows at ``y = +-y1`` next to the crack plane (sites that are not nodes are
  interpolated from the elements), with the LEFM K-field at the same points;
* ``sigma_yy`` ahead of the tip along the ligament. Atoms: the per-atom virial stress
  (:func:`atom_virial_stress`: the engine's pair derivatives ``dE/dr_p`` of the potential's
  ``first_order``, each pair's virial split half and half, the LAMMPS ``stress/atom``
  convention, over the atom's current volume), of the atoms of the two rows next to the
  plane, averaged over the two rows; the calculator has no per-atom virial of its own.
  Continuum: the Gauss-point Cauchy stress ``sigma = P F^T / det F`` from the material's P
  and F of the converged evaluation, in the cells the line y = 0 crosses ahead of the tip,
  minus the material's stress at F = I (the residual stress a vacancy RVE held at the
  perfect cell carries, about 1 GPa of tension for the 2x2x2 Cu_u3 cell, which the dead
  load of the coupling balances). LEFM: ``K / sqrt(2 pi r)`` on the crack
  line, for any anisotropy with the crack plane a mirror plane.

Far field of a defective RVE (the check :func:`far_field_check` makes). An RVE with a vacancy
is softer than the perfect lattice: its own stiffness ``C_vac = sym(A(F = I))`` (the relaxed
tangent at the reference, :func:`rve_stiffness`) has the anisotropic plane-strain modulus
``E'_vac < E'`` (:class:`fe2qc.lefm.AnisotropicCrack`). A linear-elastic body of that material
loaded to K carries the Sih-Paris-Irwin field of ``C_vac`` (:func:`stiffness_field`), whose
displacements are larger than the perfect crystal's at the same K, roughly by the compliance
ratio ``E' / E'_vac``, while ``sigma_yy`` ahead of the tip is ``K/sqrt(2 pi r)`` for both. So the
vacancy run clamps the outer layer with the K-field of ``C_vac``, and the check fits the
relaxed displacements of the free far-field nodes (continuum nodes outside the handshake) to
the unit-K fields of ``C_vac`` and of the perfect ``C``: the own field must give ``K_fit / K``
close to 1, the perfect crystal's field ``K_fit / K`` close to the ratio the two LEFM fields
predict at those nodes (their least-squares ratio, ~ ``E' / E'_vac``). Both fits are
least-squares amplitudes of the in-plane displacements, so the check fails if the RVE material
did not carry its own compliance into the far field (e.g. if the continuum used the perfect
crystal's stiffness, the perfect-basis fit would stay at 1). The vacancy RVE is stressed at
F = I (its cell is held at the perfect lattice's shape); ``bgfc``'s correction at ``F_ref = I``
(computed with the same material, so the dead load balances that residual stress at U = 0, on
the free crack faces too) and the no-atoms model's same correction make U = 0 the equilibrium
at K = 0, and the response to K is the RVE's tangent response.

Serial and parallel: the QC solve runs on one (macro) rank; a
:class:`coupling.dispatch.DispatchedMaterial` evaluates the RVE points on worker ranks, bitwise
as a local :class:`fe2qc.material.PointMaterial` would (no history on the workers).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atomistic.neighbors import pair_vectors
from atomistic.structure import Configuration
from coupling.qc.continuum import (
    DolfinxContinuum,
    LatticeCauchyBorn,
    QCSpace,
    qc_site_volume,
)
from coupling.qc.crack import CrackField
from coupling.qc.geometry import Crack, Disc
from coupling.qc.model import QCModel
from coupling.qc.points import check_material
from coupling.qc.reference import site_displacements
from coupling.qc.solver import relax
from coupling.qc.system import QCSystem, build_system
from coupling.qc.trapping import cohesive_bond_cut, crack_plane_bonds, crack_tip_position
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.lefm import AnisotropicCrack
from fe2qc.stepping import LoadStepper
from fe2qc.tensors import minor_sym
from fe2qc.units import EV_PER_A3_IN_GPA

#: the schemes :class:`ConcurrentCrack` runs (one blended continuum, ``QCModel.cont``)
ENERGY_SCHEMES = ("bgfc", "bqce", "qce")

__all__ = ["ENERGY_SCHEMES", "ZonedMaterial", "ContinuumCrackModel", "ConcurrentCrack",
           "concurrent_crack_system", "rve_stiffness", "stiffness_field", "atom_virial_stress",
           "far_field_check", "CrackRecord", "fingerprint"]


# ---------------------------------------------------------------------------------------------
# geometry


def concurrent_crack_system(field: CrackField | None = None, *, radius: float,
                            atomistic_radius: float, setup=None, growth: float = 1.0,
                            scheme: str = "bgfc", cut: bool = True
                            ) -> tuple[QCSystem, CrackField]:
    """``(system, field)``: the Cu slab crack of :func:`coupling.qc.crack.crack_system`, lean.

    The same lattice, frame and crack as ``crack_system(3, ...)``, with the narrowest
    handshake and clamped layer the builder accepts (one cutoff each), an unresolved clamped
    layer (only its mesh nodes are held) and a fast-coarsening mesh (``growth`` Å per Å): the
    fewest continuum Gauss points, each of which is an RVE evaluation with RVE materials.

    Args:
        field: the crack field to reuse (its Griffith data are costly), or None.
        radius: domain radius in units of a0.
        atomistic_radius: atomistic-region radius in units of a0.
        setup: ``(potential, "fcc", a0)``, default :func:`coupling.qc.setups.default_setup`.
        growth: the mesh coarsening rate.
        scheme: the QC scheme the system is built for.
        cut: a pre-cut crack (its faces do not re-bond, :class:`coupling.qc.geometry.Crack`):
            below K_G an uncut crack heals back towards the atomistic region's edge, a cut
            one keeps its tip at the origin.
    """
    from coupling.qc.crack import crack_field
    from coupling.qc.setups import default_setup

    pot, lattice, a0 = default_setup(3) if setup is None else setup
    rc = float(pot.cutoff)
    system = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, radius * a0),
                          atomistic=Disc(0.0, 0.0, atomistic_radius * a0), scheme=scheme,
                          crack=Crack(0.0, 0.0, cut), handshake=rc, clamp_width=rc,
                          resolve_clamp=False, growth=growth)
    return system, (crack_field(pot, lattice, a0) if field is None else field)


def fingerprint(U) -> str:
    """SHA-256 of the displacements' bytes: runs on any number of ranks must agree bitwise."""
    return hashlib.sha256(np.ascontiguousarray(U, dtype=np.float64).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# elastic constants of a material point and their crack field


def rve_stiffness(point_model) -> np.ndarray:
    """The stiffness ``C_ijkl = sym(A)`` (eV/Å³) of a 3D point model at F = I (relaxed).

    ``A`` is the model's tangent ``dP/dF`` at the identity from its initial state; an RVE
    relaxes its internal coordinates first, so this is the relaxed (homogenised) stiffness.
    """
    r = point_model.evaluate_point(np.eye(3), point_model.initial_state(), tangent=True)
    return minor_sym(np.asarray(r.A, float))


def stiffness_field(field: CrackField, C_ijkl: np.ndarray) -> CrackField:
    """The crack field of another stiffness ``C_ijkl`` (same frame), keeping ``field.K_G``.

    K stays in units of the perfect crystal's Griffith ``K_G``; only the displacement field
    (Sih-Paris-Irwin, :class:`fe2qc.lefm.AnisotropicCrack`) changes.
    """
    g = dict(field.griffith)
    crack = AnisotropicCrack(C_ijkl)
    g["E_prime_material"] = crack.plane_strain_modulus
    return CrackField(field.lattice, field.a0, g, crack)


def _E_prime(field: CrackField) -> float:
    """E' of the field's material: :func:`stiffness_field`'s, else the crystal's."""
    g = field.griffith
    return float(g.get("E_prime_material", g["E_prime"]))


# ---------------------------------------------------------------------------------------------
# the zoned continuum material


class ZonedMaterial:
    """A 3D material point that is ``near`` in some continuum cells and ``far`` in the others.

    Evaluated by :class:`coupling.qc.continuum.DolfinxContinuum` with its Gauss points keyed
    (``points=``, the DOLFINx cell index times points per cell; one point per P1 cell). The
    far material gets its points keyed the same way, so its history (RVE warm starts) is per
    cell whichever continuum evaluates it. It also records the last evaluation (``points``,
    ``F_qij``, ``P_qij``) for the Gauss-point stresses.

    Args:
        near: a stateless 3D material (the system's :class:`LatticeCauchyBorn`).
        far: a 3D material point with ``energy_stress_tangent(F, tangent=, points=)`` (a
            :class:`fe2qc.material.PointMaterial`), or None (``near`` everywhere).
        far_points: bool per Gauss point of the shared numbering: True where ``far`` applies.

    Each part is checked against the atoms' crystal (volume per site, orientation, potential)
    by :func:`coupling.qc.points.check_material` when a model takes the material (``parts``).
    """

    dim = 3

    def __init__(self, near, far=None, far_points=None):
        self.near, self.far = near, far
        # each part is checked against the atoms (coupling.qc.points.check_material)
        self.parts = (near,) if far is None else (near, far)
        self.far_points = (np.zeros(0, bool) if far_points is None
                           else np.asarray(far_points, bool).reshape(-1))
        # the near part's; each part's own is checked against the atoms by check_material
        self.site_volume = float(getattr(near, "site_volume", None) or near.V0)
        self._calls = 0
        self.points = self.F_qij = self.P_qij = None

    @property
    def calls(self) -> int:
        """Trial evaluations so far (any change tells the continuum its kept values are old)."""
        return self._calls

    def energy_stress_tangent(self, F_qij, *, tangent: bool = True, points=None):
        """``(W, P, A or None)`` of the batch, near and far points each by their material."""
        F = np.asarray(F_qij, float)
        nq = len(F)
        points = np.arange(nq) if points is None else np.asarray(points, np.int64)
        far = np.zeros(nq, bool)
        inside = points < len(self.far_points)
        far[inside] = self.far_points[points[inside]]
        if self.far is None:
            far[:] = False
        W, P = np.zeros(nq), np.zeros((nq, 3, 3))
        A = np.zeros((nq, 3, 3, 3, 3)) if tangent else None
        self._calls += 1
        for mask, mat in ((~far, self.near), (far, self.far)):
            if not mask.any():
                continue
            if mat is self.far:
                w, p, a = mat.energy_stress_tangent(F[mask], tangent=tangent,
                                                    points=points[mask])
            else:
                w, p, a = mat.energy_stress_tangent(F[mask], tangent=tangent)
            W[mask], P[mask] = w, p
            if tangent:
                A[mask] = a
        self.points, self.F_qij, self.P_qij = points.copy(), F.copy(), P.copy()
        return W, P, A

    def evaluate(self, F_qij):
        """``(P, A)`` of a batch numbered 0..nq-1."""
        _, P, A = self.energy_stress_tangent(F_qij)
        return P, A

    def energy_density(self, F_qij):
        """W of a batch numbered 0..nq-1."""
        return self.energy_stress_tangent(F_qij, tangent=False)[0]

    def commit(self) -> None:
        """Commit the far material's trial states (the near one has none)."""
        if self.far is not None:
            self.far.commit()

    def revert(self) -> None:
        """Drop the far material's trial states."""
        if self.far is not None:
            self.far.revert()


# ---------------------------------------------------------------------------------------------
# no atoms: the continuum everywhere


class ContinuumCrackModel:
    """The crack with every cell a continuum cell and no atoms (the energy-based interface).

    What :func:`coupling.qc.solver.relax` needs: ``system``, ``scheme``, ``energy_based``,
    ``residual_keeps_tangent``, :meth:`energy_residual`, :meth:`jacobian`, :meth:`commit`,
    :meth:`revert`. The energy is the DOLFINx continuum's over all cells (weight 1) minus the
    dead load ``<g(F_ref), U>``, the continuum's gradient at the homogeneous ``F_ref``
    (default I): it balances a material's residual stress at ``F_ref`` (a vacancy RVE held at
    the perfect cell), as ``bgfc``'s correction does in :class:`coupling.qc.model.QCModel`.
    The material is checked against the system's crystal as QCModel checks it
    (:func:`coupling.qc.points.check_material`).
    """

    scheme = "continuum"
    energy_based = True
    residual_keeps_tangent = True

    def __init__(self, system: QCSystem, material, *, F_ref=None):
        self.system = system
        self.material = material
        self.space = QCSpace(system.mesh, system.ncomp)
        self.cont = DolfinxContinuum(self.space, material, np.ones(system.mesh.n_cells),
                                     thickness=check_material(system, material))
        F_ref = np.eye(3) if F_ref is None else np.asarray(F_ref, float)
        _, g, _ = self.cont.energy_gradient(system.homogeneous(F_ref))
        self.dead_load = g
        self.revert()

    def energy_residual(self, U, *, tangent: bool = False):
        """``(E, grad E)`` (eV, eV/Å), flat over the node-major dofs."""
        U = np.asarray(U, float).reshape(-1)
        E, g, _ = self.cont.energy_gradient(U, keep_tangent=tangent)
        return E - float(self.dead_load @ U), g - self.dead_load

    def residual(self, U):
        """Minus the nodal forces (eV/Å)."""
        return self.energy_residual(U)[1]

    def jacobian(self, U):
        """The continuum's Hessian (CSR, eV/Å²)."""
        return self.cont.energy_gradient(np.asarray(U, float).reshape(-1), order=2)[2]

    def commit(self) -> None:
        """Accept the material's trial states."""
        self.cont.forget()
        self.material.commit()

    def revert(self) -> None:
        """Drop the material's trial states."""
        self.cont.forget()
        self.material.revert()


# ---------------------------------------------------------------------------------------------
# measurements


def atom_virial_stress(system: QCSystem, U, sites) -> np.ndarray:
    """Per-atom virial (Cauchy) stress (n, 3, 3) in eV/Å³ at ``sites``, over the atomic volume.

    The engine's pair derivatives ``dE/dr_p`` (``potential.first_order``, EAM embedding
    included) give the central pair forces; each pair's ``d_p (x) f_p`` is split half and half
    between its atoms (LAMMPS ``compute stress/atom``), and divided by the atom's current
    volume ``Omega0 det F_a`` (``Omega0`` the volume per site, ``F_a`` the least-squares
    deformation gradient of its nearest-neighbour bonds, ``F_a = sum d D^T (sum D D^T)^-1``;
    exact for a homogeneous deformation, where the stress is then the Cauchy-Born one). The
    padding reaches two cutoffs (EAM
    densities of the neighbours are complete) plus 20 % for the deformation. Sites must be
    atoms with a complete neighbourhood (the atomistic region).
    """
    sites = np.asarray(sites, np.int64)
    pot = system.potential
    ref = system.reference
    mask = np.zeros(len(ref), bool)
    mask[sites] = True
    near = system.neighbours_within(mask, 2.4 * float(pot.cutoff))
    idx = np.flatnonzero(near | mask)
    X = ref.positions_nc[idx]
    x = X.copy()
    x[:, :system.ncomp] += site_displacements(system, U, idx)
    conf = Configuration(x, ref.cell_cc, ref.pbc, ref.types_n[idx])
    from atomistic.calculator import Calculator

    calc = Calculator(pot, skin=0.0, multiple_images=any(ref.pbc),
                      exclude=system.bond_exclusion(X))
    nl = calc.pair_list(conf)
    d_pc, r_p = pair_vectors(conf.positions_nc, conf.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
    _, dedr_p = pot.first_order(r_p, nl.i_p, nl.j_p, conf.types_n)
    s = dedr_p / r_p
    dd = s[:, None, None] * d_pc[:, :, None] * d_pc[:, None, :]  # = - (pair virial)
    S = np.zeros((len(idx), 3, 3))
    np.add.at(S, nl.i_p, 0.5 * dd)
    np.add.at(S, nl.j_p, 0.5 * dd)
    # the current atomic volume: Omega0 det F_a, F_a the least-squares deformation gradient
    # of the atom's nearest-neighbour bonds (exact for a homogeneous deformation)
    D_pc, R_p = pair_vectors(X, conf.cell_cc, nl.i_p, nl.j_p, nl.s_pc)
    nn = R_p < 1.1 * R_p.min()
    A = np.zeros((len(idx), 3, 3))
    B = np.zeros((len(idx), 3, 3))
    dD = d_pc[nn, :, None] * D_pc[nn, None, :]
    DD = D_pc[nn, :, None] * D_pc[nn, None, :]
    for end in (nl.i_p[nn], nl.j_p[nn]):
        np.add.at(A, end, dD)
        np.add.at(B, end, DD)
    where = np.searchsorted(idx, sites)
    J = np.linalg.det(A[where] @ np.linalg.inv(B[where]))
    return S[where] / (qc_site_volume(system) * J[:, None, None])


def _unit_fields(system: QCSystem, fields: list[CrackField], nodes: np.ndarray):
    X = system.mesh.points_md[nodes]
    return [f.displacements(1.0, X) for f in fields]


def far_field_check(system: QCSystem, U, K: float, own: CrackField, perfect: CrackField,
                    r_min: float) -> dict:
    """Least-squares K of the free far-field nodes' displacements in two unit-K fields.

    Nodes: free (not clamped) mesh nodes at ``r >= r_min`` (Å) from the tip. ``K`` in absolute
    units (eV/Å^{5/2}). Returns the fits ``K_fit/K`` in the ``own`` field (the one clamped) and
    the ``perfect`` crystal's field, the ratio the two LEFM fields predict for the latter
    (``<u_own, u_perf> / <u_perf, u_perf>`` at those nodes), the two E' and the relative
    misfit of the displacements against the own field.
    """
    X = system.mesh.points_md
    r = np.linalg.norm(X, axis=1)
    nodes = np.flatnonzero((r >= r_min) & ~system.fixed_m)
    if len(nodes) == 0:
        raise InputError(f"no free mesh node at r >= {r_min:.4g} Å for the far-field fit; "
                         "lower the radius")
    u = np.asarray(U, float).reshape(system.n_nodes, system.ncomp)[nodes, :2]
    phi_own, phi_perf = _unit_fields(system, [own, perfect], nodes)
    fit_own = float((u * phi_own).sum() / (phi_own * phi_own).sum()) / K
    fit_perf = float((u * phi_perf).sum() / (phi_perf * phi_perf).sum()) / K
    expected = float((phi_own * phi_perf).sum() / (phi_perf * phi_perf).sum())
    misfit = float(np.linalg.norm(u - K * phi_own) / np.linalg.norm(K * phi_own))
    return {"nodes": int(len(nodes)), "r_min": float(r_min), "K_fit_own_over_K": fit_own,
            "K_fit_perfect_over_K": fit_perf, "expected_perfect_over_K": expected,
            "E_prime_own": _E_prime(own), "E_prime_perfect": _E_prime(perfect),
            "compliance_ratio": _E_prime(perfect) / _E_prime(own),
            "misfit_own": misfit}


# ---------------------------------------------------------------------------------------------
# the solve


@dataclass
class CrackRecord:
    """What one converged K of a run gives (JSON-ready through :meth:`as_dict`)."""

    K_over_KG: float
    iterations: int
    max_force: float
    steps: int
    tip_x: float | None
    opening: dict
    sigma_yy: dict
    wall_time: float
    far_field: dict | None = None

    def as_dict(self) -> dict:
        """The record as a plain dict; stresses in GPa (``sigma_yy_GPa``), the user's unit."""
        sigma = {k: (np.asarray(v, float) * EV_PER_A3_IN_GPA).tolist()
                 if k in ("atoms", "continuum", "lefm") else v for k, v in self.sigma_yy.items()}
        return {"K_over_KG": self.K_over_KG, "iterations": self.iterations,
                "max_force": self.max_force, "steps": self.steps, "tip_x": self.tip_x,
                "opening": self.opening, "sigma_yy_GPa": sigma,
                "wall_time": self.wall_time, "far_field": self.far_field}


class ConcurrentCrack:
    """The K-loaded crack with atoms at the tip (or none) and a zoned continuum material.

    Args:
        system: the crack system (:func:`concurrent_crack_system` or
            :func:`coupling.qc.crack.crack_system` with ``dim=3``).
        field: the perfect crystal's crack field (its ``K_G`` sets the K unit).
        K_over_KG: the K values to reach, in units of ``field.K_G``, increasing.
        far: the far material (a keyed point material, e.g. ``PointMaterial(rve)`` or a
            :class:`coupling.dispatch.DispatchedMaterial`), or None: Cauchy-Born everywhere.
        rve_radius: cells whose centroid is at least this far from the tip (Å) get ``far``;
            default: the atomistic radius plus two cutoffs (outside the handshake band and
            its padding); 0: every continuum cell.
        clamp_field: the K-field on the clamped layer and in the first guess (default
            ``field``); e.g. :func:`stiffness_field` of the far material's own stiffness.
        atoms: False: no atoms, the continuum everywhere (:class:`ContinuumCrackModel`).
        scheme: the QC scheme with atoms, energy-based (:data:`ENERGY_SCHEMES`; ``bgfc``
            default: its correction at F = I balances a far material's residual stress).
        tol: largest free-node force (eV/Å) of a converged relaxation.
        min_step: smallest K increment after cut-backs (units of K_G).
        name: the run's name (output file names).
        outdir: where to write ``<name>_atoms.extxyz`` (with atoms) and
            ``<name>_continuum.bp``; None: nothing is written.
        log: ``log(line)`` for progress, or None.
        bond_cut: the broken-bond length of the tip finder (Å); default computed.

    Attributes:
        records: one :class:`CrackRecord` per K reached.
        U: the last converged nodal displacements.
        model: the relaxed model (:class:`coupling.qc.model.QCModel` or
            :class:`ContinuumCrackModel`).
        sigma_ref: (Gauss points, 3, 3) the material's stress at F = I (eV/Å³), subtracted
            from the reported Gauss-point stresses (see :meth:`gauss_stress`).
    """

    def __init__(self, system: QCSystem, field: CrackField, K_over_KG, *, far=None,
                 rve_radius: float | None = None, clamp_field: CrackField | None = None,
                 atoms: bool = True, scheme: str = "bgfc", tol: float = 1e-8,
                 min_step: float = 0.01, name: str = "run", outdir=None, log=None,
                 bond_cut: float | None = None):
        K = np.asarray(K_over_KG, float).reshape(-1)
        if not (len(K) and np.isfinite(K).all() and (K > 0).all() and (np.diff(K) > 0).all()):
            raise InputError(f"K_over_KG must be increasing positive numbers, got {K_over_KG!r}")
        self.system, self.field, self.K = system, field, K
        self.clamp_field = field if clamp_field is None else clamp_field
        if atoms and scheme not in ENERGY_SCHEMES:
            raise InputError(f"the concurrent crack runs an energy-based scheme (one of "
                             f"{', '.join(ENERGY_SCHEMES)}), got {scheme!r}")
        self.atoms, self.scheme, self.tol = bool(atoms), scheme, float(tol)
        self.min_step, self.name, self.log = float(min_step), str(name), log
        self.outdir = None if outdir is None else Path(outdir)
        info = system.info
        a0, rc = float(info["a0"]), float(system.potential.cutoff)
        A = system.atomistic_s & system.present_s
        self.atomistic_radius = float(np.linalg.norm(
            system.reference.positions_nc[A, :2], axis=1).max())
        self.rve_radius = (self.atomistic_radius + 2.0 * rc if rve_radius is None
                           else float(rve_radius))
        space = QCSpace(system.mesh, system.ncomp)
        cen = system.mesh.points_md[system.mesh.cells_kv].mean(axis=1)
        far_cells = np.linalg.norm(cen, axis=1) >= self.rve_radius
        self.far_points = far_cells[space.qc_cell]  # per DOLFINx cell = Gauss point
        near = LatticeCauchyBorn.of_system(system)
        self.material = ZonedMaterial(near, far, self.far_points if far is not None else None)
        self.far = far
        if self.atoms:
            self.model = QCModel(system, scheme, F_ref=np.eye(3), material=self.material)
            cont = self.model.cont
        else:
            self.model = ContinuumCrackModel(system, self.material)
            cont = self.model.cont
        if not np.array_equal(cont.space.qc_cell, space.qc_cell):  # pragma: no cover
            raise RuntimeError("the DOLFINx cell order differs between two QCSpaces of a mesh")
        self.cont = cont
        # the material's stress at F = I per Gauss point (the reference the dead load balances:
        # zero for the perfect lattice, the residual stress of a vacancy RVE held at the
        # perfect cell), from the model's evaluation at U = 0 when it made one (bgfc, no atoms)
        self.sigma_ref = np.zeros((len(self.far_points), 3, 3))
        mat = self.material
        if mat.points is not None and np.array_equal(mat.F_qij, np.broadcast_to(
                np.eye(3), mat.F_qij.shape)):
            self.sigma_ref[mat.points] = mat.P_qij
        self.n_far_points = int(self.far_points[cont.cells].sum()) if far is not None else 0
        self.n_gauss_points = int(len(cont.cells))
        # measuring lines: the rows next to the crack plane
        X = system.reference.positions_nc
        pres = np.flatnonzero(system.present_s)
        y1 = float(np.abs(X[pres, 1]).min())
        self.y1 = y1
        up = pres[np.abs(X[pres, 1] - y1) < 1e-6]
        dn = pres[np.abs(X[pres, 1] + y1) < 1e-6]
        R = float(getattr(info["domain"], "radius", np.abs(X[:, 0]).max()))
        self.radius = R
        xu, xd = np.round(X[up, 0], 6), np.round(X[dn, 0], 6)
        common = np.intersect1d(xu, xd)
        behind = common[(common < 0) & (common > -(R - float(info["clamp_width"])))]
        self.open_x = behind
        self.open_up = np.array([up[np.flatnonzero(xu == x)[0]] for x in behind], np.int64)
        self.open_dn = np.array([dn[np.flatnonzero(xd == x)[0]] for x in behind], np.int64)
        atom_rows = np.concatenate([up, dn])
        atom_rows = atom_rows[A[atom_rows] & (X[atom_rows, 0] > 0)]
        self.lig_atoms = atom_rows[np.argsort(X[atom_rows, 0], kind="stable")]
        # cells the line y = 0 crosses ahead of the tip (continuum Gauss points)
        cy = system.mesh.points_md[system.mesh.cells_kv][:, :, 1]
        cross = (cy.min(axis=1) < 0) & (cy.max(axis=1) > 0) & (cen[:, 0] > 0)
        self.lig_cells = np.flatnonzero(cross)
        self._bonds = crack_plane_bonds(system)
        self.bond_cut = (cohesive_bond_cut(system, self._bonds)["bond_cut"] if bond_cut is None
                         else float(bond_cut))
        self.a0 = a0
        self.records: list[CrackRecord] = []
        self.U = None

    # -- measurements ------------------------------------------------------------------------
    def opening(self, U, K: float) -> dict:
        """The opening behind the tip, and the LEFM one at the same sites (Å)."""
        s = self.system
        du = site_displacements(s, U, self.open_up)[:, 1] - site_displacements(
            s, U, self.open_dn)[:, 1]
        X = s.reference.positions_nc
        KK = K * self.field.K_G
        lefm = (self.clamp_field.displacements(KK, X[self.open_up, :2])[:, 1]
                - self.clamp_field.displacements(KK, X[self.open_dn, :2])[:, 1])
        return {"x": self.open_x.tolist(), "delta": du.tolist(), "lefm": lefm.tolist()}

    def gauss_stress(self, U) -> tuple[np.ndarray, np.ndarray]:
        """``(QC cells, Cauchy stresses (n, 3, 3))`` of the continuum's converged evaluation.

        Relative to the material's stress at F = I (:attr:`sigma_ref`), which the model's
        dead load balances: zero for a perfect lattice, the residual stress of a vacancy RVE
        whose cell is held at the perfect lattice's shape.
        """
        mat, cont = self.material, self.cont
        F = cont.F(U)
        if mat.points is None or len(mat.points) != len(F) or not np.array_equal(mat.F_qij, F):
            # not the converged evaluation (should not happen after relax): evaluate once more
            ppc = cont.space.layout.points_per_cell
            points = (cont.cells.astype(np.int64)[:, None] * ppc + np.arange(ppc)).reshape(-1)
            mat.energy_stress_tangent(F, tangent=False, points=points)
            mat.revert()
        P, F = mat.P_qij, mat.F_qij
        sigma = np.einsum("qij,qkj->qik", P, F) / np.linalg.det(F)[:, None, None]
        cells = cont.space.qc_cell[cont.cells]
        return cells, sigma - self.sigma_ref[mat.points]

    def ligament_stress(self, U, K: float) -> dict:
        """``sigma_yy`` ahead of the tip: atoms (virial) and continuum Gauss points (eV/Å³)."""
        s = self.system
        out = {}
        if self.atoms and len(self.lig_atoms):
            S = atom_virial_stress(s, U, self.lig_atoms)[:, 1, 1]
            x = np.round(s.reference.positions_nc[self.lig_atoms, 0], 6)
            xs = np.unique(x)
            out["atoms_x"] = xs.tolist()
            out["atoms"] = [float(S[x == v].mean()) for v in xs]
        cells, sigma = self.gauss_stress(U)
        sel = np.isin(cells, self.lig_cells)
        if self.atoms:  # only the continuum's own cells (weight 1: outside the blending)
            beta_nodes = s.beta_s[s.mesh.node_site_m]
            sel &= beta_nodes[s.mesh.cells_kv[cells]].min(axis=1) >= 1.0
        cen = s.mesh.points_md[s.mesh.cells_kv[cells[sel]]].mean(axis=1)
        order = np.argsort(cen[:, 0], kind="stable")
        out["continuum_x"] = cen[order, 0].tolist()
        out["continuum"] = sigma[sel][order, 1, 1].tolist()
        xs = np.concatenate([np.asarray(out.get("atoms_x", []), float), cen[:, 0]])
        r = np.unique(xs[xs > 0])
        out["lefm_x"] = r.tolist()
        out["lefm"] = (K * self.field.K_G / np.sqrt(2 * np.pi * r)).tolist()
        return out

    # -- solve -------------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def _relax_at(self, K: float, U_prev, K_prev):
        s = self.system
        kf1 = self._kf1
        U0 = kf1 * K if U_prev is None else U_prev + kf1 * (K - K_prev)
        U0[s.fixed_m] = (kf1 * K)[s.fixed_m]
        return relax(self.model, U0, tol=self.tol, max_iter=60, commit=True)

    def solve(self, callback=None) -> list[CrackRecord]:
        """Raise K through :attr:`K` with cut-back; record and write each target K.

        Args:
            callback: ``callback(record, U)`` after each target K is reached and written, or
                None.

        Raises:
            CalculationFailed: a K could not be reached even with the smallest step.
        """
        from coupling.qc.crack import k_field

        s = self.system
        self._kf1 = k_field(self.clamp_field, s, self.field.K_G)  # linear in K
        writer = _Writer(self) if self.outdir is not None else None
        U, K_done = None, 0.0
        try:
            for K_target in self.K:
                t0 = time.perf_counter()
                stepper = LoadStepper(K_done, float(K_target), min_increment=self.min_step,
                                      tol=1e-12)
                its, steps = 0, 0
                rep = None
                for K_try in stepper:
                    try:
                        U_new, rep = self._relax_at(K_try, U, K_done if U is not None else None)
                    except CalculationFailed as err:
                        self._say(f"    [{self.name}] K/K_G = {K_try:.4f} failed ({err}); "
                                  "halving the step")
                        if not stepper.cut_back(str(err)):
                            raise CalculationFailed(
                                f"{self.name}: K/K_G = {K_target} not reached (stuck at "
                                f"{K_done:.4f}): {err}") from None
                        continue
                    its += rep.iterations
                    steps += 1
                    U, K_done = U_new, stepper.accept()
                tip = crack_tip_position(s, U, bond_cut=self.bond_cut, bonds=self._bonds)
                rec = CrackRecord(
                    K_over_KG=float(K_target), iterations=its, max_force=float(rep.max_force),
                    steps=steps, tip_x=float(tip) if np.isfinite(tip) else None,
                    opening=self.opening(U, K_target),
                    sigma_yy=self.ligament_stress(U, K_target),
                    wall_time=time.perf_counter() - t0)
                if self.far is not None:
                    rec.far_field = far_field_check(
                        s, U, K_target * self.field.K_G, self.clamp_field, self.field,
                        self.rve_radius)
                self.records.append(rec)
                self.U = U
                self._say(f"    [{self.name}] K/K_G = {K_target:.3f}: {its} Newton iterations "
                          f"in {steps} step(s), max force {rep.max_force:.1e} eV/Å, tip x = "
                          f"{rec.tip_x if rec.tip_x is None else round(rec.tip_x, 3)} Å, "
                          f"{rec.wall_time:.1f} s")
                if writer is not None:
                    writer(rec, U)
                if callback is not None:
                    callback(rec, U)
        finally:
            if writer is not None:
                writer.close()
        return self.records

    def summary(self) -> dict:
        """JSON-ready summary of the run (sizes and every record)."""
        s = self.system
        return {"name": self.name, "atoms": self.atoms, "scheme": self.scheme if self.atoms
                else "continuum", "nodes": s.n_nodes, "dofs": s.n_dofs,
                "cells": s.mesh.n_cells, "gauss_points": self.n_gauss_points,
                "far_points": self.n_far_points, "rve_radius": self.rve_radius,
                "reference_sigma_yy_max": float(np.abs(self.sigma_ref[:, 1, 1]).max()),
                "atomistic_sites": int((s.atomistic_s & s.present_s).sum()) if self.atoms
                else 0, "records": [r.as_dict() for r in self.records]}


class _Writer:
    """Atoms (extxyz, one frame per K) and continuum displacements (VTX) of a run."""

    def __init__(self, run: ConcurrentCrack):
        from ase.data import chemical_symbols

        from coupling.qc.output import QCVTXWriter

        s = run.system
        self.run, self.system = run, s
        out = run.outdir
        out.mkdir(parents=True, exist_ok=True)
        self.xyz = out / f"{run.name}_atoms.extxyz" if run.atoms else None
        if self.xyz is not None:
            if self.xyz.exists():
                self.xyz.unlink()
            A = s.atomistic_s & s.present_s
            near = s.neighbours_within(A, s.potential.cutoff)
            self.sites = np.flatnonzero(A | near)
            self.region = A[self.sites].astype(np.int8)
            ref = s.reference
            self.X = ref.positions_nc[self.sites]
            lo, hi = self.X.min(axis=0), self.X.max(axis=0)
            self.cell = np.diag(hi - lo + 10.0)
            self.origin = lo - 5.0
            if ref.pbc[2]:
                self.cell[2, 2] = ref.cell_cc[2, 2]
                self.origin[2] = 0.0
            self.pbc = ref.pbc
            names = [e if e in chemical_symbols else "X" for e in s.potential.elements]
            self.symbols = [names[t] for t in ref.types_n[self.sites]]
        self.vtx = QCVTXWriter(out / f"{run.name}_continuum.bp", s.mesh, ncomp=s.ncomp)
        self.frames = 0

    def __call__(self, rec: CrackRecord, U) -> None:
        from atomistic.extxyz import write_extxyz

        if self.xyz is not None:
            u = np.zeros((len(self.sites), 3))
            u[:, :self.system.ncomp] = site_displacements(self.system, U, self.sites)
            A = np.flatnonzero(self.region)
            syy = np.full(len(self.sites), np.nan)
            syy[A] = atom_virial_stress(self.system, U, self.sites[A])[:, 1, 1]
            write_extxyz(self.xyz, self.X + u, cell=self.cell, pbc=self.pbc,
                         arrays={"displacement": u, "region": self.region,
                                 "sigma_yy_GPa": syy * EV_PER_A3_IN_GPA},
                         info={"frame": self.frames, "K_over_KG": rec.K_over_KG,
                               "tip_x": rec.tip_x if rec.tip_x is not None else float("nan")},
                         symbols=self.symbols, append=self.frames > 0, origin=self.origin)
        self.vtx.write(self.frames, U)
        self.frames += 1

    def close(self) -> None:
        self.vtx.close()
