"""Cauchy-Born site energy of a Bravais lattice, batched over many deformation gradients.

For every F in a batch, one lattice site sees its neighbours at ``F R`` for the lattice
vectors ``R``; its site energy ``e(F) = U(sum_R f(|F R|)) + 1/2 sum_R phi(|F R|)`` (pair
potentials: no embedding term) is the energy per atom of the homogeneously deformed
crystal. Each batch is evaluated as one "star" configuration per F through the potential's
own kernels (:meth:`first_order`, :meth:`second_order`) with weight one on the centre and
zero on the neighbours, so the continuum uses exactly the atomistic engine's energy: a
homogeneous deformation gives the same forces in both, to round-off (the QC patch test).

Returns per F: ``e`` (eV/site), ``P = de/dF`` (eV), ``A = d2e/dF dF`` (eV).
"""

from __future__ import annotations

import numpy as np

from atomistic.lattice import get_lattice
from atomistic.potentials.base import Potential
from fe2qc.checks import MAX_COORDINATE, require_finite, require_positive
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["BatchCauchyBorn"]


class BatchCauchyBorn:
    """Cauchy-Born site energy and its F-derivatives for a batch of 3×3 deformation gradients.

    Args:
        potential: the interatomic potential.
        primitive_cc: primitive lattice vectors as rows (Å); ``lattice``/``a0`` build them.
        type_index: species of the lattice.
    """

    def __init__(self, potential: Potential, primitive_cc: np.ndarray, *, type_index: int = 0):
        self.potential = potential
        self.primitive_cc = require_finite("primitive_cc", primitive_cc, bound=MAX_COORDINATE,
                                           unit=" Å")
        if self.primitive_cc.shape != (3, 3) or abs(np.linalg.det(self.primitive_cc)) < 1e-12:
            raise InputError("primitive_cc must be three independent lattice vectors as rows")
        self.type_index = int(type_index)
        self._shell_radius = 0.0
        self._R = np.zeros((0, 3))

    @classmethod
    def from_lattice(cls, potential: Potential, lattice: str, a0: float, **kw) -> BatchCauchyBorn:
        """For a named lattice (``fcc``, ``bcc``, ``sc``, ``triangular``) or a :class:`Lattice`."""
        lat = get_lattice(lattice)
        if len(lat.basis_nc) != 1 and lat.name not in ("fcc", "bcc", "triangular"):
            raise InputError(f"Cauchy-Born needs a Bravais lattice, {lat.name!r} is not")
        return cls(potential, lat.primitive_cc * require_positive("a0", a0, unit="Å"), **kw)

    def lattice_vectors(self, radius: float) -> np.ndarray:
        """All non-zero lattice vectors shorter than ``radius`` (Å), cached."""
        if radius > self._shell_radius:
            P = self.primitive_cc
            # bound on the integer coefficients: |k_i| <= radius * |row i of P^-1|
            inv = np.linalg.inv(P)
            kmax = np.ceil(radius * np.linalg.norm(inv, axis=0)).astype(int)
            if np.prod(2 * kmax + 1) > 5e6:
                raise InputError(f"Cauchy-Born shell of radius {radius:.3g} Å is too large for "
                                 "this lattice; is the deformation extreme?")
            ax = [np.arange(-k, k + 1) for k in kmax]
            grid = np.stack(np.meshgrid(*ax, indexing="ij"), -1).reshape(-1, 3)
            R = grid @ P
            r = np.linalg.norm(R, axis=1)
            keep = (r > 1e-9) & (r < radius)
            self._R = R[keep]
            self._shell_radius = radius
        r = np.linalg.norm(self._R, axis=1)
        return self._R[r < radius]

    def _shell(self, F_t33: np.ndarray) -> np.ndarray:
        try:
            require_finite("F_t33", F_t33)
        except InputError as exc:
            # F comes from the solver's displacements: a diverged step, cut back by the caller
            raise CalculationFailed(f"a Cauchy-Born element is collapsed or inverted: {exc}; "
                                    "the step diverged") from None
        s = np.linalg.svd(F_t33, compute_uv=False)
        smin = float(s.min())
        det = np.linalg.det(F_t33)
        if not np.isfinite(smin) or smin <= 0.25 or np.any(det <= 0):
            # a crystal compressed 4x along some direction has overlapping atoms: no
            # physical state, and the neighbour shell would grow without bound
            raise CalculationFailed(
                f"a Cauchy-Born element is collapsed or inverted (smallest stretch "
                f"{smin:.3g}, min det F {float(det.min()):.3g}); the step was too large or "
                "the mesh has slivers")
        radius = self.potential.cutoff / smin * (1 + 1e-9) + 1e-9
        # cache coarsely so the list does not change with every small deformation
        radius = max(radius, self._shell_radius if self._shell_radius < 1.5 * radius else 0.0)
        return self.lattice_vectors(radius)

    def evaluate(self, F_t33: np.ndarray, *, order: int = 2):
        """``(e_t, P_t33, A_t3333)`` (``A`` is None for ``order=1``) for F of shape (t, 3, 3)."""
        F = np.asarray(F_t33, float).reshape(-1, 3, 3)
        nt = len(F)
        R = self._shell(F)
        nR = len(R)
        d_tpc = np.einsum("tij,pj->tpi", F, R)
        r_tp = np.linalg.norm(d_tpc, axis=2)
        i_p = np.repeat(np.arange(nt), nR)
        j_p = nt + np.arange(nt * nR)
        types = np.full(nt + nt * nR, self.type_index, np.int64)
        w = np.zeros(nt + nt * nR)
        w[:nt] = 1.0
        r_p = np.ascontiguousarray(r_tp.ravel())
        e_n, dedr_p = self.potential.first_order(r_p, i_p, j_p, types, w)
        e_t = e_n[:nt]
        n_tpc = d_tpc / r_tp[..., None]
        dedr_tp = dedr_p.reshape(nt, nR)
        # batched BLAS products throughout (numpy's unoptimised einsum with three operands
        # was 100x slower on large meshes)
        P = np.matmul((dedr_tp[:, :, None] * n_tpc).transpose(0, 2, 1), R)
        if order < 2:
            return e_t, P, None
        so = self.potential.second_order(r_p, i_p, j_p, types, w)
        d2_tp = so.d2edr2_p.reshape(nt, nR)
        g_tp = dedr_tp / r_tp
        # d r / dF_iJ = n_i R_J; d2 r / dF_iJ dF_kL = (delta_ik - n_i n_k) R_J R_L / r
        B = (n_tpc[:, :, :, None] * R[None, :, None, :]).reshape(nt, nR, 9)
        A = np.matmul(((d2_tp - g_tp)[:, :, None] * B).transpose(0, 2, 1), B)
        A = A.reshape(nt, 3, 3, 3, 3)
        # one product per F (not one (nt, nR) @ (nR, 9) product): BLAS blocks a matrix product
        # by its row count, so the round-off of a point would depend on the size of its batch
        RR = (R[:, :, None] * R[:, None, :]).reshape(nR, 9)
        S = np.matmul(g_tp[:, None, :], RR).reshape(nt, 3, 3)
        for i in range(3):
            A[:, i, :, i, :] += S
        fpp = so.fpp_n[:nt]
        if np.any(fpp != 0.0):
            drho_tp = so.drho_i_p.reshape(nt, nR)
            v = np.matmul(drho_tp[:, None, :], B).reshape(nt, 9)
            A += (fpp[:, None, None] * v[:, :, None] * v[:, None, :]).reshape(nt, 3, 3, 3, 3)
        return e_t, P, A
