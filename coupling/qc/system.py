"""Setting up a QC problem: lattice sites of the domain, regions, blending and mesh.

Three lattices are supported:

* ``triangular``: the 2D close-packed lattice (pair potentials), 2 displacement
  components on a 2D mesh; ``a0`` is the nearest-neighbour distance.
* ``fcc``: a 3D fcc slab with x = [100], y = [010] and the crack front z = [001],
  periodic along z with one lattice period ``a0`` (one atom per projected column, the
  thin-slab "2.5D" setting of the original QC code); 3 displacement components on a 2D
  mesh, so out-of-plane displacements are allowed.
* ``chain``: a 1D chain along x (tests and the ghost-force hand calculation).

:func:`build_system` returns a :class:`QCSystem`: the sites, their KD-tree, the
:class:`~coupling.qc.mesh.QCMesh` (with its P1 geometry), the regions and the blending
weights, everything the schemes of :mod:`coupling.qc.model` need. Regions are the shapes of
:mod:`coupling.qc.geometry`.

All validation happens here, before any expensive work: an unknown scheme, a handshake
narrower than the cutoff, an atomistic region (with its handshake) that reaches the
clamped outer layer, a defect outside the atomistic region, a crack tip outside it, and
(through :func:`coupling.qc.mesh_check.check_nodes_on_sites`) a mesh node that is not a
lattice site where one must be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from atomistic.cb_batch import BatchCauchyBorn
from atomistic.lattice import get_lattice
from atomistic.structure import Configuration
from coupling.qc.geometry import Box, Crack, Disc
from coupling.qc.locate import interpolation_matrix
from coupling.qc.mesh import QCMesh, site_tree
from coupling.qc.mesh_build import build_mesh, build_mesh_1d
from coupling.qc.mesh_check import check_nodes_on_sites, user_mesh
from fe2qc.checks import MAX_F_ENTRY, require_finite
from fe2qc.errors import InputError

__all__ = ["SCHEMES", "QC_LATTICES", "QCSystem", "check_scheme", "lattice_sites",
           "build_system", "blending"]

SCHEMES = ("qce", "gfc", "qcf", "bqce", "bgfc")
_DESCRIPTIONS = {
    "qce": "energy-based QC (sharp interface; has ghost forces)",
    "gfc": "QCE with iterated ghost-force correction as a dead load (Shenoy et al. 1999)",
    "qcf": "force-based QC (atomistic forces on atoms, Cauchy-Born forces on nodes)",
    "bqce": "blended energy-based QC over a handshake band",
    "bgfc": "blended QC with the ghost-force correction at the homogeneous state",
}


def check_scheme(scheme: str) -> str:
    """Return the canonical scheme name or raise InputError listing the choices."""
    key = str(scheme).strip().lower()
    if key not in SCHEMES:
        choices = "; ".join(f"{k}: {v}" for k, v in _DESCRIPTIONS.items())
        raise InputError(f"unknown QC scheme {scheme!r}; choose one of {', '.join(SCHEMES)} "
                         f"({choices})")
    return key


QC_LATTICES = ("triangular", "fcc", "chain")

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
        lo, hi = np.array([domain.xmin, domain.ymin]), np.array([domain.xmax, domain.ymax])
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


def blending(d_s: np.ndarray, width: float) -> np.ndarray:
    """Smooth ramp (C¹ smoothstep) from 0 at distance 0 to 1 at ``width``."""
    if width <= 0:
        return (d_s > 0).astype(float)
    t = np.clip(d_s / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class QCSystem:
    """Everything a scheme needs, fixed before the solve.

    Attributes:
        reference: all lattice sites of the domain (reference positions, cell, pbc, types);
            for a slab the cell's third vector is the periodic length along the crack front.
        present_s: sites that hold an atom (vacancies are False).
        mesh: the P1 mesh whose nodes are sites; it holds the nodes, cells, element measures
            and shape gradients (``mesh.points_md``, ``mesh.cells_kv``, ``mesh.volumes_k``,
            ``mesh.grad_kvd``, ``mesh.dim``...).
        ncomp: displacement components per node (1, 2 or 3; 3 on a 2D mesh is the slab).
        atomistic_s: the atomistic region (every such site is a node).
        beta_s: blending weight per site (0 atomistic .. 1 continuum).
        fixed_m: nodes held by Dirichlet conditions.
        omega: measure per site in the mesh plane (Å^d).
        cauchy_born: the batched Cauchy-Born kernel of the same potential.
        potential: the interatomic potential.
        tree: KD-tree of the sites in the mesh plane (:func:`coupling.qc.mesh.site_tree`),
            the one the builder used; built here if not given.
        info: what :func:`build_system` recorded (lattice, scheme, crack, clamped layer...).
    """

    reference: Configuration
    present_s: np.ndarray
    mesh: QCMesh
    ncomp: int
    atomistic_s: np.ndarray
    beta_s: np.ndarray
    fixed_m: np.ndarray
    omega: float
    cauchy_born: BatchCauchyBorn
    potential: object
    tree: cKDTree | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ns = len(self.reference)
        self.present_s = np.asarray(self.present_s, bool)
        self.atomistic_s = np.asarray(self.atomistic_s, bool)
        self.beta_s = np.asarray(self.beta_s, float)
        self.fixed_m = np.asarray(self.fixed_m, bool)
        for name, arr in (("present_s", self.present_s), ("atomistic_s", self.atomistic_s),
                          ("beta_s", self.beta_s)):
            if arr.shape != (ns,):
                raise InputError(f"{name} must have one entry per site ({ns}), got {arr.shape}")
        if self.mesh.n_sites != ns:
            raise InputError(f"the mesh is built on {self.mesh.n_sites} sites, the system has "
                             f"{ns}")
        m = self.mesh.n_nodes
        if self.fixed_m.shape != (m,):
            raise InputError(f"fixed_m needs one entry per node ({m}), got {self.fixed_m.shape}")
        missing = np.flatnonzero(self.atomistic_s & self.present_s & (self.mesh.node_of_site < 0))
        if len(missing):
            s = int(missing[0])
            raise InputError(
                f"{len(missing)} atomistic-region sites are not mesh nodes (e.g. site {s} at "
                f"{self.reference.positions_nc[s, :self.mesh.dim].round(4).tolist()}); the "
                "mesh must be fully refined over the atomistic region")
        if not np.all(self.present_s[self.mesh.node_site_m]):
            raise InputError("a mesh node sits on a vacancy; remove vacancy sites from the mesh")
        self.mesh.check_nondegenerate()
        if self.tree is None:
            self.tree = site_tree(self.reference.positions_nc[:, :self.mesh.dim])

    # ---- sizes (shared with the fully atomistic reference the solver also takes) ---------
    @property
    def n_nodes(self) -> int:
        """Number of mesh nodes (the mesh and its fields are read from :attr:`mesh`)."""
        return self.mesh.n_nodes

    @property
    def n_dofs(self) -> int:
        """Number of degrees of freedom: nodes times displacement components."""
        return self.n_nodes * self.ncomp

    def free_dofs(self) -> np.ndarray:
        """Boolean mask over dofs: True where the node is not fixed."""
        return np.repeat(~self.fixed_m, self.ncomp)

    def node_positions(self) -> np.ndarray:
        """Reference 3D positions of the nodes."""
        return self.reference.positions_nc[self.mesh.node_site_m]

    def homogeneous(self, F: np.ndarray) -> np.ndarray:
        """Nodal displacements ``(F - I) X`` of a homogeneous deformation, shape (m, c)."""
        F = require_finite("F", F, bound=MAX_F_ENTRY)
        X = self.node_positions()
        return (X @ (F - np.eye(3)).T)[:, :self.ncomp]

    def interpolate(self, Y_qd: np.ndarray) -> sp.csr_matrix:
        """Return the P1 interpolation matrix ``(q, m)`` at points ``Y_qd`` of the mesh plane.

        E.g. at sites that are not nodes: padding atoms in coarse elements.
        """
        return interpolation_matrix(self.mesh, Y_qd)

    def neighbours_within(self, mask_s: np.ndarray, radius: float, *,
                          present_s: np.ndarray | None = None) -> np.ndarray:
        """Mask of the present sites within ``radius`` of any site in ``mask_s``.

        Distances are in the mesh plane, between reference positions; ``present_s`` overrides
        which sites hold an atom.
        """
        pts = self.reference.positions_nc[np.flatnonzero(mask_s), :self.mesh.dim]
        out = np.zeros(len(self.reference), bool)
        if len(pts):
            for lst in self.tree.query_ball_point(pts, radius):
                out[lst] = True
        return out & (self.present_s if present_s is None else present_s)

    def bond_exclusion(self, X_ref_n3: np.ndarray):
        """The ``exclude`` rule of a :class:`Calculator` for atoms at ``X_ref_n3``.

        None unless the system has a pre-cut crack (``Crack(cut=True)``).
        """
        crack = self.info.get("crack")
        if crack is None or not getattr(crack, "cut", False):
            return None
        from atomistic.fracture import crack_cut

        return crack_cut(X_ref_n3, self.reference.cell_cc, crack.tip_x, crack.y_plane)


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
        lattice: one of :data:`QC_LATTICES` (``triangular``, ``fcc``, ``chain``); see
            :func:`lattice_sites`.
        a0: lattice parameter (Å).
        domain: outer boundary, a :class:`~coupling.qc.geometry.Disc` or
            :class:`~coupling.qc.geometry.Box`.
        atomistic: the atomistic region, a ``Disc``, a ``Box`` or a predicate on
            site coordinates ``(n, d) -> bool``.
        scheme: one of :data:`SCHEMES` (decides sharp or blended).
        handshake: width (Å) of the band around the atomistic region: the fully refined
            padding for the sharp schemes, the blending band for ``bqce``/``bgfc``; at least
            the cutoff (default: the cutoff, or twice it for blended schemes).
        crack: a :class:`~coupling.qc.geometry.Crack` along -x ending inside the atomistic
            region.
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
        growth: mesh coarsening rate: the element size grows by ``growth`` Å per Å of
            distance from the refined region.
        clamp_growth: coarsening rate away from a resolved clamped layer (default
            ``growth``); the layer is far from the defect, so it can coarsen faster.
        max_size: largest element size (Å); None: no bound.
        mesh: optional user mesh ``(points (m, d), cells (k, d+1))``; its nodes are matched
            to sites and validated.
        type_index: species (atom type) of the lattice's sites.
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
    X = ref.positions_nc[:, :mdim]
    n = len(X)
    A = _region_mask(atomistic, X)
    if not A.any():
        raise InputError("the atomistic region contains no lattice site; enlarge it")
    present = np.ones(n, bool)
    tree = site_tree(X)  # the one KD-tree of the sites, kept by the system
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
    if mdim == 1:
        if mesh is not None:
            raise InputError("user meshes are 2D only")
        m = build_mesh_1d(X, node_sites=np.flatnonzero(present))
    else:
        if mesh is not None:
            m = user_mesh(mesh[0], mesh[1], X, required_mask_s=required, tree=tree)
        else:
            m = build_mesh(X, refine_mask_s=required, domain=domain,
                           spacing=float(np.min(tree.query(X[:1], 2)[0][0][1:])),
                           growth=growth, max_size=max_size, crack=crack, present_s=present,
                           outer_mask_s=ring if resolve_clamp else None,
                           outer_growth=clamp_growth)
        check_nodes_on_sites(m, X, required, tree=tree)
    fixed = ring[m.node_site_m]
    system = QCSystem(ref, present, m, ncomp, A, beta, fixed, omega, cb, potential, tree)
    system.info.update(lattice=lattice, a0=a0, scheme=scheme, handshake=handshake,
                       clamp_width=clamp, resolve_clamp=bool(resolve_clamp),
                       sites=int(present.sum()),
                       atomistic_sites=int((A & present).sum()), crack=crack,
                       domain=domain, clamped_s=ring)
    return system
