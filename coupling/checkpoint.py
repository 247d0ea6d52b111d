"""The checkpoint of an FE² run: the last converged step, written atomically, read on any ranks.

One file for the whole run, ``<output folder>/checkpoint.npz`` (:data:`FILE_NAME`), replaced
after every converged load increment. It holds what a restart needs to continue exactly as the
run would have (``fe2qc run problem.toml --restart DIR``, :class:`coupling.driver.Simulation`):

* ``u``: the displacement of every node (dof), keyed by the node's reference coordinates
  ``x_dofs`` (the dof numbering depends on the partition, the coordinates do not);
* ``material_state``: the committed state of every Gauss point (e.g. the relaxed internal
  displacements of an RVE), keyed by ``point_ids`` = (original input cell index, point index
  in the cell) (:meth:`fe2.quadrature.QuadratureLayout.original_point_ids`);
* ``meta``: one JSON document: the format and its :data:`VERSION`, the load factor, the load
  step and the load stepper after the increment (so a restart takes the increments an
  uninterrupted run takes, cut-backs included), the Newton iterations of every increment so
  far, the number of restarts, and the *identity* of the problem (:func:`problem_identity`:
  mesh, material, boundary conditions, load mode and value, element degree, with a SHA-256 of
  the mesh and potential files).

Both tables are sorted (coordinates lexicographically after rounding to 1e-9 of the mesh's
extent, point ids by cell then point), so the order of the rows does not depend on the number
of ranks that wrote the file (the coordinates themselves may differ in their last bits). The
mesh ranks gather their owned rows to rank 0, which writes a temporary file and renames it
over the old one (atomic on a POSIX file system); Ctrl-C is held back meanwhile
(:func:`coupling.interrupts.deferred_interrupts`), so a killed or interrupted run leaves the
previous complete checkpoint, never a torn one.

On restart rank 0 checks the format, the version and the identity before any work
(:func:`check_checkpoint`, collective); every mesh rank then reads the file
(:func:`load_checkpoint`) and takes its own rows: its dofs by nearest coordinates (a match
farther than a tiny tolerance is refused: another mesh), its Gauss points by id (a missing one
is refused). Values are copied, not recomputed, so a restart on the same
ranks continues bitwise, and on other ranks to round-off of the solver only.

Limitations: rank 0 holds the whole gathered checkpoint while writing and every rank reads the
whole file on restart (fine to millions of dofs and points; a parallel HDF5 writer would be
needed beyond); the material state must have the same size at every point.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from fe2qc.errors import InputError

__all__ = ["FILE_NAME", "FORMAT", "VERSION", "Checkpoint", "problem_identity",
           "write_checkpoint", "check_checkpoint", "load_checkpoint", "identity_differences"]

#: the checkpoint's file name in the output folder
FILE_NAME = "checkpoint.npz"
#: what the file is (``meta["format"]``)
FORMAT = "fe2qc FE2 checkpoint"
#: the layout of the file; a reader refuses other versions
VERSION = 1


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return os.fspath(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def problem_identity(cfg) -> dict[str, Any]:
    """What must be the same for a checkpoint to belong to the problem of ``cfg``.

    The mesh (generator and parameters, or the file and its SHA-256), the material (every key
    of ``[material]``, the potential file's SHA-256), the boundary conditions, the load mode
    and value, and the element degree. Not in it (free to change on restart): the load steps
    still to come, the Newton settings, the number of ranks and workers, the output options.
    """
    from atomistic.potentials.factory import find_potential_file
    from coupling.config import resolve_potential

    mesh: dict[str, Any] = {"source": cfg.mesh.describe()}
    if cfg.mesh.file is not None:
        mesh["sha256"] = _sha256(cfg.mesh.file)
    else:
        mesh["parameters"] = _jsonable(dict(cfg.mesh.parameters))
    material = _jsonable(dataclasses.asdict(cfg.material))
    spec = cfg.material.potential
    if cfg.material.type != "neo-hookean" and isinstance(spec, str):
        spec = resolve_potential(spec, cfg.source)
        try:
            path = find_potential_file(spec)
        except InputError:
            path = None
        if path is not None:
            material["potential"] = os.path.basename(spec)
            material["potential_sha256"] = _sha256(path)
    return {
        "mesh": mesh,
        "material": material,
        "boundary": [_jsonable(dataclasses.asdict(b)) for b in cfg.boundary_conditions()],
        "loading": {"mode": cfg.loading.mode, "value": float(cfg.loading.value)},
        "degree": int(cfg.solver.degree),
    }


def identity_differences(saved: dict, now: dict, where: str = "") -> list[str]:
    """Name every entry where two :func:`problem_identity` documents differ.

    Returns:
        Lines like ``material.vacancy: True in the checkpoint, False now``.
    """
    out: list[str] = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        name = f"{where}.{key}" if where else key
        if isinstance(a, dict) and isinstance(b, dict):
            out += identity_differences(a, b, name)
        elif a != b:
            out.append(f"{name}: {a!r} in the checkpoint, {b!r} now")
    return out


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: its ``meta`` document and the sorted tables.

    Attributes:
        meta: the JSON document (see the module docstring).
        x_dofs: (n, gdim) reference coordinates of the displacement's nodes.
        u: (n, block size) displacements at those nodes (Å).
        point_ids: (m, 2) (original cell index, point index), sorted.
        material_state: (m, state size) committed states in that order, or None.
    """

    meta: dict[str, Any]
    x_dofs: np.ndarray
    u: np.ndarray
    point_ids: np.ndarray
    material_state: np.ndarray | None

    def displacement_for(self, x_local: np.ndarray) -> np.ndarray:
        """The saved displacement at this rank's dofs (one row of ``u`` per coordinate).

        Raises:
            InputError: a coordinate has no saved node within round-off (another mesh).
        """
        from scipy.spatial import cKDTree

        x_local = np.asarray(x_local, dtype=float)[:, : self.x_dofs.shape[1]]
        if len(x_local) == 0:
            return np.zeros((0, self.u.shape[1]))
        extent = float(np.ptp(self.x_dofs, axis=0).max()) if len(self.x_dofs) else 0.0
        tol = 1e-9 * max(extent, 1.0)
        dist, idx = cKDTree(self.x_dofs).query(x_local)
        bad = dist > tol
        if bad.any():
            raise InputError(f"the checkpoint's mesh differs: {int(bad.sum())} nodes of this "
                             f"mesh (e.g. at {x_local[bad][0].tolist()} Å) are not in it "
                             f"(nearest saved node {float(dist[bad].max()):.3g} Å away)")
        return self.u[idx]

    def states_for(self, point_ids: np.ndarray) -> np.ndarray | None:
        """The saved states of these Gauss points (rows of ``point_ids``), or None if none.

        Raises:
            InputError: a point is not in the checkpoint (another mesh or element degree).
        """
        if self.material_state is None:
            return None
        keys = _keys(self.point_ids)
        want = _keys(np.asarray(point_ids, dtype=np.int64).reshape(-1, 2))
        at = np.searchsorted(keys, want)
        at = np.minimum(at, max(len(keys) - 1, 0))
        missing = (len(keys) == 0) | (keys[at] != want) if len(want) else np.zeros(0, bool)
        if np.any(missing):
            first = np.asarray(point_ids).reshape(-1, 2)[np.argmax(missing)]
            raise InputError(f"the checkpoint has no state for {int(np.sum(missing))} Gauss "
                             f"points of this mesh (e.g. cell {int(first[0])}, point "
                             f"{int(first[1])}): another mesh or element degree")
        return self.material_state[at]


def _keys(ids: np.ndarray) -> np.ndarray:
    """One sortable int64 per (cell, point) row (points per cell < 2**16)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1, 2)
    return ids[:, 0] * 65536 + ids[:, 1]


def _gather_rows(comm, *arrays: np.ndarray | None) -> list[np.ndarray | None]:
    """Concatenate each array's rows over the ranks on rank 0 (None elsewhere)."""
    got = comm.gather(arrays, root=0)
    if comm.rank != 0:
        return [None] * len(arrays)
    out = []
    for i in range(len(arrays)):
        parts = [g[i] for g in got if g[i] is not None]  # None: a rank without rows
        out.append(np.concatenate(parts) if parts else None)
    return out


def write_checkpoint(path: str | os.PathLike, comm, *, x_dofs: np.ndarray, u: np.ndarray,
                     point_ids: np.ndarray, material_state: np.ndarray | None,
                     meta: dict[str, Any]) -> None:
    """Gather the owned rows of every rank and write the checkpoint; collective over ``comm``.

    Args:
        path: the checkpoint file (replaced atomically).
        comm: the mesh ranks.
        x_dofs: this rank's *owned* nodes' coordinates.
        u: their displacements (one row per node).
        point_ids: this rank's owned Gauss points (original cell index, point index).
        material_state: their committed states (None: the material has no state).
        meta: the JSON document (rank 0's is written); ``format`` and ``version`` are added.
    """
    from coupling.interrupts import deferred_interrupts

    x, uu, ids, st = _gather_rows(comm, np.asarray(x_dofs, float), np.asarray(u, float),
                                  np.asarray(point_ids, np.int64), material_state)
    if comm.rank != 0:
        return
    # sorted by coordinates rounded to 1e-9 of the mesh's extent: a node's coordinates differ
    # in the last bits between partitions (e.g. ±4e-15 for 0), which must not change the order
    extent = float(np.ptp(x, axis=0).max()) if len(x) else 1.0
    order = np.lexsort(np.round(x / max(extent, 1e-300), 9).T[::-1])
    by_id = np.argsort(_keys(ids), kind="stable")
    doc = dict(meta, format=FORMAT, version=VERSION)
    arrays = {"x_dofs": x[order], "u": uu[order], "point_ids": ids[by_id],
              "meta": np.array(json.dumps(doc))}
    if st is not None:
        arrays["material_state"] = st[by_id]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with deferred_interrupts():
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _read_meta(path: Path) -> dict[str, Any]:
    """The checkpoint's meta document; InputError if it is not a checkpoint of this version."""
    if not path.is_file():
        raise InputError(f"no checkpoint to restart from: {os.fspath(path)} does not exist (is "
                         f"the folder the output folder of an FE² run with [output] checkpoint "
                         f"= true that converged at least one load step?)")
    try:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"{os.fspath(path)} is not a readable fe2qc checkpoint "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{os.fspath(path)} is not an fe2qc FE² checkpoint")
    if meta.get("version") != VERSION:
        raise InputError(f"{os.fspath(path)} is a checkpoint of format version "
                         f"{meta.get('version')}; this fe2qc reads version {VERSION} only "
                         f"(restart it with the fe2qc version that wrote it)")
    for key, (kind, ok) in _META_ENTRIES.items():
        if key not in meta or not ok(meta[key]):
            raise InputError(f"{os.fspath(path)} is a damaged fe2qc checkpoint: its meta entry "
                             f"{key!r} is {meta.get(key, '<absent>')!r}, expected {kind}; "
                             f"restart from an intact copy or start a new run")
    return meta


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _finite(v: Any) -> bool:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond a double
        return False


#: the meta entries a restart reads: name -> (what it must be, check)
_META_ENTRIES = {
    "identity": ("a table (the problem's identity)", lambda v: isinstance(v, dict)),
    "load_factor": ("a finite number", _finite),
    "step": ("an integer >= 0", _count),
    "increments": ("an integer >= 0", _count),
    "restarts": ("an integer >= 0", _count),
    "mesh_ranks": ("an integer >= 0", _count),
    "newton_iterations": ("a list of integers >= 0",
                          lambda v: isinstance(v, list) and all(_count(i) for i in v)),
    "stepper": ("a table of finite numbers value, target, increment, max_increment",
                lambda v: isinstance(v, dict) and all(
                    _finite(v.get(k)) for k in ("value", "target", "increment",
                                                "max_increment"))),
}


def check_checkpoint(path: str | os.PathLike, comm, identity: dict[str, Any]) -> dict[str, Any]:
    """Check that ``path`` is a checkpoint of the problem ``identity``; collective over ``comm``.

    Rank 0 reads the file's meta document (exists, format, version, same problem) and every
    rank raises the same :class:`InputError` if a check fails, before any work.

    Returns:
        The checkpoint's meta document (on every rank).

    Raises:
        InputError: no checkpoint, another format or version, or another problem (the message
            lists what differs).
    """
    path = Path(path)
    out: tuple[str | None, dict | None] = (None, None)
    if comm.rank == 0:
        try:
            meta = _read_meta(path)
            diff = identity_differences(meta.get("identity", {}), _jsonable(identity))
            if diff:
                raise InputError(
                    f"the checkpoint {os.fspath(path)} belongs to another problem; it cannot "
                    f"be continued with this problem file. Differences: " + "; ".join(diff[:8])
                    + (f" (and {len(diff) - 8} more)" if len(diff) > 8 else "")
                    + ". Restart with the problem file of that run, or start a new run in "
                    "another output folder")
            out = (None, meta)
        except InputError as exc:
            out = (str(exc), None)
    err, meta = comm.bcast(out, root=0)
    if err is not None:
        raise InputError(err)
    return meta


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the whole checkpoint (after :func:`check_checkpoint`); local to the calling rank.

    Raises:
        InputError: the file is unreadable, or its tables are missing, of the wrong shape or
            kind, or hold NaN or inf (a damaged checkpoint).
    """
    where = os.fspath(path)
    try:
        with np.load(Path(path)) as data:
            meta = json.loads(str(data["meta"]))
            tables = {k: data[k] for k in ("x_dofs", "u", "point_ids")}
            state = data["material_state"] if "material_state" in data.files else None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"{where} is not a readable fe2qc checkpoint "
                         f"({type(exc).__name__}: {exc})") from None
    x, u, ids = tables["x_dofs"], tables["u"], tables["point_ids"]

    def damaged(what: str) -> InputError:
        return InputError(f"{where} is a damaged fe2qc checkpoint: {what}; restart from an "
                          "intact copy or start a new run")

    def real(a: np.ndarray) -> bool:
        return a.ndim == 2 and a.dtype.kind in "fiu" and bool(np.isfinite(a).all())

    if not (real(x) and 1 <= x.shape[1] <= 3):
        raise damaged(f"'x_dofs' has shape {x.shape} and kind {x.dtype}, expected finite "
                      "(nodes, 1 to 3) coordinates")
    if not (real(u) and len(u) == len(x) and u.shape[1] >= 1):
        raise damaged(f"'u' has shape {u.shape} and kind {u.dtype}, expected finite "
                      f"({len(x)}, components) displacements")
    if not (ids.ndim == 2 and ids.shape[1] == 2 and ids.dtype.kind in "iu"
            and (ids >= 0).all() and (ids[:, 1] < 65536).all()):
        raise damaged(f"'point_ids' has shape {ids.shape} and kind {ids.dtype}, expected "
                      "(points, 2) non-negative integers (cell, point < 65536)")
    if state is not None and not (real(state) and len(state) == len(ids)):
        raise damaged(f"'material_state' has shape {state.shape} and kind {state.dtype}, "
                      f"expected finite ({len(ids)}, state size) values")
    return Checkpoint(meta=meta, x_dofs=x, u=u, point_ids=ids, material_state=state)
