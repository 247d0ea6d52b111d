"""The QC patch test: a homogeneous deformation must give zero force on every atom and node.

``patch_test(scheme, dim)`` deforms the reference lattice by ``F = I`` and by a random
``F`` near I, puts every node at ``(F - I) X`` and reports the scheme's forces there, with
the forces on the atoms and nodes near the atomistic/continuum interface. ``gfc``,
``qcf`` and ``bgfc`` pass (|f| <= 1e-10 eV/Å); ``qce`` and ``bqce`` show their ghost forces.
For ``bgfc`` the correction is taken at the test's own homogeneous state (the published
scheme: the correction is the blended energy's gradient at the homogeneous far-field
deformation). For ``gfc`` the dead load is the ghost force at the current state (its fixed
point), so what is tested is the force-based equations.

``chain_ghost_forces(F)``: for the 1D chain with first and second neighbours, the energy-based
QC with atoms ``xi <= 0`` and continuum ``xi >= 1`` has, by hand (every atom a node, P1
elements, site volumes split half to each end of an element), the gradient
``dE/dy = (b/2, -b/2, -b/2, b/2)`` on atoms ``-1, 0, 1, 2`` and zero elsewhere, with
``b = phi'(2 F a)``: exactly four interface atoms carry ghost forces ``f = -dE/dy``. The
test chain has atoms ``-20 <= xi <= 0``, so its left interface carries the mirror image.
"""

from __future__ import annotations

import numpy as np

from atomistic.potentials.factory import load_potential
from coupling.qc.model import QCModel, check_scheme
from coupling.qc.system import Disc, build_system
from fe2qc.errors import InputError

__all__ = ["default_setup", "short_range_setup", "patch_test", "chain_ghost_forces",
           "chain_hand_ghost_forces"]


def default_setup(dim: int):
    """The standard test materials: ``(potential, lattice, a0)`` for ``dim`` 1, 2 or 3.

    * 1: a chain with a smoothed Lennard-Jones pair potential reaching second neighbours;
    * 2: the triangular lattice with the same kind of potential (three neighbour shells);
    * 3: fcc copper, Cu_u3 EAM (LAMMPS's file), in the periodic slab.
    """
    from atomistic.elastic import equilibrium_lattice_constant
    from atomistic.fracture import lattice_constant

    if dim == 1:
        pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
        return pot, "chain", 2.45  # second neighbours at 4.9 Å < cutoff < 3a
    if dim == 2:
        pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=5.5)
        return pot, "triangular", lattice_constant(pot, "triangular")
    if dim == 3:
        pot = load_potential("Cu_u3.eam")
        return pot, "fcc", equilibrium_lattice_constant(pot, "fcc", 3.615)
    raise InputError(f"--dim must be 1, 2 or 3, got {dim}")


def short_range_setup():
    """``(potential, "triangular", a0)`` with a nearest-neighbour-only smoothed Lennard-Jones.

    The same ``lj/smooth`` form as :func:`default_setup` (epsilon 0.4 eV, sigma 2.2 Å) cut at
    3.2 Å, i.e. 1.26 a0: only the six nearest neighbours interact. Short range means a
    lattice-trapped crack (the tip stays put for K within a few per cent of K_G), which the
    three-shell potential does not give; the large-domain crack benchmark uses it so that
    the near-tip field is well defined at every domain radius.
    """
    from atomistic.fracture import lattice_constant

    pot = load_potential("lj/smooth", epsilon=0.4, sigma=2.2, cutoff=3.2)
    return pot, "triangular", lattice_constant(pot, "triangular")


def _random_F(rng, dim: int, amplitude: float) -> np.ndarray:
    F = np.eye(3)
    k = {1: 1, 2: 2, 3: 3}[dim]
    F[:k, :k] += amplitude * rng.uniform(-1, 1, (k, k))
    if dim == 3:  # slab: u depends on x, y only, so dF/dz columns stay (0, 0, 1)
        F[:, 2] = [0.0, 0.0, 1.0]
    return F


