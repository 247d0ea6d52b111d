"""The job behind ``fe2qc run problem.toml``: build mesh, material and loads from a config, run.

:class:`Simulation` turns a validated :class:`~coupling.config.Config` into a
:class:`fe2.solver.Problem` on a (possibly split) communicator and runs the load steps,
writing after every converged step

* ``<dir>/fe2_displacement.bp`` (VTX, per node: ``displacement`` in Å) and
  ``<dir>/fe2_cells.bp`` (VTX, per cell, DG0: ``P_GPa`` and ``von_mises_GPa`` in GPa and
  ``det_F``, quadrature-weighted cell averages; ``rve_relaxation_iterations``, the RVE Newton
  relaxation iterations summed over the cell's Gauss points and the step's material evaluations
  (0 for a perfect lattice, which needs none); ``rve_seconds``, the RVE compute seconds of the
  cell in the step; ``ellipticity_loss``, the number of the cell's Gauss points whose tangent is
  not strongly elliptic). See :data:`CELL_FIELDS`;
* ``<dir>/steps.jsonl``: one JSON object per converged increment (load factor, Newton residual
  history, seconds in material / assembly / linear solve, cut-backs);
* ``<dir>/checkpoint.npz``: the last converged step (displacement keyed by node coordinates,
  every Gauss point's committed state keyed by original cell index and point, the load factor,
  the load stepper and the problem's identity), gathered to rank 0 and replaced atomically
  with Ctrl-C held back (:mod:`coupling.checkpoint`): a killed run keeps its last converged
  step.

Restart (``fe2qc run problem.toml --restart DIR``, ``restart=DIR``): the run continues from
the checkpoint in ``DIR`` (the output folder of the earlier run, which becomes this run's) on
any number of ranks and workers, after checking it belongs to this problem (mesh, material,
boundary conditions, load mode and value, element degree; see
:func:`coupling.checkpoint.problem_identity`): it restores the displacement, every Gauss
point's committed state and the load stepper, and takes the increments the uninterrupted run
would have taken (bitwise the same results on the same ranks). ``steps.jsonl`` keeps the lines
of the checkpoint's increments (a line written after the last checkpoint is dropped) and gets
the new ones appended; the VTX series of the n-th restart are new files,
``fe2_restart<n>_displacement.bp`` and ``fe2_restart<n>_cells.bp`` (VTX files cannot be
appended to), beside the earlier ones, which are left as they are.

The output folder must be empty or absent: a non-empty folder is refused with an
:class:`~fe2qc.errors.InputError` before any work (decided on rank 0, broadcast), unless
``overwrite`` (``fe2qc run --overwrite``, ``[output] overwrite = true``) is set; then the files
a previous run wrote there (:func:`previous_run_files`: ``steps.jsonl``,
``checkpoint.npz``, the VTX ``*.bp`` folders) are deleted first and every other file in
the folder is left alone. A restart writes into its folder without either.

Geometry and loading come from the config, never from here: the mesh from its source in
:mod:`meshes.generators` (``[mesh]``: a generator or a gmsh file, with named boundary parts),
the boundary conditions from ``[[boundary]]`` entries or that source's defaults (for
``cracked_plate`` the quarter model's symmetry conditions and the load on the top), each
loaded one multiplied by ``[loading] value`` (a traction in GPa, a displacement in Å) and the
load factor. In mode ``K`` the traction is chosen so that the geometry's K calibration (for
``cracked_plate`` the handbook K_I) equals ``value`` (MPa √m). See :mod:`coupling.config`.

The material is a :class:`coupling.dispatch.DispatchedMaterial` over the point model of
``[material]`` (:func:`coupling.materials.make_point_model`): with ``[mpi] workers = 0`` every
rank evaluates its own Gauss points, with workers those ranks evaluate them for the mesh ranks.
All the rank-dependent glue is in :func:`make_material`.

A concurrent geometry (``[mesh] generator = "crack_disc"``) is not an FE² problem:
:func:`make_simulation` (which ``fe2qc run`` and :func:`run_problem` call) hands it to
:class:`coupling.qc.run.ConcurrentSimulation`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from coupling.config import Config
from coupling.materials import check_workers, make_point_model
from fe2qc.errors import InputError, is_interrupt
from fe2qc.tensors import acoustic_min_eigenvalue
from fe2qc.units import EV_PER_A3_IN_GPA, MPA_SQRT_M_IN_EV_A3_SQRT_A

__all__ = ["Simulation", "run_problem", "make_simulation", "make_material",
           "prepare_output_dir", "previous_run_files", "CELL_FIELDS", "scale_separation"]

#: VTX file stem in the output folder: ``fe2_displacement.bp`` and ``fe2_cells.bp``
VTX_STEM = "fe2"
#: per-cell scalars written beside P_GPa, von_mises_GPa and det_F in ``fe2_cells.bp``
CELL_FIELDS = ("rve_relaxation_iterations", "rve_seconds", "ellipticity_loss")

def scale_separation(cell_size_q: np.ndarray, rve_edge: float) -> np.ndarray:
    """Flag the Gauss points where FE² scale separation does not hold.

    Args:
        cell_size_q: Size of the macro element per Gauss point (largest vertex distance, Å).
        rve_edge: Edge length of the RVE (Å).

    Returns:
        Bool per Gauss point: True where its macro element is smaller than the RVE edge.
    """
    return np.asarray(cell_size_q, dtype=float) < float(rve_edge)


# -- material -------------------------------------------------------------------------------
def make_material(cfg: Config, comm, dim: int = 2):
    """Everything rank-dependent about the material, in one place.

    Returns ``(material, mesh_comm, worker, close)``: the
    :class:`~coupling.dispatch.DispatchedMaterial` to hand to the Problem (None on worker
    ranks), the communicator of the macro mesh (None on worker ranks), a callable running the
    worker loop (None on macro ranks) and a finaliser.
    """
    workers = cfg.mpi.workers
    check_workers(workers, comm.size)
    from coupling import dispatch

    layout = dispatch.split_world(comm, workers, cfg.mpi.groups, cfg.mpi.rve_ranks)
    # a worker's RVE runs on its team (a LAMMPS RVE on rve_ranks ranks), a mesh rank's alone
    point_model = make_point_model(cfg, dim, layout.team_comm)
    if layout.is_worker:
        return None, None, (lambda: dispatch.run_worker(layout, point_model)), lambda: None
    material = dispatch.DispatchedMaterial(layout, point_model)
    return material, layout.macro_comm, None, material.close


# -- the output folder ----------------------------------------------------------------------
#: what a run writes into its output folder (glob patterns); ``fields_*.bp`` are the VTX names
#: of earlier versions
#: and ``checkpoint_rank*.npz`` the per-rank checkpoints of earlier versions
RUN_FILE_PATTERNS = ("steps.jsonl", "checkpoint.npz", "checkpoint.npz.tmp", f"{VTX_STEM}_*.bp",
                     "fields_*.bp", "checkpoint_rank*.npz")


def previous_run_files(outdir: str | os.PathLike, extra: tuple[str, ...] = ()) -> list[Path]:
    """List the files and VTX folders in ``outdir`` that a run writes, sorted.

    These are the matches of RUN_FILE_PATTERNS and of the caller's own ``extra`` patterns
    (e.g. a demo's plot).
    """
    d = Path(outdir)
    found = {p for pat in (*RUN_FILE_PATTERNS, *extra) for p in d.glob(pat)}
    return sorted(found)


def _prepare_output_dir(outdir: Path, overwrite: bool, extra: tuple[str, ...]) -> str | None:
    """Rank 0's part of :func:`prepare_output_dir`; returns an error message or None."""
    if outdir.exists() and not outdir.is_dir():
        return (f"the output folder {os.fspath(outdir)} exists and is not a folder; choose "
                "another one (--outdir DIR, or [output] directory)")
    entries = sorted(p.name for p in outdir.iterdir()) if outdir.is_dir() else []
    if entries and not overwrite:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5
                                          else "")
        return (f"the output folder {os.fspath(outdir)} is not empty ({shown}); a run would "
                "replace or mix with what is there. Pass --overwrite (or overwrite = true in "
                "[output]) to delete the files of the previous run (steps.jsonl, "
                "checkpoint.npz, fe2_*.bp) and write the new ones, --restart DIR to continue "
                "the run whose checkpoint is there, or choose an empty or new folder "
                "(--outdir DIR, or [output] directory)")
    if entries:
        import shutil

        for f in previous_run_files(outdir, extra):
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f)
            else:
                f.unlink()
    outdir.mkdir(parents=True, exist_ok=True)
    return None


