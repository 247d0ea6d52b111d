"""Interatomic potentials: pair (LJ, smoothly truncated LJ, Morse) and EAM (funcfl, setfl).

Every potential writes its energy as

    E = sum_a U_a(rho_a) + sum_p phi_p(r_p),   rho_a = sum_{p touching a} g_{p->a}(r_p),

(pair potentials have U = 0) and exposes it through two kernels over a half pair
list (see :class:`atomistic.potentials.base.Potential`). All derived quantities
(forces, virial, Hessian, Born tensor, Cauchy-Born stress and tangent) are
assembled from those kernels once, in :mod:`atomistic.calculator`.
"""

from atomistic.potentials.base import Potential, SecondOrder

__all__ = ["Potential", "SecondOrder", "load_potential"]


def load_potential(spec: str, **kwargs):
    """Create a potential from a file name (``*.eam``, ``*.eam.alloy``) or a pair-style name."""
    from atomistic.potentials.factory import load_potential as _load

    return _load(spec, **kwargs)
