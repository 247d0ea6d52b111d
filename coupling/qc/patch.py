"""The QC patch test: a homogeneous deformation must give zero force on every atom and node.

``patch_test(scheme, dim)`` deforms the reference lattice by ``F = I`` and by a random
``F = I + amplitude * R`` (or a given F), puts every node at ``(F - I) X`` and reports the
scheme's forces there, with the forces on the atoms and nodes near the atomistic/continuum
interface. ``gfc``, ``qcf`` and ``bgfc`` pass (|f| <= 1e-10 eV/Å, ``status`` PASS, else
FAIL); ``qce`` and ``bqce`` show their ghost forces (``status`` GHOST_FORCES, expected).
For ``bgfc`` the correction is taken at the test's own homogeneous state (the published
scheme: the correction is the blended energy's gradient at the homogeneous far-field
deformation), so it is exact by construction; :func:`bgfc_off_reference` is the meaningful
check (F != F_ref: forces first order in F - F_ref). For ``gfc`` the dead load is the ghost
force at the current state (its fixed point), so what is tested is the force-based
equations. Under finite strain the test checks the padding (sized from the deformed state,
:class:`coupling.qc.model._Cluster`). F must have det F > 0 and leave the lattice stable
(:func:`lattice_stability`: Cauchy-Born acoustic tensor and supercell phonons), else
InputError before any work.

``chain_ghost_forces(F)``: for the 1D chain with first and second neighbours, the energy-based
QC with atoms ``xi <= 0`` and continuum ``xi >= 1`` has, by hand (every atom a node, P1
elements, site volumes split half to each end of an element), the gradient
``dE/dy = (b/2, -b/2, -b/2, b/2)`` on atoms ``-1, 0, 1, 2`` and zero elsewhere, with
``b = phi'(2 F a)``: exactly four interface atoms carry ghost forces ``f = -dE/dy``. The
test chain has atoms ``-20 <= xi <= 0``, so its left interface carries the mirror image.
"""

from __future__ import annotations

import numpy as np

from coupling.qc.geometry import Disc
from coupling.qc.model import QCModel
from coupling.qc.setups import default_setup
from coupling.qc.system import build_system, check_scheme
from fe2qc.errors import InputError
from fe2qc.tensors import acoustic_directions, acoustic_tensor

__all__ = ["patch_test", "lattice_stability",
           "chain_ghost_forces", "chain_hand_ghost_forces", "bgfc_off_reference",
           "PATCH_TOLERANCE",
           "PASSING_SCHEMES"]


#: the schemes that claim the patch test, and its tolerance (eV/Å, largest force on a free
#: atom or node). ``qce`` and ``bqce`` have ghost forces: their patch test is expected to fail.
PATCH_TOLERANCE = 1e-10
PASSING_SCHEMES = ("gfc", "qcf", "bgfc")
#: supercell (primitive cells per in-plane direction) of the phonon stability check: the
#: Hessian's eigenvalues are the phonon frequencies squared at the 12 x 12 commensurate q.
_PHONON_CELLS = 12
#: largest |P|/a0 (eV/Å) the patch test accepts: the forces it checks are sums of bond forces
#: of this size that cancel, with a round-off of 2e-14 to 3e-14 of it (measured: qcf on the
#: triangular lattice at F = 0.7 I and 0.5 I), so far beyond it 1e-10 eV/Å is not resolvable
#: in double precision. Only extreme compressions reach it (2D lj/smooth: |P|/a0 = 8.1 eV/Å
#: at F = 0.9 I, 4.0e2 at 0.7 I, 1.1e3 at 0.65 I, 3.6e4 at 0.5 I).
MAX_FORCE_SCALE = 1e3


# the entries of F a homogeneous state of each model may change: (rows, columns)
_F_BLOCK = {1: (1, 1), 2: (2, 2), 3: (3, 2)}


def _random_F(rng, dim: int, amplitude: float) -> np.ndarray:
    """Random ``F = I + amplitude * R``, R uniform in [-1, 1] on the entries the model changes.

    Seeded by ``rng``. The entries are F_xx for the chain, the in-plane 2x2 block for the
    triangular lattice, the first two columns for the slab (its displacements, all three
    components, depend on x and y; the z column stays (0, 0, 1)).
    """
    F = np.eye(3)
    r, k = _F_BLOCK[dim]
    F[:r, :k] += amplitude * rng.uniform(-1, 1, (r, k))
    return F


