"""QC mesh: nodes on lattice sites, coverage, crack slit, site checks, P1 interpolation."""

import gmsh
import numpy as np
import pytest
from scipy.spatial import ConvexHull, cKDTree

from coupling.qc.geometry import Box, Crack, Disc
from coupling.qc.locate import interpolation_matrix
from coupling.qc.mesh import QCMesh
from coupling.qc.mesh_build import build_mesh, build_mesh_1d
from coupling.qc.mesh_check import check_conforming, check_nodes_on_sites, user_mesh
from fe2qc.errors import InputError

A = 2.5  # nearest-neighbour distance (Å)


def triangular_sites(a, R):
    n = int(1.3 * R / a) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
    X = np.stack([a * (i + 0.5 * j), a * np.sqrt(3) / 2 * j], -1).reshape(-1, 2)
    return X[np.hypot(*X.T) <= R + 1e-9]


def square_sites(a, L):
    g = np.arange(-L, L + 1) * a
    x, y = np.meshgrid(g, g)
    return np.stack([x.ravel(), y.ravel()], 1)


def affine(P):
    return np.stack([1.3 * P[:, 0] - 0.7 * P[:, 1] + 3.0, 0.2 * P[:, 0] + 2.1 * P[:, 1] - 1.0], 1)


def assert_nodes_on_sites(mesh, X, required):
    np.testing.assert_array_equal(mesh.points_md, X[mesh.node_site_m])
    assert len(np.unique(mesh.node_site_m)) == mesh.n_nodes
    assert np.all(mesh.node_of_site[np.flatnonzero(required)] >= 0)
    assert np.all(mesh.signed_volumes_k > 0)
    check_nodes_on_sites(mesh, X, required)
    check_conforming(mesh)


@pytest.fixture(scope="module")
def disc():
    R = 80 * A
    X = triangular_sites(A, R)
    ref = np.hypot(*X.T) < 10 * A
    return X, ref, build_mesh(X, refine_mask_s=ref, domain=Disc(0.0, 0.0, R), spacing=A)


def test_disc_mesh_nodes_are_sites_and_cover_hull(disc):
    X, ref, mesh = disc
    assert_nodes_on_sites(mesh, X, ref)
    hull = ConvexHull(mesh.points_md).volume
    assert abs(mesh.volumes_k.sum() - hull) < 1e-9 * hull
    # every site is inside the mesh: the node hull is the site hull
    assert abs(ConvexHull(X).volume - hull) < 1e-9 * hull
    assert mesh.n_nodes < 0.25 * len(X)
    assert mesh.n_nodes < ref.sum() + 0.05 * len(X)
    assert mesh.info["n_nodes"] == mesh.n_nodes
    G = mesh.grad_kvd
    assert G.shape == (mesh.n_cells, 3, 2)
    np.testing.assert_allclose(G.sum(axis=1), 0.0, atol=1e-12)
    # gradients reproduce an affine field
    U = affine(mesh.points_md)
    F = np.einsum("kac,kad->kcd", U[mesh.cells_kv], G)
    np.testing.assert_allclose(F, np.broadcast_to([[1.3, -0.7], [0.2, 2.1]], F.shape), atol=1e-10)


def test_node_count_grows_slowly_with_radius():
    counts = []
    for R in (40 * A, 160 * A):
        X = triangular_sites(A, R)
        ref = np.hypot(*X.T) < 10 * A
        m = build_mesh(X, refine_mask_s=ref, domain=Disc(0.0, 0.0, R), spacing=A)
        counts.append((m.n_nodes, len(X), int(ref.sum())))
    (n1, s1, r1), (n2, s2, r2) = counts
    assert s2 > 15 * s1 and n2 - r2 < 4 * (n1 - r1)


