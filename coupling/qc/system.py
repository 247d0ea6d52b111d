"""Setting up a QC problem: lattice sites of the domain, regions, blending and mesh.

Three lattices are supported:

* ``triangular``: the 2D close-packed lattice (pair potentials), 2 displacement
  components on a 2D mesh; ``a0`` is the nearest-neighbour distance.
* ``fcc``: a 3D fcc slab with x = [100], y = [010] and the crack front z = [001],
  periodic along z with one lattice period ``a0`` (one atom per projected column, the
  thin-slab "2.5D" setting of the original QC code); 3 displacement components on a 2D
  mesh, so out-of-plane displacements are allowed.
* ``chain``: a 1D chain along x (tests and the ghost-force hand calculation).

All validation happens here, before any expensive work: an unknown scheme, a handshake
narrower than the cutoff, an atomistic region (with its handshake) that reaches the
clamped outer layer, a defect outside the atomistic region, a crack tip outside it, and
(through :func:`coupling.qc.mesh.check_nodes_on_sites`) a mesh node that is not a lattice
site where one must be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from atomistic.cb_batch import BatchCauchyBorn
from atomistic.lattice import get_lattice
from atomistic.structure import Configuration
from coupling.qc.model import QCSystem, check_scheme
from fe2qc.errors import InputError

__all__ = ["Disc", "Box", "Crack", "QC_LATTICES", "lattice_sites", "build_system",
           "blending", "bond_exclusion"]

QC_LATTICES = ("triangular", "fcc", "chain")


@dataclass(frozen=True)
class Disc:
    """A disc (2D) or interval (1D: |x - cx| <= radius)."""

    cx: float
    cy: float
    radius: float

    def contains(self, X: np.ndarray) -> np.ndarray:
        return self.distance_inside(X) >= -1e-9

    def distance_inside(self, X: np.ndarray) -> np.ndarray:
        """Distance from each point to the boundary, positive inside."""
        c = np.array([self.cx, self.cy])[: X.shape[1]]
        return self.radius - np.linalg.norm(X - c, axis=1)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box [x0, x1] × [y0, y1]."""

    x0: float
    y0: float
    x1: float
    y1: float

    def contains(self, X: np.ndarray) -> np.ndarray:
        return self.distance_inside(X) >= -1e-9

    def distance_inside(self, X: np.ndarray) -> np.ndarray:
        lo = np.array([self.x0, self.y0])[: X.shape[1]]
        hi = np.array([self.x1, self.y1])[: X.shape[1]]
        return np.minimum(X - lo, hi - X).min(axis=1)


@dataclass(frozen=True)
class Crack:
    """A straight crack along -x from ``tip_x`` on the plane ``y = y_plane``.

    With ``cut`` the bonds across the plane behind the tip are removed from the atomistic
    interactions (:func:`atomistic.fracture.crack_cut`): a pre-cut crack whose faces cannot
    re-bond. Without it the crack exists only through the mesh slit and the displacements
    (the crack can heal), as in the lattice-trapping demo.
    """

    tip_x: float = 0.0
    y_plane: float = 0.0
    cut: bool = False


Region = Disc | Box | Callable


def _region_mask(region, X: np.ndarray) -> np.ndarray:
    if isinstance(region, Disc | Box):
        return region.contains(X)
    if callable(region):
        mask = np.asarray(region(X), bool)
        if mask.shape != (len(X),):
            raise InputError("the atomistic-region predicate must return one bool per site")
        return mask
    raise InputError(f"atomistic region must be a Disc, a Box or a predicate, got {region!r}")