def _as_F(F, dim: int, hint: str = "") -> np.ndarray:
    """A deformation gradient for the patch test of ``dim`` as 3x3, validated (InputError)."""
    from fe2qc.checks import MAX_F_ENTRY, require_finite

    r, k = _F_BLOCK[dim]
    a = require_finite("F", F, bound=MAX_F_ENTRY, hint=hint)
    if a.shape in ((k, k), (r, k)):
        full = np.eye(3)
        full[:a.shape[0], :k] = a
        a = full
    if a.shape != (3, 3):
        raise InputError(f"F must be {k}x{k} (the in-plane part)"
                         + (f", {r}x{k}" if r != k else "") + f" or 3x3 for dim {dim}, "
                         f"got shape {a.shape}")
    allowed = np.eye(3)
    allowed[:r, :k] = a[:r, :k]
    if not np.array_equal(a, allowed):
        what = {1: "only F_xx may differ from the identity for the chain",
                2: "the triangular lattice is planar: only the in-plane 2x2 block may differ "
                   "from the identity",
                3: "the slab is periodic along z and its displacements depend on x, y only: "
                   "the third column of F must be (0, 0, 1)"}[dim]
        raise InputError(f"F = {a.tolist()} is not a homogeneous state of this model: {what}")
    det = float(np.linalg.det(a))
    if not det > 0:
        raise InputError(f"det F = {det:.6g} <= 0 for F = {a[:r, :k].round(6).tolist()}: the "
                         "deformation inverts the lattice; use a smaller amplitude or another "
                         "seed")
    return a


def lattice_stability(dim: int, F, *, setup=None) -> dict:
    """Is the defect-free lattice of the patch test of ``dim`` stable under ``F``?

    Two checks, both restricted to the model's displacement components (in-plane for the
    triangular lattice and the chain's x, all three for the slab):

    * strong ellipticity (long waves): the smallest eigenvalue of the Cauchy-Born acoustic
      tensor ``Q_ik(N) = A_iJkL N_J N_L`` over in-plane directions N must be positive;
    * phonons (all wavelengths the model can hold): the smallest eigenvalue of the atomistic
      Hessian of a periodic 12 x 12 supercell at ``F``, translations excluded, must be
      positive (the slab's supercell is one period along z, as in the model).

    Beyond these the lattice is not a stable state, so the patch test is not defined; the
    smallest stretch is also bounded by :data:`coupling.qc.model.MIN_STRETCH`.

    Returns:
        ``{"stable", "min_stretch", "acoustic_min" (eV per site), "acoustic_direction",
        "phonon_min" (eV/Å²), "force_scale" (|P|/a0, eV/Å), "reason"}``.
    """
    from atomistic.calculator import Calculator
    from atomistic.cb_batch import BatchCauchyBorn
    from atomistic.lattice import crystal, get_lattice
    from atomistic.structure import Configuration
    from coupling.qc.model import MIN_STRETCH

    pot, lattice, a0 = default_setup(dim) if setup is None else setup
    F = _as_F(F, dim)
    out = {"min_stretch": float(np.linalg.svd(F, compute_uv=False)[-1])}
    if out["min_stretch"] <= MIN_STRETCH:
        out.update(stable=False, acoustic_min=None, acoustic_direction=None, phonon_min=None,
                   force_scale=None,
                   reason=f"smallest stretch {out['min_stretch']:.3g} <= {MIN_STRETCH}: atoms "
                   "overlap")
        return out
    c, d = {1: (1, 1), 2: (2, 2), 3: (3, 2)}[dim]
    if lattice == "chain":
        prim = np.diag([a0, 100.0 * a0, 100.0 * a0])
        n = 4 * _PHONON_CELLS
        pos = np.zeros((n, 3))
        pos[:, 0] = a0 * np.arange(n)
        cfg = Configuration(pos, np.diag([n * a0, 100 * a0, 100 * a0]), (True, False, False))
    else:
        prim = get_lattice(lattice).primitive_cc * a0
        m = _PHONON_CELLS // 2 if lattice == "fcc" else _PHONON_CELLS
        cfg = crystal(lattice, a0, size=(m, m, 1),
                      pbc=(True, True, lattice == "fcc"))
    # long waves: the acoustic tensor of the Cauchy-Born tangent
    _, P, A = BatchCauchyBorn(pot, prim).evaluate(F[None], order=2)
    # the size of the bond forces that cancel on every site (eV/Å): round-off in the patch
    # test's forces is about 1e-13 of it (measured)
    out["force_scale"] = float(np.linalg.norm(P[0]) / a0)
    A = A[0][:c, :d, :c, :d]
    N = acoustic_directions(d, 360)
    lam = np.linalg.eigvalsh(acoustic_tensor(A, N))[:, 0]
    j = int(np.argmin(lam))
    out["acoustic_min"] = float(lam[j])
    out["acoustic_direction"] = N[j].round(6).tolist()
    # all wavelengths of the supercell: its Hessian at F, translations shifted out
    calc = Calculator(pot, skin=0.0, multiple_images=True)
    H = calc.hessian(cfg.deformed(F)).toarray()
    keep = (3 * np.arange(len(cfg))[:, None] + np.arange(c)).ravel()
    H = H[np.ix_(keep, keep)]
    scale = float(np.abs(np.diag(H)).max())
    T = np.zeros((len(keep), c))
    for k in range(c):
        T[k::c, k] = 1.0 / np.sqrt(len(cfg))
    ev = np.linalg.eigvalsh(H + 2.0 * scale * (T @ T.T))
    out["phonon_min"] = float(ev[0])
    tol = 1e-9 * scale
    reasons = []
    if not out["acoustic_min"] > tol * a0 * a0:
        reasons.append(f"the Cauchy-Born acoustic tensor is not positive definite (smallest "
                       f"eigenvalue {out['acoustic_min']:.3g} eV for the direction "
                       f"N = {out['acoustic_direction']}: loss of strong ellipticity)")
    if not out["phonon_min"] > tol:
        reasons.append(f"a phonon of the {m if lattice != 'chain' else n}-cell periodic "
                       f"supercell is unstable (Hessian eigenvalue {out['phonon_min']:.3g} "
                       "eV/Å²)")
    out["stable"] = not reasons
    out["reason"] = "; ".join(reasons)
    return out


