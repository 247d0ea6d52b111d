"""Meshes with named boundary parts for ``fe2qc run``, and the registry of mesh sources.

:mod:`meshes.tagged` (a mesh with named boundary parts, gmsh files), :mod:`meshes.crack` (the
centre-cracked plate), :mod:`meshes.rectangle` (a plain rectangle), :mod:`meshes.generators`
(the generators a problem file can name).
"""