def lattice_sites(lattice: str, a0: float, domain, *, crack: Crack | None = None):
    """Sites of ``lattice`` inside ``domain``.

    With a crack the lattice is shifted so that the crack plane lies midway between two
    atomic rows and the tip between two columns; otherwise a site sits at the origin.

    Returns:
        ``(reference Configuration, omega, ncomp, mesh_dim, primitive_cc)``.
    """
    lattice = str(lattice).lower()
    if lattice not in QC_LATTICES:
        raise InputError(f"QC lattice {lattice!r} is not supported; choose one of "
                         f"{', '.join(QC_LATTICES)}")
    a0 = float(a0)
    if not (np.isfinite(a0) and a0 > 0):
        raise InputError(f"lattice parameter must be positive, got {a0}")
    if lattice == "chain":
        if not isinstance(domain, Disc):
            raise InputError("a chain's domain is a Disc(cx, 0, half_length) interval")
        n = int(np.floor(domain.radius / a0 + 1e-9))
        x = domain.cx + a0 * np.arange(-n, n + 1)
        pos = np.zeros((len(x), 3))
        pos[:, 0] = x
        H = 100.0 * a0
        ref = Configuration(pos, np.diag([2 * domain.radius + H, H, H]), (False,) * 3)
        return ref, a0, 1, 1, np.diag([a0, H, H])
    if isinstance(domain, Disc):
        lo = np.array([domain.cx, domain.cy]) - domain.radius
        hi = np.array([domain.cx, domain.cy]) + domain.radius
    elif isinstance(domain, Box):
        lo, hi = np.array([domain.x0, domain.y0]), np.array([domain.x1, domain.y1])
    else:
        raise InputError(f"domain must be a Disc or a Box, got {domain!r}")
    if lattice == "triangular":
        h = np.sqrt(3.0) / 2 * a0
        shift = np.array([a0 / 4, h / 2]) if crack is not None else np.zeros(2)
        j = np.arange(np.floor((lo[1] - shift[1]) / h) - 1, np.ceil((hi[1] - shift[1]) / h) + 2)
        imin = np.floor((lo[0] - hi[1]) / a0) - 2
        imax = np.ceil((hi[0] - lo[1]) / a0) + 2
        i = np.arange(imin, imax + 1)
        I, J = np.meshgrid(i, j, indexing="ij")
        X = np.stack([(I + 0.5 * J) * a0, J * h], -1).reshape(-1, 2) + shift
        z = np.zeros(len(X))
        omega = h * a0
        ncomp = 2
        prim = get_lattice("triangular").primitive_cc * a0
        Lz = get_lattice("triangular").conventional_cc[2, 2] * a0
        pbc = (False, False, False)
    else:  # fcc slab: projected columns on a square lattice of spacing a0/2
        s = a0 / 2
        shift = np.array([s / 2, s / 2]) if crack is not None else np.zeros(2)
        i = np.arange(np.floor((lo[0] - shift[0]) / s) - 1, np.ceil((hi[0] - shift[0]) / s) + 2)
        j = np.arange(np.floor((lo[1] - shift[1]) / s) - 1, np.ceil((hi[1] - shift[1]) / s) + 2)
        I, J = np.meshgrid(i, j, indexing="ij")
        X = np.stack([I * s, J * s], -1).reshape(-1, 2) + shift
        z = (np.mod(I + J, 2) * s).ravel()
        omega = s * s
        ncomp = 3
        prim = get_lattice("fcc").primitive_cc * a0
        Lz = a0
        pbc = (False, False, True)
    keep = domain.contains(X)
    X, z = X[keep], z[keep]
    pos = np.column_stack([X, z])
    span = hi - lo
    cell = np.diag([span[0] + 10 * a0, span[1] + 10 * a0, Lz])
    ref = Configuration(pos, cell, pbc)
    ref.info.update(lattice=lattice, a0=a0)
    return ref, omega, ncomp, 2, prim


def bond_exclusion(system, X_ref_n3: np.ndarray):
    """The ``exclude`` rule of a :class:`Calculator` for atoms at ``X_ref_n3`` of ``system``.

    None unless the system has a pre-cut crack (``Crack(cut=True)``).
    """
    crack = system.info.get("crack")
    if crack is None or not getattr(crack, "cut", False):
        return None
    from atomistic.fracture import crack_cut

    return crack_cut(X_ref_n3, system.reference.cell_cc, crack.tip_x, crack.y_plane)


