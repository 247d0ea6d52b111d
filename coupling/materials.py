"""What a problem file's ``[material]`` and ``[mpi]`` sections build, for every kind of run.

The potential and lattice constant (:func:`material_potential`), the atomistic RVE
(:func:`make_rve`), the point model of the Gauss points (:func:`make_point_model`) and the
check that ``[mpi] workers`` leaves a macro rank (:func:`check_workers`): shared by the FE²
driver (:mod:`coupling.driver`) and the concurrent job (:mod:`coupling.qc.run`).
"""

from __future__ import annotations

from coupling.config import Config, resolve_potential
from fe2qc.errors import InputError
from fe2qc.units import EV_PER_A3_IN_GPA

__all__ = ["check_workers", "make_point_model", "make_rve", "material_potential"]


def material_potential(cfg: Config):
    """``(potential, a0)`` of ``[material]``: the loaded potential and the lattice constant.

    ``a0`` is ``[material] a0``, else the potential's zero-pressure lattice constant.
    """
    from atomistic.potentials import load_potential

    pot = load_potential(resolve_potential(cfg.material.potential, cfg.source))
    if cfg.material.a0 is not None:
        return pot, float(cfg.material.a0)
    from atomistic.elastic import equilibrium_lattice_constant

    return pot, float(equilibrium_lattice_constant(pot, cfg.material.lattice))


def make_rve(cfg: Config, potential, a0: float, dim: int):
    """The atomistic RVE of ``[material]`` (size, vacancy, fmax) with ``potential`` and ``a0``.

    Neighbour images are enabled when the cell is narrower than two cutoffs plus 2 Å.
    """
    from atomistic.rve import AtomisticRVE

    m = cfg.material
    narrow = min(m.size) * a0 < 2 * getattr(potential, "cutoff", 0.0) + 2.0
    return AtomisticRVE.from_lattice(potential, m.lattice, a0, size=m.size, vacancy=m.vacancy,
                                     dim=dim, fmax=m.fmax, multiple_images=narrow)


def check_workers(workers: int, size: int) -> None:
    """Refuse ``[mpi] workers`` that leave no rank for the macro problem (InputError)."""
    if workers >= size and workers > 0:
        raise InputError(f"[mpi] 'workers' = {workers} leaves no rank for the mesh "
                         f"(the run has {size} ranks); use at most {size - 1}")


def make_point_model(cfg: Config, dim: int, comm=None):
    """The point model of ``[material]``.

    A :class:`fe2qc.material.PointModel`: :class:`atomistic.rve.AtomisticRVE` (or, with
    ``engine = "lammps"``, :class:`atomistic.lammps.rve.LammpsRVE` of that cell on ``comm``,
    default ``COMM_SELF``), :class:`atomistic.cauchy_born.CauchyBorn` or
    :class:`fe2.materials.NeoHookean` (the last two are batched material points too).
    """
    m = cfg.material
    if m.type == "neo-hookean":
        from fe2.materials import NeoHookean

        return NeoHookean(m.mu / EV_PER_A3_IN_GPA, m.lmbda / EV_PER_A3_IN_GPA, dim)
    from atomistic.cauchy_born import CauchyBorn

    pot, a0 = material_potential(cfg)
    if m.type == "cauchy-born":
        return CauchyBorn(pot, m.lattice, a0, dim=dim)
    rve = make_rve(cfg, pot, a0, dim)
    if m.engine == "lammps":
        from atomistic.lammps.rve import LammpsRVE

        return LammpsRVE(rve, comm)
    return rve
