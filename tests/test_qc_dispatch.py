"""The QC continuum's RVE material points dispatched to an MPI worker.

``split_world(COMM_WORLD, 1)``: rank 0 is the macro rank and runs the whole QC (serial, its
DOLFINx continuum on ``COMM_SELF``) with ``material=DispatchedMaterial(layout, rve)``; rank 1
is a worker (``run_worker``) that relaxes the RVEs of the Gauss points it is sent. Checked:

* the patch test with perfect-lattice RVE points (``qcf``, ``gfc``, ``bgfc``; the triangular
  layer and the Cu slab): forces at round-off under a uniform F, the same bits as the same
  material evaluated on the macro rank, and ``bgfc``'s correction equal to the one of the
  Cauchy-Born kernel (an independent calculation: a lattice sum, no RVE);
* a relaxation around a vacancy with vacancy-RVE points gives bitwise the same displacements,
  report and committed RVE states with one worker, with none (``LocalFarm`` on the macro
  rank) and in a plain serial run (a ``PointMaterial``, run by rank 1 before it serves);
* a failing RVE (a failed calculation, a refused F, a NaN stress) reaches the QC solver as
  :class:`CalculationFailed`, the committed states stay, the next relaxation goes through
  the same worker, and the worker stops when the material is closed.

Every rank imports DOLFINx first (its import initialises PETSc, collectively over
``COMM_WORLD``: a worker that never imports it would leave the macro rank's import waiting).
Every rank reaches every collective also when an assertion fails: rank 0's work runs inside
``with DispatchedMaterial(...)`` (leaving it stops the worker), exceptions are kept and raised
only after the ranks have met.

Run: ``mpirun -n 2 python -m pytest -q -m mpi tests/test_qc_dispatch.py`` (needs exactly 2
ranks; skipped otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

# DOLFINx's import initialises PETSc, collectively over COMM_WORLD: every rank imports it
# (here, at collection) before the worker goes into its loop and the macro rank into the QC
import coupling.qc.continuum  # noqa: F401
from coupling.dispatch import DispatchedMaterial, run_worker, split_world
from coupling.farm import GroupFarm, LocalFarm
from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.patch import PATCH_TOLERANCE
from coupling.qc.points import rve_point_model
from coupling.qc.setups import default_setup
from coupling.qc.solver import relax
from coupling.qc.system import build_system
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.material import PointMaterial, PointResult
from fe2qc.mpi import mpi

pytestmark = pytest.mark.mpi

MPI = mpi()

#: points per message to the worker, and the macro root's polling interval (the ranks share
#: cores here: a blocking receive would busy-poll one)
_DISPATCH = {"chunk_size": 32, "poll_interval": 1e-3}


def _need_two_ranks():
    if MPI.COMM_WORLD.size != 2:
        pytest.skip("needs exactly 2 MPI ranks")


def _guarded(fn, *args):
    """``(fn(*args), None)`` or ``(None, the exception)``: raised later, after the ranks met."""
    try:
        return fn(*args), None
    except Exception as exc:  # noqa: BLE001 - re-raised after the collectives
        return None, exc


def _with_one_worker(worker_model, macro):
    """Run ``macro(layout)`` on rank 0 with rank 1 serving ``worker_model``; return its value.

    Rank 0 must open ``DispatchedMaterial(layout, ...)`` first thing in ``macro`` and do all
    its work inside the ``with`` block (leaving it stops the worker). Returns
    ``(rank 0's value, rank 1's worker statistics)`` on both ranks; an exception of rank 0 is
    raised on rank 0 after the ranks met.
    """
    comm = MPI.COMM_WORLD
    layout = split_world(comm, 1)
    value, error, stats = None, None, None
    try:
        if layout.is_worker:
            stats = run_worker(layout, worker_model)
        else:
            value, error = _guarded(macro, layout)
    finally:
        stats = comm.bcast(stats, root=1)
        layout.free()
    if error is not None:
        raise error
    return value, stats


# ---------------------------------------------------------------------------------------------
# The patch test


def _patch_system(dim, scheme):
    """Small systems (few hundred Gauss points): the triangular layer and the Cu slab."""
    pot, lattice, a0 = default_setup(dim)
    R, Ra = {2: (11 * a0, 2.01 * a0), 3: (26.0, 3.7)}[dim]
    return build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, R),
                        atomistic=Disc(0.0, 0.0, Ra), scheme=scheme, handshake=pot.cutoff,
                        resolve_clamp=False, clamp_width=pot.cutoff + 0.1, growth=0.8)


def _uniform_F(system, seed=7, amplitude=0.02):
    F = np.eye(3)
    c, d = system.ncomp, system.mesh.dim
    F[:c, :d] += amplitude * np.random.default_rng(seed).uniform(-1, 1, (c, d))
    return F


def _patch_forces(system, scheme, F, material):
    model = QCModel(system, scheme, F_ref=F, material=material)
    U = system.homogeneous(F)
    if scheme == "gfc":
        model.dead_load = model.ghost_force(U)
    return model.node_forces(U), model.dead_load


@pytest.mark.timeout(120)
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", ["qcf", "gfc", "bgfc"])
def test_patch_test_with_dispatched_perfect_lattice_rve_points(dim, scheme):
    _need_two_ranks()
    system = _patch_system(dim, scheme)  # on both ranks: the worker needs the same RVE
    rve = rve_point_model(system, size=(1, 1, 1))
    F = _uniform_F(system)

    def macro(layout):
        with DispatchedMaterial(layout, rve, **_DISPATCH) as material:
            assert isinstance(material.farm, GroupFarm)
            f, dead = _patch_forces(system, scheme, F, material)
            assert np.linalg.norm(f, axis=1).max() <= PATCH_TOLERANCE
            assert material.timings["calls"] > 0
            f_local, dead_local = _patch_forces(system, scheme, F, PointMaterial(rve))
            assert np.array_equal(f, f_local) and np.array_equal(dead, dead_local)
            if scheme == "bgfc":  # the correction of the RVE points is the Cauchy-Born one
                _, dead_cb = _patch_forces(system, scheme, F, None)
                assert np.abs(dead - dead_cb).max() <= 1e-10 * np.abs(dead_cb).max()
            return len(material.F_qij)

    n_points, stats = _with_one_worker(rve, macro)
    assert stats["points"] > 0  # the worker evaluated the Gauss points
    if n_points is not None:
        assert stats["points"] >= n_points


# ---------------------------------------------------------------------------------------------
# A relaxation: one worker, no worker, serial


def _vacancy_system():
    pot, lattice, a0 = default_setup(2)
    return build_system(pot, lattice, a0, domain=Disc(0.0, 0.0, 10.0 * a0),
                        atomistic=Disc(0.0, 0.0, 2.01 * a0), scheme="qcf",
                        vacancies=[[0.0, 0.0]], handshake=pot.cutoff, growth=0.8,
                        resolve_clamp=False, clamp_width=5.6)


_F_LOAD = np.diag([1.01, 0.995, 1.0])


def _relax_with(system, material):
    """Relax under ``_F_LOAD``; what must be the same bits however the points are evaluated."""
    U, rep = relax(QCModel(system, "qcf", F_ref=_F_LOAD, material=material),
                   system.homogeneous(_F_LOAD), tol=1e-8)
    report = {k: v for k, v in rep.as_dict().items() if k != "wall_time"}
    return {"U": U, "report": report, "history": rep.history,
            "states": [np.array(s) for s in material.committed_states],
            "work": np.array(material.step_work_q)}


def _assert_same_bits(a, b):
    assert np.array_equal(a["U"], b["U"])
    assert a["report"] == b["report"] and a["history"] == b["history"]
    assert len(a["states"]) == len(b["states"])
    assert all(np.array_equal(x, y) for x, y in zip(a["states"], b["states"], strict=True))
    assert np.array_equal(a["work"], b["work"])


@pytest.mark.timeout(180)
def test_relaxation_with_one_worker_no_worker_and_serially_gives_the_same_bits():
    _need_two_ranks()
    comm = MPI.COMM_WORLD
    system = _vacancy_system()
    rve = rve_point_model(system, size=(2, 1, 1), vacancy=True)
    # before the dispatch, at the same time: rank 0 without workers (LocalFarm), rank 1 serially
    if comm.rank == 0:
        def no_worker():
            with DispatchedMaterial(split_world(MPI.COMM_SELF, 0), rve) as material:
                assert isinstance(material.farm, LocalFarm)
                return _relax_with(system, material)

        reference, error = _guarded(no_worker)
    else:
        reference, error = _guarded(_relax_with, system, PointMaterial(rve))
    serial, serial_error = comm.bcast((reference, error), root=1)

    def macro(layout):
        with DispatchedMaterial(layout, rve, **_DISPATCH) as material:
            return _relax_with(system, material)

    dispatched, stats = _with_one_worker(rve, macro)
    if comm.rank == 1:
        return
    for e in (error, serial_error):
        if e is not None:
            raise e
    assert dispatched["report"]["converged"]
    assert np.abs(dispatched["U"] - system.homogeneous(_F_LOAD)).max() > 1e-3  # it relaxes
    assert all(np.abs(s).max() > 1e-6 for s in dispatched["states"])  # the RVEs relax
    assert stats["points"] > 0
    _assert_same_bits(dispatched, reference)
    _assert_same_bits(dispatched, serial)


# ---------------------------------------------------------------------------------------------
# Failures


class _FailsWhenStrained:
    """A point model that fails for large strains ``s = max |F - I|``.

    ``s > 0.06``: CalculationFailed (an RVE relaxation that does not converge);
    ``0.045 < s <= 0.06``: InputError (an RVE refusing F); ``0.03 < s <= 0.045``: a NaN
    stress. Below, the model's own result.
    """

    def __init__(self, model):
        self.model = model
        self.dim = model.dim

    def initial_state(self):
        return self.model.initial_state()

    def evaluate_point(self, F, state, *, tangent=True):
        s = np.abs(F - np.eye(3)).max()
        if s > 0.06:
            raise CalculationFailed("RVE relaxation did not converge (injected)")
        if s > 0.045:
            raise InputError("RVE refuses this deformation gradient (injected)")
        r = self.model.evaluate_point(F, state, tangent=tangent)
        if s > 0.03:
            return PointResult(np.full_like(r.P, np.nan), r.A, r.W, r.state, r.work)
        return r


@pytest.mark.timeout(120)
def test_failing_dispatched_rves_reach_the_qc_solver_and_the_worker_stops():
    _need_two_ranks()
    system = _vacancy_system()
    model = _FailsWhenStrained(rve_point_model(system, size=(2, 1, 1), vacancy=True))
    failures = [(0.07, r"Gauss point \d+ .*worker rank 1.*did not converge \(injected\)"),
                (0.05, r"refused a deformation gradient.*Gauss point \d+ .*worker rank 1"),
                (0.04, "returned NaN/inf at the Gauss point")]

    def macro(layout):
        with DispatchedMaterial(layout, model, **_DISPATCH) as material:
            qc = QCModel(system, "qcf", material=material)
            for strain, message in failures:
                F_bad = np.diag([1.0 + strain, 1.0, 1.0])
                with pytest.raises(CalculationFailed, match=message):
                    relax(qc, system.homogeneous(F_bad), tol=1e-8)
                # nothing was committed: every point keeps its initial (unrelaxed) state
                assert not any(s.any() for s in material.committed_states)
            # the same worker then serves a relaxation below the limits
            U, rep = relax(qc, system.homogeneous(_F_LOAD), tol=1e-8)
            assert rep.converged
            relaxed = [s.copy() for s in material.committed_states]
            assert all(np.abs(s).max() > 1e-6 for s in relaxed)
            # a failure after it keeps the committed (relaxed) states, bit for bit
            with pytest.raises(CalculationFailed, match=failures[0][1]):
                relax(qc, U + system.homogeneous(np.diag([1.07, 1.0, 1.0])), tol=1e-8)
            assert all(np.array_equal(a, b)
                       for a, b in zip(material.committed_states, relaxed, strict=True))

    _, stats = _with_one_worker(model, macro)
    assert stats["chunks"] > 0  # the worker served, then returned: the material stopped it


@pytest.mark.timeout(60)
def test_two_macro_ranks_need_a_replicated_material():
    """Refuse, on both ranks and before any work, a material of two macro ranks not replicated.

    The QC runs whole on every macro rank; such a material expects each to pass its own points.
    """
    _need_two_ranks()
    system = _patch_system(2, "qcf")
    layout = split_world(MPI.COMM_WORLD, 0)
    try:
        with DispatchedMaterial(layout, rve_point_model(system)) as material:
            with pytest.raises(InputError, match="replicated=True.*n_workers=1"):
                QCModel(system, "qcf", material=material)
    finally:
        layout.free()


@pytest.mark.timeout(180)
def test_two_macro_ranks_share_the_gauss_points_and_give_the_serial_bits():
    """Two macro ranks with ``replicated=True`` give bitwise the serial relaxation.

    ``split_world(comm, 0)``: both ranks run the whole QC and each relaxes half of the RVEs.
    """
    _need_two_ranks()
    comm = MPI.COMM_WORLD
    system = _vacancy_system()
    rve = rve_point_model(system, size=(2, 1, 1), vacancy=True)
    serial, serial_error = _guarded(_relax_with, system, PointMaterial(rve))
    layout = split_world(comm, 0)
    try:
        with DispatchedMaterial(layout, rve, replicated=True) as material:
            assert isinstance(material.farm, LocalFarm)
            shared, error = _guarded(_relax_with, system, material)
            n_points = len(material.F_qij) if material.F_qij is not None else 0
            mine = material._block(n_points)
    finally:
        layout.free()
    for e in (serial_error, error):
        if e is not None:
            raise e
    assert shared["report"]["converged"]
    _assert_same_bits(shared, serial)
    blocks = comm.allgather(mine)
    assert blocks[0] == (0, n_points // 2) and blocks[1] == (n_points // 2, n_points)
    everything = comm.allgather(shared)  # the same bits on both ranks
    _assert_same_bits(everything[0], everything[1])
