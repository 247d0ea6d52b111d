"""The atomistic material point: the relaxed periodic RVE.

It implements :class:`fe2qc.material.PointModel` (``initial_state()``, ``evaluate_point(F,
state)``): it stores no history; the state of a point is its relaxed internal displacements,
the warm start of the next relaxation. The batched material the FE² solver takes is
``fe2qc.material.PointMaterial(rve)`` (or ``coupling.dispatch.DispatchedMaterial`` for MPI
workers), interchangeable with :class:`atomistic.cauchy_born.CauchyBorn` or an analytic law.

The RVE is a periodic cell with reference positions ``X`` and cell ``L``. At a
macroscopic deformation gradient F its cell is ``F L`` and its atoms sit at
``x = F X + u``; the internal displacements u are relaxed to zero force (atom 0
pinned: translations are free). With ``e(F, u)`` the cell energy and
``V0 = |det L|``,

* ``W(F) = (e(F, u*) - e_ref) / V0`` (eV/Å³; ``e_ref`` is the reference energy; add
  ``W_ref = e_ref / V0`` for Cauchy-Born's absolute convention),
* ``P = (1/V0) de/dF`` at fixed u (u* is a stationary point, so this is dW/dF),
* ``A = dP/dF = (1/V0) (e_FF - e_Fu e_uu^{-1} e_uF)``: the Born term minus the relaxation
  correction through the (sparse, analytic) Hessian. This is the consistent 0 K tangent;
  no finite differences.

The volume per lattice site is ``site_volume = V0 / n_sites`` (vacant sites counted): the
energy per site is ``W * site_volume``, as for Cauchy-Born, which the QC continuum checks. A
layer (the ``triangular`` lattice, vacuum along z) counts a unit thickness as Cauchy-Born does:
``V0`` is then the in-plane area × 1 Å.

In 2D (``dim=2``, plane strain) F is embedded as ``[[F, 0], [0, 1]]`` and P, A are
restricted to the in-plane components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from atomistic.calculator import Calculator
from atomistic.potentials.base import Potential
from atomistic.relax import check_iterations, relax
from atomistic.structure import Configuration, check_coordinates
from fe2qc.checks import MAX_COORDINATE, require_finite, require_nonnegative, require_positive
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import (
    PointResult,
    check_deformation_gradients,
    check_point_deformation_gradient,
)
from fe2qc.tensors import embed_F

__all__ = ["RVEState", "AtomisticRVE"]


@dataclass
class RVEState:
    """Result of one RVE evaluation."""

    P: np.ndarray  # (3, 3) eV/Å³
    A: np.ndarray  # (3, 3, 3, 3) eV/Å³
    W: float  # eV/Å³
    u_nc: np.ndarray  # relaxed internal displacements (Å)
    iterations: int
    max_force: float


class AtomisticRVE:
    """A periodic atomistic cell as a material point with a consistent tangent.

    A :class:`fe2qc.material.PointModel`: the state of a point is the relaxed internal
    displacement field ``u_nc`` flattened (3 values per atom); every evaluation warm-starts the
    relaxation from it. ``work`` is the number of Newton iterations of the relaxation.

    Args:
        potential: the interatomic potential.
        reference: the periodic reference cell (positions X, cell L); relax it at F = I first
            (see :meth:`from_lattice`) so that ``u = 0`` is the reference equilibrium.
        dim: 2 (plane strain) or 3.
        fmax: force tolerance of the internal relaxation (eV/Å); the tangent's accuracy follows it.
        max_iter: Newton iterations per relaxation before :class:`CalculationFailed`.
        skin: neighbour-list skin (Å).
        multiple_images: allow cells narrower than twice the cutoff.
        n_sites: lattice sites of the cell, vacant ones included (default: its atoms, every
            site occupied); sets :attr:`site_volume`.
        thickness: None (W, P, A per the cell's volume), or, for a layer in the xy plane whose
            third cell vector spans vacuum, the thickness (Å) it counts: the reference volume is
            then the in-plane cell area × ``thickness`` (1 Å: Cauchy-Born's layer convention).

    Attributes:
        V0: the reference volume (Å³): the cell's, or area × ``thickness`` for a layer; W, P
            and A are per this volume.
        e_ref: the reference cell's energy (eV); W is relative to it.
        n_sites: lattice sites of the cell (vacant ones included).
    """

    def __init__(self, potential: Potential, reference: Configuration, *, dim: int = 3,
                 fmax: float = 1e-9, max_iter: int = 100, skin: float = 1.0,
                 multiple_images: bool = False, n_sites: int | None = None,
                 thickness: float | None = None) -> None:
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        if not all(reference.pbc):
            raise InputError("an RVE must be periodic along all three cell vectors")
        check_coordinates(reference.positions_nc, reference.cell_cc)
        self.potential = potential
        self.dim = dim
        self.fmax = require_positive("fmax", fmax, unit="eV/Å")
        self.max_iter = check_iterations("max_iter", max_iter)
        self.reference = reference.copy()
        self.V0 = reference.volume
        if thickness is not None:  # a layer: in-plane area times the counted thickness
            t = require_positive("thickness", thickness, unit="Å")
            self.V0 = float(np.linalg.norm(np.cross(reference.cell_cc[0],
                                                    reference.cell_cc[1]))) * t
        self.calc = Calculator(potential, skin=skin, multiple_images=multiple_images)
        self.e_ref = self.calc.energy(self.reference)
        n = len(reference) if n_sites is None else n_sites
        if isinstance(n, bool) or int(n) != n or int(n) < len(reference):
            raise InputError(f"n_sites must be an integer >= the cell's {len(reference)} atoms "
                             f"(the lattice sites, vacant ones included), got {n_sites!r}")
        self.n_sites = int(n)

    @classmethod
    def from_lattice(cls, potential: Potential, lattice: str, a0: float, size=(3, 3, 3), *,
                     vacancy: bool = False, void_radius: float = 0.0, orientation=None,
                     **kwargs) -> AtomisticRVE:
        """A supercell of ``lattice``, relaxed at F = I to be the reference.

        Optionally with a vacancy (the site nearest the centre) or a spherical void of
        ``void_radius`` Å around the centre, and rotated: ``orientation`` (three orthogonal
        Miller directions as rows, which become x, y, z; see
        :func:`atomistic.lattice.crystal`, which also gives ``size`` in units of the oriented
        cell). ``kwargs`` go to the constructor (``dim``, ``fmax``, ...). ``n_sites`` is the
        supercell's lattice sites (vacant ones included), so :attr:`site_volume` is the
        lattice's volume per site. A layer lattice (``triangular``) counts a unit (1 Å)
        thickness, as :class:`atomistic.cauchy_born.CauchyBorn` does, unless ``thickness`` is
        given.
        """
        from atomistic.lattice import crystal, get_lattice

        if get_lattice(lattice).dimension == 2:
            kwargs.setdefault("thickness", 1.0)
        void_radius = require_nonnegative("void_radius", void_radius, unit="Å")
        conf = crystal(lattice, a0, size=size, orientation=orientation)
        kwargs.setdefault("n_sites", len(conf))
        if vacancy or void_radius > 0:
            centre = conf.cell_cc.sum(axis=0) / 2
            dist = np.linalg.norm(conf.positions_nc - centre, axis=1)
            drop = dist <= void_radius
            drop[np.argmin(dist)] = True  # a vacancy: the one site nearest the centre
            if drop.all():
                raise InputError(f"void radius {void_radius} Å removes every atom of the cell")
            keep = ~drop
            conf = Configuration(conf.positions_nc[keep], conf.cell_cc, conf.pbc,
                                 conf.types_n[keep], info=dict(conf.info))
        rve = cls(potential, conf, **kwargs)
        if vacancy or void_radius > 0:
            r = relax(conf, rve.calc, method="newton", fmax=rve.fmax, max_iter=rve.max_iter)
            rve.reference = r.config
            rve.e_ref = r.energy
        return rve

    @property
    def n_atoms(self) -> int:
        """Atoms in the cell."""
        return len(self.reference)

    @property
    def site_volume(self) -> float:
        """The reference volume per lattice site ``V0 / n_sites`` (Å³).

        The energy per site of the homogenised material is ``W * site_volume``: for a
        Bravais lattice with every site occupied, ``V0 / n_atoms``, the Cauchy-Born point's
        ``V0`` (:class:`atomistic.cauchy_born.CauchyBorn`); a vacancy keeps its site.
        """
        return float(self.V0) / self.n_sites

    @property
    def W_ref(self) -> float:
        """The reference cell's energy density ``e_ref / V0`` (eV/Å³).

        W is relative to the reference: ``W + W_ref`` is the absolute energy density, the
        convention of :class:`atomistic.cauchy_born.CauchyBorn` (for the perfect lattice,
        its ``W(I)``: the cohesive energy per volume).
        """
        return float(self.e_ref) / float(self.V0)

    # -- one point -------------------------------------------------------------------------
    def deformed(self, F: np.ndarray, u_nc: np.ndarray | None = None) -> Configuration:
        """The cell at F with internal displacements u (zero if None)."""
        conf = self.reference.copy()
        conf.cell_cc = self.reference.cell_cc @ F.T
        conf.positions_nc = self.reference.positions_nc @ F.T
        if u_nc is not None:
            conf.positions_nc = conf.positions_nc + u_nc
        return conf

    def evaluate_one(self, F: np.ndarray, u0_nc: np.ndarray | None = None, *,
                     tangent: bool = True, relaxed: bool = True) -> RVEState:
        """Relax the cell at the 3×3 deformation gradient F and return P, A, W.

        ``relaxed=False`` gives the unrelaxed (Born, affine) response at ``u0`` (zero if None).
        """
        F = check_deformation_gradients(F, 3)[0]
        if u0_nc is not None:
            u0_nc = require_finite("u0_nc", u0_nc, bound=MAX_COORDINATE, unit=" Å")
            if u0_nc.shape != (self.n_atoms, 3):
                raise InputError(f"u0_nc must have shape ({self.n_atoms}, 3), got {u0_nc.shape}")
        conf = self.deformed(F, u0_nc)
        # fresh neighbour lists: the result is a function of (F, u0) alone, bitwise, whichever
        # points this cell evaluated before (dispatch layouts must not change the answer)
        self.calc.reset()
        its, mf = 0, 0.0
        if relaxed and self.n_atoms > 1:
            r = relax(conf, self.calc, method="newton", fmax=self.fmax, max_iter=self.max_iter)
            conf, its, mf = r.config, r.iterations, r.max_force
        res = self.calc.compute(conf)
        u = conf.positions_nc - self.reference.positions_nc @ F.T
        Finv = np.linalg.inv(F)
        # P = (1/V0) sum_p f_p ⊗ D_p = (1/V0) (-W F^{-T} + sum_a f_a ⊗ F^{-1} u_a);
        # the second term vanishes at equilibrium but not for the unrelaxed response
        P = (-res.virial_cc @ Finv.T + res.forces_nc.T @ (u @ Finv.T)) / self.V0
        A = np.zeros((3, 3, 3, 3))
        if tangent:
            EFF, B, H = self.calc.deformation_derivatives(conf, self.reference.cell_cc,
                                                          mixed=relaxed and self.n_atoms > 1)
            A = EFF
            if B is not None:
                keep = np.ones(3 * self.n_atoms, dtype=bool)
                keep[:3] = False  # atom 0 pinned
                Hr = H[keep][:, keep].tocsc()
                Br = B[keep]
                try:
                    X = spla.splu(Hr).solve(Br)
                except RuntimeError as exc:
                    raise CalculationFailed(
                        "the RVE Hessian is singular at this deformation: the cell lost "
                        "stability (a zero-energy mode), so the relaxed tangent is undefined"
                    ) from exc
                A = EFF - (Br.T @ X).reshape(3, 3, 3, 3)
            A = A / self.V0
        W = (res.energy - self.e_ref) / self.V0
        return RVEState(P, A, W, u, its, mf)

    # -- PointModel protocol ----------------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        """Return the state of an unloaded point: zero internal displacements (3 per atom)."""
        return np.zeros(3 * self.n_atoms)

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """Relax at the (dim, dim) deformation gradient, warm-started from ``state``.

        In 2D (plane strain) F is embedded as ``[[F, 0], [0, 1]]`` and P, A are the in-plane
        components. An empty ``state`` starts from zero internal displacements.

        Returns:
            P, A (zeros without ``tangent``), W, the relaxed displacements as the new state and
            ``work`` = the Newton iterations of the relaxation.
        """
        F = embed_F(check_point_deformation_gradient(F_dd, self.dim))
        state = np.asarray(state, dtype=float)
        u0 = None
        if state.size:
            if state.size != 3 * self.n_atoms:
                raise InputError(f"RVE state has {state.size} values, expected "
                                 f"{3 * self.n_atoms} (3 per atom)")
            u0 = state.reshape(-1, 3)
        s = self.evaluate_one(F, u0, tangent=tangent)
        d = self.dim
        return PointResult(np.array(s.P[:d, :d]), np.array(s.A[:d, :d, :d, :d]), float(s.W),
                           np.asarray(s.u_nc, dtype=float).reshape(-1), float(s.iterations))

    def __repr__(self) -> str:
        """Return the size of the cell and the dimension."""
        return f"AtomisticRVE({self.n_atoms} atoms, dim={self.dim})"
