"""Meshes of pre-cracked plates (gmsh), for mode-I fracture problems. Lengths in Å.

:func:`cracked_plate` meshes one quarter of a centre-cracked plate of width ``2 width``,
height ``2 height`` with a crack of length ``2 crack_length`` along x (the crack lies
on y = 0, the tip at ``(crack_length, 0)``)::

        y ^   top (tag 1): remote traction / displacement
          |___________________________
          |                           |
    left  |                           | right (tag 4)
    (3):  |                           |
    u_x=0 |            tip            |
          |==========*----------------|--> x
          crack face (5)   ligament (2): u_y = 0 (symmetry)

The crack faces are a free boundary, the ligament ahead of the tip and the left edge
(the plate's centre line) carry symmetry conditions. For a crack along an axis of cubic
(orthotropic) symmetry and ``width, height >> crack_length`` the mode-I stress intensity
is the isotropic handbook value ``K_I = sigma sqrt(pi a)`` (the infinite-plate result
does not depend on the elastic constants); :func:`center_crack_K` adds Feddersen's
finite-width factor ``sqrt(sec(pi a / 2W))``.

The mesh is graded towards the tip with a gmsh ``Distance`` + ``Threshold`` field: the
element size grows linearly from ``tip_size`` at the tip to ``far_size`` with slope
``grading``. Only rank 0 runs gmsh; DOLFINx distributes the mesh.

:func:`quarter_model_boundaries` gives the quarter model's boundary conditions (the two
symmetry conditions and the load on the top) in the vocabulary of a problem file's
``[[boundary]]`` entries; :mod:`meshes.generators` registers them as the defaults of the
``cracked_plate`` generator, with :func:`center_crack_K` as its K calibration.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import fe2qc.mpi
from fe2qc.checks import require_positive
from fe2qc.errors import InputError
from meshes.tagged import TaggedMesh, pulled_boundaries

__all__ = ["TAGS", "cracked_plate", "center_crack_K", "check_parameters",
           "quarter_model_boundaries"]

#: facet markers of :func:`cracked_plate`
TAGS = {"top": 1, "ligament": 2, "left": 3, "right": 4, "crack": 5}


def center_crack_K(sigma: float, crack_length: float, width: float) -> float:
    """Mode-I K of a centre crack (half length a) in a plate of half width W under remote sigma.

    Feddersen's secant formula, ``sigma sqrt(pi a) sqrt(sec(pi a / 2W))``: within 0.3 % of the
    exact isotropic value for ``a / W < 0.7`` (Tada, Paris & Irwin, *The Stress Analysis of
    Cracks Handbook*, 2.1). Units follow the inputs (eV/Å³ and Å give eV/Å³ √Å).
    """
    if not 0 < crack_length < width:
        raise InputError(f"need 0 < crack_length < width, got {crack_length}, {width}")
    return sigma * math.sqrt(math.pi * crack_length) * math.sqrt(
        1.0 / math.cos(math.pi * crack_length / (2.0 * width)))


def check_parameters(*, width: float, height: float, crack_length: float, tip_size: float,
                     far_size: float, grading: float = 0.3) -> None:
    """Check the relations between the parameters of :func:`cracked_plate`.

    Raises:
        InputError: ``crack_length >= width`` or ``tip_size > far_size`` (the message names
            the parameters, without a prefix).
    """
    if crack_length >= width:
        raise InputError(f"'crack_length' ({crack_length}) must be smaller than 'width' "
                         f"({width})")
    if tip_size > far_size:
        raise InputError(f"'tip_size' ({tip_size}) must not exceed 'far_size' ({far_size})")


def _check(width, height, crack_length, tip_size, far_size, grading):
    for name, v in (("width", width), ("height", height), ("crack_length", crack_length),
                    ("tip_size", tip_size), ("far_size", far_size), ("grading", grading)):
        require_positive(f"cracked_plate: '{name}'", v)
    try:
        check_parameters(width=width, height=height, crack_length=crack_length,
                         tip_size=tip_size, far_size=far_size, grading=grading)
    except InputError as exc:
        raise InputError(f"cracked_plate: {exc}") from None


def quarter_model_boundaries(mode: str) -> list[dict]:
    """The boundary conditions of the quarter model, as ``[[boundary]]`` entries.

    u_x = 0 on the left edge (the plate's centre line) and u_y = 0 on the ligament ahead of
    the tip (symmetry); on the top a nominal traction ``(0, 1)`` (modes ``"K"`` and
    ``"traction"``) or a displacement u_y = 1 (``"displacement"``), both times the
    ``[loading]`` value and the load factor.

    Args:
        mode: the ``[loading]`` mode.

    Returns:
        A list of tables as a problem file's ``[[boundary]]`` array would hold them.
    """
    return pulled_boundaries(mode, fix_x="left", fix_y="ligament", pulled="top", axis=1)


def cracked_plate(comm, *, width: float, height: float, crack_length: float, tip_size: float,
                  far_size: float, grading: float = 0.3, path: str | os.PathLike | None = None):
    """Quarter model of a centre-cracked plate, triangles graded towards the tip.

    Args:
        comm: MPI communicator of the mesh.
        width: half width of the plate (Å).
        height: half height of the plate (Å).
        crack_length: half length of the crack (Å); the tip is at ``(crack_length, 0)``.
        tip_size: element size at the tip (Å).
        far_size: largest element size (Å).
        grading: growth of the element size per unit distance from the tip.
        path: also write the gmsh model to this ``.msh`` file (rank 0).

    Returns:
        The mesh, its facet markers and their names (:data:`TAGS`).
    """
    _check(width, height, crack_length, tip_size, far_size, grading)
    fe2qc.mpi.bootstrap()
    import gmsh
    from dolfinx.io import gmsh as dgmsh

    own = not gmsh.isInitialized()
    if own:
        gmsh.initialize(interruptible=False)
    try:
        gmsh.model.add("cracked_plate")
        if comm.rank == 0:
            gmsh.option.setNumber("General.Terminal", 0)
            geo = gmsh.model.geo
            a, W, H = float(crack_length), float(width), float(height)
            p = [geo.addPoint(0, 0, 0), geo.addPoint(a, 0, 0), geo.addPoint(W, 0, 0),
                 geo.addPoint(W, H, 0), geo.addPoint(0, H, 0)]
            crack = geo.addLine(p[0], p[1])
            ligament = geo.addLine(p[1], p[2])
            right = geo.addLine(p[2], p[3])
            top = geo.addLine(p[3], p[4])
            left = geo.addLine(p[4], p[0])
            loop = geo.addCurveLoop([crack, ligament, right, top, left])
            surface = geo.addPlaneSurface([loop])
            geo.synchronize()
            for name, line in (("top", top), ("ligament", ligament), ("left", left),
                               ("right", right), ("crack", crack)):
                gmsh.model.addPhysicalGroup(1, [line], TAGS[name], name=name)
            gmsh.model.addPhysicalGroup(2, [surface], 1, name="plate")
            field = gmsh.model.mesh.field
            dist = field.add("Distance")
            field.setNumbers(dist, "PointsList", [p[1]])
            thr = field.add("Threshold")
            field.setNumber(thr, "InField", dist)
            field.setNumber(thr, "SizeMin", float(tip_size))
            field.setNumber(thr, "SizeMax", float(far_size))
            field.setNumber(thr, "DistMin", float(tip_size))
            field.setNumber(thr, "DistMax", float(tip_size) + (far_size - tip_size) / grading)
            field.setAsBackgroundMesh(thr)
            for opt in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints",
                        "MeshSizeFromCurvature"):
                gmsh.option.setNumber(f"Mesh.{opt}", 0)
            gmsh.option.setNumber("Mesh.Algorithm", 6)
            gmsh.model.mesh.generate(2)
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                gmsh.write(os.fspath(path))
        data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=2)
    finally:
        if own:
            gmsh.finalize()
        else:
            gmsh.model.remove()
    return TaggedMesh(data.mesh, data.facet_tags, dict(TAGS))

