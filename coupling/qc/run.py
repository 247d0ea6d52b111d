"""The concurrent job behind ``fe2qc run problem.toml``: a ``crack_disc`` problem from a Config.

``[mesh] generator = "crack_disc"`` (see :mod:`coupling.config`) is the concurrent crack of
:mod:`coupling.qc.concurrent`: a disc of ``radius`` Å of the ``[material]``'s fcc crystal
(x = [100], y = [010], z = [001], one period thick) around a straight pre-cut crack along -x,
tip at the centre, the crystal's mode-I K-field imposed on the clamped outer layer (one cutoff
wide) and K raised through the load factors of ``[loading]`` (``value``: K_I in MPa √m at
load factor 1). The concurrent solver meshes its own domain (mesh nodes on the lattice sites
near the atoms), so this is its one geometry for now.

* With an ``[atomistic]`` section the atoms within its ``radius`` of the tip are explicit,
  coupled by its ``scheme`` (``bgfc`` default) over a handshake band (``handshake``, default
  the cutoff); the continuum is the crystal's Cauchy-Born point near the atoms and, for
  ``[material] type = "rve"``, the atomistic RVE of the same crystal beyond ``rve_radius``.
* Without it there are no atoms (:class:`coupling.qc.concurrent.ContinuumCrackModel`): every
  cell is a continuum cell of the ``[material]`` (RVEs everywhere for ``"rve"``), i.e. FE² on
  the same kind of mesh, whose lattice sites within :data:`TIP_RADIUS_A0` a0 of the tip (and
  its handshake band) are resolved.

The RVE (``[material] type = "rve"``) is the one :func:`coupling.qc.points.rve_point_model`
builds for the fcc slab (``size``, ``vacancy``, ``fmax``), built alike on every rank; it is
evaluated through :class:`coupling.dispatch.DispatchedMaterial` with ``replicated=True``: with
``[mpi] workers = 0`` every rank runs the (serial) QC solve and they share the Gauss points;
with workers, one macro rank solves and the worker ranks relax the RVEs. Either way the
displacements are bitwise those of one rank (``U_sha256`` in the summary).

Outputs in ``[output] directory``, written by rank 0 only: ``summary.json`` (sizes, every K's
record, the units named: lengths Å, stresses GPa, K in MPa √m and in units of the crystal's
Griffith K_G), ``steps.jsonl`` (one JSON line per converged K, written when it converges) and,
with ``[output] vtx = true``, :class:`~coupling.qc.concurrent.ConcurrentCrack`'s
``crack_atoms.extxyz`` (atoms and padding, one frame per K) and ``crack_continuum.bp`` (VTX
nodal displacements). The caller prepares the folder
(:func:`coupling.driver.make_simulation` does, with :data:`OUTPUT_PATTERNS`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from coupling.config import Config, concurrent_reach
from coupling.materials import check_workers, make_rve, material_potential
from fe2qc.errors import InputError, is_interrupt
from fe2qc.units import EV_PER_A52_IN_MPA_SQRT_M

__all__ = ["ConcurrentSimulation", "TIP_RADIUS_A0", "RUN_NAME", "OUTPUT_PATTERNS",
           "crack_disc_system"]

#: without ``[atomistic]``: the lattice sites within this many a0 of the tip are mesh nodes
TIP_RADIUS_A0 = 3.0
#: the run's name in ConcurrentCrack's file names (``crack_atoms.extxyz``, ...)
RUN_NAME = "crack"
#: what a run writes besides ``steps.jsonl`` (``--overwrite`` deletes these)
OUTPUT_PATTERNS = ("summary.json", f"{RUN_NAME}_atoms.extxyz", f"{RUN_NAME}_continuum.bp")


def crack_disc_system(cfg: Config, potential, a0: float):
    """``(system, field)`` of a crack_disc problem (no solve; the checks first).

    The system of :func:`coupling.qc.concurrent.concurrent_crack_system` (clamped layer of
    one cutoff, not resolved; pre-cut crack), with the ``[atomistic]`` radius, scheme and
    handshake (without ``[atomistic]``: the tip region of :data:`TIP_RADIUS_A0` a0, ``bgfc``'s
    mesh, handshake one cutoff).

    Raises:
        InputError: the atoms, handshake and clamped layer do not fit in the disc.
    """
    from coupling.qc.crack import crack_field
    from coupling.qc.geometry import Crack, Disc
    from coupling.qc.system import build_system

    rc = float(potential.cutoff)
    R = float(cfg.mesh.radius)
    at = cfg.atomistic
    if at is not None:
        r_atoms, scheme = float(at.radius), at.scheme
        hs = rc if at.handshake is None else float(at.handshake)
    else:
        r_atoms, scheme, hs = TIP_RADIUS_A0 * a0, "bgfc", rc
    need = concurrent_reach(r_atoms, rc, scheme, hs)
    if need >= R:
        what = (f"[atomistic] radius {r_atoms:g} Å" if at is not None else
                f"the resolved tip region ({TIP_RADIUS_A0:g} a0 = {r_atoms:.4g} Å)")
        raise InputError(f"[mesh] radius = {R:g} Å is too small for {what}: with the handshake "
                         f"band, its padding and the clamped layer (cutoff {rc:.4g} Å) it "
                         f"reaches {need:.4g} Å; use a radius above {need:.4g} Å")
    system = build_system(potential, "fcc", a0, domain=Disc(0.0, 0.0, R),
                          atomistic=Disc(0.0, 0.0, r_atoms), scheme=scheme,
                          crack=Crack(0.0, 0.0, True), handshake=hs, clamp_width=rc,
                          resolve_clamp=False, growth=float(cfg.mesh.growth))
    return system, crack_field(potential, "fcc", a0)


class ConcurrentSimulation:
    """A configured crack_disc problem on ``comm``: call :meth:`run`.

    The interface of :class:`coupling.driver.Simulation` (``is_worker``, :meth:`run`,
    :meth:`destroy`, :meth:`progress_note`). Construct on every rank of ``comm``; every rank
    initialises PETSc (collective over the world) before the ranks are split.

    Args:
        config: a validated config with ``[mesh] generator = "crack_disc"``.
        comm: the communicator of the run (split into macro and worker ranks).
        outdir: the output folder, already prepared (empty or absent,
            :func:`coupling.driver.prepare_output_dir`).
        log: ``log(line)`` for progress (called on rank 0 only), or None.

    Raises:
        InputError: (on every rank alike) workers without RVEs or without a macro rank, a
            disc too small for its atoms; nothing is solved before these checks.
    """

    def __init__(self, config: Config, comm, *, outdir, log=print):
        import fe2qc.mpi

        fe2qc.mpi.bootstrap()
        cfg = config
        if not cfg.mesh.concurrent:
            raise InputError(f"{cfg.mesh.describe()} is not a concurrent problem; run it with "
                             "coupling.driver.Simulation")
        self.config, self.comm = cfg, comm
        self.outdir = Path(outdir)
        self.log = log if comm.rank == 0 else None
        self._progress = "no K step had converged yet (no checkpoints: crack_disc writes none)"
        workers = cfg.mpi.workers
        if workers > 0 and cfg.material.type != "rve":
            raise InputError(f"[mpi] 'workers' = {workers} needs [material] type = 'rve' with "
                             f"[mesh] generator = 'crack_disc': a {cfg.material.type} "
                             "continuum has no RVEs to hand out; use workers = 0")
        check_workers(workers, comm.size)
        # PETSc's initialisation is collective over MPI_COMM_WORLD: every rank, workers
        # included, imports it before the split
        fe2qc.mpi.dolfinx()
        from petsc4py import PETSc  # noqa: F401

        from coupling.dispatch import DispatchedMaterial, split_world

        t0 = time.perf_counter()
        self.potential, self.a0 = material_potential(cfg)
        # the [material]'s RVE of the FE² driver (fcc, 3D), built alike on every rank (the
        # workers have no system); QCModel checks it against the atoms
        self.point_model = (make_rve(cfg, self.potential, self.a0, 3)
                            if cfg.material.type == "rve" else None)
        self.layout = split_world(comm, workers, cfg.mpi.groups)
        self.is_worker = self.layout.is_worker
        self.far = None
        self.crack = None
        if self.is_worker:
            return
        if self.point_model is not None:
            self.far = DispatchedMaterial(self.layout, self.point_model, chunk_size=8,
                                          poll_interval=1e-3 if workers else 0.0,
                                          replicated=True)
        try:
            self._setup(cfg)
        except BaseException as exc:
            if not is_interrupt(exc):
                self._close()  # release the workers (they wait in run() for work or stop)
            raise
        self.setup_time = time.perf_counter() - t0

    def _setup(self, cfg: Config) -> None:
        from coupling.qc.concurrent import ConcurrentCrack

        system, field = crack_disc_system(cfg, self.potential, self.a0)
        self.system, self.field = system, field
        lo = cfg.loading
        self.factors = lo.load_factors()
        K_G = field.griffith["K_G_MPa_sqrt_m"]
        self.K_MPa = [lo.value * f for f in self.factors]
        K_over_KG = [k / EV_PER_A52_IN_MPA_SQRT_M / field.K_G for k in self.K_MPa]
        at = cfg.atomistic
        kw = {}
        if at is None:
            kw["rve_radius"] = 0.0  # no atoms: every cell a continuum cell of [material]
        elif at.rve_radius is not None:
            kw["rve_radius"] = at.rve_radius
        write = self.comm.rank == 0 and cfg.output.vtx
        self.crack = ConcurrentCrack(
            system, field, K_over_KG, far=self.far, atoms=at is not None,
            scheme=at.scheme if at is not None else "bgfc",
            min_step=cfg.solver.min_increment * lo.value / K_G, name=RUN_NAME,
            outdir=self.outdir if write else None, log=self.log, **kw)

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def _close(self) -> None:
        if self.far is not None:
            self.far.close()

    def progress_note(self) -> str:
        """Return one line on the last converged K (a prepared string)."""
        return self._progress

    def destroy(self) -> None:
        """Nothing to free collectively (the QC solve's PETSc objects live on COMM_SELF)."""

    def run(self) -> dict:
        """Raise K through the load factors; returns the summary (the same on every macro rank).

        On worker ranks: serve RVE evaluations until the macro ranks finish, then return
        ``{"role": "worker"}``.
        """
        if self.is_worker:
            from coupling.dispatch import run_worker

            run_worker(self.layout, self.point_model)
            return {"role": "worker"}
        cfg, crack, s = self.config, self.crack, self.system
        at = cfg.atomistic
        self._say(
            f"fe2qc run: concurrent crack_disc, radius {cfg.mesh.radius:g} Å, "
            + (f"atoms within {at.radius:g} Å ({s.info['atomistic_sites']} sites, {crack.scheme})"
               if at is not None else "no atoms")
            + f"; {s.n_nodes} nodes, {s.mesh.n_cells} cells, {crack.n_gauss_points} Gauss points "
            f"({cfg.material.type}, {crack.n_far_points} RVE points), {self.comm.size} ranks "
            f"({cfg.mpi.workers} workers); K_G = {self.field.griffith['K_G_MPa_sqrt_m']:.4f} "
            f"MPa sqrt(m)")
        logf = (open(self.outdir / "steps.jsonl", "w")  # noqa: SIM115
                if self.comm.rank == 0 else None)
        t_start = time.perf_counter()

        def on_K(rec, U):
            i = len(crack.records) - 1
            if logf is not None:
                logf.write(json.dumps(self._step_line(i, rec, U)) + "\n")
                logf.flush()
            self._progress = (f"last converged K: {self.K_MPa[i]:.6g} MPa sqrt(m) (load "
                              f"factor {self.factors[i]:.6g}); crack_disc writes no checkpoints")

        try:
            crack.solve(callback=on_K)
        except BaseException as exc:
            if logf is not None:
                logf.close()
            if not is_interrupt(exc):
                self._close()
            raise
        if logf is not None:
            logf.close()
        self._close()
        summary = self._summary(time.perf_counter() - t_start)
        if self.comm.rank == 0:
            (self.outdir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _step_line(self, i: int, rec, U) -> dict:
        from coupling.qc.concurrent import fingerprint

        d = rec.as_dict()
        return {"step": i + 1, "load_factor": self.factors[i],
                "K_I_MPa_sqrt_m": self.K_MPa[i], "K_over_KG": d["K_over_KG"],
                "newton_iterations": d["iterations"], "increments": d["steps"],
                "max_force_eV_per_A": d["max_force"], "tip_x_A": d["tip_x"],
                "wall_time_s": d["wall_time"], "max_displacement_A":
                float(np.abs(np.asarray(U)).max()), "U_sha256": fingerprint(U),
                "opening_A": d["opening"], "sigma_yy_GPa": d["sigma_yy_GPa"],
                "far_field": d["far_field"]}

    def _summary(self, wall: float) -> dict:
        from coupling.qc.concurrent import fingerprint

        cfg, crack, s = self.config, self.crack, self.system
        at = cfg.atomistic
        inner = crack.summary()
        recs = crack.records
        out = {
            "problem": "crack_disc", "atoms": crack.atoms,
            "scheme": inner["scheme"], "material": cfg.material.type,
            "ranks": int(self.comm.size), "workers": int(cfg.mpi.workers),
            "radius_A": float(cfg.mesh.radius),
            "atomistic_radius_A": float(at.radius) if at is not None else None,
            "handshake_A": float(s.info["handshake"]),
            "a0_A": self.a0, "cutoff_A": float(self.potential.cutoff),
            "K_G_MPa_sqrt_m": float(self.field.griffith["K_G_MPa_sqrt_m"]),
            "load_factors": self.factors, "K_I_MPa_sqrt_m": self.K_MPa,
            "K_over_KG": [r.K_over_KG for r in recs],
            "increments": int(sum(r.steps for r in recs)),
            "newton_iterations": [r.iterations for r in recs],
            "nodes": inner["nodes"], "dofs": inner["dofs"], "cells": inner["cells"],
            "gauss_points": inner["gauss_points"], "rve_points": inner["far_points"],
            "rve_radius_A": inner["rve_radius"] if self.far is not None else None,
            "atomistic_sites": inner["atomistic_sites"],
            "max_displacement_A": float(np.abs(np.asarray(crack.U)).max()),
            "U_sha256": fingerprint(crack.U),
            "records": inner["records"],
            # this rank's RVE evaluations (DispatchedMaterial.timings: wall, compute on the
            # evaluating ranks, critical path, dispatch), None without RVEs
            "rve_timings_s": dict(self.far.timings) if self.far is not None else None,
            "wall_time_s": wall,
            "rve_dispatch": (dict(self.far.timings, dispatch_share=self.far.dispatch_share)
                             if self.far is not None else None),
            "output": os.fspath(self.outdir),
            "units": {"length": "Å", "stress": "GPa (sigma_yy_GPa)", "force": "eV/Å",
                      "K_I": "MPa √m", "K_over_KG": "units of the crystal's Griffith K_G",
                      "time": "s"},
        }
        return out