def test_interpolation_reproduces_affine_fields(disc):
    X, _, mesh = disc
    Amat = interpolation_matrix(mesh, X)
    assert Amat.shape == (len(X), mesh.n_nodes)
    U = affine(X)
    err = np.abs(Amat @ U[mesh.node_site_m] - U).max()
    assert err < 1e-12 * np.abs(U).max() * 10
    np.testing.assert_allclose(np.asarray(Amat.sum(axis=1)).ravel(), 1.0, atol=1e-13)
    # a site that is a node gets a unit row
    rows = Amat[mesh.node_site_m]
    assert rows.nnz == mesh.n_nodes
    np.testing.assert_array_equal(rows.indices, np.arange(mesh.n_nodes))
    np.testing.assert_array_equal(rows.data, 1.0)


def test_interpolation_outside(disc):
    X, _, mesh = disc
    Y = np.array([[0.3, 0.1], [1e4, 0.0]])
    with pytest.raises(InputError, match="point 1 .* outside the QC mesh"):
        interpolation_matrix(mesh, Y)
    An = interpolation_matrix(mesh, Y, outside="nan")
    v = An @ np.ones(mesh.n_nodes)
    assert abs(v[0] - 1) < 1e-12 and np.isnan(v[1])
    Az = interpolation_matrix(mesh, Y, outside="nearest")
    assert np.allclose(Az @ np.ones(mesh.n_nodes), 1.0)


@pytest.mark.parametrize("lattice", ["triangular", "square"])
def test_crack_slit_one_row_wide(lattice):
    if lattice == "triangular":
        R = 60 * A
        X = triangular_sites(A, R)
        y_plane, dy = A * np.sqrt(3) / 4, A * np.sqrt(3) / 2
        dom = Disc(0.0, 0.0, R)
    else:
        X = square_sites(A, 50)
        y_plane, dy = 0.5 * A, A
        dom = Box(-50 * A, -50 * A, 50 * A, 50 * A)
    tip = 0.3 * A
    ref = np.hypot(X[:, 0] - tip, X[:, 1] - y_plane) < 8 * A
    mesh = build_mesh(X, refine_mask_s=ref, domain=dom, spacing=A, crack=Crack(tip, y_plane))
    assert_nodes_on_sites(mesh, X, ref)
    P, C = mesh.points_md, mesh.cells_kv
    side = np.sign(P[:, 1] - y_plane)[C]
    cross = (side.min(1) < 0) & (side.max(1) > 0)
    assert np.all(P[C[cross], 0].mean(1) >= tip)  # no triangle crosses behind the tip
    assert np.any(cross)  # but the halves are joined ahead of it
    # face rows: their nodes have triangles on their own side only, and are boundary nodes
    bnodes = set(mesh.boundary_nodes().tolist())
    for y_row, s in ((y_plane + dy / 2, 1), (y_plane - dy / 2, -1)):
        face = np.flatnonzero((np.abs(P[:, 1] - y_row) < 1e-6) & (P[:, 0] < tip))
        assert len(face) > 3
        cells = np.flatnonzero(np.isin(C, face).any(1) & (P[C, 0].mean(1) < tip))
        assert np.all(side[cells] * s >= 0)
        assert set(face.tolist()) <= bnodes
        # consecutive face nodes are joined by a boundary edge: the slit is one row wide
        xs = np.sort(P[face, 0])
        assert xs[0] < dom.cx - 0.9 * dom.radius if isinstance(dom, Disc) else xs[0] == dom.xmin
    bf = mesh.boundary_facets
    ym = P[bf, 1]
    on_slit = (P[bf, 0].max(1) < tip) & (np.abs(ym - y_plane).max(1) < dy)
    across = on_slit & (np.abs(ym[:, 0] - ym[:, 1]) > 1e-9)
    # slit edges lie along the face rows, except the one bond closing the slit at the tip
    assert across.sum() <= 1 and np.all(P[bf[across], 0] > tip - A)
    # the covered area is the hull minus the slit
    hull = ConvexHull(P).volume
    assert hull - dy * (tip - P[:, 0].min()) - 4 * dy * A < mesh.volumes_k.sum() < hull
    # interpolation of every site works (none falls in the slit) and is exact for affine u
    Amat = interpolation_matrix(mesh, X)
    U = affine(X)
    assert np.abs(Amat @ U[mesh.node_site_m] - U).max() < 1e-11 * np.abs(U).max()


