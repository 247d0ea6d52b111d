"""Atomistic engine: lattices, potentials, neighbour lists, kernels, relaxation, RVEs.

Knows nothing of ``fe2``; ``coupling`` joins the two. Arrays carry suffixes for
their axes: ``_n`` per atom, ``_p`` per pair, ``_c`` Cartesian component.
"""

from atomistic.structure import Configuration

__all__ = ["Configuration"]
