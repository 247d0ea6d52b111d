"""The QC continuum on DOLFINx (:mod:`coupling.qc.continuum`) against a P1 reference.

The reference is :class:`_P1Reference` below: test code, an independent numpy P1
Cauchy-Born continuum (per element: ``F = I + U_e^T grad N``, energy ``|T|/omega e(F)``,
gradient and Hessian from ``system.cauchy_born``'s P and A by the chain rule), the
implementation the QC used before issue 11. With a Cauchy-Born material point the DOLFINx
forms must give its energy, gradient and Hessian to round-off (the same site energy, counted
``|T|/omega`` times per element), for the chain, the triangular lattice and the Cu slab, with
blended and full weights. With any material (neo-Hookean) the gradient is the derivative of
the energy and the Hessian that of the gradient (finite differences), and a homogeneous
deformation gives the energy ``t W(F)`` times the weighted area and no force inside. Through
:class:`coupling.qc.model.QCModel` the corrected schemes pass the patch test and QC solves
(a vacancy, the pre-cut crack) give the displacements of the same model with the reference
continuum.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.setups import default_setup
from coupling.qc.system import build_system
from fe2qc.errors import CalculationFailed, InputError

continuum = pytest.importorskip("coupling.qc.continuum")


class _P1Reference:
    """THE REFERENCE the tests compare against: P1 Cauchy-Born elements in plain numpy.

    Element k with nodes v, shape-function gradients ``grad[k, v, L]`` and multiplicity
    ``c_k = |T_k| / omega * w_k`` (sites):

    * ``F_k = I + sum_v U[v] (x) grad[k, v]`` (the c x d block; identity elsewhere),
    * ``E = sum_k c_k e(F_k)``,
    * ``g[v, i] += c_k sum_L P_k[i, L] grad[k, v, L]``,
    * ``K[(v, i), (w, j)] += c_k sum_{L, M} grad[k, v, L] A_k[i, L, j, M] grad[k, w, M]``,

    with ``e``, ``P = de/dF``, ``A = d2e/dF2`` from ``system.cauchy_born`` (the site energy
    of the system's own potential). Cells of zero weight are left out.
    """

    def __init__(self, system, weights_k):
        mesh = system.mesh
        c_k = mesh.volumes_k / system.omega * np.asarray(weights_k, float)
        keep = np.flatnonzero(c_k != 0.0)
        self.system = system
        self.c_k = c_k[keep]
        self.cells = mesh.cells_kv[keep]
        self.grad = mesh.grad_kvd[keep]
        nc = system.ncomp
        self.dofs = (nc * self.cells[:, :, None] + np.arange(nc)).reshape(len(keep), -1)

    def forget(self):
        """Nothing is kept between evaluations."""

    def energy_gradient(self, U, *, order=1, keep_tangent=False):
        """``(E, g, K or None)`` over the node-major dofs (``keep_tangent``: nothing to keep)."""
        s = self.system
        nc, d, n = s.ncomp, s.mesh.dim, s.n_dofs
        U = np.asarray(U, float).reshape(s.n_nodes, nc)
        F = np.broadcast_to(np.eye(3), (len(self.cells), 3, 3)).copy()
        F[:, :nc, :d] += np.einsum("kvi,kvL->kiL", U[self.cells], self.grad)
        e, P, A = s.cauchy_born.evaluate(F, order=order)
        E = float(self.c_k @ e)
        ge = np.einsum("k,kiL,kvL->kvi", self.c_k, P[:, :nc, :d], self.grad)
        g = np.bincount(self.dofs.ravel(), ge.ravel(), minlength=n)
        if order < 2:
            return E, g, None
        Ke = np.einsum("k,kvL,kiLjM,kwM->kviwj", self.c_k, self.grad,
                       A[:, :nc, :d, :nc, :d], self.grad)
        nv = self.dofs.shape[1]
        Ke = Ke.reshape(len(self.cells), nv, nv)
        rows = np.repeat(self.dofs, nv, axis=1).ravel()
        cols = np.tile(self.dofs, (1, nv)).ravel()
        return E, g, sp.csr_matrix((Ke.ravel(), (rows, cols)), shape=(n, n))


class _ReferenceQCModel(QCModel):
    """:class:`QCModel` with :class:`_P1Reference` as every continuum of the scheme."""

    def _continuum_factory(self, continuum, material):
        self.continuum, self.material = "p1-reference", None
        return lambda w_k: _P1Reference(self.system, w_k)


def _system(dim, scheme="bqce"):
    pot, lat, a0 = default_setup(dim)
    if dim == 1:
        return build_system(pot, lat, a0, domain=Disc(0, 0, 30 * a0),
                            atomistic=Disc(0, 0, 8.01 * a0), scheme=scheme)
    R, rA = (16 * a0, 3.01 * a0) if dim == 2 else (36.0, 6.0)
    return build_system(pot, lat, a0, domain=Disc(0, 0, R), atomistic=Disc(0, 0, rA),
                        scheme=scheme, vacancies=[[0.0, 0.0]], handshake=pot.cutoff * (
                            1.5 if scheme.startswith("b") else 1.0))


_SYSTEMS = {}


def _cached_system(dim):
    if dim not in _SYSTEMS:
        _SYSTEMS[dim] = _system(dim)
    return _SYSTEMS[dim]


def _weights(system, kind):
    if kind == "full":
        return np.ones(system.mesh.n_cells)
    beta_nodes = system.beta_s[system.mesh.node_site_m]
    return beta_nodes[system.mesh.cells_kv].mean(axis=1)


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("weights", ["blended", "full"])
@pytest.mark.parametrize(("dim", "material"), [(1, "system"), (2, "system"), (3, "system"),
                                               (2, "CauchyBorn"), (3, "CauchyBorn")])
def test_dolfinx_continuum_equals_the_p1_reference_with_cauchy_born(dim, material, weights):
    """``system``: the system's own kernel; ``CauchyBorn``: atomistic's 3D material point."""
    from atomistic.cauchy_born import CauchyBorn

    system = _cached_system(dim)
    if material == "CauchyBorn":  # (no 'chain' lattice in atomistic.lattice)
        pot, lattice, a0 = default_setup(dim)
        mat = CauchyBorn(pot, lattice, a0, dim=3)
    else:
        mat = continuum.LatticeCauchyBorn.of_system(system)
    w = _weights(system, weights)
    assert (w == 0).any() == (weights == "blended")  # zero-weight cells are skipped
    p1 = _P1Reference(system, w)
    fe = continuum.DolfinxContinuum(continuum.QCSpace(system.mesh, system.ncomp), mat, w,
                                    thickness=continuum.qc_thickness(system, mat))
    rng = np.random.default_rng(dim)
    U = 0.05 * rng.standard_normal((system.n_nodes, system.ncomp))
    E1, g1, K1 = p1.energy_gradient(U, order=2)
    E2, g2, K2 = fe.energy_gradient(U, order=2)
    assert abs(E2 - E1) <= 1e-10 * abs(E1)
    assert _rel(g2, g1) <= 1e-10
    assert _rel(K2.toarray(), K1.toarray()) <= 1e-10
    E3, g3, K3 = fe.energy_gradient(U)  # order 1: the same energy and gradient, no Hessian
    assert K3 is None and E3 == E2 and np.array_equal(g3, g2)


def test_thickness_is_the_volume_per_site_over_the_measure_per_site():
    from atomistic.cauchy_born import CauchyBorn

    pot, lattice, a0 = default_setup(3)
    slab = _cached_system(3)
    # the slab: V0 = a0^3/4 per site, omega = (a0/2)^2 per projected column: t = a0
    assert continuum.qc_thickness(slab, CauchyBorn(pot, lattice, a0, dim=3)) == pytest.approx(
        a0, rel=1e-14)
    # the planar lattices are layers of unit thickness (CauchyBorn's convention)
    assert continuum.qc_thickness(_cached_system(2)) == pytest.approx(1.0, rel=1e-14)
    assert continuum.qc_thickness(_cached_system(1)) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(InputError, match="volume per site"):
        continuum.qc_thickness(slab, CauchyBorn(pot, lattice, 1.01 * a0, dim=3))


def _neo_hookean_continuum(dim, weights="blended"):
    from fe2.materials import NeoHookean

    system = _cached_system(dim)
    mat = NeoHookean(0.3, 0.5, 3)  # eV/Å³
    space = continuum.QCSpace(system.mesh, system.ncomp)
    return system, continuum.DolfinxContinuum(space, mat, _weights(system, weights),
                                              thickness=continuum.qc_thickness(system))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_gradient_and_hessian_match_finite_differences_for_neo_hookean(dim):
    system, fe = _neo_hookean_continuum(dim)
    rng = np.random.default_rng(10 + dim)
    U = 0.05 * rng.standard_normal(system.n_dofs)
    E, g, K = fe.energy_gradient(U, order=2)
    active = np.unique(np.flatnonzero(np.abs(g) > 0))
    h = 1e-5
    for dof in rng.choice(active, 6, replace=False):
        Up, Um = U.copy(), U.copy()
        Up[dof] += h
        Um[dof] -= h
        Ep, gp, _ = fe.energy_gradient(Up)
        Em, gm, _ = fe.energy_gradient(Um)
        assert abs((Ep - Em) / (2 * h) - g[dof]) <= 1e-6 * max(1.0, np.abs(g).max())
        col = (gp - gm) / (2 * h)
        assert np.abs(K[:, dof].toarray().ravel() - col).max() <= 1e-6 * max(
            1.0, np.abs(col).max())
    assert abs(K - K.T).max() <= 1e-12 * abs(K).max()  # a hyperelastic tangent


@pytest.mark.parametrize("dim", [2, 3])
def test_homogeneous_deformation_gives_t_W_area_and_no_interior_force(dim):
    system, fe = _neo_hookean_continuum(dim, "full")
    F = np.eye(3)
    F[:system.ncomp, :2] += 0.04 * np.random.default_rng(3).uniform(-1, 1, (system.ncomp, 2))
    E, g, _ = fe.energy_gradient(system.homogeneous(F))
    t = continuum.qc_thickness(system)
    W = fe.material.energy_density(F[None])[0]
    assert E == pytest.approx(t * W * system.mesh.volumes_k.sum(), rel=1e-12)
    interior = np.ones(system.n_nodes, bool)
    interior[system.mesh.boundary_nodes()] = False
    f = g.reshape(-1, system.ncomp)[interior]
    assert np.abs(f).max() <= 1e-12 * np.abs(g).max()


def test_a_collapsed_element_is_a_calculation_failure():
    system, fe = _neo_hookean_continuum(2)
    U = system.homogeneous(np.diag([-0.5, 1.0, 1.0]))  # det F < 0 everywhere
    with pytest.raises(CalculationFailed, match="collapsed or inverted"):
        fe.energy_gradient(U)
    model = QCModel(system, "bqce", continuum="dolfinx")
    U = system.homogeneous(np.diag([0.2, 1.0, 1.0]))  # det F > 0, stretch below 0.25
    with pytest.raises(CalculationFailed):
        model.cont.energy_gradient(U)


def test_bad_options_are_refused():
    system = _cached_system(2)
    with pytest.raises(InputError, match="unknown QC continuum"):
        QCModel(system, "bqce", continuum="fenics")
    mat = continuum.LatticeCauchyBorn.of_system(system)  # material= needs no continuum=
    assert QCModel(system, "bqce", material=mat).cont.material is mat
    from fe2.materials import NeoHookean

    with pytest.raises(InputError, match="3D material point"):
        QCModel(system, "bqce", continuum="dolfinx", material=NeoHookean(0.3, 0.5, 2))


@pytest.mark.parametrize("scheme", ["qcf", "gfc", "bgfc"])
@pytest.mark.parametrize("dim", [2, 3])
def test_corrected_schemes_pass_the_patch_test_with_the_dolfinx_continuum(scheme, dim):
    from coupling.qc.patch import patch_test

    out = patch_test(scheme, dim, seed=7, continuum="dolfinx")
    assert out["continuum"] == "dolfinx"
    assert out["max_force"] <= 1e-10
    assert not np.allclose(out["cases"][1]["F"], np.eye(3))


def test_chain_ghost_forces_equal_the_hand_calculation_with_the_dolfinx_continuum():
    from coupling.qc.patch import chain_ghost_forces

    out = chain_ghost_forces(1.03, continuum="dolfinx")
    assert out["max_difference"] < 1e-12
    assert sorted(out["carriers"]) == [-22, -21, -20, -19, -1, 0, 1, 2]


def _same_solution(system, scheme, U0, **kw):
    from coupling.qc.solver import relax

    out = []
    for model_class in (_ReferenceQCModel, QCModel):
        U, rep = relax(model_class(system, scheme, **kw), U0, tol=1e-10)
        assert rep.converged
        out.append(U)
    return out


@pytest.mark.parametrize(("scheme", "dim"), [("bgfc", 2), ("qcf", 2), ("bgfc", 3)])
def test_vacancy_relaxation_is_the_p1_references(scheme, dim):
    system = _system(dim, scheme)
    F = np.diag([1.01, 0.995, 1.0])
    U1, U2 = _same_solution(system, scheme, system.homogeneous(F), F_ref=F)
    assert np.abs(U2 - U1).max() <= 1e-10 * np.abs(U1).max()
    assert np.abs(U1 - system.homogeneous(F)).max() > 1e-3  # the vacancy relaxes


def test_pre_cut_crack_relaxation_is_the_p1_references():
    from coupling.qc.crack import crack_system, k_field
    from coupling.qc.setups import short_range_setup

    setup = short_range_setup()
    system, field = crack_system(2, "bgfc", radius=20.0, atomistic_radius=8.0, growth=0.1,
                                 max_size=10 * setup[2], setup=setup, cut=True,
                                 clamp_growth=0.3)
    U0 = k_field(field, system, 0.9 * field.K_G)
    U1, U2 = _same_solution(system, "bgfc", U0, F_ref=np.eye(3))
    assert np.abs(U2 - U1).max() <= 1e-10 * np.abs(U1).max()


def test_cli_patch_test_runs_on_the_dolfinx_continuum():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "coupling.cli", "qc", "patch-test", "--scheme",
                          "qcf", "--dim", "2", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["continuum"] == "dolfinx" and data["max_force"] <= 1e-10