def test_vacancies_are_not_nodes():
    R = 30 * A
    X = triangular_sites(A, R)
    present = np.ones(len(X), bool)
    r = np.hypot(*X.T)
    present[np.flatnonzero(r > 20 * A)[::7]] = False
    ref = r < 6 * A
    mesh = build_mesh(X, refine_mask_s=ref, domain=Disc(0, 0, R), spacing=A, present_s=present)
    assert np.all(present[mesh.node_site_m])
    assert_nodes_on_sites(mesh, X, ref)


def test_check_nodes_on_sites_rejects_off_site_node(disc):
    X, ref, mesh = disc
    i = int(mesh.node_of_site[np.flatnonzero(ref)[5]])
    P = mesh.points_md.copy()
    P[i, 0] += 0.3
    bad = QCMesh(P, mesh.node_site_m, mesh.cells_kv, mesh.n_sites)
    with pytest.raises(InputError, match=rf"node {i} at .* 0\.3 Å from the nearest lattice site "
                       rf"{mesh.node_site_m[i]} .*Fix: move the node onto site"):
        check_nodes_on_sites(bad, X, ref)
    with pytest.raises(InputError, match=f"node {i}"):
        user_mesh(P, mesh.cells_kv, X, required_mask_s=ref)
    # a required site that is not a node
    req = ref.copy()
    req[np.flatnonzero(mesh.node_of_site < 0)[0]] = True
    with pytest.raises(InputError, match="is not a mesh node"):
        check_nodes_on_sites(mesh, X, req)


def test_user_mesh_matches_sites_and_orients():
    X = square_sites(A, 3)
    pts = X[[0, 6, 48, 42]] + 1e-9
    cells = np.array([[0, 2, 1], [0, 3, 2]])  # clockwise
    m = user_mesh(pts, cells, X)
    np.testing.assert_array_equal(m.node_site_m, [0, 6, 48, 42])
    assert np.all(m.signed_volumes_k > 0)
    assert abs(m.volumes_k.sum() - (6 * A) ** 2) < 1e-9


def test_gmsh_finalised_after_error(monkeypatch):
    X = triangular_sites(A, 10 * A)
    ref = np.hypot(*X.T) < 3 * A

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(gmsh.model.mesh, "generate", boom)
    with pytest.raises(RuntimeError, match="boom"):
        build_mesh(X, refine_mask_s=ref, domain=Disc(0, 0, 10 * A), spacing=A)
    assert not gmsh.isInitialized()


def test_bad_inputs():
    X = triangular_sites(A, 10 * A)
    ref = np.zeros(len(X), bool)
    with pytest.raises(InputError, match="domain"):
        build_mesh(X, refine_mask_s=ref, domain=("ellipse", 0, 0, 1), spacing=A)
    with pytest.raises(InputError, match="passes through a row"):
        build_mesh(X, refine_mask_s=ref, domain=Disc(0, 0, 10 * A), spacing=A,
                   crack=Crack(0.0, 0.0))


def test_mesh_1d_and_interpolation():
    x = np.arange(20) * A
    m = build_mesh_1d(x, node_sites=[0, 3, 7, 19])
    assert m.dim == 1 and m.cells_kv.shape == (3, 2)
    np.testing.assert_allclose(m.volumes_k.sum(), 19 * A)
    assert m.grad_kvd.shape == (3, 2, 1)
    np.testing.assert_allclose(m.grad_kvd[0, :, 0], [-1 / (3 * A), 1 / (3 * A)])
    np.testing.assert_array_equal(m.boundary_nodes(), [0, 3])
    Amat = interpolation_matrix(m, x[:, None])
    u = 0.7 * x - 2.0
    np.testing.assert_allclose(Amat @ u[m.node_site_m], u, atol=1e-12)
    full = build_mesh_1d(x)
    assert full.n_nodes == 20 and full.n_cells == 19