def _require_stable(dim: int, F: np.ndarray, setup) -> dict:
    st = lattice_stability(dim, F, setup=setup)
    r, k = _F_BLOCK[dim]
    if not st["stable"]:
        raise InputError(
            f"the lattice is not stable under F = {F[:r, :k].round(6).tolist()} "
            f"(det F = {np.linalg.det(F):.4g}): {st['reason']}; the patch test is defined for "
            "stable homogeneous states only: use a smaller amplitude or another F")
    if st["force_scale"] > MAX_FORCE_SCALE:
        raise InputError(
            f"F = {F[:r, :k].round(6).tolist()} loads the lattice with a stress |P|/a0 = "
            f"{st['force_scale']:.4g} eV/Å (P the Cauchy-Born first Piola-Kirchhoff stress per "
            f"site), beyond the {MAX_FORCE_SCALE:g} eV/Å up to which the cancelling bond forces "
            f"leave a round-off below the test's {PATCH_TOLERANCE:g} eV/Å; use a smaller "
            "compression")
    return st


def patch_test(scheme: str, dim: int = 2, *, seed: int = 0, amplitude: float = 0.02,
               F=None, interface_band: float | None = None, continuum: str = "dolfinx") -> dict:
    """Forces of ``scheme`` under homogeneous deformations; JSON-ready dictionary.

    Two cases: ``F = I`` and ``F = I + amplitude * R`` (``R`` uniform in [-1, 1] on the
    in-plane block, from ``seed``), or the given ``F`` (k x k in-plane block or 3x3). The
    amplitude must be a finite number >= 0, ``det F > 0`` and the lattice stable under F
    (:func:`lattice_stability`), else InputError before any work. ``status`` is ``PASS`` or
    ``FAIL`` against :data:`PATCH_TOLERANCE` for the schemes that claim the patch test
    (``gfc``, ``qcf``, ``bgfc``) and ``GHOST_FORCES`` for ``qce``/``bqce`` (expected).
    ``continuum`` is :class:`~coupling.qc.model.QCModel`'s (``dolfinx``, the only one).
    """
    from fe2qc.checks import require_nonnegative

    scheme = check_scheme(scheme)
    if dim not in (1, 2, 3):
        raise InputError(f"dim must be 1 (chain), 2 (triangular lattice) or 3 (Cu slab), "
                         f"got {dim!r}")
    if F is None:
        amplitude = require_nonnegative("amplitude", amplitude)
        rng = np.random.default_rng(seed)
        F = _random_F(rng, dim, amplitude)
        label = "random"
    else:
        label = "given"
    setup = default_setup(dim)
    F = _as_F(F, dim, hint="(F = I + amplitude * R with R's entries in [-1, 1]: use a smaller "
              "amplitude)" if label == "random" else "")
    stability = _require_stable(dim, F, setup)
    pot, lattice, a0 = setup
    rc = pot.cutoff
    if dim == 1:
        domain, region = Disc(0.0, 0.0, 30 * a0), Disc(0.0, 0.0, 8.01 * a0)
    elif dim == 2:
        domain, region = Disc(0.0, 0.0, 20 * a0), Disc(0.0, 0.0, 4.01 * a0)
    else:
        domain, region = Disc(0.0, 0.0, 42.0), Disc(0.0, 0.0, 8.0)
    system = build_system(pot, lattice, a0, domain=domain, atomistic=region, scheme=scheme)
    X = system.node_positions()[:, :system.mesh.dim]
    in_A = system.atomistic_s[system.mesh.node_site_m]
    from scipy.spatial import cKDTree

    d_int = cKDTree(X[in_A]).query(X)[0]
    d_C = cKDTree(X[~in_A]).query(X)[0]
    dist = np.where(in_A, -d_C, d_int)  # signed distance to the interface (negative: atoms)
    band = 2.5 * rc if interface_band is None else interface_band
    cases = []
    for _label, Fc in (("identity", np.eye(3)), (label, F)):
        model = QCModel(system, scheme, F_ref=Fc, continuum=continuum)
        U = system.homogeneous(Fc)
        if scheme == "gfc":
            model.dead_load = model.ghost_force(U)
        f = model.node_forces(U)
        fn = np.linalg.norm(f, axis=1)
        near = np.flatnonzero((np.abs(dist) <= band) & ~system.fixed_m)
        near = near[np.argsort(dist[near], kind="stable")]
        carriers = np.flatnonzero(fn > PATCH_TOLERANCE)
        clusters = [cl for cl in (getattr(model, "atoms", None),
                                  getattr(model, "qcf_atoms", None)) if cl is not None]
        cases.append({
            "label": _label,
            "F": Fc.tolist(),
            "det_F": float(np.linalg.det(Fc)),
            "max_force": float(fn.max()),
            "nodes_with_force_above_1e-10": int(len(carriers)),
            "padding_stretch_bound": min(cl.sigma for cl in clusters),
            "carriers_distance_range": ([float(dist[carriers].min()),
                                         float(dist[carriers].max())] if len(carriers) else []),
            "near_interface": [
                {"node": int(k), "X": X[k].round(6).tolist(),
                 "region": "atomistic" if in_A[k] else "continuum",
                 "distance_to_interface": float(round(dist[k], 6)),
                 "force": f[k].tolist(), "norm": float(fn[k])} for k in near],
        })
    max_force = max(c["max_force"] for c in cases)
    claims = scheme in PASSING_SCHEMES
    if claims:
        status = "PASS" if max_force <= PATCH_TOLERANCE else "FAIL"
    else:
        status = "GHOST_FORCES"
    out = {
        "scheme": scheme, "dim": dim, "lattice": lattice, "a0": a0, "continuum": continuum,
        "potential": type(pot).__name__, "cutoff": rc,
        "sites": int(system.present_s.sum()), "nodes": system.n_nodes,
        "atomistic_sites": int(system.atomistic_s.sum()),
        "max_force": max_force,
        "tolerance": PATCH_TOLERANCE,
        "claims_patch_test": claims,
        "status": status,
        "stability": stability,
        "units": {"force": "eV/Å", "distance": "Å"},
        "cases": cases,
    }
    if dim == 1 and scheme == "qce":
        hand = chain_ghost_forces(F=cases[1]["F"][0][0])
        hand["status"] = "PASS" if hand["max_difference"] <= PATCH_TOLERANCE else "FAIL"
        out["hand_calculation"] = hand
        if hand["status"] == "FAIL":
            out["status"] = "FAIL"
    return out


