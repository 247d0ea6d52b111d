"""The standard materials of the QC tests, demos and benchmarks: ``(potential, lattice, a0)``.

* :func:`default_setup` - one per dimension: the 1D chain and the 2D triangular lattice with a
  smoothed Lennard-Jones reaching beyond nearest neighbours, the Cu_u3 EAM fcc slab in 3D;
* :func:`short_range_setup` - the triangular lattice with nearest neighbours only (a
  lattice-trapped crack).

Every lattice constant is computed from the potential (zero pressure), not typed in.
"""

from __future__ import annotations

from atomistic.potentials.factory import load_potential
from fe2qc.errors import InputError

__all__ = ["default_setup", "short_range_setup"]


def default_setup(dim: int):
    """The standard test materials: ``(potential, lattice, a0)`` for ``dim`` 1, 2 or 3.

    * 1: a chain with a smoothed Lennard-Jones pair potential reaching second neighbours;
    * 2: the triangular lattice with the same kind of potential (three neighbour shells);
    * 3: fcc copper, Cu_u3 EAM (LAMMPS's file), in the periodic slab.
    """
    from atomistic.elastic import equilibrium_lattice_constant
    from atomistic.fracture import lattice_constant

    if dim == 1:
        pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
        return pot, "chain", 2.45  # second neighbours at 4.9 Å < cutoff < 3a
    if dim == 2:
        pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
        return pot, "triangular", lattice_constant(pot, "triangular")
    if dim == 3:
        pot = load_potential("Cu_u3.eam")
        return pot, "fcc", equilibrium_lattice_constant(pot, "fcc", 3.615)
    raise InputError(f"--dim must be 1, 2 or 3, got {dim}")


def short_range_setup():
    """``(potential, "triangular", a0)`` with a nearest-neighbour-only smoothed Lennard-Jones.

    The same ``lj/smooth`` form as :func:`default_setup` (epsilon 0.4 eV, sigma 2.2 Å) cut at
    3.2 Å, i.e. 1.26 a0: only the six nearest neighbours interact. Short range means a
    lattice-trapped crack (the tip stays put for K within a few per cent of K_G), which the
    three-shell potential does not give; the large-domain crack benchmark uses it so that
    the near-tip field is well defined at every domain radius.
    """
    from atomistic.fracture import lattice_constant

    pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=3.2)
    return pot, "triangular", lattice_constant(pot, "triangular")
