"""extxyz output of QC atoms: cell origin, atoms inside the cell, element names, bad input.

The extended XYZ format (ASE) has no cell origin, so ``write_extxyz(..., origin=o)`` writes
``x - o`` and stores ``o`` as the frame's ``frame_origin``; ASE's reader must give back every
atom inside the cell along the open axes, and ``positions + frame_origin`` the input.
"""

import numpy as np
import pytest

from fe2qc.errors import InputError


def _write(path, R, **kw):
    from atomistic.extxyz import write_extxyz

    kw.setdefault("cell", np.diag([20.0, 20.0, 3.6]))
    kw.setdefault("pbc", (False, False, True))
    write_extxyz(path, R, **kw)


def test_origin_roundtrip_inside_cell(tmp_path):
    import ase.io

    rng = np.random.default_rng(1)
    R = rng.uniform(-9.0, 9.0, (7, 3))  # crack-tip frame: negative coordinates
    R[:, 2] = rng.uniform(0.0, 3.6, 7)
    o = np.array([-10.0, -10.0, 0.0])
    path = tmp_path / "a.extxyz"
    _write(path, R, origin=o, symbols="X", info={"K_over_KG": 0.99})
    f = ase.io.read(path)
    frac = f.positions @ np.linalg.inv(f.cell.array)
    assert (frac[:, :2] >= 0).all() and (frac[:, :2] <= 1).all()
    np.testing.assert_allclose(f.info["frame_origin"], o)
    np.testing.assert_allclose(f.positions + f.info["frame_origin"], R, atol=1e-7)
    assert f.get_chemical_symbols() == ["X"] * 7 and f.info["K_over_KG"] == 0.99


def test_atoms_outside_the_cell_are_refused(tmp_path):
    R = np.array([[-1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    with pytest.raises(InputError, match=r"atom 0 .* outside the cell .* origin="):
        _write(tmp_path / "b.extxyz", R)
    # along the periodic axis (z here) wrapping is the reader's business: accepted
    _write(tmp_path / "c.extxyz", R + [2.0, 0.0, 7.0])


@pytest.mark.parametrize("bad", [{"origin": [0.0, np.nan, 0.0]}, {"origin": [1.0, 2.0]},
                                 {"cell": np.zeros((3, 3))}, {"positions": np.nan}])
def test_non_finite_or_malformed_input(tmp_path, bad):
    R = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    if "positions" in bad:
        R[1, 0] = bad.pop("positions")
    with pytest.raises(InputError):
        _write(tmp_path / "d.extxyz", R, **bad)
