"""The mesh sources a problem file can name: generators by name, and gmsh files.

A problem file's ``[mesh]`` section names a generator (``generator = "cracked_plate"``) and its
parameters, or a gmsh file (``file = "plate.msh"``). Each source is a :class:`MeshGenerator`:
how to build the mesh (a :class:`~meshes.tagged.TaggedMesh`, whose boundary parts have
names), the parameters it takes with their kinds and defaults, the names of its boundary
parts, its default boundary conditions (``[[boundary]]`` entries, used when the problem file
gives none) and, for a cracked geometry, its K calibration (K_I per unit load of those
defaults). ``coupling.config`` validates a problem file against this registry and
``coupling.driver`` builds the problem from it, so a new geometry is a mesh function and an
entry in :data:`GENERATORS`, not an edit of the driver.

Registered: ``cracked_plate`` (:func:`meshes.crack.cracked_plate`, the quarter model of a
centre-cracked plate; K calibration :func:`meshes.crack.center_crack_K`) and ``rectangle``
(:func:`meshes.rectangle.rectangle`, a bar pulled along x). :data:`MESH_FILE` reads a gmsh
file: its boundary names are the names of its physical groups of facets; a file without
named facet groups is taken to carry the markers of ``cracked_plate``
(:data:`meshes.crack.TAGS`), and its default boundary conditions are the quarter model's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshes import crack, rectangle
from meshes.tagged import TaggedMesh, msh_boundary_names, read_msh

__all__ = ["MeshGenerator", "GENERATORS", "MESH_FILE", "PARAMETER_KINDS"]

#: the kinds a generator parameter may have (``coupling.config`` checks the values)
PARAMETER_KINDS = ("posfloat", "posint", "path")


@dataclass(frozen=True)
class MeshGenerator:
    """A mesh source of a problem file and what it knows about its boundary.

    Attributes:
        name: the value of ``[mesh] generator`` (``"file"`` for :data:`MESH_FILE`).
        build: ``build(comm, **parameters) -> TaggedMesh``.
        parameters: parameter name -> ``(kind, default)``; kind is one of
            :data:`PARAMETER_KINDS` (``"posfloat"``: a positive number, ``"posint"``: a
            positive integer).
        boundary_names: ``boundary_names(**parameters)``: the names of the boundary parts
            the built mesh will have (known before it is built).
        default_boundaries: ``default_boundaries(mode)``: the ``[[boundary]]`` entries used
            when the problem file gives none, for a ``[loading]`` mode; None: the problem file
            must give them.
        check: ``check(**parameters)`` raises :class:`~fe2qc.errors.InputError` on parameters
            that are each valid but not together (message without a prefix); or None.
        stress_intensity: ``stress_intensity(**parameters)``: K_I (eV/Å³ √Å) of the default
            boundary conditions at unit load value (a traction of 1 eV/Å³), the calibration
            of ``[loading] mode = "K"``; None: the geometry has none and mode K is refused.
        description: one line for messages and listings.
    """

    name: str
    build: Callable[..., TaggedMesh]
    parameters: dict[str, tuple[str, Any]]
    boundary_names: Callable[..., tuple[str, ...]]
    default_boundaries: Callable[[str], list[dict]] | None = None
    check: Callable[..., None] | None = None
    stress_intensity: Callable[..., float] | None = None
    description: str = ""

    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter (None for a required one)."""
        return {name: default for name, (_kind, default) in self.parameters.items()}


def _cracked_plate_K(*, crack_length: float, width: float, **_: Any) -> float:
    return crack.center_crack_K(1.0, crack_length, width)


def _file_boundary_names(*, file: str | os.PathLike) -> tuple[str, ...]:
    p = Path(file)
    names = msh_boundary_names(p) if p.is_file() else {}
    return tuple(names or crack.TAGS)


def _read_file(comm, *, file: str | os.PathLike) -> TaggedMesh:
    return read_msh(comm, file, unnamed=crack.TAGS)


GENERATORS: dict[str, MeshGenerator] = {
    "cracked_plate": MeshGenerator(
        name="cracked_plate",
        build=crack.cracked_plate,
        parameters={"width": ("posfloat", 2000.0), "height": ("posfloat", 2000.0),
                    "crack_length": ("posfloat", 200.0), "tip_size": ("posfloat", 4.0),
                    "far_size": ("posfloat", 400.0), "grading": ("posfloat", 0.3)},
        boundary_names=lambda **_: tuple(crack.TAGS),
        default_boundaries=crack.quarter_model_boundaries,
        check=crack.check_parameters,
        stress_intensity=_cracked_plate_K,
        description="quarter model of a centre-cracked plate (meshes.crack.cracked_plate)",
    ),
    "rectangle": MeshGenerator(
        name="rectangle",
        build=rectangle.rectangle,
        parameters={"width": ("posfloat", 100.0), "height": ("posfloat", 100.0),
                    "nx": ("posint", 4), "ny": ("posint", 4)},
        boundary_names=lambda **_: tuple(rectangle.SIDES),
        default_boundaries=rectangle.uniaxial_boundaries,
        description="a rectangle of triangles, sides left/right/bottom/top "
                    "(meshes.rectangle.rectangle)",
    ),
}

#: a ``[mesh] file``: a gmsh ``.msh`` file whose physical groups of facets name its boundary
MESH_FILE = MeshGenerator(
    name="file",
    build=_read_file,
    parameters={"file": ("path", None)},
    boundary_names=_file_boundary_names,
    default_boundaries=crack.quarter_model_boundaries,
    description="a gmsh .msh file (boundary names: its physical groups of facets)",
)