def blending(d_s: np.ndarray, width: float) -> np.ndarray:
    """Smooth ramp (C¹ smoothstep) from 0 at distance 0 to 1 at ``width``."""
    if width <= 0:
        return (d_s > 0).astype(float)
    t = np.clip(d_s / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def build_system(potential, lattice: str, a0: float, *, domain, atomistic, scheme: str,
                 handshake: float | None = None, crack: Crack | None = None,
                 vacancies=(), clamp_width: float | None = None, resolve_clamp: bool = True,
                 growth: float = 0.3, clamp_growth: float | None = None,
                 max_size: float | None = None, mesh=None,
                 type_index: int = 0) -> QCSystem:
    """Build a :class:`QCSystem`.

    Args:
        potential: interatomic potential (pair potentials for ``triangular``/``chain``, any
            for ``fcc``).
        lattice, a0: see :func:`lattice_sites`.
        domain: outer boundary, :class:`Disc` or :class:`Box`.
        atomistic: the atomistic region, :class:`Disc`, :class:`Box` or a predicate on
            site coordinates ``(n, d) -> bool``.
        scheme: one of :data:`coupling.qc.model.SCHEMES` (decides sharp or blended).
        handshake: width (Å) of the band around the atomistic region: the fully refined
            padding for the sharp schemes, the blending band for ``bqce``/``bgfc``; at least
            the cutoff (default: the cutoff, or twice it for blended schemes).
        crack: a crack along -x ending inside the atomistic region.
        vacancies: site coordinates ``(k, d)`` (nearest sites are removed; inside the
            atomistic region).
        clamp_width: width (Å) of the outer layer whose atoms are held (default twice the
            cutoff).
        resolve_clamp: make every site of the clamped layer a fixed node (default), so that
            QC and the fully atomistic reference hold exactly the same atoms. ``False``
            leaves the layer to the coarse mesh: only the nodes that fall inside it (the
            boundary nodes) are fixed, the other sites of the layer follow the elements. The
            boundary condition then differs from the atomistic one by the interpolation of
            the imposed field over one boundary element, but the mesh need not grade down
            to the lattice spacing at the outer boundary (far fewer nodes on large domains).
        growth, max_size: mesh coarsening rate and largest element size (Å).
        clamp_growth: coarsening rate away from a resolved clamped layer (default
            ``growth``); the layer is far from the defect, so it can coarsen faster.
        mesh: optional user mesh ``(points (m, d), cells (k, d+1))``; its nodes are matched
            to sites and validated.
    """
    scheme = check_scheme(scheme)
    blended = scheme in ("bqce", "bgfc")
    rc = float(potential.cutoff)
    if handshake is None:
        handshake = 2.0 * rc if blended else rc
    handshake = float(handshake)
    if not handshake >= rc - 1e-12:
        raise InputError(
            f"handshake width {handshake:.4g} Å is narrower than the potential cutoff "
            f"{rc:.4g} Å: atoms in the atomistic region would interact with continuum atoms "
            "that have no lattice positions; set handshake >= the cutoff")
    clamp = 2.0 * rc if clamp_width is None else float(clamp_width)
    if clamp < rc:
        raise InputError(f"clamp_width {clamp:.4g} Å is narrower than the cutoff {rc:.4g} Å; "
                         "free atoms would feel the open outer surface")
    ref, omega, ncomp, mdim, prim = lattice_sites(lattice, a0, domain, crack=crack)
    if str(lattice).lower() == "chain":
        mdim = 1
    X = ref.positions_nc[:, :mdim]
    n = len(X)
    A = _region_mask(atomistic, X)
    if not A.any():
        raise InputError("the atomistic region contains no lattice site; enlarge it")
    present = np.ones(n, bool)
    tree = cKDTree(X, balanced_tree=False, compact_nodes=False)
    vac = np.asarray(vacancies, float).reshape(-1, mdim) if len(vacancies) else np.zeros((0, mdim))
    for v in vac:
        dist, s = tree.query(v)
        if not A[s]:
            raise InputError(f"vacancy at {v.tolist()} lies outside the atomistic region: "
                             "defects must be inside it (the continuum is a perfect crystal)")
        present[s] = False
    # distance of every site to the atomistic region
    # (only distances up to the refined band matter; farther sites get inf)
    d_A, _ = cKDTree(X[A]).query(X, distance_upper_bound=2.0 * handshake + 2.0 * rc)
    d_A[A] = 0.0
    beta = blending(d_A, handshake) if blended else (~A).astype(float)
    beta[A] = 0.0
    refine = d_A <= (handshake + rc if blended else handshake) + 1e-9
    inside = domain.distance_inside(X)
    ring = inside <= clamp + 1e-9
    reach = refine & (inside <= clamp + rc)
    if reach.any():
        s = int(np.flatnonzero(reach)[np.argmin(inside[reach])])
        raise InputError(
            f"the atomistic region plus its handshake reaches the clamped outer boundary "
            f"layer (site at {X[s].round(3).tolist()} is {inside[s]:.3g} Å from the boundary, "
            f"clamped layer {clamp:.3g} Å + cutoff {rc:.3g} Å): shrink the atomistic region "
            "or enlarge the domain")
    if crack is not None:
        tip = np.array([crack.tip_x, crack.y_plane])[:mdim]
        if not _region_mask(atomistic, tip[None, :])[0]:
            raise InputError(f"the crack tip {tip.tolist()} is outside the atomistic region; "
                             "the continuum cannot describe a crack tip")
    required = (refine | ring) & present if resolve_clamp else refine & present
    cb = BatchCauchyBorn(potential, prim, type_index=type_index)
    interpolate = None
    from coupling.qc import mesh as qcmesh

    if mdim == 1:
        if mesh is not None:
            raise InputError("user meshes are 2D only")
        m = qcmesh.build_mesh_1d(X, node_sites=np.flatnonzero(present))
        points, nodes, cells = m.points_m2, m.node_site_m, m.cells_k3
    else:
        if mesh is not None:
            m = qcmesh.QCMesh.from_arrays(mesh[0], mesh[1], X, required_mask_s=required)
        else:
            dom = (("disc", domain.cx, domain.cy, domain.radius) if isinstance(domain, Disc)
                   else ("box", domain.x0, domain.y0, domain.x1, domain.y1))
            ck = None if crack is None else qcmesh.Crack(crack.tip_x, crack.y_plane)
            m = qcmesh.build_mesh(X, refine_mask_s=required, domain=dom,
                                  spacing=float(np.min(tree.query(X[:1], 2)[0][0][1:])),
                                  growth=growth, max_size=max_size, crack=ck, present_s=present,
                                  outer_mask_s=ring if resolve_clamp else None,
                                  outer_growth=clamp_growth)
        qcmesh.check_nodes_on_sites(m, X, required)
        points, nodes, cells = m.points_m2, m.node_site_m, m.cells_k3

        def interpolate(Y, _m=m):
            return qcmesh.interpolation_matrix(_m, Y)

    fixed = ring[nodes]
    system = QCSystem(ref, present, points, nodes, cells, ncomp, A, beta, fixed, omega, cb,
                      potential, interpolate)
    system.info.update(lattice=lattice, a0=a0, scheme=scheme, handshake=handshake,
                       clamp_width=clamp, resolve_clamp=bool(resolve_clamp),
                       sites=int(present.sum()),
                       atomistic_sites=int((A & present).sum()), crack=crack,
                       domain=domain, clamped_s=ring)
    return system