def patch_test(scheme: str, dim: int = 2, *, seed: int = 0, amplitude: float = 0.02,
               interface_band: float | None = None) -> dict:
    """Forces of ``scheme`` under homogeneous deformations; JSON-ready dictionary."""
    scheme = check_scheme(scheme)
    pot, lattice, a0 = default_setup(dim)
    rc = pot.cutoff
    if dim == 1:
        domain, region = Disc(0.0, 0.0, 30 * a0), Disc(0.0, 0.0, 8.01 * a0)
    elif dim == 2:
        domain, region = Disc(0.0, 0.0, 20 * a0), Disc(0.0, 0.0, 4.01 * a0)
    else:
        domain, region = Disc(0.0, 0.0, 42.0), Disc(0.0, 0.0, 8.0)
    system = build_system(pot, lattice, a0, domain=domain, atomistic=region, scheme=scheme)
    rng = np.random.default_rng(seed)
    X = system.node_positions()[:, :system.mesh_dim]
    in_A = system.atomistic_s[system.node_site_m]
    from scipy.spatial import cKDTree

    d_int = cKDTree(X[in_A]).query(X)[0]
    d_C = cKDTree(X[~in_A]).query(X)[0]
    dist = np.where(in_A, -d_C, d_int)  # signed distance to the interface (negative: atoms)
    band = 2.5 * rc if interface_band is None else interface_band
    cases = []
    for _label, F in (("identity", np.eye(3)), ("random", _random_F(rng, dim, amplitude))):
        model = QCModel(system, scheme, F_ref=F)
        U = system.homogeneous(F)
        if scheme == "gfc":
            model.dead_load = model.ghost_force(U)
        f = model.node_forces(U)
        fn = np.linalg.norm(f, axis=1)
        near = np.flatnonzero((np.abs(dist) <= band) & ~system.fixed_m)
        near = near[np.argsort(dist[near], kind="stable")]
        carriers = np.flatnonzero(fn > 1e-10)
        cases.append({
            "F": F.tolist(),
            "max_force": float(fn.max()),
            "nodes_with_force_above_1e-10": int(len(carriers)),
            "carriers_distance_range": ([float(dist[carriers].min()),
                                         float(dist[carriers].max())] if len(carriers) else []),
            "near_interface": [
                {"node": int(k), "X": X[k].round(6).tolist(),
                 "region": "atomistic" if in_A[k] else "continuum",
                 "distance_to_interface": float(round(dist[k], 6)),
                 "force": f[k].tolist(), "norm": float(fn[k])} for k in near],
        })
    out = {
        "scheme": scheme, "dim": dim, "lattice": lattice, "a0": a0,
        "potential": type(pot).__name__, "cutoff": rc,
        "sites": int(system.present_s.sum()), "nodes": system.n_nodes,
        "atomistic_sites": int(system.atomistic_s.sum()),
        "max_force": max(c["max_force"] for c in cases),
        "units": {"force": "eV/Å", "distance": "Å"},
        "cases": cases,
    }
    if dim == 1 and scheme == "qce":
        out["hand_calculation"] = chain_ghost_forces(F=cases[1]["F"][0][0])
    return out


def chain_hand_ghost_forces(potential, a0: float, F: float) -> dict[int, float]:
    """The hand-calculated QCE ghost forces of the chain: ``{site: force}`` (eV/Å)."""
    _, b, _ = potential.pair_function(2.0 * F * a0)
    b = float(b[0])
    return {-1: -b / 2, 0: b / 2, 1: b / 2, 2: -b / 2}


def chain_ghost_forces(F: float = 1.0) -> dict:
    """QCE on the 1D chain (atoms xi <= 0) against the hand calculation."""
    pot, lattice, a0 = default_setup(1)
    if not 2 * a0 < pot.cutoff < 3 * a0:
        raise InputError("the chain check needs first and second neighbours only")
    # atoms -20 <= xi <= 0: two interfaces; the left one is the mirror image of the right
    system = build_system(pot, "chain", a0, domain=Disc(0.0, 0.0, 45 * a0),
                          atomistic=lambda X: np.abs(X[:, 0] / a0 + 10.0) <= 10.0 + 1e-9,
                          scheme="qce", clamp_width=2 * pot.cutoff)
    model = QCModel(system, "qce")
    Fm = np.eye(3)
    Fm[0, 0] = F
    U = system.homogeneous(Fm)
    f = model.node_forces(U)[:, 0]
    xi = np.rint(system.points_md[:, 0] / a0).astype(int)
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
