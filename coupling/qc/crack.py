"""A straight mode-I crack for QC: the lattice, the K-field boundary conditions and Griffith.

The crack lies on y = 0 along -x, its tip at the origin, midway between atomic rows
(``coupling.qc.system.lattice_sites`` shifts the lattice). The K-field of linear elasticity
(isotropic for the triangular lattice, Sih-Paris-Irwin anisotropic for the cubic Cu slab in
the x = [100], y = [010], z = [001] frame) is imposed on the clamped outer layer and used as
the initial guess everywhere. Griffith's ``K_G = sqrt(2 γ E')`` uses the surface energy and
the plane-strain modulus computed from the same potential (``atomistic.fracture``).

Units (one convention for both lattices, ``atomistic.fracture``): the triangular lattice is a
layer 1 Å thick, so γ is in eV/Å², E' in eV/Å³ and K in eV/Å^{5/2}, as for the Cu slab.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomistic.fracture import griffith
from coupling.qc.geometry import Crack, Disc
from coupling.qc.setups import default_setup
from coupling.qc.system import QCSystem, build_system
from fe2qc.lefm import AnisotropicCrack, isotropic_K_field

__all__ = ["CrackField", "crack_field", "crack_system", "k_field"]


@dataclass
class CrackField:
    """The K-field of a lattice's crack and its Griffith quantities."""

    lattice: str
    a0: float
    griffith: dict  # gamma (eV/Å²), E_prime (eV/Å³), K_G (eV/Å^{5/2}), ...
    _aniso: AnisotropicCrack | None = None

    @property
    def K_G(self) -> float:
        """Griffith's stress intensity factor ``sqrt(2 γ E')`` (eV/Å^{5/2})."""
        return float(self.griffith["K_G"])

    def displacements(self, K: float, X_n2: np.ndarray) -> np.ndarray:
        """In-plane K-field displacements (n, 2) at reference points (tip at the origin)."""
        if self._aniso is not None:
            return self._aniso.displacements(K, X_n2)
        g = self.griffith
        return isotropic_K_field(K, X_n2, lam=g["lam"], mu=g["mu"])


def crack_field(potential, lattice: str, a0: float) -> CrackField:
    """Griffith quantities and the K-field of the crack on (010) / the close-packed row."""
    g = griffith(potential, lattice, a0)
    if lattice == "triangular":
        return CrackField(lattice, a0, g)
    return CrackField(lattice, a0, g, AnisotropicCrack(g["C_ijkl"]))


def k_field(field: CrackField, system: QCSystem, K: float, points_md: np.ndarray | None = None
            ) -> np.ndarray:
    """Nodal displacements (m, c) of the K-field (out-of-plane component zero)."""
    X = system.mesh.points_md if points_md is None else points_md
    U = np.zeros((len(X), system.ncomp))
    U[:, :2] = field.displacements(K, X)
    return U


def crack_system(dim: int, scheme: str, *, radius: float, atomistic_radius: float,
                 handshake: float | None = None, growth: float = 0.3,
                 max_size: float | None = None, setup=None, resolve_clamp: bool = True,
                 cut: bool = False, clamp_growth: float | None = None):
    """``(system, field)`` for the standard crack of ``dim`` 2 (triangular) or 3 (Cu slab).

    Radii are in units of the lattice parameter ``a0``. ``setup`` is ``(potential, lattice,
    a0)``, default :func:`coupling.qc.setups.default_setup`; ``resolve_clamp`` see
    :func:`coupling.qc.system.build_system`; ``cut`` makes it a pre-cut crack whose faces
    cannot re-bond (:class:`coupling.qc.geometry.Crack`).
    """
    pot, lattice, a0 = default_setup(dim) if setup is None else setup
    system = build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, radius * a0),
                          atomistic=Disc(0.0, 0.0, atomistic_radius * a0), scheme=scheme,
                          crack=Crack(0.0, 0.0, cut), handshake=handshake, growth=growth,
                          max_size=max_size, resolve_clamp=resolve_clamp,
                          clamp_growth=clamp_growth)
    return system, crack_field(pot, lattice, a0)
