"""The potential protocol: what an interatomic potential must provide.

Two kernels over a half pair list, a fused energy-and-forces evaluation from positions, and the
LAMMPS commands of the same interaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from fe2qc.checks import require_finite

__all__ = ["Potential", "SecondOrder", "checked_distances"]


def checked_distances(r_p) -> np.ndarray:
    """Pair distances for a kernel, contiguous; NaN/inf would silently drop the pair there.

    Raises:
        InputError: naming the first non-finite distance.
    """
    return np.ascontiguousarray(require_finite(
        "r_p", r_p, hint="(pair distances; check the positions and cell of the configuration)"))


@dataclass
class SecondOrder:
    """Second-order data of ``E = sum_a U_a(rho_a) + sum_p phi_p(r_p)``.

    With these, ``d2E/dr_p dr_q = delta_pq d2edr2_p + sum_a fpp_n[a] drho_a/dr_p drho_a/dr_q``
    where ``drho_a/dr_p`` is ``drho_i_p`` for ``a = i_p``, ``drho_j_p`` for ``a = j_p``
    (both, added, when ``i_p == j_p``: an atom and its own image).

    Attributes:
        dedr_p: dE/dr_p (total, embedding slopes included).
        d2edr2_p: phi''(r) + U'_i g''_{p->i}(r) + U'_j g''_{p->j}(r).
        fpp_n: U''(rho_a) per atom (zeros for pair potentials).
        drho_i_p: d rho_{i_p} / d r_p.
        drho_j_p: d rho_{j_p} / d r_p.
    """

    dedr_p: np.ndarray
    d2edr2_p: np.ndarray
    fpp_n: np.ndarray
    drho_i_p: np.ndarray
    drho_j_p: np.ndarray


@runtime_checkable
class Potential(Protocol):
    """An interatomic potential in the embedded-atom form (pair potentials included).

    Kernels receive pair distances ``r_p`` of a half list ``(i_p, j_p)`` that may contain
    pairs beyond the cutoff (the neighbour skin): those must contribute nothing.
    """

    #: interaction cutoff (Å)
    cutoff: float
    #: element names, indexed by the configuration's ``types_n``
    elements: tuple[str, ...]
    #: masses (amu) per element
    masses: tuple[float, ...]

    def first_order(self, r_p: np.ndarray, i_p: np.ndarray, j_p: np.ndarray,
                    types_n: np.ndarray, weights_n: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(e_n, dedr_p)``.

        ``e_n`` are the site energies E_a (their sum is the total energy; pair energies are
        split half and half); ``dedr_p = d(sum_a w_a E_a)/dr_p`` with ``w = weights_n``
        (all ones when None, giving the total energy's derivative).
        """
        ...

    def second_order(self, r_p: np.ndarray, i_p: np.ndarray, j_p: np.ndarray,
                     types_n: np.ndarray, weights_n: np.ndarray | None = None) -> SecondOrder:
        """Return the second-order data of ``sum_a w_a E_a`` (see :class:`SecondOrder`).

        All weights one (None) gives the total energy.
        """
        ...

    def energy_forces(self, x_nc: np.ndarray, cell_cc: np.ndarray, i_p: np.ndarray,
                      j_p: np.ndarray, s_pc: np.ndarray, types_n: np.ndarray
                      ) -> tuple[float, np.ndarray, np.ndarray]:
        """Return ``(energy, forces_nc, virial_cc)`` from positions in one fused pass.

        Pair vectors are ``d = x[j] - x[i] + s @ cell`` (Å); pairs at ``r >= cutoff`` count
        for nothing. Energy in eV, forces in eV/Å, and LAMMPS's virial
        ``W_ab = -sum_p (dE/dr_p) d_a d_b / r_p`` (eV), as :meth:`Calculator.compute
        <atomistic.calculator.Calculator.compute>` assembles them from :meth:`first_order`.
        """
        ...

    def lammps_commands(self) -> list[str]:
        """Return the LAMMPS ``pair_style``/``pair_coeff`` (``pair_modify``) lines of the potential.

        They give the same interaction, for atom types 1, 2, ... = :attr:`elements` (see
        :mod:`atomistic.lammps`).
        """
        ...
