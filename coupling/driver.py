"""The job behind ``fe2qc run problem.toml``: build mesh, material and loads from a config, run.

:class:`Simulation` turns a validated :class:`~coupling.config.Config` into a
:class:`fe2.solver.Problem` on a (possibly split) communicator and runs the load steps,
writing after every converged step

* ``<dir>/fields_displacement.bp``, ``<dir>/fields_fields.bp`` (VTX: u, cell-averaged P,
  von Mises, det F) and ``<dir>/fields_points.bp`` (per cell: ``rve_work`` = RVE relaxation
  iterations summed over the cell's Gauss points and the step's Newton iterations, and
  ``rve_seconds`` = RVE seconds of the cell in the step (with the dispatcher), and
  ``ellipticity_loss`` = number of Gauss points whose tangent is not strongly elliptic);
* ``<dir>/steps.jsonl``: one JSON object per converged increment (load factor, Newton residual
  history, seconds in material / assembly / linear solve, cut-backs);
* ``<dir>/checkpoint_rank<r>.npz``: the displacement dofs (owned + ghost, with their
  coordinates), the material's committed state and the load factor, replaced atomically, so a
  killed run keeps its last converged step. There is no restart option yet: the files hold what
  a restart needs, but nothing reads them back.

Loading of the ``cracked_plate`` quarter model: u_x = 0 on the left edge (symmetry), u_y = 0 on
the ligament ahead of the tip (symmetry), and on the top edge a nominal traction
``(0, sigma)`` (modes ``K`` and ``traction``) or a displacement ``u_y`` (``displacement``). In
mode ``K`` the remote stress is chosen so that the handbook K_I equals ``value`` (MPa √m).

The material is evaluated by the dispatcher of :mod:`coupling.dispatch` (RVE workers) when that
module is importable, else directly by the batched material point on every rank (``workers``
must then be 0). All the glue for that choice is in :func:`make_material`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

from coupling.config import Config, resolve_potential
from fe2qc.errors import InputError
from fe2qc.units import EV_PER_A3_IN_GPA

__all__ = ["Simulation", "run_problem", "make_material", "make_point_model",
           "acoustic_min_eigenvalue", "MPA_SQRT_M_IN_EV_A3_SQRT_A", "cauchy_stress"]

#: 1 MPa √m in eV/Å³ √Å (1e6 Pa · 1e5 √Å = 100 GPa √Å)
MPA_SQRT_M_IN_EV_A3_SQRT_A = 100.0 / EV_PER_A3_IN_GPA


def acoustic_min_eigenvalue(A_qijkl: np.ndarray, n_angles: int = 180) -> np.ndarray:
    """min over directions N and over eigenvalues of the acoustic tensor Q_ik = A_iJkL N_J N_L.

    Strong ellipticity holds at a point iff this is positive. In 2D N = (cos t, sin t) is scanned
    over ``n_angles`` angles in [0, pi); in 3D over a Fibonacci sphere of ``4 n_angles`` points.
    """
    A = np.asarray(A_qijkl)
    d = A.shape[-1]
    if d == 2:
        t = np.linspace(0.0, np.pi, n_angles, endpoint=False)
        N_nd = np.stack([np.cos(t), np.sin(t)], axis=1)
    else:
        m = 4 * n_angles
        k = np.arange(m) + 0.5
        phi = np.arccos(1 - 2 * k / m)
        th = np.pi * (1 + 5**0.5) * k
        N_nd = np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], 1)
    Q_qnik = np.einsum("qijkl,nj,nl->qnik", A, N_nd, N_nd)
    Q_qnik = 0.5 * (Q_qnik + np.swapaxes(Q_qnik, -1, -2))
    return np.linalg.eigvalsh(Q_qnik)[..., 0].min(axis=1)


def cauchy_stress(F_qij: np.ndarray, P_qij: np.ndarray) -> np.ndarray:
    """sigma = P F^T / det F at each point."""
    return np.einsum("qik,qjk->qij", P_qij, F_qij) / np.linalg.det(F_qij)[:, None, None]


# -- material -------------------------------------------------------------------------------
def _a0(cfg: Config, potential) -> float:
    if cfg.material.a0 is not None:
        return cfg.material.a0
    from atomistic.elastic import equilibrium_lattice_constant

    return equilibrium_lattice_constant(potential, cfg.material.lattice)


def make_batched_material(cfg: Config, dim: int):
    """The batched material point of ``[material]`` (no MPI)."""
    m = cfg.material
    if m.type == "neo-hookean":
        from fe2.materials import NeoHookean

        return NeoHookean(m.mu / EV_PER_A3_IN_GPA, m.lmbda / EV_PER_A3_IN_GPA, dim)
    from atomistic.potentials import load_potential
    from atomistic.rve import AtomisticRVE, CauchyBorn

    pot = load_potential(resolve_potential(m.potential, cfg.source))
    a0 = _a0(cfg, pot)
    if m.type == "cauchy-born":
        return CauchyBorn(pot, m.lattice, a0, dim=dim)
    cutoff = getattr(pot, "cutoff", 0.0)
    narrow = min(m.size) * a0 < 2 * cutoff + 2.0
    return AtomisticRVE.from_lattice(pot, m.lattice, a0, size=m.size, vacancy=m.vacancy,
                                     dim=dim, fmax=m.fmax, multiple_images=narrow)


def make_point_model(cfg: Config, dim: int):
    """The single-point model (``coupling.points``) for the dispatcher."""
    from coupling import points

    mat = make_batched_material(cfg, dim)
    if cfg.material.type == "rve":
        return points.RVEPoint(mat, dim)
    if cfg.material.type == "cauchy-born":
        return points.CauchyBornPoint(mat, dim)
    return points.AnalyticPoint(mat)


def dispatcher_available() -> bool:
    """True when ``coupling.dispatch`` exists in this tree."""
    return importlib.util.find_spec("coupling.dispatch") is not None


def make_material(cfg: Config, comm, dim: int = 2):
    """Everything rank-dependent about the material, in one place.

    Returns ``(material, mesh_comm, worker, close)``: the material point to hand to the
    Problem (None on worker ranks), the communicator of the macro mesh (None on worker ranks),
    a callable running the worker loop (None on macro ranks) and a finaliser.
    """
    workers = cfg.mpi.workers
    if workers >= comm.size and workers > 0:
        raise InputError(f"[mpi] 'workers' = {workers} leaves no rank for the mesh "
                         f"(the run has {comm.size} ranks); use at most {comm.size - 1}")
    if not dispatcher_available():
        if workers:
            raise InputError("[mpi] 'workers' > 0 needs coupling.dispatch, which this install "
                             "does not have; set workers = 0")
        return make_batched_material(cfg, dim), comm, None, lambda: None
    from coupling import dispatch

    point_model = make_point_model(cfg, dim)
    layout = dispatch.split_world(comm, workers)
    if layout.is_worker:
        return None, None, (lambda: dispatch.run_worker(layout, point_model)), lambda: None
    material = dispatch.DispatchedMaterial(layout, point_model)
    return material, layout.macro_comm, None, material.close


class _Tracked:
    """Wraps a material point: keeps the last F, P, A and sums the RVE work of a step."""

    def __init__(self, inner):
        self.inner = inner
        self.dim = inner.dim
        self.F_qij = self.P_qij = self.A_qijkl = None
        self.work_q: np.ndarray | None = None  # this trial step
        self.step_work_q: np.ndarray | None = None  # last converged step
        self.seconds_q: np.ndarray | None = None  # RVE seconds (dispatcher), this trial step
        self.step_seconds_q: np.ndarray | None = None
        self.calls = 0

    def _last_work(self, nq: int) -> np.ndarray:
        for name in ("last_work", "last_iterations"):
            w = getattr(self.inner, name, None)
            if w is not None and len(w) == nq:
                return np.asarray(w, dtype=float)
        return np.zeros(nq)

    def evaluate(self, F_qij):
        P, A = self.inner.evaluate(F_qij)
        self.calls += 1
        self.F_qij, self.P_qij, self.A_qijkl = np.array(F_qij), P, A
        w = self._last_work(len(F_qij))
        self.work_q = w if self.work_q is None or len(self.work_q) != len(w) else self.work_q + w
        sec = getattr(self.inner, "last_seconds", None)
        sec = np.zeros(len(w)) if sec is None or len(sec) != len(w) else np.asarray(sec, float)
        self.seconds_q = sec if self.seconds_q is None or len(self.seconds_q) != len(w) \
            else self.seconds_q + sec
        return P, A

    def energy_density(self, F_qij):
        return self.inner.energy_density(F_qij)

    def commit(self):
        self.inner.commit()
        self.step_work_q, self.work_q = self.work_q, None
        self.step_seconds_q, self.seconds_q = self.seconds_q, None

    def revert(self):
        self.inner.revert()
        self.work_q = self.seconds_q = None

    def committed_state(self) -> dict[str, np.ndarray]:
        """Arrays of the committed material state, for checkpoints."""
        out = {}
        for name in ("_committed", "committed_state_q", "states"):
            s = getattr(self.inner, name, None)
            if isinstance(s, np.ndarray):
                out["material_state"] = s
                break
            if isinstance(s, list | tuple) and s and isinstance(s[0], np.ndarray):
                try:
                    out["material_state"] = np.stack(s)
                except ValueError:
                    pass
                break
        return out


# -- the job ----------------------------------------------------------------------------------
class Simulation:
    """A configured FE² problem on ``comm``: call :meth:`run`.

    On worker ranks (``[mpi] workers > 0`` with the dispatcher) :attr:`is_worker` is true and
    :meth:`run` serves RVE evaluations until the macro ranks finish.
    """

    def __init__(self, config: Config, comm, *, log=print):
        import fe2qc.mpi

        fe2qc.mpi.bootstrap()
        self.config = config
        self.comm = comm
        self.log = log if comm.rank == 0 else None
        self.outdir = Path(config.output.directory)
        if comm.rank == 0:
            self.outdir.mkdir(parents=True, exist_ok=True)
        comm.barrier()
        # PETSc's initialisation (on importing dolfinx/petsc4py) is collective over
        # MPI_COMM_WORLD: every rank, workers included, must do it before the split, or the
        # macro ranks wait forever for the workers.
        import fe2qc.mpi

        fe2qc.mpi.dolfinx()
        t0 = time.perf_counter()
        inner, mesh_comm, self._worker, self._close = make_material(config, comm, dim=2)
        self.is_worker = self._worker is not None
        self.setup_time = {"material": time.perf_counter() - t0}
        self.problem = None
        if self.is_worker:
            return
        self.material = _Tracked(inner)
        self.mesh_comm = mesh_comm
        t0 = time.perf_counter()
        self.mesh, self.facet_tags = self._mesh(mesh_comm)
        self.setup_time["mesh"] = time.perf_counter() - t0
        self.sigma_remote = None
        self.K_applied = None
        self.problem = self._problem()

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def _mesh(self, comm):
        from meshes.crack import cracked_plate, read_msh

        m = self.config.mesh
        if m.file is not None:
            return read_msh(comm, m.file)
        return cracked_plate(comm, width=m.width, height=m.height, crack_length=m.crack_length,
                             tip_size=m.tip_size, far_size=m.far_size, grading=m.grading)

    def _problem(self):
        from fe2.solver import Dirichlet, Problem, Traction
        from meshes.crack import TAGS, center_crack_K

        cfg = self.config
        ft = self.facet_tags
        if ft is None:
            raise InputError("the mesh has no facet tags; the problem needs the markers "
                             f"{TAGS} on its boundary")
        bcs = [Dirichlet((ft, TAGS["left"]), 0.0, component=0),
               Dirichlet((ft, TAGS["ligament"]), 0.0, component=1)]
        tractions = []
        lo = cfg.loading
        if lo.mode == "displacement":
            bcs.append(Dirichlet((ft, TAGS["top"]), lo.value, component=1))
        else:
            if lo.mode == "K":
                m = cfg.mesh
                self.K_applied = lo.value * MPA_SQRT_M_IN_EV_A3_SQRT_A  # eV/Å³ √Å
                self.sigma_remote = self.K_applied / center_crack_K(1.0, m.crack_length,
                                                                    m.width)
            else:
                self.sigma_remote = lo.value / EV_PER_A3_IN_GPA
            tractions.append(Traction((ft, TAGS["top"]), (0.0, self.sigma_remote)))
        s = cfg.solver
        return Problem(self.mesh, self.material, degree=s.degree, bcs=bcs, tractions=tractions,
                       rtol=s.rtol, max_iterations=s.max_iterations, log=self.log,
                       petsc_options_prefix="fe2qc_run_")

    # -- output -------------------------------------------------------------------------------
    def _open_writers(self):
        from dolfinx import fem
        from dolfinx.io import VTXWriter

        from fe2.io import ResultWriter

        stem = self.outdir / "fields"
        self.writer = ResultWriter(self.problem, stem)
        S0 = fem.functionspace(self.mesh, ("DG", 0))
        self.rve_work = fem.Function(S0, name="rve_work")
        self.ell_loss = fem.Function(S0, name="ellipticity_loss")
        self.rve_seconds = fem.Function(S0, name="rve_seconds")
        n = self.problem.layout.num_owned_cells
        self._cells = np.asarray(S0.dofmap.list[:n, 0])
        self.points_writer = VTXWriter(self.mesh.comm, f"{stem}_points.bp",
                                       [self.rve_work, self.rve_seconds, self.ell_loss], "BP4")

    def _write_fields(self, t: float):
        pb = self.problem
        npc = pb.layout.points_per_cell
        work = self.material.step_work_q
        work = np.zeros(pb.num_owned_points) if work is None else work
        self.rve_work.x.array[self._cells] = work.reshape(-1, npc).sum(axis=1)
        sec = self.material.step_seconds_q
        sec = np.zeros(pb.num_owned_points) if sec is None else sec
        self.rve_seconds.x.array[self._cells] = sec.reshape(-1, npc).sum(axis=1)
        loss = self.ellipticity_lost()
        self.ell_loss.x.array[self._cells] = loss.reshape(-1, npc).sum(axis=1)
        for f in (self.rve_work, self.rve_seconds, self.ell_loss):
            f.x.scatter_forward()
        self.writer.write(t)
        self.points_writer.write(float(t))

    def ellipticity_lost(self) -> np.ndarray:
        """Bool per owned Gauss point: the last tangent is not strongly elliptic."""
        A = self.material.A_qijkl
        if A is None or len(A) == 0:
            return np.zeros(self.problem.num_owned_points, dtype=bool)
        scale = np.abs(A).max()
        return acoustic_min_eigenvalue(A) <= 1e-10 * scale

    def _hill_mandel(self) -> dict | None:
        """Hill-Mandel check after a converged step at the most stressed Gauss point (global):
        macro stress power P:dF against the RVE's energy rate for a probe dF, and P against
        dW/dF (finite differences of the relaxed RVE energy). Collective over the mesh ranks."""
        mat = self.material.inner
        F, P = self.material.F_qij, self.material.P_qij
        if not hasattr(mat, "point_model") or F is None:
            return None
        MPI = _mpi()
        local = float(np.abs(P).max(axis=(1, 2)).max()) if len(P) else -1.0
        best = self.mesh_comm.allreduce((local, self.mesh_comm.rank), op=MPI.MAXLOC)
        out = None
        if self.mesh_comm.rank == best[1] and len(P):
            from coupling.hill_mandel import hill_mandel_check

            q = int(np.abs(P).max(axis=(1, 2)).argmax())
            states = mat.committed_states
            rep = hill_mandel_check(mat.point_model, F, states, points=[q], components=True)
            out = {"point": self.problem.describe_point(q),
                   "power_mismatch": float(rep["max_power_mismatch"]),
                   "stress_mismatch": float(rep["max_stress_mismatch"])}
        return self.mesh_comm.bcast(out, root=best[1])

    def _checkpoint(self, report):
        pb = self.problem
        path = self.outdir / f"checkpoint_rank{self.mesh_comm.rank}.npz"
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, u=pb.u.x.array, x_dofs=pb.V.tabulate_dof_coordinates(),
                 load_factor=report.load_factor, step=report.step,
                 point_ids=pb.layout.original_point_ids(),
                 **self.material.committed_state())
        os.replace(tmp, path)

    # -- run ----------------------------------------------------------------------------------
    def run(self, *, callback=None) -> dict:
        """Run all load steps; returns a summary (the same on every macro rank)."""
        if self.is_worker:
            self._worker()
            return {"role": "worker"}
        cfg = self.config
        pb = self.problem
        nglob = pb.num_global_points
        self._say(f"fe2qc run: {pb.mesh.topology.index_map(2).size_global} cells, {nglob} "
                  f"Gauss points ({cfg.material.type}), {self.comm.size} ranks "
                  f"({cfg.mpi.workers} workers), dispatcher "
                  f"{'on' if dispatcher_available() else 'off'}")
        if self.K_applied is not None:
            self._say(f"  applied K_I = {cfg.loading.value:g} MPa sqrt(m) at load 1: remote "
                      f"sigma = {self.sigma_remote * EV_PER_A3_IN_GPA:.4g} GPa")
        if cfg.output.vtx:
            self._open_writers()
        log_path = self.outdir / "steps.jsonl"
        logf = open(log_path, "w") if self.mesh_comm.rank == 0 else None  # noqa: SIM115
        t_start = time.perf_counter()
        n_loss = []

        def on_step(report):
            t = dict(report.timings)
            t = {k: self.mesh_comm.allreduce(v, op=_mpi().MAX) for k, v in sorted(t.items())}
            loss = int(self.mesh_comm.allreduce(int(self.ellipticity_lost().sum())))
            n_loss.append(loss)
            hm = self._hill_mandel()
            if cfg.output.vtx:
                self._write_fields(report.load_factor)
            if cfg.output.checkpoint:
                self._checkpoint(report)
            if logf is not None:
                logf.write(json.dumps({
                    "step": report.step, "load_factor": report.load_factor,
                    "increment": report.increment, "newton_iterations": report.iterations,
                    "residual_norms": report.residual_norms, "cutbacks": report.cutbacks,
                    "failures": report.failures, "timings": t, "wall_time": report.wall_time,
                    "ellipticity_loss_points": loss, "hill_mandel": hm}) + "\n")
                logf.flush()
            if loss:
                self._say(f"  {loss} Gauss points lost strong ellipticity")
            if hm:
                self._say(f"  Hill-Mandel at the most stressed Gauss point: stress power "
                          f"mismatch {hm['power_mismatch']:.1e}, |P - dW/dF| / |P| "
                          f"{hm['stress_mismatch']:.1e}")
            if callback is not None:
                callback(report)

        try:
            reports = pb.solve(cfg.loading.load_factors(),
                               min_increment=cfg.solver.min_increment, callback=on_step)
        finally:
            if logf is not None:
                logf.close()
            if cfg.output.vtx and hasattr(self, "writer"):
                self.writer.close()
                self.points_writer.close()
            self._close()
        wall = time.perf_counter() - t_start
        phases: dict[str, float] = {}
        for r in reports:
            for k, v in r.timings.items():
                phases[k] = phases.get(k, 0.0) + v
        phases = {k: self.mesh_comm.allreduce(v, op=_mpi().MAX) for k, v in sorted(phases.items())}
        self.reports = reports
        return {
            "cells": int(pb.mesh.topology.index_map(2).size_global),
            "gauss_points": int(nglob),
            "ranks": int(self.comm.size),
            "workers": int(cfg.mpi.workers),
            "material": cfg.material.type,
            "increments": len(reports),
            "newton_iterations": [r.iterations for r in reports],
            "load_factor": pb.load_factor,
            "displacement_norm": float(pb.displacement_norm()),
            "K_applied_MPa_sqrt_m": (cfg.loading.value * pb.load_factor
                                     if self.K_applied is not None else None),
            "sigma_remote_GPa": (self.sigma_remote * pb.load_factor * EV_PER_A3_IN_GPA
                                 if self.sigma_remote is not None else None),
            "ellipticity_loss_points": n_loss[-1] if n_loss else 0,
            "wall_time_s": wall,
            "seconds_by_phase": phases,
            "output": os.fspath(self.outdir),
        }


def _mpi():
    import fe2qc.mpi

    return fe2qc.mpi.mpi()


def run_problem(config: Config, comm, *, log=print) -> dict:
    """Build the problem of ``config`` on ``comm``, run it, and return a summary dict."""
    sim = Simulation(config, comm, log=log)
    summary = sim.run()
    if sim.log is not None and not sim.is_worker:
        sim.log(f"fe2qc run: done in {summary['wall_time_s']:.1f} s, "
                f"{summary['increments']} increments, Newton iterations "
                f"{summary['newton_iterations']}; output in {summary['output']}")
    return summary