def bgfc_off_reference(dim: int = 2, G=None, *, t: float = 0.02, halvings: int = 3) -> dict:
    """``bgfc`` with its correction at ``F_ref = I``, under homogeneous ``F = I + s G``.

    The patch test at ``F = F_ref`` is exact by construction; this is the meaningful one.
    Away from ``F_ref`` the correction ``grad E_beta(y_I)`` no longer cancels the blended
    ghost forces ``grad E_beta(y_F)``; what is left is ``grad E_beta(y_F) - grad E_beta(y_I)
    = O(|F - I|)``, the linearised blended scheme's ghost force, whose coefficient carries
    the curvature of the blending function (Li, Ortner, Shapeev, Van Koten 2016). So the
    forces vanish *linearly* in ``s``: each halving divides them by 2 (measured 1.93-2.00),
    not by 4; the uncorrected ``bqce`` forces at the same F (``bqce_max_force``) are O(1)
    and do not vanish as ``s -> 0``. ``s`` runs over ``t, t/2, ...`` (``halvings`` times).
    ``G`` is the in-plane direction (default a fixed mix of stretch and shear, or 1 for the
    chain), normalised to unit Frobenius norm.
    """
    if dim not in (1, 2, 3):
        raise InputError(f"dim must be 1, 2 or 3, got {dim!r}")
    k = {1: 1, 2: 2, 3: 2}[dim]
    G = (np.ones((1, 1)) if k == 1 else np.array([[0.6, 0.5], [-0.2, -0.4]])) if G is None \
        else np.asarray(G, float)
    G = G / np.linalg.norm(G)
    pot, lattice, a0 = default_setup(dim)
    domain, region = {1: (Disc(0.0, 0.0, 30 * a0), Disc(0.0, 0.0, 8.01 * a0)),
                      2: (Disc(0.0, 0.0, 20 * a0), Disc(0.0, 0.0, 4.01 * a0)),
                      3: (Disc(0.0, 0.0, 42.0), Disc(0.0, 0.0, 8.0))}[dim]
    system = build_system(pot, lattice, a0, domain=domain, atomistic=region, scheme="bgfc")
    model = QCModel(system, "bgfc", F_ref=np.eye(3))
    bqce = QCModel(system, "bqce")
    rows = []
    for h in range(halvings + 1):
        s = t / 2**h
        U = system.homogeneous(_as_F(np.eye(k) + s * G, dim))
        f = model.node_forces(U)
        fb = bqce.node_forces(U)
        rows.append({"s": s, "max_force": float(np.linalg.norm(f, axis=1).max()),
                     "bqce_max_force": float(np.linalg.norm(fb, axis=1).max())})
    ratios = [rows[i]["max_force"] / rows[i + 1]["max_force"] for i in range(halvings)]
    return {"dim": dim, "G": G.tolist(), "rows": rows, "ratios": ratios,
            "units": {"force": "eV/Å"}}


