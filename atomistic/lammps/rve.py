"""The atomistic RVE relaxed by LAMMPS, on one rank or on a team of ranks.

:class:`LammpsRVE` is a :class:`fe2qc.material.PointModel` with the cell, potential and
tolerance of an :class:`atomistic.rve.AtomisticRVE`, whose internal relaxation runs in LAMMPS
on a communicator: ``COMM_SELF``, or the team of worker ranks that evaluates one RVE together
(``[mpi] rve_ranks``, :func:`coupling.farm.split_world`). Every rank of the communicator calls
:meth:`LammpsRVE.evaluate_point` with the same arguments (the farm broadcasts the task to the
team) and gets the same result.

One evaluation at F from the state u0 (internal displacements, 3 per atom):

* the cell ``L F^T`` with atoms at ``X F^T + u0`` in LAMMPS's restricted frame
  (:func:`atomistic.lammps.frames.lammps_create`), the potential's own ``pair_style`` /
  ``pair_coeff`` lines, then ``minimize 0 ftol`` with ``min_style cg`` at fixed box, where
  ``ftol`` is the RVE's ``fmax`` (LAMMPS stops on the 2-norm of the whole force vector, which
  bounds every atom's force); a relaxation that ends with a larger force is a
  :class:`CalculationFailed`;
* P = (V / V0) σ F^-T from LAMMPS's virial pressure (σ = -p, rotated back from its frame),
  W = (E - E_ref) / V0 with E_ref LAMMPS's energy of the reference cell;
* the tangent A = ∂P/∂F of the *relaxed* cell by central differences (step ``fd_step``) of
  P, each side relaxed from the relaxed state: 2 d² further relaxations (d = 2 in plane
  strain), so a LAMMPS RVE with a tangent costs about 9 relaxations in 2D. Its accuracy is
  that of the differences, about 1e-6 relative at the default step with fmax = 1e-9 eV/Å
  (the native RVE's tangent is analytic); Newton keeps its iteration counts with it.

The new state is the relaxed internal displacement, wrapped to the image nearest the affine
position. LAMMPS's minimizer leaves the centre of mass where it was, the native RVE pins atom
0: the states differ by a rigid translation, P, A and W do not.
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import PointResult, check_point_deformation_gradient
from fe2qc.tensors import embed_F
from fe2qc.units import NKTV2P

__all__ = ["LammpsRVE"]

_GLOBAL, _VECTOR = 0, 1


class LammpsRVE:
    """An :class:`atomistic.rve.AtomisticRVE`'s cell relaxed by LAMMPS on ``comm``.

    Args:
        rve: the cell, potential (with ``lammps_commands()``), ``fmax`` and ``dim``.
        comm: the ranks LAMMPS runs on (default ``COMM_SELF``); all of them call every method.
        fd_step: the step in F of the tangent's central differences.
        max_iterations: the minimizer's iteration limit per relaxation.

    Raises:
        InputError: a potential LAMMPS cannot run (no ``lammps_commands``).
    """

    def __init__(self, rve, comm=None, *, fd_step: float = 1e-5, max_iterations: int = 20000):
        from fe2qc.mpi import lammps, mpi

        commands = getattr(rve.potential, "lammps_commands", None)
        if commands is None:
            raise InputError(f"the potential {rve.potential!r} has no LAMMPS form "
                             "(lammps_commands)")
        self.rve = rve
        self.dim = rve.dim
        self.comm = mpi().COMM_SELF if comm is None else comm
        self.commands = list(commands())
        self.masses = [float(m) for m in rve.potential.masses]
        self.fd_step = float(fd_step)
        self.max_iterations = int(max_iterations)
        self._lammps = lammps()
        #: LAMMPS's energy of the reference cell (eV); W is relative to it
        self.e_ref = self._relax(np.eye(3), None, relax=False)[1]

    def initial_state(self) -> np.ndarray:
        """Zero internal displacements (3 per atom)."""
        return self.rve.initial_state()

    def _relax(self, F: np.ndarray, u0: np.ndarray | None, *, relax: bool = True):
        """``(P 3×3, E, u (n, 3), minimizer iterations)`` at F from u0, relaxed in LAMMPS."""
        from atomistic.lammps.frames import lammps_create

        rve = self.rve
        conf = rve.deformed(F, u0)
        n = len(conf)
        lmp = self._lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"],
                                  comm=self.comm)
        try:
            frame = lammps_create(lmp, conf, self.masses, padding=0.0)
            cmd = lmp.command
            for line in self.commands:
                cmd(line)
            cmd("neighbor 1.0 bin")
            cmd("neigh_modify every 1 delay 0 check yes")
            cmd("compute vir all pressure NULL virial")
            cmd("thermo_style custom step pe fnorm fmax")
            cmd("thermo_modify norm no")
            iterations = 0
            if relax and n > 1:
                cmd("min_style cg")
                cmd("min_modify line quadratic")
                cmd(f"minimize 0.0 {rve.fmax!r} {self.max_iterations} "
                    f"{10 * self.max_iterations}")
                iterations = int(lmp.get_thermo("step"))
            cmd("run 0 post no")
            energy = float(lmp.get_thermo("pe"))
            fmax = float(lmp.get_thermo("fmax"))
            x_L = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
            p6 = np.array(lmp.numpy.extract_compute("vir", _GLOBAL, _VECTOR), dtype=float)
        finally:
            lmp.close()
        if relax and n > 1 and not fmax <= rve.fmax * (1 + 1e-9):
            raise CalculationFailed(f"the LAMMPS relaxation of the RVE stopped at a largest "
                                    f"force of {fmax:.3g} eV/Å > fmax = {rve.fmax:g} eV/Å "
                                    f"(after {iterations} iterations)")
        Q = frame.Q
        pxx, pyy, pzz, pxy, pxz, pyz = p6
        p_L = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]]) / NKTV2P
        sigma = -(Q @ p_L @ Q.T)
        P = (conf.volume / rve.V0) * sigma @ np.linalg.inv(F).T
        # positions back in the input frame, displacements to the nearest image
        x = x_L @ Q.T + frame.origin
        affine = rve.reference.positions_nc @ F.T
        cell = conf.cell_cc
        u = x - affine
        s = u @ np.linalg.inv(cell)
        u = u - np.round(s) @ cell
        return P, energy, u, iterations

    def evaluate_point(self, F_dd: np.ndarray, state: np.ndarray, *,
                       tangent: bool = True) -> PointResult:
        """Relax at the (dim, dim) F from ``state``; P, A (by differences), W, the new state."""
        F = embed_F(check_point_deformation_gradient(F_dd, self.dim))
        state = np.asarray(state, dtype=float)
        n = self.rve.n_atoms
        u0 = None
        if state.size:
            if state.size != 3 * n:
                raise InputError(f"RVE state has {state.size} values, expected {3 * n} "
                                 "(3 per atom)")
            u0 = state.reshape(-1, 3)
        P, energy, u, its = self._relax(F, u0)
        W = (energy - self.e_ref) / self.rve.V0
        d = self.dim
        A = np.zeros((d, d, d, d))
        if tangent:
            h = self.fd_step
            for k in range(d):
                for L in range(d):
                    dF = np.zeros((3, 3))
                    dF[k, L] = h
                    Pp = self._relax(F + dF, u)[0]
                    Pm = self._relax(F - dF, u)[0]
                    A[:, :, k, L] = ((Pp - Pm) / (2 * h))[:d, :d]
        return PointResult(np.array(P[:d, :d]), A, float(W), u.reshape(-1), float(its))

    def __repr__(self) -> str:
        """Return the cell size and the ranks."""
        return f"LammpsRVE({self.rve.n_atoms} atoms, dim={self.dim}, {self.comm.size} ranks)"