def prepare_output_dir(outdir: str | os.PathLike, comm, *, overwrite: bool = False,
                       extra: tuple[str, ...] = ()) -> Path:
    """Make the output folder ready for a run; collective over ``comm``.

    An absent or empty folder is used as it is (created if needed). A non-empty one is refused
    with an :class:`InputError` naming it and the fix, unless ``overwrite``: then the files a
    previous run wrote there (:func:`previous_run_files`) are deleted, and nothing else (a
    file the run does not write is never deleted; ``extra`` adds the caller's own file
    patterns, e.g. a demo's plot). Rank 0 decides and does the work; the
    outcome is broadcast, so every rank raises or returns alike.
    """
    outdir = Path(outdir)
    err = None
    if comm.rank == 0:
        try:
            err = _prepare_output_dir(outdir, bool(overwrite), tuple(extra))
        except OSError as exc:
            err = (f"cannot prepare the output folder {os.fspath(outdir)}: {exc}; choose "
                   "another folder (--outdir DIR, or [output] directory)")
    err = comm.bcast(err, root=0)
    if err is not None:
        raise InputError(err)
    return outdir


# -- the job ----------------------------------------------------------------------------------
class Simulation:
    """A configured FE² problem on ``comm``: call :meth:`run`.

    On worker ranks (``[mpi] workers > 0`` with the dispatcher) :attr:`is_worker` is true and
    :meth:`run` serves RVE evaluations until the macro ranks finish.

    ``overwrite`` (default: ``[output] overwrite``): see :func:`prepare_output_dir`; a
    non-empty output folder is refused without it, before any work. ``extra_outputs``: glob
    patterns of the caller's own files in the folder (deleted too with ``overwrite``).
    :meth:`progress_note` says which converged step the checkpoint holds (for the message of
    an interrupted run).

    ``restart``: the output folder of an earlier run of this problem: continue from its
    checkpoint and write there (``overwrite`` and ``[output] directory`` do not apply); see the
    module docstring.
    """

    def __init__(self, config: Config, comm, *, log=print, overwrite: bool | None = None,
                 extra_outputs: tuple[str, ...] = (), restart: str | os.PathLike | None = None,
                 progress=None):
        import fe2qc.mpi
        from coupling import checkpoint

        fe2qc.mpi.bootstrap()
        self.config = config
        self.comm = comm
        self.log = log if comm.rank == 0 else None
        #: a :class:`fe2qc.progress.ProgressBar` (rank 0), or None
        self.progress = progress if comm.rank == 0 else None
        # the problem's identity, stored in every checkpoint (rank 0 hashes the files)
        self.identity = comm.bcast(checkpoint.problem_identity(config) if comm.rank == 0
                                   else None, root=0)
        self.resume_meta = None
        if restart is not None:  # checked before any work, on every rank alike
            self.outdir = Path(restart)
            self.resume_meta = checkpoint.check_checkpoint(
                self.outdir / checkpoint.FILE_NAME, comm, self.identity)
        else:
            if overwrite is None:
                overwrite = bool(getattr(config.output, "overwrite", False))
            self.outdir = prepare_output_dir(config.output.directory, comm,
                                             overwrite=overwrite, extra=extra_outputs)
        self._progress = ("no load step had converged yet"
                          + ("" if config.output.checkpoint else
                             " (checkpoints are off: [output] checkpoint = false)"))
        self._converged = 0
        self._iterations: list[int] = []
        self._restarts = 0 if self.resume_meta is None else int(self.resume_meta["restarts"]) + 1
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
            self._progress = (f"the mesh ranks write the checkpoints, in "
                              f"{os.fspath(self.outdir)}")
            return
        self.material = inner
        self.mesh_comm = mesh_comm
        self.sigma_remote = None
        self.K_applied = None
        try:
            t0 = time.perf_counter()
            self.mesh, self.facet_tags = self._mesh(mesh_comm)
            self.setup_time["mesh"] = time.perf_counter() - t0
            self.problem = self._problem()
            if self.resume_meta is not None:
                self._restore()
        except Exception as exc:
            if not is_interrupt(exc):
                self._close()  # release the workers (they wait in run() for work or stop)
            raise

    def _restore(self) -> None:
        """Set the displacement, the Gauss points' states and the load factor from the checkpoint.

        Collective over the mesh ranks: a rank whose dofs or points are not in the checkpoint
        makes every mesh rank raise the same InputError.
        """
        from coupling import checkpoint

        pb, comm = self.problem, self.mesh_comm
        meta = self.resume_meta
        err = None
        try:
            ck = checkpoint.load_checkpoint(self.outdir / checkpoint.FILE_NAME)
            bs = pb.V.dofmap.index_map_bs
            if ck.u.shape[1] != bs:
                raise InputError(f"the checkpoint's displacement has {ck.u.shape[1]} components "
                                 f"per node, this problem {bs}")
            u = ck.displacement_for(pb.V.tabulate_dof_coordinates())
            ids = pb.layout.original_point_ids()
            states = ck.states_for(ids)
            owned = pb.V.dofmap.index_map.size_local
            counts = (owned, len(ids), len(ck.x_dofs), len(ck.point_ids))
        except InputError as exc:
            err, counts = str(exc), (0, 0, 0, 0)
        errors = [e for e in comm.allgather(err) if e]
        if errors:
            raise InputError(errors[0])
        nodes = comm.allreduce(counts[0])
        points = comm.allreduce(counts[1])
        if (nodes, points) != counts[2:]:
            raise InputError(f"the checkpoint's mesh differs: it has {counts[2]} nodes and "
                             f"{counts[3]} Gauss points, this problem {nodes} and {points}")
        pb.restore(u.reshape(-1), meta["load_factor"])
        if states is not None:
            self.material.history.committed = list(states)
        self._converged = int(meta["increments"])
        self._iterations = [int(i) for i in meta["newton_iterations"]]
        self._progress = (f"last converged step: load factor {meta['load_factor']:.6g} "
                          f"(increment {self._converged}, restored from the checkpoint)")

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def _warn(self, text: str) -> None:
        """A warning: through the log's ``warning`` if it has one, else on stderr (rank 0)."""
        if self.comm.rank != 0:
            return
        warn = getattr(self.log, "warning", None)
        if warn is not None:
            warn(text)
        else:
            import sys

            print(text, file=sys.stderr, flush=True)

    def _debug(self, text: str) -> None:
        """A detail, printed by a log that has ``debug`` (``--log-level debug``)."""
        debug = getattr(self.log, "debug", None)
        if debug is not None:
            debug(text)

    def _mesh(self, comm):
        """Build the mesh of ``[mesh]``: ``(mesh, facet_tags)``.

        Its boundary names (name -> facet marker) are kept in :attr:`boundaries`.
        """
        tagged = self.config.mesh.build(comm)
        self.boundaries = dict(tagged.boundaries)
        return tagged.mesh, tagged.facet_tags

    def _problem(self):
        from coupling.config import check_boundary_names
        from fe2.solver import Dirichlet, Problem, Traction

        cfg = self.config
        ft = self.facet_tags
        conditions = cfg.boundary_conditions()
        check_boundary_names(conditions, self.boundaries, cfg.mesh.describe())
        if ft is None:
            raise InputError("the mesh has no facet tags; the boundary conditions need its "
                             "boundary parts " + ", ".join(sorted({b.name for b in conditions})))
        lo = cfg.loading
        scale = lo.value  # multiplies the loaded conditions: Å (displacement), eV/Å³ (traction)
        if lo.mode == "K":
            self.K_applied = lo.value * MPA_SQRT_M_IN_EV_A3_SQRT_A  # eV/Å³ √Å
            self.sigma_remote = scale = self.K_applied / cfg.mesh.stress_intensity()
        elif lo.mode == "traction":
            self.sigma_remote = scale = lo.value / EV_PER_A3_IN_GPA
        bcs, tractions = [], []
        for bc in conditions:
            where = (ft, self.boundaries[bc.name])
            for component, value in bc.displacements():
                bcs.append(Dirichlet(where, value * scale if bc.loaded else value,
                                     component=component, scale_with_load=bc.loaded))
            if bc.traction is not None:
                tractions.append(Traction(where, tuple(t * scale for t in bc.traction)))
        s = cfg.solver
        return Problem(self.mesh, self.material, degree=s.degree, bcs=bcs, tractions=tractions,
                       rtol=s.rtol, max_iterations=s.max_iterations, log=self.log,
                       petsc_options_prefix="fe2qc_run_")

    # -- output -------------------------------------------------------------------------------
    def _open_writers(self):
        from fe2.io import ResultWriter

        stem = VTX_STEM if not self._restarts else f"{VTX_STEM}_restart{self._restarts}"
        self.writer = ResultWriter(self.problem, self.outdir / stem, cell_fields=CELL_FIELDS)

    def _open_log(self):
        """Open ``steps.jsonl`` on rank 0 (None elsewhere).

        A restart keeps the lines of the checkpoint's increments and appends; a line written
        after the last checkpoint (the run died between the two) is dropped.
        """
        if self.mesh_comm.rank != 0:
            return None
        path = self.outdir / "steps.jsonl"
        if self.resume_meta is None:
            return open(path, "w")  # noqa: SIM115 - closed by run()
        lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
        keep = [ln for ln in lines[: self._converged] if ln.endswith("\n")]
        if len(keep) < len(lines):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(keep))
            os.replace(tmp, path)
        return open(path, "a")  # noqa: SIM115 - closed by run()

    def _write_fields(self, t: float):
        """Write the VTX files: per-point data summed over each cell's Gauss points."""
        pb = self.problem
        npc = pb.layout.points_per_cell
        zero = np.zeros(pb.num_owned_points)
        per_point = {
            "rve_relaxation_iterations": self.material.step_work_q,
            "rve_seconds": self.material.step_seconds_q,
            "ellipticity_loss": self.ellipticity_lost(),
        }
        for name, v in per_point.items():
            v = zero if v is None else np.asarray(v, dtype=float)
            self.writer.set_cell_field(name, v.reshape(-1, npc).sum(axis=1))
        self.writer.write(t)

    def _rve_edge(self) -> float | None:
        """Largest in-plane edge of the RVE cell (Å), or None when the material has no RVE."""
        from atomistic.rve import AtomisticRVE

        rve = self.material.point_model
        if not isinstance(rve, AtomisticRVE):
            return None
        cell = np.asarray(rve.reference.cell_cc)
        d = self.problem.dim
        return float(np.linalg.norm(cell[:d, :d], axis=1).max())

    def _scale_separation(self) -> dict | None:
        """Count the Gauss points whose macro element is smaller than the RVE edge.

        Warns once (rank 0, stderr) if there are any. Collective over the mesh ranks. Returns
        None when the material points are not atomistic RVEs.
        """
        edge = self._rve_edge()
        if edge is None:
            return None
        pb, msh = self.problem, self.mesh
        n = pb.layout.num_owned_cells
        x = msh.geometry.x[:, :pb.dim]
        xc = x[np.asarray(msh.geometry.dofmaps[0])[:n]]  # (cells, nodes, dim)
        diam = np.linalg.norm(xc[:, :, None, :] - xc[:, None, :, :], axis=-1).max(axis=(1, 2))
        small = scale_separation(np.repeat(diam, pb.layout.points_per_cell), edge)
        comm = self.mesh_comm
        MPI = _mpi()
        below = int(comm.allreduce(int(small.sum())))
        hmin = float(comm.allreduce(float(diam.min()) if n else np.inf, op=MPI.MIN))
        out = {"rve_edge_A": edge, "min_element_size_A": hmin,
               "points_in_elements_below_rve_edge": below,
               "gauss_points": int(pb.num_global_points)}
        if below:
            self._warn(f"warning: scale separation: {below} of {out['gauss_points']} Gauss "
                       f"points lie in macro elements smaller than the RVE edge ({edge:.2f} Å; "
                       f"smallest element {hmin:.2f} Å); the FE² continuum assumption does not "
                       f"hold there, so do not read the stress within a few RVE sizes of such "
                       f"points (e.g. a crack tip) as a continuum result")
        return out

    def ellipticity_lost(self) -> np.ndarray:
        """Bool per owned Gauss point: the last tangent is not strongly elliptic."""
        A = self.material.A_qijkl
        if A is None or len(A) == 0:
            return np.zeros(self.problem.num_owned_points, dtype=bool)
        scale = np.abs(A).max()
        return acoustic_min_eigenvalue(A) <= 1e-10 * scale

    def _hill_mandel(self) -> dict | None:
        """Run the Hill-Mandel check at the most stressed Gauss point after a converged step.

        The point is the most stressed one over all ranks. The check compares the macro stress
        power P:dF against the RVE's energy rate for a probe dF, and P against dW/dF (finite
        differences of the relaxed RVE energy). Collective over the mesh ranks.
        """
        mat = self.material
        F, P = mat.F_qij, mat.P_qij
        if F is None:
            return None
        MPI = _mpi()
        local = float(np.abs(P).max(axis=(1, 2)).max()) if len(P) else -1.0
        best = self.mesh_comm.allreduce((local, self.mesh_comm.rank), op=MPI.MAXLOC)
        out = None
        if self.mesh_comm.rank == best[1] and len(P):
            from coupling.hill_mandel import hill_mandel_check

            q = int(np.abs(P).max(axis=(1, 2)).argmax())
            states = mat.history.committed
            rep = hill_mandel_check(mat.point_model, F, states, points=[q], components=True)
            r0 = rep["reports"][0]
            # relative to max(|P|, 1e-3 |A|): meaningful at zero load too
            out = {"point": self.problem.describe_point(q),
                   "power_mismatch": float(rep["max_power_mismatch"]),
                   "stress_mismatch": float(rep["max_stress_mismatch"]),
                   "P_max_GPa": float(np.abs(r0["P"]).max() * EV_PER_A3_IN_GPA),
                   "stress_floor_GPa": float(r0["stress_scale"] * EV_PER_A3_IN_GPA)}
        return self.mesh_comm.bcast(out, root=best[1])

    def _checkpoint(self, report):
        """Write the checkpoint of the increment just converged; collective over the mesh ranks.

        See :func:`coupling.checkpoint.write_checkpoint`: rank 0 writes the gathered rows to a
        temporary file and renames it over the old one, with Ctrl-C held back: an interrupt or
        a kill leaves the previous complete checkpoint.
        """
        from coupling import checkpoint

        pb = self.problem
        owned = pb.V.dofmap.index_map.size_local
        bs = pb.V.dofmap.index_map_bs
        meta = {"identity": self.identity, "load_factor": float(report.load_factor),
                "step": int(report.step), "stepper": report.stepper,
                "increments": self._converged, "newton_iterations": self._iterations,
                "restarts": self._restarts, "mesh_ranks": int(self.mesh_comm.size)}
        checkpoint.write_checkpoint(
            self.outdir / checkpoint.FILE_NAME, self.mesh_comm,
            x_dofs=pb.V.tabulate_dof_coordinates()[:owned],
            u=pb.u.x.array.reshape(-1, bs)[:owned], point_ids=pb.layout.original_point_ids(),
            material_state=self.material.history.as_array(), meta=meta)
        self._progress = (f"last converged step: load factor {report.load_factor:.6g} "
                          f"(increment {self._converged}), its checkpoint is "
                          f"{os.fspath(self.outdir / checkpoint.FILE_NAME)}; continue with "
                          f"--restart {os.fspath(self.outdir)}")

    def progress_note(self) -> str:
        """Return one line on the last converged step and its checkpoint.

        The line is a prepared string, safe to read from a signal watchdog thread.
        """
        return self._progress

    def destroy(self) -> None:
        """Free the macro solver's PETSc objects now.

        With MUMPS this is collective over the mesh ranks; it does nothing on worker ranks.
        Call it on every rank at the same point once the run is over, rather than leaving it to
        the garbage collector, whose timing differs between ranks.
        """
        if self.problem is not None:
            self.problem.destroy()

    def _cleanup(self) -> None:
        """Close the VTX writers (collective over the mesh ranks) and stop the workers."""
        if self.config.output.vtx and hasattr(self, "writer"):
            self.writer.close()
        self._close()

    # -- run ----------------------------------------------------------------------------------
    def run(self, *, callback=None) -> dict:
        """Run all load steps; returns a summary (the same on every macro rank).

        ``callback(report)`` is called on every mesh rank after each converged increment,
        before its checkpoint is written (a restart repeats at most the increment whose
        checkpoint was not written).
        """
        if self.is_worker:
            self._worker()
            return {"role": "worker"}
        cfg = self.config
        pb = self.problem
        nglob = pb.num_global_points
        self._say(f"fe2qc run: {pb.mesh.topology.index_map(2).size_global} cells, {nglob} "
                  f"Gauss points ({cfg.material.type}), {self.comm.size} ranks "
                  f"({cfg.mpi.workers} workers)")
        if self.K_applied is not None:
            self._say(f"  applied K_I = {cfg.loading.value:g} MPa sqrt(m) at load 1: remote "
                      f"sigma = {self.sigma_remote * EV_PER_A3_IN_GPA:.4g} GPa")
        resume = None
        if self.resume_meta is not None:
            m = self.resume_meta
            resume = (int(m["step"]), m["stepper"])
            self._say(f"  restart {self._restarts} from {os.fspath(self.outdir)}: load factor "
                      f"{m['load_factor']:.6g} after {m['increments']} increments (written on "
                      f"{m['mesh_ranks']} mesh ranks)")
        if cfg.output.vtx:
            self._open_writers()
        logf = self._open_log()
        t_start = time.perf_counter()
        n_loss = []
        scale = self._scale_separation()
        import fe2qc.threads

        pinned = fe2qc.threads.last or {}
        self._debug(f"  threads per rank: {pinned.get('threads') or 'not pinned (no launcher)'}"
                    f"; set {', '.join(pinned.get('set', [])) or 'nothing'}; kept the user's "
                    f"{', '.join(pinned.get('kept', [])) or 'none'}; limited "
                    f"{', '.join(pinned.get('limited', [])) or 'none'}")
        lay = self.material.layout
        self._debug(f"  layout: {lay.n_macro} mesh ranks, {lay.n_workers} workers, "
                    f"{lay.groups} groups, chunk size {self.material.chunk_size}")
        bar = self.progress
        if bar is not None:
            self.material.farm.progress = bar.rves
            bar.update(load=pb.load_factor, step=f"increment {self._converged + 1}")
        moved = [0]

        def on_step(report):
            t = dict(report.timings)
            t = {k: self.mesh_comm.allreduce(v, op=_mpi().MAX) for k, v in sorted(t.items())}
            loss = int(self.mesh_comm.allreduce(int(self.ellipticity_lost().sum())))
            n_loss.append(loss)
            hm = self._hill_mandel()
            self._converged += 1
            self._iterations.append(int(report.iterations))
            if cfg.output.vtx:
                self._write_fields(report.load_factor)
            if callback is not None:  # before the checkpoint, as the log line
                callback(report)
            if logf is not None:  # before the checkpoint: a restart drops a line too many
                logf.write(json.dumps({
                    "step": report.step, "load_factor": report.load_factor,
                    "increment": report.increment, "newton_iterations": report.iterations,
                    "residual_norms": report.residual_norms, "cutbacks": report.cutbacks,
                    "failures": report.failures, "timings": t, "wall_time": report.wall_time,
                    "ellipticity_loss_points": loss, "hill_mandel": hm,
                    "scale_separation": scale, "restart": self._restarts}) + "\n")
                logf.flush()
            if cfg.output.checkpoint:
                t0 = time.perf_counter()
                self._checkpoint(report)
                self._debug(f"  checkpoint written in {time.perf_counter() - t0:.3f} s")
            else:
                self._progress = (f"last converged step: load factor {report.load_factor:.6g} "
                                  f"(increment {self._converged}); no checkpoint (checkpoints "
                                  "are off: [output] checkpoint = false)")
            if loss:
                self._say(f"  {loss} Gauss points lost strong ellipticity")
            if hm:
                self._say(f"  Hill-Mandel at the most stressed Gauss point: stress power "
                          f"mismatch {hm['power_mismatch']:.1e}, |P - dW/dF| / |P| "
                          f"(|P| at least {hm['stress_floor_GPa']:.2g} GPa) "
                          f"{hm['stress_mismatch']:.1e}")
            tm = self.material.timings
            self._debug(f"  dispatch: {tm['moved'] - moved[0]} chunks moved between groups "
                        f"this increment; dispatch share so far "
                        f"{self.material.dispatch_share:.2%}")
            moved[0] = tm["moved"]
            if bar is not None:
                bar.update(load=report.load_factor, step=f"increment {self._converged + 1}")

        try:
            reports = pb.solve(cfg.loading.load_factors(), resume=resume,
                               min_increment=cfg.solver.min_increment, callback=on_step)
        except BaseException as exc:
            if logf is not None:
                logf.close()
            if bar is not None:
                bar.close()
            if is_interrupt(exc):
                # no collective clean-up: the other ranks may be anywhere; the caller ends
                # every rank (coupling.interrupts)
                raise
            self._cleanup()
            raise
        if logf is not None:
            logf.close()
        if bar is not None:
            bar.close()
        self._cleanup()
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
            "increments": self._converged,
            "newton_iterations": list(self._iterations),
            "restarts": self._restarts,
            "load_factor": pb.load_factor,
            "displacement_norm": float(pb.displacement_norm()),
            "K_applied_MPa_sqrt_m": (cfg.loading.value * pb.load_factor
                                     if self.K_applied is not None else None),
            "sigma_remote_GPa": (self.sigma_remote * pb.load_factor * EV_PER_A3_IN_GPA
                                 if self.sigma_remote is not None else None),
            "ellipticity_loss_points": n_loss[-1] if n_loss else 0,
            "dispatch": {"groups": int(self.material.layout.groups),
                         "moved_tasks": int(self.material.timings["moved"]),
                         "dispatch_share": float(self.material.dispatch_share)},
            "wall_time_s": wall,
            "seconds_by_phase": phases,
            "scale_separation": scale,
            "output": os.fspath(self.outdir),
        }


