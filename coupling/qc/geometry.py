"""Shapes of QC regions: the domain, the atomistic region and the crack, defined once.

:class:`Disc` and :class:`Box` serve as the outer domain (:func:`coupling.qc.system.build_system`,
:func:`coupling.qc.mesh_build.build_mesh`) and as the atomistic region; :class:`Crack` is the
straight crack the lattice, the mesh slit and the bond cut all follow. Coordinates in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "Crack", "Disc"]


class _Region:
    """A region given by its signed distance to the boundary (``distance_inside``)."""

    def distance_inside(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def contains(self, X: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Whether each point of ``X`` (n, d) lies inside, within ``tol`` (Å)."""
        return self.distance_inside(X) >= -tol


@dataclass(frozen=True)
class Disc(_Region):
    """A disc of centre (cx, cy) and radius ``radius`` (Å); in 1D the interval
    ``|x - cx| <= radius``."""

    cx: float
    cy: float
    radius: float

    def distance_inside(self, X: np.ndarray) -> np.ndarray:
        """Distance from each point to the boundary, positive inside."""
        X = np.asarray(X, float)
        c = np.array([self.cx, self.cy])[: X.shape[1]]
        return self.radius - np.linalg.norm(X - c, axis=1)


@dataclass(frozen=True)
class Box(_Region):
    """An axis-aligned box [xmin, xmax] × [ymin, ymax] (Å)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def distance_inside(self, X: np.ndarray) -> np.ndarray:
        """Distance from each point to the nearest side, positive inside."""
        X = np.asarray(X, float)
        lo = np.array([self.xmin, self.ymin])[: X.shape[1]]
        hi = np.array([self.xmax, self.ymax])[: X.shape[1]]
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