@pytest.mark.parametrize("ncomp", [2, 3])
def test_vtx_writer_maps_nodes_to_dofs(tmp_path, disc, ncomp):
    from coupling.qc.output import QCVTXWriter, write_vtx

    _, _, mesh = disc
    P = mesh.points_md
    U = np.concatenate([affine(P), (0.1 * P[:, :1] * P[:, 1:])], axis=1)[:, :ncomp]
    with QCVTXWriter(tmp_path / "u.bp", mesh, ncomp=ncomp) as w:
        for t in (0.0, 1.0):
            w.write(t, (1 + t) * U)
        V = w.function.function_space
        xd = V.tabulate_dof_coordinates()[:, :2]
        vals = w.function.x.array.reshape(-1, ncomp)
        assert len(xd) == mesh.n_nodes
        # dof d sits on QC node j: its value is U[j] (DOLFINx reordered the nodes)
        j = cKDTree(P).query(xd)[1]
        np.testing.assert_allclose(np.linalg.norm(P[j] - xd, axis=1), 0.0, atol=1e-9)
        np.testing.assert_allclose(vals, 2 * U[j], rtol=1e-12, atol=1e-12)
        # and evaluating the function at node coordinates gives the nodal values
        import dolfinx.geometry as dg

        pts = np.zeros((20, 3))
        pts[:, :2] = P[:20]
        dm = w.dolfinx_mesh
        tree = dg.bb_tree(dm, dm.topology.dim)
        coll = dg.compute_colliding_cells(dm, dg.compute_collisions_points(tree, pts), pts)
        cells = [coll.links(i)[0] for i in range(len(pts))]
        np.testing.assert_allclose(w.function.eval(pts, cells), 2 * U[:20], atol=1e-9)
    assert (tmp_path / "u.bp").is_dir()
    out = write_vtx(tmp_path / "v", mesh, np.stack([U, 2 * U]), [0.0, 0.5])
    assert out.suffix == ".bp" and out.is_dir()


def test_vtx_writer_1d(tmp_path):
    from coupling.qc.output import QCVTXWriter

    x = np.arange(10) * A
    mesh = build_mesh_1d(x, node_sites=[0, 2, 5, 9])
    U = np.stack([x[mesh.node_site_m], -x[mesh.node_site_m], 0 * x[mesh.node_site_m]], 1)
    with QCVTXWriter(tmp_path / "c.bp", mesh, ncomp=3) as w:
        w.write(0.0, U)
        xd = w.function.function_space.tabulate_dof_coordinates()[:, 0]
        vals = w.function.x.array.reshape(-1, 3)
        np.testing.assert_allclose(vals[:, 0], xd, atol=1e-12)


def test_write_extxyz_roundtrip(tmp_path):
    import ase.io

    from atomistic.extxyz import write_extxyz

    R = np.random.default_rng(0).random((5, 3)) * 10
    cell = np.diag([20.0, 20.0, 3.6])
    path = tmp_path / "atoms.extxyz"
    for step in range(2):
        write_extxyz(path, R + step, cell=cell, pbc=(False, False, True),
                     arrays={"u": np.full((5, 3), step * 1.0), "atomistic": np.arange(5) < 2},
                     info={"step": step}, symbols="Cu", append=step > 0)
    frames = ase.io.read(path, index=":")
    assert len(frames) == 2
    f = frames[1]
    np.testing.assert_allclose(f.positions, R + 1)
    np.testing.assert_allclose(f.arrays["u"], 1.0)
    np.testing.assert_array_equal(f.arrays["atomistic"], [1, 1, 0, 0, 0])
    assert f.info["step"] == 1 and list(f.pbc) == [False, False, True]
    assert f.get_chemical_symbols() == ["Cu"] * 5
