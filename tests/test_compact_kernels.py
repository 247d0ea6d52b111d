"""The compact MD kernels (EAM.compact_energy_forces, EAM.compact_born) against the general path.

The general path (``first_order`` + pair assembly; ``second_order`` + d²E/dF dF − stress) is
itself checked against LAMMPS and finite differences elsewhere; here the fast MD kernels must
equal it to round-off, and the opt-in threaded kernel must give the same bits on every call.
"""
import numpy as np
import pytest

from atomistic.calculator import Calculator
from atomistic.lattice import crystal


def _general(calc, conf):
    """compute() through the general path (a weight vector of ones takes it)."""
    return calc.compute(conf, np.ones(len(conf)))


@pytest.mark.parametrize("name", ["Cu_u3.eam", "CuNi.eam.alloy"])
def test_compact_kernels_equal_the_general_assembly(name):
    """Energies, forces, virial, Born tensor: the compact kernels equal the general ones.

    General: first_order + pair assembly; second_order + d2E/dF dF - stress; to round-off on
    a triclinic, stressed, two-species cell with atoms that left the box (~0.3 s).
    """
    from atomistic.potentials.factory import load_potential
    pot = load_potential(name)
    rng = np.random.default_rng(3)
    conf = crystal("fcc", 3.615, size=(4, 4, 4)).deformed(np.eye(3) + rng.normal(0, 0.02, (3, 3)))
    conf.positions_nc += rng.normal(0, 0.1, conf.positions_nc.shape) + 3.0  # some leave the box
    if len(pot.elements) > 1:
        conf.types_n = rng.integers(0, len(pot.elements), len(conf))
    calc = Calculator(pot)
    fast, slow = calc.compute(conf), _general(calc, conf)
    assert fast.energy == pytest.approx(slow.energy, rel=1e-13)
    np.testing.assert_allclose(fast.site_energies_n, slow.site_energies_n, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.forces_nc, slow.forces_nc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.virial_cc, slow.virial_cc, rtol=0, atol=1e-10)
    born = calc.born_tensor(conf)
    cls = type(pot)
    saved = cls.compact_born
    try:
        del cls.compact_born  # the general assembly
        ref = Calculator(pot).born_tensor(conf)
    finally:
        cls.compact_born = saved
    np.testing.assert_allclose(born, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_threaded_kernel_is_deterministic_and_equals_serial(cu_u3):
    """Calculator(threads=2): the same bits on every call, the serial result to round-off.

    Whatever numba's thread count (~0.1 s).
    """
    import numba

    conf = crystal("fcc", 3.615, size=(5, 5, 5))
    conf.positions_nc += np.random.default_rng(1).normal(0, 0.05, conf.positions_nc.shape)
    one = Calculator(cu_u3).compute(conf)
    calc = Calculator(cu_u3, threads=2)
    runs = []
    for nt in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(nt)
        runs.append(calc.compute(conf))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for r in runs[1:]:
        assert np.array_equal(r.forces_nc, runs[0].forces_nc) and r.energy == runs[0].energy
        assert np.array_equal(r.virial_cc, runs[0].virial_cc)
    np.testing.assert_allclose(runs[0].forces_nc, one.forces_nc, rtol=0, atol=1e-12)
    assert runs[0].energy == pytest.approx(one.energy, rel=1e-13)
    with pytest.raises(Exception, match="threads"):
        Calculator(cu_u3, threads=0)
