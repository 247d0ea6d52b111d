"""The material-point protocol shared by analytic laws, Cauchy-Born and atomistic RVEs.

A material point is batched over quadrature points (suffix ``_q``). At every
Newton iteration the macro solver calls :meth:`MaterialPoint.evaluate` with trial
deformation gradients; only once the load step has converged does it call
:meth:`MaterialPoint.commit`, which makes the trial state (history, warm-start
coordinates of atomistic RVEs) the new reference for the next step. A failed
step calls :meth:`MaterialPoint.revert`, so nothing of the rejected trial leaks
into the next attempt. (The same split as ``dolfinx_materials``' update/advance.)

Shapes: ``F_qij`` is (nq, d, d); ``P_qij`` the first Piola-Kirchhoff stress in
eV/Å³ (nq, d, d); ``A_qijkl = dP_ij/dF_kl`` (nq, d, d, d, d).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["MaterialPoint", "check_deformation_gradients"]


@runtime_checkable
class MaterialPoint(Protocol):
    """Batched hyperelastic material point with trial/commit semantics."""

    dim: int

    def evaluate(self, F_qij: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P_qij, A_qijkl)`` at trial deformation gradients ``F_qij``."""
        ...

    def energy_density(self, F_qij: np.ndarray) -> np.ndarray:
        """Return the strain energy per reference volume W (eV/Å³) at each point."""
        ...

    def commit(self) -> None:
        """Accept the last evaluated trial state as converged."""
        ...

    def revert(self) -> None:
        """Discard the trial state (the load step is cut back)."""
        ...


def check_deformation_gradients(F_qij: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate a batch of deformation gradients and return it as a float array.

    Raises:
        fe2qc.errors.InputError: wrong shape, NaN/inf entries or entries beyond
            ``fe2qc.checks.MAX_F_ENTRY`` (the message names the first offending entry,
            ``F_qij[q, i, j]``), or det F <= 0 (naming the point).
    """
    from fe2qc.errors import InputError

    F = np.asarray(F_qij, dtype=float)
    if F.ndim == 2:
        F = F[None]
    if F.ndim != 3 or F.shape[1] != F.shape[2] or (dim is not None and F.shape[1] != dim):
        want = f"(nq, {dim}, {dim})" if dim else "(nq, d, d)"
        raise InputError(f"deformation gradients must have shape {want}, got {F.shape}")
    from fe2qc.checks import MAX_F_ENTRY, require_finite

    if np.ndim(F_qij) == 2:  # one F: name its entries F[i, J]
        require_finite("F", F[0], bound=MAX_F_ENTRY)
    require_finite("F_qij", F, bound=MAX_F_ENTRY,
                   hint="(deformation gradients: the first index is the point)")
    J = np.linalg.det(F)
    if (J <= 0).any():
        q = int(np.flatnonzero(J <= 0)[0])
        raise InputError(
            f"det F = {J[q]:.6g} <= 0 at point {q}: the deformation inverts or flattens the "
            "material; reduce the load increment (the solver cuts the step back) or check the "
            "boundary conditions"
        )
    return F
