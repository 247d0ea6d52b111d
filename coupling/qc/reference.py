"""The fully atomistic reference: every site an atom, the same clamped outer layer as QC.

:class:`AtomisticModel` offers the interface :func:`coupling.qc.solver.newton` expects
(``system`` with ``ncomp``/``n_nodes``/``n_dofs``/``free_dofs()``, ``energy_residual``,
``jacobian``), so reference and QC relax with the same Newton method and tolerance.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from atomistic.calculator import Calculator
from atomistic.structure import Configuration
from coupling.qc.system import QCSystem

__all__ = ["AtomisticModel", "site_displacements"]


class AtomisticModel:
    """All present sites of a :class:`QCSystem`'s domain as explicit atoms.

    Atoms in the system's clamped outer layer (``clamped_s``) are fixed. The unknowns are
    the displacements of the present sites, ``(n_atoms, ncomp)``.
    """

    scheme = "atomistic"
    energy_based = True

    def __init__(self, qc: QCSystem, clamped_s: np.ndarray | None = None):
        self.qc = qc
        present = np.flatnonzero(qc.present_s)
        self.site = present
        ref = qc.reference
        self.X = ref.positions_nc[present]
        self.config = Configuration(self.X.copy(), ref.cell_cc, ref.pbc, ref.types_n[present])
        self.calc = Calculator(qc.potential, skin=0.5, multiple_images=any(ref.pbc),
                               exclude=qc.bond_exclusion(self.X))
        if clamped_s is None:
            clamped_s = qc.info["clamped_s"]  # the layer build_system clamps
        self.fixed_m = np.asarray(clamped_s, bool)[present]
        self.ncomp = qc.ncomp
        self.n_nodes = len(present)
        self.n_dofs = self.n_nodes * self.ncomp
        self.system = self

    def free_dofs(self) -> np.ndarray:
        """Flat mask over dofs (n_dofs,): True where the atom is not clamped."""
        return np.repeat(~self.fixed_m, self.ncomp)

    def node_positions(self) -> np.ndarray:
        """Reference positions of the atoms (n_atoms, 3) (Å)."""
        return self.X

    def homogeneous(self, F: np.ndarray) -> np.ndarray:
        """Displacements (n_atoms, ncomp) of the affine map ``x = F X``."""
        return (self.X @ (np.asarray(F, float) - np.eye(3)).T)[:, :self.ncomp]

    def _set(self, U):
        x = self.X.copy()
        x[:, :self.ncomp] += np.asarray(U, float).reshape(-1, self.ncomp)
        self.config.positions_nc = x

    def energy_residual(self, U):
        """Energy (eV) and minus the forces, flat over dofs (eV/Å), at displacements U."""
        self._set(U)
        res = self.calc.compute(self.config)
        return res.energy, -res.forces_nc[:, :self.ncomp].ravel()

    def energy(self, U) -> float:
        """Energy (eV) of the atoms at displacements U."""
        return self.energy_residual(U)[0]

    def residual(self, U):
        """Minus the forces on the atoms, flat over dofs (eV/Å), at displacements U."""
        return self.energy_residual(U)[1]

    def jacobian(self, U) -> sp.csr_matrix:
        """Hessian of the energy over the dofs (eV/Å²), sparse, at displacements U."""
        self._set(U)
        H = self.calc.hessian(self.config)
        if self.ncomp == 3:
            return H
        keep = (3 * np.arange(self.n_nodes)[:, None] + np.arange(self.ncomp)).ravel()
        return H[keep][:, keep].tocsr()


def site_displacements(qc: QCSystem, U: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """QC displacements at arbitrary present ``sites`` (nodes directly, others by P1)."""
    sites = np.asarray(sites, np.int64)
    U = np.asarray(U, float).reshape(qc.n_nodes, qc.ncomp)
    nodes = qc.mesh.node_of_site[sites]
    out = np.empty((len(sites), qc.ncomp))
    is_node = nodes >= 0
    out[is_node] = U[nodes[is_node]]
    if (~is_node).any():
        Y = qc.reference.positions_nc[sites[~is_node], :qc.mesh.dim]
        out[~is_node] = qc.interpolate(Y) @ U
    return out
