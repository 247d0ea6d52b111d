"""Shapes of QC regions: the domain, the atomistic region and the crack, defined once.

:class:`Disc` and :class:`Box` serve as the outer domain (:func:`coupling.qc.system.build_system`,
:func:`coupling.qc.mesh_build.build_mesh`) and as the atomistic region; :class:`Crack` is the
straight crack the lattice, the mesh slit and the bond cut all follow. Coordinates in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "Crack", "Disc"]


def _point(X: np.ndarray, x: float, y: float) -> np.ndarray:
    """The point ``(x, y)`` cut to the dimension of the points ``X`` (n, d), d = 1 or 2."""
    return np.array([x, y])[: X.shape[1]]


class _Region:
    """A region given by its signed distance to the boundary (``distance_inside``)."""

    def distance_inside(self, X: np.ndarray) -> np.ndarray:
        """Distance from each point of ``X`` (n, d) to the boundary, positive inside."""
        return self._distance(np.asarray(X, float))

    def _distance(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def contains(self, X: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Whether each point of ``X`` (n, d) lies inside, within ``tol`` (Å)."""
        return self.distance_inside(X) >= -tol


@dataclass(frozen=True)
class Disc(_Region):
    """A disc of centre (cx, cy) and radius ``radius`` (Å).

    In 1D it is the interval ``|x - cx| <= radius``.
    """

    cx: float
    cy: float
    radius: float

    def _distance(self, X: np.ndarray) -> np.ndarray:
        return self.radius - np.linalg.norm(X - _point(X, self.cx, self.cy), axis=1)


@dataclass(frozen=True)
class Box(_Region):
    """An axis-aligned box [xmin, xmax] × [ymin, ymax] (Å)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def _distance(self, X: np.ndarray) -> np.ndarray:
        # to the nearest side
        lo = _point(X, self.xmin, self.ymin)
        hi = _point(X, self.xmax, self.ymax)
        return np.minimum(X - lo, hi - X).min(axis=1)


@dataclass(frozen=True)
class Crack:
    """A straight crack along -x from ``tip_x`` on the line ``y = y_plane`` (between two rows).

    With ``cut`` the bonds across the plane behind the tip are removed from the atomistic
    interactions (:func:`atomistic.fracture.crack_cut`): a pre-cut crack whose faces cannot
    re-bond. Without it the crack exists only through the mesh slit and the displacements
    (the crack can heal), as in the lattice-trapping demo.
    """

    tip_x: float = 0.0
    y_plane: float = 0.0
    cut: bool = False
