"""A plain rectangle of triangles with its four sides named, for homogeneous test problems.

:func:`rectangle` meshes ``[0, width] x [0, height]`` (Å) with ``nx x ny`` squares cut into
triangles and names its sides ``left`` (x = 0), ``right`` (x = width), ``bottom`` (y = 0)
and ``top`` (y = height). :func:`uniaxial_boundaries` is its default loading, a bar pulled
along x::

        y ^        top (free)
          |_____________________
          |                     |
    left  |                     | right: traction (1, 0) or u_x = 1,
    u_x=0 |                     |        times the [loading] value
          |_____________________|--> x
               bottom: u_y = 0

Under it every homogeneous material deforms homogeneously (uniaxial stress in plane
strain), which P1 elements represent exactly: a check of a whole run against a closed-form
answer.
"""

from __future__ import annotations

import fe2qc.mpi
from fe2qc.checks import require_positive
from fe2qc.errors import InputError
from meshes.tagged import TaggedMesh, pulled_boundaries

__all__ = ["SIDES", "rectangle", "check_parameters", "uniaxial_boundaries"]

#: facet markers of :func:`rectangle`
SIDES = {"left": 1, "right": 2, "bottom": 3, "top": 4}


def check_parameters(*, width: float, height: float, nx: int, ny: int) -> None:
    """Check the parameters of :func:`rectangle` (positive sizes and cell counts).

    Raises:
        InputError: a size that is not a positive number, a cell count that is not a
            positive integer.
    """
    for name, v in (("width", width), ("height", height)):
        require_positive(f"'{name}'", v, unit="Å")
    for name, v in (("nx", nx), ("ny", ny)):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise InputError(f"'{name}' must be a positive integer, got {v!r}")


def uniaxial_boundaries(mode: str) -> list[dict]:
    """The default boundary conditions of :func:`rectangle`, as ``[[boundary]]`` entries.

    u_x = 0 on the left, u_y = 0 on the bottom, and on the right a nominal traction
    ``(1, 0)`` (mode ``"traction"``) or a displacement u_x = 1 (``"displacement"``), both
    times the ``[loading]`` value and the load factor.

    Args:
        mode: the ``[loading]`` mode.

    Returns:
        A list of tables as a problem file's ``[[boundary]]`` array would hold them.
    """
    return pulled_boundaries(mode, fix_x="left", fix_y="bottom", pulled="right", axis=0)


def rectangle(comm, *, width: float, height: float, nx: int, ny: int) -> TaggedMesh:
    """The rectangle ``[0, width] x [0, height]`` of ``2 nx ny`` triangles.

    Args:
        comm: MPI communicator of the mesh.
        width: side length along x (Å).
        height: side length along y (Å).
        nx: squares along x, each cut into two triangles.
        ny: squares along y.

    Returns:
        The mesh, its facet markers and their names (:data:`SIDES`).

    Raises:
        InputError: a bad parameter (checked on every rank before any collective).
    """
    try:
        check_parameters(width=width, height=height, nx=nx, ny=ny)
    except InputError as exc:
        raise InputError(f"rectangle: {exc}") from None
    fe2qc.mpi.bootstrap()
    import numpy as np
    from dolfinx import mesh as dmesh

    W, H = float(width), float(height)
    msh = dmesh.create_rectangle(comm, [[0.0, 0.0], [W, H]], [nx, ny], dmesh.CellType.triangle)
    fdim = msh.topology.dim - 1
    tol = 1e-9 * max(W, H)
    sides = {"left": lambda x: np.abs(x[0]) <= tol,
             "right": lambda x: np.abs(x[0] - W) <= tol,
             "bottom": lambda x: np.abs(x[1]) <= tol,
             "top": lambda x: np.abs(x[1] - H) <= tol}
    facets, markers = [], []
    for name, where in sides.items():
        f = dmesh.locate_entities_boundary(msh, fdim, where)
        facets.append(f)
        markers.append(np.full(len(f), SIDES[name], dtype=np.int32))
    facets_f = np.concatenate(facets).astype(np.int32)
    markers_f = np.concatenate(markers)
    order = np.argsort(facets_f)
    tags = dmesh.meshtags(msh, fdim, facets_f[order], markers_f[order])
    return TaggedMesh(msh, tags, dict(SIDES))