def chain_hand_ghost_forces(potential, a0: float, F: float) -> dict[int, float]:
    """The hand-calculated QCE ghost forces of the chain: ``{site: force}`` (eV/Å)."""
    _, b, _ = potential.pair_function(2.0 * F * a0)
    b = float(b[0])
    return {-1: -b / 2, 0: b / 2, 1: b / 2, 2: -b / 2}


def chain_ghost_forces(F: float = 1.0, *, continuum: str = "dolfinx") -> dict:
    """QCE on the 1D chain (atoms xi <= 0) against the hand calculation.

    ``continuum`` is :class:`~coupling.qc.model.QCModel`'s (``dolfinx``, the only one).
    """
    pot, lattice, a0 = default_setup(1)
    if not 2 * a0 < pot.cutoff < 3 * a0:
        raise InputError("the chain check needs first and second neighbours only")
    # atoms -20 <= xi <= 0: two interfaces; the left one is the mirror image of the right
    system = build_system(pot, "chain", a0, domain=Disc(0.0, 0.0, 45 * a0),
                          atomistic=lambda X: np.abs(X[:, 0] / a0 + 10.0) <= 10.0 + 1e-9,
                          scheme="qce", clamp_width=2 * pot.cutoff)
    model = QCModel(system, "qce", continuum=continuum)
    Fm = np.eye(3)
    Fm[0, 0] = F
    U = system.homogeneous(Fm)
    f = model.node_forces(U)[:, 0]
    xi = np.rint(system.mesh.points_md[:, 0] / a0).astype(int)
    hand = chain_hand_ghost_forces(pot, a0, F)
    mirror = {-20 - k: -v for k, v in hand.items()}  # x -> -x flips the force
    expected = np.array([hand.get(int(k), mirror.get(int(k), 0.0)) for k in xi])
    free = ~system.fixed_m
    return {
        "F": F, "a0": a0, "b=phi'(2Fa)": float(pot.pair_function(2 * F * a0)[1][0]),
        "computed": {int(k): float(v) for k, v, fr in zip(xi, f, free, strict=True)
                     if fr and abs(v) > 1e-14},
        "hand": {int(k): v for k, v in sorted({**hand, **mirror}.items())},
        "max_difference": float(np.abs(f - expected)[free].max()),
        "carriers": [int(k) for k, v, fr in zip(xi, f, free, strict=True)
                     if fr and abs(v) > 1e-12],
    }
