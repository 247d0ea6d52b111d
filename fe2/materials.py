"""Analytic hyperelastic material points, batched over quadrature points.

Both laws implement :class:`fe2qc.material.MaterialPoint`: ``evaluate(F_qij)``
returns the first Piola-Kirchhoff stress ``P_qij = dW/dF`` and the consistent
tangent ``A_qijkl = dP_ij/dF_kl`` for a whole batch at once (no Python loop
over points). They hold no history, so :meth:`commit` and :meth:`revert` do
nothing, but they are called by the solver exactly as for an atomistic RVE.
They also implement :class:`fe2qc.material.PointModel` with an empty state (one
point is a batch of one, :class:`fe2qc.material.StatelessPointMixin`), so a dispatcher
takes them too.

Kernels are plain functions of arrays (``neo_hookean_stress_tangent`` ...);
the classes hold the Lamé parameters.
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import InputError
from fe2qc.material import StatelessPointMixin, check_deformation_gradients

__all__ = [
    "NeoHookean",
    "StVenantKirchhoff",
    "neo_hookean_energy",
    "neo_hookean_stress_tangent",
    "st_venant_kirchhoff_energy",
    "st_venant_kirchhoff_stress_tangent",
    "lame_from_young_poisson",
]


def lame_from_young_poisson(E: float, nu: float) -> tuple[float, float]:
    """Return ``(mu, lmbda)`` from Young's modulus and Poisson's ratio (3D / plane strain)."""
    if E <= 0 or not -1.0 < nu < 0.5:
        raise InputError(f"need E > 0 and -1 < nu < 0.5, got E={E}, nu={nu}")
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


# ---------------------------------------------------------------------------------------------
# Kernels (arrays in, arrays out)


def neo_hookean_energy(F_qij: np.ndarray, mu: float, lmbda: float) -> np.ndarray:
    """W = mu/2 (tr(F^T F) - d - 2 ln J) + lmbda/2 (ln J)^2, per point."""
    d = F_qij.shape[-1]
    lnJ_q = np.log(np.linalg.det(F_qij))
    I1_q = np.einsum("qij,qij->q", F_qij, F_qij)
    return 0.5 * mu * (I1_q - d - 2.0 * lnJ_q) + 0.5 * lmbda * lnJ_q**2


def neo_hookean_stress_tangent(
    F_qij: np.ndarray, mu: float, lmbda: float
) -> tuple[np.ndarray, np.ndarray]:
    """P = mu (F - F^-T) + lmbda ln J F^-T and A = dP/dF for the compressible neo-Hookean law.

    With G = F^-1: A_ijkl = mu d_ik d_jl + (mu - lmbda ln J) G_li G_jk + lmbda G_ji G_lk.
    """
    d = F_qij.shape[-1]
    G_qij = np.linalg.inv(F_qij)  # G = F^-1
    lnJ_q = np.log(np.linalg.det(F_qij))
    GT_qij = np.swapaxes(G_qij, 1, 2)  # F^-T
    P_qij = mu * (F_qij - GT_qij) + (lmbda * lnJ_q)[:, None, None] * GT_qij
    eye = np.eye(d)
    A_qijkl = np.broadcast_to(mu * np.einsum("ik,jl->ijkl", eye, eye), (len(F_qij),) + (d,) * 4)
    c_q = (mu - lmbda * lnJ_q)[:, None, None, None, None]
    A_qijkl = (
        A_qijkl
        + c_q * np.einsum("qli,qjk->qijkl", G_qij, G_qij)
        + lmbda * np.einsum("qji,qlk->qijkl", G_qij, G_qij)
    )
    return P_qij, np.ascontiguousarray(A_qijkl)


def st_venant_kirchhoff_energy(F_qij: np.ndarray, mu: float, lmbda: float) -> np.ndarray:
    """W = lmbda/2 tr(E)^2 + mu E:E with E = (F^T F - I)/2, per point."""
    d = F_qij.shape[-1]
    E_qij = 0.5 * (np.einsum("qki,qkj->qij", F_qij, F_qij) - np.eye(d))
    trE_q = np.einsum("qii->q", E_qij)
    return 0.5 * lmbda * trE_q**2 + mu * np.einsum("qij,qij->q", E_qij, E_qij)


def st_venant_kirchhoff_stress_tangent(
    F_qij: np.ndarray, mu: float, lmbda: float
) -> tuple[np.ndarray, np.ndarray]:
    """P = F S with S = lmbda tr(E) I + 2 mu E, and A = dP/dF.

    A_ijkl = d_ik S_lj + lmbda F_ij F_kl + mu F_il F_kj + mu (F F^T)_ik d_jl.
    """
    d = F_qij.shape[-1]
    eye = np.eye(d)
    E_qij = 0.5 * (np.einsum("qki,qkj->qij", F_qij, F_qij) - eye)
    trE_q = np.einsum("qii->q", E_qij)
    S_qij = lmbda * trE_q[:, None, None] * eye + 2.0 * mu * E_qij
    P_qij = np.einsum("qik,qkj->qij", F_qij, S_qij)
    FFt_qij = np.einsum("qim,qkm->qik", F_qij, F_qij)
    A_qijkl = (
        np.einsum("ik,qlj->qijkl", eye, S_qij)
        + lmbda * np.einsum("qij,qkl->qijkl", F_qij, F_qij)
        + mu * np.einsum("qil,qkj->qijkl", F_qij, F_qij)
        + mu * np.einsum("qik,jl->qijkl", FFt_qij, eye)
    )
    return P_qij, A_qijkl


# ---------------------------------------------------------------------------------------------
# Material points


class _AnalyticMaterial(StatelessPointMixin):
    """Common parts: parameter checks, the (empty) trial/commit state, the point protocol.

    Subclasses set the kernels ``_energy`` and ``_stress_tangent``.
    """

    def __init__(self, mu: float, lmbda: float, dim: int):
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 (plane strain) or 3, got {dim}")
        if not mu > 0 or not dim * lmbda + 2 * mu > 0:
            raise InputError(
                f"need mu > 0 and a positive bulk modulus (dim*lmbda + 2 mu > 0), "
                f"got mu={mu}, lmbda={lmbda}"
            )
        self.mu = float(mu)
        self.lmbda = float(lmbda)
        self.dim = int(dim)

    @classmethod
    def from_young_poisson(cls, E: float, nu: float, dim: int):
        """Build from Young's modulus and Poisson's ratio (plane strain in 2D)."""
        mu, lmbda = lame_from_young_poisson(E, nu)
        return cls(mu, lmbda, dim)

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P_qij, A_qijkl)``; raises InputError for det F <= 0 or a wrong shape."""
        F_qij = check_deformation_gradients(F_qij, self.dim)
        return type(self)._stress_tangent(F_qij, self.mu, self.lmbda)

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return W per reference volume at each point."""
        F_qij = check_deformation_gradients(F_qij, self.dim)
        return type(self)._energy(F_qij, self.mu, self.lmbda)

    def commit(self) -> None:
        """No history: nothing to commit."""

    def revert(self) -> None:
        """No history: nothing to discard."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mu={self.mu:g}, lmbda={self.lmbda:g}, dim={self.dim})"


class NeoHookean(_AnalyticMaterial):
    """Compressible neo-Hookean law, W = mu/2 (I1 - d - 2 ln J) + lmbda/2 (ln J)^2.

    The standard FEniCS hyperelasticity energy with I1 = tr(F^T F); in 2D it is
    the plane-strain law (F_33 = 1).
    """

    _energy = staticmethod(neo_hookean_energy)
    _stress_tangent = staticmethod(neo_hookean_stress_tangent)


class StVenantKirchhoff(_AnalyticMaterial):
    """Saint Venant-Kirchhoff law, W = lmbda/2 tr(E)^2 + mu E:E (plane strain in 2D).

    The law itself is defined for any F; like every material point here it
    refuses det F <= 0 (an inverted element), so the solver cuts the step back.
    """

    _energy = staticmethod(st_venant_kirchhoff_energy)
    _stress_tangent = staticmethod(st_venant_kirchhoff_stress_tangent)