def _mpi():
    import fe2qc.mpi

    return fe2qc.mpi.mpi()


def done_line(summary: dict) -> str:
    """The last progress line of a run."""
    return (f"fe2qc run: done in {summary['wall_time_s']:.1f} s, {summary['increments']} "
            f"increments, Newton iterations {summary['newton_iterations']}; output in "
            f"{summary['output']}")


def make_simulation(config: Config, comm, *, log=print, overwrite: bool | None = None,
                    restart: str | os.PathLike | None = None, progress=None):
    """The job of ``config`` on ``comm``: a :class:`Simulation`, or the concurrent one.

    A concurrent geometry (``[mesh] generator = "crack_disc"``) is run by
    :class:`coupling.qc.run.ConcurrentSimulation` (same interface), after the output folder
    is prepared here (``overwrite``: see :func:`prepare_output_dir`); it writes no checkpoint,
    so ``restart`` (the output folder of an earlier FE² run, see :class:`Simulation`) is
    refused for it.
    """
    if not config.mesh.concurrent:
        return Simulation(config, comm, log=log, overwrite=overwrite, restart=restart,
                          progress=progress)
    if restart is not None:
        raise InputError("--restart applies to FE² problems only: the concurrent solver "
                         f"({config.mesh.describe()}) writes no checkpoints yet")
    import fe2qc.mpi
    from coupling.qc.run import OUTPUT_PATTERNS, ConcurrentSimulation

    fe2qc.mpi.bootstrap()
    if overwrite is None:
        overwrite = bool(getattr(config.output, "overwrite", False))
    outdir = prepare_output_dir(config.output.directory, comm, overwrite=overwrite,
                                extra=OUTPUT_PATTERNS)
    return ConcurrentSimulation(config, comm, outdir=outdir, log=log)


def run_problem(config: Config, comm, *, log=print, overwrite: bool | None = None) -> dict:
    """Build the problem of ``config`` on ``comm``, run it, and return a summary dict.

    ``overwrite``: replace a previous run's files in the output folder (default ``[output]
    overwrite``; a non-empty folder is refused otherwise, see :func:`prepare_output_dir`).
    A concurrent geometry runs through :func:`make_simulation`.
    """
    sim = make_simulation(config, comm, log=log, overwrite=overwrite)
    try:
        summary = sim.run()
    except BaseException as exc:
        if not is_interrupt(exc):
            sim.destroy()
        raise
    sim.destroy()
    if sim.log is not None and not sim.is_worker:
        sim.log(done_line(summary))
    return summary

