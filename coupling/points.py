"""Single material points with explicit state, so that history can travel with the point.

The batched :class:`fe2qc.material.MaterialPoint` keeps its history inside the object, indexed
by the position of a point in the batch. A dispatcher that sends points to other MPI ranks
needs the opposite: a *stateless* evaluator whose history is an argument and a result,

    ``evaluate_point(F_dd, state) -> PointResult(P_dd, A_dddd, W, state, work)``,

so that the state of point q can be shipped with its deformation gradient to whichever rank
evaluates it and come back with the result. :class:`PointModel` is that protocol; the adapters
wrap the atomistic RVE (state: its relaxed internal displacements, the warm start of the next
relaxation), the Cauchy-Born lattice and any analytic batched law (both stateless).

``work`` is a measure of how much effort the point took (relaxation iterations for an RVE, 0 for
a closed-form law), so that a driver can report which points needed the most RVE work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from fe2qc.errors import InputError
from fe2qc.material import check_deformation_gradients
from fe2qc.tensors import embed_F

__all__ = ["PointResult", "PointModel", "RVEPoint", "CauchyBornPoint", "AnalyticPoint"]

_EMPTY = np.zeros(0)


@dataclass
class PointResult:
    """What one material-point evaluation returns.

    ``A`` is zeros when the evaluation was asked for no tangent.
    """

    P: np.ndarray  # (d, d) first Piola-Kirchhoff stress, eV/Å³
    A: np.ndarray  # (d, d, d, d) dP/dF, eV/Å³
    W: float  # energy per reference volume, eV/Å³
    state: np.ndarray  # the trial state after this evaluation (1D, may be empty)
    work: float = 0.0  # e.g. relaxation iterations


@runtime_checkable
class PointModel(Protocol):
    """One material point whose history is passed in and returned, never stored."""

    dim: int

    def initial_state(self) -> np.ndarray:
        """The state of a point that has not been loaded yet (1D array, may be empty)."""
        ...

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """P, A, W at the (dim, dim) deformation gradient ``F_dd`` starting from ``state``."""
        ...


def _check_F(F_dd: np.ndarray, dim: int) -> np.ndarray:
    F = np.asarray(F_dd, dtype=float)
    if F.shape != (dim, dim):
        raise InputError(f"a point's deformation gradient must have shape ({dim}, {dim}), "
                         f"got {F.shape}")
    return check_deformation_gradients(F, dim)[0]


class RVEPoint:
    """An :class:`atomistic.rve.AtomisticRVE` as a :class:`PointModel`.

    The state is the relaxed internal displacement field ``u_nc`` flattened (3 n_atoms values);
    every evaluation warm-starts the relaxation from it. In 2D (plane strain) F is embedded as
    ``[[F, 0], [0, 1]]`` and P, A are the in-plane components. ``work`` is the number of Newton
    iterations of the relaxation.
    """

    def __init__(self, rve, dim: int | None = None) -> None:
        dim = rve.dim if dim is None else int(dim)
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        self.rve = rve
        self.dim = dim

    def initial_state(self) -> np.ndarray:
        return np.zeros(3 * self.rve.n_atoms)

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        F = embed_F(_check_F(F_dd, self.dim))
        state = np.asarray(state, dtype=float)
        u0 = None
        if state.size:
            if state.size != 3 * self.rve.n_atoms:
                raise InputError(f"RVE state has {state.size} values, expected "
                                 f"{3 * self.rve.n_atoms} (3 per atom)")
            u0 = state.reshape(-1, 3)
        s = self.rve.evaluate_one(F, u0, tangent=tangent)
        d = self.dim
        return PointResult(np.array(s.P[:d, :d]), np.array(s.A[:d, :d, :d, :d]), float(s.W),
                           np.asarray(s.u_nc, dtype=float).reshape(-1), float(s.iterations))

    def __repr__(self) -> str:
        return f"RVEPoint({self.rve.n_atoms} atoms, dim={self.dim})"


class CauchyBornPoint:
    """An :class:`atomistic.cauchy_born.CauchyBorn` lattice as a stateless :class:`PointModel`."""

    def __init__(self, cb, dim: int | None = None) -> None:
        dim = cb.dim if dim is None else int(dim)
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        self.cb = cb
        self.dim = dim

    def initial_state(self) -> np.ndarray:
        return _EMPTY.copy()

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        F = embed_F(_check_F(F_dd, self.dim))
        P, A, W = self.cb.evaluate_one(F, tangent=tangent)
        d = self.dim
        A = np.zeros((d,) * 4) if A is None else np.array(A[:d, :d, :d, :d])
        return PointResult(np.array(P[:d, :d]), A, float(W), _EMPTY.copy(), 0.0)


class AnalyticPoint:
    """Any batched, history-free :class:`fe2qc.material.MaterialPoint` (e.g.
    :class:`fe2.materials.NeoHookean`) evaluated on a batch of one."""

    def __init__(self, material) -> None:
        self.material = material
        self.dim = int(material.dim)

    def initial_state(self) -> np.ndarray:
        return _EMPTY.copy()

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        F = _check_F(F_dd, self.dim)[None]
        d = self.dim
        if tangent:
            P, A = self.material.evaluate(F)
            P, A = np.array(P[0]), np.array(A[0])
        else:
            P, A = None, np.zeros((d,) * 4)
        W = float(self.material.energy_density(F)[0]) if hasattr(
            self.material, "energy_density") else float("nan")
        if P is None:
            P = np.array(self.material.evaluate(F)[0][0])
        return PointResult(P, A, W, _EMPTY.copy(), 0.0)

    def __repr__(self) -> str:
        return f"AnalyticPoint({self.material!r})"
