"""The Cauchy-Born material point: the energy density of a homogeneously deformed lattice.

:class:`CauchyBorn` is both a batched :class:`fe2qc.material.MaterialPoint` (``evaluate``,
``energy_density``, ``commit``, ``revert``; no history) and a stateless
:class:`fe2qc.material.PointModel` (``initial_state()`` is empty, ``evaluate_point``), so the
FE² solver takes it directly, or point by point through a dispatcher, as it takes
:class:`atomistic.rve.AtomisticRVE`. It is the unrelaxed limit of that RVE for a Bravais
lattice (one atom per primitive cell: nothing to relax). The numbers come from
:class:`atomistic.cb_batch.BatchCauchyBorn` (the QC continuum's kernel), divided by the
primitive cell's volume.
"""

from __future__ import annotations

import numpy as np

from atomistic.cb_batch import BatchCauchyBorn
from atomistic.lattice import get_lattice, primitive_cell
from atomistic.potentials.base import Potential
from fe2qc.errors import InputError
from fe2qc.material import (
    PointResult,
    check_deformation_gradients,
    check_point_deformation_gradient,
)
from fe2qc.tensors import embed_F

__all__ = ["CauchyBorn"]


class CauchyBorn:
    """Cauchy-Born energy density of a Bravais lattice: W(F) = e(F)/V0 for its primitive cell.

    For pairs this is ``W = (1/2V0) sum_R phi(|F R|)``; for EAM
    ``W = (F(rho) + 1/2 sum_R phi(|F R|)) / V0`` with ``rho = sum_R f(|F R|)``. P and
    A are analytic (the potential's own kernels, through :class:`BatchCauchyBorn`). In 2D
    (``dim=2``) F is embedded in plane strain; the triangular lattice uses a unit thickness
    (``V0`` = area × 1 Å).

    Args:
        potential: the interatomic potential.
        lattice: a Bravais lattice name (``fcc``, ``bcc``, ``sc``, ``triangular``).
        a0: lattice parameter (Å).
        dim: 2 (plane strain) or 3.
        type_index: species of the lattice.

    Attributes:
        V0: the primitive cell's volume (Å³); W is per this volume.
        site_volume: the volume per lattice site (Å³): ``V0`` (one site per primitive cell).
    """

    def __init__(self, potential: Potential, lattice: str, a0: float, *, dim: int = 3,
                 type_index: int = 0) -> None:
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        self.potential = potential
        self.dim = dim
        self.lattice = lattice
        self.a0 = a0
        self.cell = primitive_cell(lattice, a0)
        self.cell.types_n[:] = int(type_index)
        if get_lattice(lattice).dimension == 2:  # a layer: per unit (1 Å) thickness
            self.V0 = float(np.linalg.norm(np.cross(self.cell.cell_cc[0], self.cell.cell_cc[1])))
        else:
            self.V0 = self.cell.volume
        self.site_volume = float(self.V0)  # a Bravais lattice: one site per primitive cell
        self.batch = BatchCauchyBorn(potential, self.cell.cell_cc, type_index=int(type_index))

    def _evaluate(self, F_t33: np.ndarray, tangent: bool):
        """``(W_t, P_t33, A_t3333 or None)`` per reference volume at checked 3×3 F."""
        e, P, A = self.batch.evaluate(F_t33, order=2 if tangent else 1)
        return e / self.V0, P / self.V0, None if A is None else A / self.V0

    def evaluate_one(self, F: np.ndarray, *, tangent: bool = True):
        """``(P, A, W)`` at one 3×3 F (``A`` is None without ``tangent``)."""
        F = check_deformation_gradients(F, 3)
        W, P, A = self._evaluate(F, tangent)
        return P[0], None if A is None else A[0], float(W[0])

    # -- MaterialPoint protocol (batched, no history) -------------------------------------------
    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return P and A at each point (one kernel call for the whole batch)."""
        F = embed_F(check_deformation_gradients(F_qij, self.dim))
        d = self.dim
        _, P, A = self._evaluate(F, True)
        return np.ascontiguousarray(P[:, :d, :d]), np.ascontiguousarray(A[:, :d, :d, :d, :d])

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return W (eV/Å³) at each point (absolute: includes the cohesive energy)."""
        F = embed_F(check_deformation_gradients(F_qij, self.dim))
        return self._evaluate(F, False)[0]

    def energy_stress_tangent(self, F_qij: np.ndarray, *, tangent: bool = True
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(W_q, P_qij, A_qijkl or None)`` from one kernel call (eV/Å³).

        W is absolute (includes the cohesive energy), as :meth:`energy_density`; A is None
        without ``tangent``. No history, so nothing to record.
        """
        F = embed_F(check_deformation_gradients(F_qij, self.dim))
        d = self.dim
        W, P, A = self._evaluate(F, tangent)
        A = None if A is None else np.ascontiguousarray(A[:, :d, :d, :d, :d])
        return W, np.ascontiguousarray(P[:, :d, :d]), A

    def commit(self) -> None:
        """No history."""

    def revert(self) -> None:
        """No history."""

    # -- PointModel protocol (stateless) ------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        """Return the empty state: a Bravais lattice has nothing to relax."""
        return np.zeros(0)

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """Return P, A (zeros without ``tangent``) and W at one (dim, dim) F; ``state`` unused."""
        F = embed_F(check_point_deformation_gradient(F_dd, self.dim))
        W, P, A = self._evaluate(F[None], tangent)
        d = self.dim
        A = np.zeros((d,) * 4) if A is None else np.array(A[0, :d, :d, :d, :d])
        return PointResult(np.array(P[0, :d, :d]), A, float(W[0]), np.zeros(0), 0.0)

    def __repr__(self) -> str:
        """Return the lattice and the dimension."""
        return f"CauchyBorn({self.lattice!r}, a0={self.a0:g}, dim={self.dim})"
