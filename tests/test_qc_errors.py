"""Bad QC input is refused before any work, with a message that names the problem and fix."""

import numpy as np
import pytest

from coupling.qc.geometry import Crack, Disc
from coupling.qc.setups import default_setup
from coupling.qc.system import build_system
from fe2qc.errors import InputError

POT, LAT, A0 = default_setup(2)


def _build(**kw):
    args = dict(domain=Disc(0, 0, 20 * A0), atomistic=Disc(0, 0, 4 * A0), scheme="qcf")
    args.update(kw)
    return build_system(POT, LAT, A0, **args)


def test_unknown_scheme_lists_the_choices():
    with pytest.raises(InputError, match="unknown QC scheme 'qcx'.*qce, gfc, qcf, bqce, bgfc"):
        _build(scheme="qcx")


def test_atomistic_region_touching_the_outer_boundary_is_refused():
    with pytest.raises(InputError, match="reaches the clamped outer boundary.*enlarge the domain"):
        _build(atomistic=Disc(0, 0, 15 * A0))


def test_handshake_narrower_than_the_cutoff_is_refused():
    with pytest.raises(InputError, match="narrower than the potential cutoff"):
        _build(handshake=0.5 * POT.cutoff)
    with pytest.raises(InputError, match="narrower than the potential cutoff"):
        _build(scheme="bgfc", handshake=0.9 * POT.cutoff)


def test_mesh_node_off_its_lattice_site_in_the_handshake_is_refused():
    good = _build()
    points, cells = good.mesh.points_md.copy(), good.mesh.cells_kv.copy()
    # the same mesh is accepted as a user mesh
    ok = _build(mesh=(points, cells))
    assert ok.n_nodes == good.n_nodes
    r = np.linalg.norm(points, axis=1)
    k = int(np.flatnonzero((r > 4.5 * A0) & (r < 5.5 * A0))[0])  # in the handshake band
    points[k] += [0.3, 0.0]
    with pytest.raises(InputError, match=r"node .* not .*site|lattice site"):
        _build(mesh=(points, cells))


def test_defect_and_crack_tip_must_lie_in_the_atomistic_region():
    with pytest.raises(InputError, match="vacancy .* outside the atomistic region"):
        _build(vacancies=[[10 * A0, 0.0]])
    with pytest.raises(InputError, match="crack tip .* outside the atomistic region"):
        build_system(POT, LAT, A0, domain=Disc(0, 0, 20 * A0), atomistic=Disc(-6 * A0, 0, 3 * A0),
                     scheme="qcf", crack=Crack(0.0, 0.0))


def test_empty_atomistic_region_and_bad_lattice_are_refused():
    with pytest.raises(InputError, match="contains no lattice site"):
        _build(atomistic=lambda X: np.zeros(len(X), bool))
    with pytest.raises(InputError, match="QC lattice 'hcp' is not supported"):
        build_system(POT, "hcp", A0, domain=Disc(0, 0, 20 * A0), atomistic=Disc(0, 0, 4 * A0),
                     scheme="qce")
