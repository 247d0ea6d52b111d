"""The Cauchy-Born material point: the energy density of a homogeneously deformed lattice.

:class:`CauchyBorn` implements :class:`fe2qc.material.MaterialPoint` (batched ``evaluate``,
``energy_density``, ``commit``, ``revert``; no history), as
:class:`atomistic.rve.AtomisticRVE` does. It is the unrelaxed limit of that RVE for a
Bravais lattice (one atom per primitive cell: nothing to relax).
"""

from __future__ import annotations

import numpy as np

from atomistic.calculator import Calculator
from atomistic.lattice import get_lattice, primitive_cell
from atomistic.potentials.base import Potential
from atomistic.structure import Configuration
from fe2qc.errors import InputError
from fe2qc.material import check_deformation_gradients
from fe2qc.tensors import embed_F

__all__ = ["CauchyBorn"]


class CauchyBorn:
    """Cauchy-Born energy density of a Bravais lattice: W(F) = e(F)/V0 for its primitive cell.

    For pairs this is ``W = (1/2V0) sum_R phi(|F R|)``; for EAM
    ``W = (F(rho) + 1/2 sum_R phi(|F R|)) / V0`` with ``rho = sum_R f(|F R|)``. P and
    A are analytic (same kernels as the atomistic engine). In 2D (``dim=2``) F is embedded
    in plane strain; the triangular lattice uses a unit thickness (``V0`` = area × 1 Å).
    """

    def __init__(self, potential: Potential, lattice: str, a0: float, *, dim: int = 3) -> None:
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        self.potential = potential
        self.dim = dim
        self.lattice = lattice
        self.a0 = a0
        self.cell = primitive_cell(lattice, a0)
        if get_lattice(lattice).dimension == 2:  # a layer: per unit (1 Å) thickness
            self.V0 = float(np.linalg.norm(np.cross(self.cell.cell_cc[0], self.cell.cell_cc[1])))
        else:
            self.V0 = self.cell.volume
        self.calc = Calculator(potential, skin=0.5, multiple_images=True)

    def _conf(self, F: np.ndarray) -> Configuration:
        conf = self.cell.copy()
        conf.cell_cc = self.cell.cell_cc @ F.T
        conf.positions_nc = self.cell.positions_nc @ F.T
        return conf

    def evaluate_one(self, F: np.ndarray, *, tangent: bool = True):
        """``(P, A, W)`` at one 3×3 F."""
        F = check_deformation_gradients(F, 3)[0]
        conf = self._conf(F)
        res = self.calc.compute(conf)
        P = -res.virial_cc @ np.linalg.inv(F).T / self.V0
        A = None
        if tangent:
            EFF, _, _ = self.calc.deformation_derivatives(conf, self.cell.cell_cc, mixed=False)
            A = EFF / self.V0
        return P, A, res.energy / self.V0

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P and A at each point."""
        F = embed_F(check_deformation_gradients(F_qij, self.dim))
        d = self.dim
        out = [self.evaluate_one(Fq) for Fq in F]
        P = np.array([o[0][:d, :d] for o in out])
        A = np.array([o[1][:d, :d, :d, :d] for o in out])
        return P, A

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """W (eV/Å³) at each point (absolute: includes the cohesive energy)."""
        F = embed_F(check_deformation_gradients(F_qij, self.dim))
        return np.array([self.evaluate_one(Fq, tangent=False)[2] for Fq in F])

    def commit(self) -> None:
        """No history."""

    def revert(self) -> None:
        """No history."""
