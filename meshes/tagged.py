"""A mesh with named boundary parts (:class:`TaggedMesh`), and reading one from a gmsh file.

Every mesh source of ``fe2qc run`` (a generator of :mod:`meshes.generators`, or a ``[mesh]
file``) returns a :class:`TaggedMesh`: the DOLFINx mesh, its facet markers and the names of
the boundary parts (name -> marker), so that boundary conditions can be given by name.
A gmsh ``.msh`` file names its boundary parts with the names of its physical groups of
facets (dimension 1 in 2D); :func:`msh_boundary_names` reads them without building the mesh,
to check a problem file before any work. :func:`pulled_boundaries` writes the usual default
loading of a generator by boundary name: two roller conditions and one edge pulled.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fe2qc.mpi
from fe2qc.errors import InputError

__all__ = ["TaggedMesh", "read_msh", "msh_boundary_names", "pulled_boundaries"]


@dataclass
class TaggedMesh:
    """A DOLFINx mesh with its facet markers and the names of its boundary parts.

    Attributes:
        mesh: the DOLFINx mesh.
        facet_tags: the facet ``MeshTags`` (None when the mesh has none).
        boundaries: boundary name -> facet marker in ``facet_tags``.
    """

    mesh: Any
    facet_tags: Any
    boundaries: dict[str, int] = field(default_factory=dict)


def read_msh(comm, path: str | os.PathLike, *, gdim: int = 2,
             unnamed: dict[str, int] | None = None) -> TaggedMesh:
    """Read a gmsh ``.msh`` file (rank 0 reads, DOLFINx distributes).

    Args:
        comm: MPI communicator of the mesh.
        path: the ``.msh`` file.
        gdim: geometric dimension of the mesh.
        unnamed: boundary names to assume when the file names none of its facet groups.

    Returns:
        The mesh; its boundary names are the names of the file's physical groups of facets
        (or ``unnamed`` when it has none).

    Raises:
        InputError: the file does not exist (checked on every rank before any collective).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"mesh file '{p}' not found (from [mesh] file = ...)")
    fe2qc.mpi.bootstrap()
    from dolfinx.io import gmsh as dgmsh

    data = dgmsh.read_from_msh(p, comm, 0, gdim=gdim)
    fdim = data.mesh.topology.dim - 1
    names = {name: int(group.tag) for name, group in data.physical_groups.items()
             if name and group.dim == fdim}
    return TaggedMesh(data.mesh, data.facet_tags, names or dict(unnamed or {}))


_PHYSICAL_NAMES = re.compile(rb"\$PhysicalNames\s*\n(.*?)\$EndPhysicalNames", re.DOTALL)
_NAME_LINE = re.compile(r'^\s*(\d+)\s+(-?\d+)\s+"(.*)"\s*$')


def msh_boundary_names(path: str | os.PathLike, *, fdim: int = 1) -> dict[str, int]:
    """The named physical groups of dimension ``fdim`` in a gmsh ``.msh`` file: name -> tag.

    Reads the file's ``$PhysicalNames`` section (text in both the ASCII and the binary
    format); an empty dict when there is none. Neither gmsh nor MPI is needed.
    """
    with open(path, "rb") as fh:
        match = _PHYSICAL_NAMES.search(fh.read())
    if match is None:
        return {}
    names = {}
    for line in match.group(1).decode("latin-1").splitlines()[1:]:
        m = _NAME_LINE.match(line)
        if m and int(m.group(1)) == fdim and m.group(3):
            names[m.group(3)] = int(m.group(2))
    return names


def pulled_boundaries(mode: str, *, fix_x: str, fix_y: str, pulled: str,
                      axis: int) -> list[dict]:
    """Return ``[[boundary]]`` entries that hold two boundary parts and pull a third.

    u_x = 0 on ``fix_x``, u_y = 0 on ``fix_y``, and on ``pulled`` a nominal traction of unit
    component ``axis`` (any mode but ``"displacement"``) or, for ``"displacement"``, the
    displacement component ``axis`` = 1 (``loaded = true``); both are multiplied by the
    ``[loading]`` value and the load factor.

    Args:
        mode: the ``[loading]`` mode.
        fix_x: name of the boundary part with u_x = 0.
        fix_y: name of the boundary part with u_y = 0.
        pulled: name of the loaded boundary part.
        axis: the direction of the pull, 0 (x) or 1 (y).

    Returns:
        A list of tables as a problem file's ``[[boundary]]`` array would hold them.
    """
    if mode == "displacement":
        load = {"name": pulled, f"u_{'xy'[axis]}": 1.0, "loaded": True}
    else:
        load = {"name": pulled, "traction": [1.0 if i == axis else 0.0 for i in range(2)]}
    return [{"name": fix_x, "u_x": 0.0}, {"name": fix_y, "u_y": 0.0}, load]
