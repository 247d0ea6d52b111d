"""Coupling of the continuum and atomistic layers: FE² with atomistic RVEs, QC and the CLI.

The only library package that imports both :mod:`fe2` and :mod:`atomistic`.
"""
