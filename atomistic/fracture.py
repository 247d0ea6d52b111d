"""Griffith quantities from a potential: surface energy, lattice constant, elastic tensor.

Everything is computed with our own engine (no typed-in material numbers):

* :func:`surface_energy` - γ = (E_slab - N e_bulk) / (2A) of a slab that is periodic in-plane
  and open along the surface normal, unrelaxed or relaxed (Newton, analytic Hessian).
* :func:`lattice_constant` - zero-pressure lattice parameter (Cauchy-Born), the triangular
  lattice included.
* :func:`elastic_tensor` - the full C_ijkl (eV/Å³) at F = I from Cauchy-Born, optionally rotated
  into a crack frame.
* :func:`griffith` - γ, C, the plane-strain modulus E' and K_G = sqrt(2 γ E').
* :func:`traction_separation` - the cohesive law of rigid cleavage: traction σ(δ) across a
  plane of the perfect crystal against the opening δ, its peak σ_max at δ*.
* :func:`bonds_across_plane`, :func:`crack_tip_x` - the nearest-neighbour bonds that cross a
  crack plane, and the crack tip as the largest x-midpoint of a broken one.

The linear-elastic fracture mechanics (E', K-fields, crack frames) is :mod:`fe2qc.lefm`: E' is
``AnisotropicCrack(C).plane_strain_modulus`` (Stroh roots) for the cubic lattices and the
isotropic ``E' = 4μ(λ + μ)/(λ + 2μ)`` for the 2D ``triangular`` lattice.

**The triangular lattice** is a 2D layer in the xy plane. Its energies are per unit thickness
of 1 Å: γ is energy per surface length (eV/Å) divided by 1 Å, i.e. eV/Å², and C_ijkl is
energy per area (eV/Å²) divided by 1 Å, i.e. eV/Å³ (2D Lamé constants λ = C_xxyy, μ = C_xyxy).
With these, K_G = sqrt(2 γ E') is in eV/Å^{5/2} "per 1 Å thickness"; its MPa·m^{1/2} value is
only a formal conversion. This is fe2qc's one convention for the 2D lattice (the same as
``CauchyBorn``'s ``V0`` = area × 1 Å): every output labels γ eV/Å², E' eV/Å³ and K eV/Å^{5/2}
for both lattices; the numbers equal the pure-2D ones in eV/Å, eV/Å² and eV/Å^{3/2}.

Units: 1 eV/Å^{5/2} = 1.602176634e-19 J / (1e-10 m)^{5/2} = 1.602176634e6 Pa·m^{1/2}
(:data:`fe2qc.units.EV_PER_A52_IN_MPA_SQRT_M` = 1.602176634).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from atomistic.calculator import Calculator
from atomistic.cauchy_born import CauchyBorn
from atomistic.lattice import crystal, get_lattice
from atomistic.potentials.base import Potential
from atomistic.relax import relax as relax_positions
from fe2qc.errors import CalculationFailed, InputError
from fe2qc.lefm import (
    AnisotropicCrack,
    crack_frame_rotation,
    griffith_K,
    isotropic_plane_strain_modulus,
)
from fe2qc.tensors import minor_sym, rotate4
from fe2qc.units import EV_PER_A52_IN_MPA_SQRT_M

__all__ = ["crack_cut", "surface_energy", "slab", "lattice_constant", "elastic_tensor",
           "griffith", "traction_separation", "bonds_across_plane", "crack_tip_x"]


def _check_normal(lattice: str, normal_axis: int) -> int:
    if normal_axis not in (0, 1, 2):
        raise InputError(f"normal_axis must be 0, 1 or 2 (x, y, z), got {normal_axis!r}")
    if get_lattice(lattice).dimension == 2 and normal_axis == 2:
        raise InputError("the triangular lattice is a layer in the xy plane: its surfaces have "
                         "normal_axis 0 (x) or 1 (y), not 2")
    return normal_axis


def slab(lattice: str, a0: float, *, orientation=None, normal_axis: int = 1, layers: int = 4,
         inplane=(1, 1)):
    """A slab and the matching bulk cell: ``(slab_config, bulk_config, area)``.

    Args:
        lattice: lattice name.
        a0: lattice parameter (Å).
        orientation: Miller directions of x, y, z (cubic lattices), see
            :func:`atomistic.lattice.crystal`.
        normal_axis: the surface normal (0, 1, 2 = x, y, z).
        layers: repetitions of the oriented unit cell along the normal.
        inplane: repetitions along the two other axes (in increasing axis order); the z
            repetition of the triangular layer is always 1.

    Returns:
        The slab (open along the normal), the same atoms fully periodic, and the area of one
        surface (Å²; for the triangular lattice the surface length times 1 Å).
    """
    normal_axis = _check_normal(lattice, normal_axis)
    layers = int(layers)
    if layers < 1:
        raise InputError(f"layers must be >= 1, got {layers}")
    size = [1, 1, 1]
    others = [k for k in range(3) if k != normal_axis]
    for k, n in zip(others, np.broadcast_to(np.asarray(inplane, int), 2), strict=True):
        size[k] = int(n)
    size[normal_axis] = layers
    two_d = get_lattice(lattice).dimension == 2
    if two_d:
        size[2] = 1
    pbc = [True, True, True]
    pbc[normal_axis] = False
    s = crystal(lattice, a0, size=size, orientation=orientation, pbc=tuple(pbc))
    b = crystal(lattice, a0, size=size, orientation=orientation)
    edges = np.linalg.norm(s.cell_cc, axis=1)
    if two_d:
        area = float(edges[others[0]]) * 1.0  # unit thickness 1 Å
    else:
        area = float(edges[others[0]] * edges[others[1]])
    return s, b, area


def crack_cut(X_ref_n3: np.ndarray, cell_cc: np.ndarray, tip_x: float, y_plane: float,
              *, normal_axis: int = 1, crack_axis: int = 0):
    """An ``exclude`` rule for :class:`Calculator`: the bonds of a pre-cut crack.

    A pair is cut when, in the reference positions ``X_ref_n3`` (one row per atom of the
    configuration the calculator sees), its two atoms lie on opposite sides of the plane
    ``X[normal_axis] = y_plane`` and its midpoint lies behind the tip,
    ``X[crack_axis] < tip_x``. The crack faces then cannot re-bond (no healing), while
    everything ahead of the tip interacts normally. Image shifts ``s_pc @ cell_cc`` are
    honoured (periodic directions along the front).
    """
    X = np.asarray(X_ref_n3, float)
    cell = np.asarray(cell_cc, float)
    tip_x, y_plane = float(tip_x), float(y_plane)

    def exclude(i_p, j_p, s_pc):
        xi = X[i_p]
        xj = X[j_p] + np.asarray(s_pc, float) @ cell
        across = (xi[:, normal_axis] - y_plane) * (xj[:, normal_axis] - y_plane) < 0.0
        behind = 0.5 * (xi[:, crack_axis] + xj[:, crack_axis]) < tip_x
        return across & behind

    return exclude


def surface_energy(potential: Potential, lattice: str, a0: float, *, orientation=None,
                   normal_axis: int = 1, layers: int = 4, inplane=(1, 1), relax: bool = True,
                   fmax: float = 1e-8, return_details: bool = False):
    """Surface energy γ (eV/Å²) of the plane normal to ``normal_axis``.

    ``γ = (E_slab - N e_bulk) / (2A)`` with e_bulk the energy per atom of the same atoms in a
    fully periodic cell and A the area of one surface. The slab is periodic along the two
    in-plane axes (neighbour lists with multiple images, so a 1×1 in-plane cell is fine) and
    open along the normal. With ``relax`` the atoms are relaxed with Newton's method to
    ``fmax`` (eV/Å); the in-plane cell stays that of the bulk.

    For the 2D ``triangular`` lattice γ is the energy per surface *length* per 1 Å thickness,
    eV/Å² (the same unit-thickness convention as :func:`elastic_tensor`).

    Args:
        potential: the interatomic potential.
        lattice: ``fcc``, ``bcc``, ``sc`` or ``triangular``.
        a0: lattice parameter (Å), normally :func:`lattice_constant`.
        orientation: Miller directions of x, y, z as rows (cubic lattices), e.g.
            ``[[1, -1, 0], [1, 1, 1], [-1, -1, 2]]`` for a (111) surface with normal_axis=1.
        normal_axis: surface normal (0, 1, 2 = x, y, z).
        layers: oriented unit cells along the normal (converge γ in this; 4 cube layers =
            8 atomic (100) planes of fcc).
        inplane: in-plane repetitions.
        relax: relax the atom positions (the unrelaxed γ otherwise).
        fmax: force tolerance of the relaxation.
        return_details: also return a dict with the slab, energies and counts.

    Returns:
        γ, or ``(γ, details)``.
    """
    s, b, area = slab(lattice, a0, orientation=orientation, normal_axis=normal_axis,
                      layers=layers, inplane=inplane)
    calc = Calculator(potential, multiple_images=True)
    e_bulk = Calculator(potential, multiple_images=True).energy(b) / len(b)
    e_unrelaxed = calc.energy(s)
    if relax:
        r = relax_positions(s, calc, method="newton", fmax=fmax)
        s, e_slab = r.config, float(r.energy)
    else:
        e_slab = e_unrelaxed
    gamma = (e_slab - len(s) * e_bulk) / (2 * area)
    if not return_details:
        return gamma
    return gamma, {"slab": s, "energy_slab": e_slab, "energy_unrelaxed": e_unrelaxed,
                   "energy_bulk_per_atom": e_bulk, "n_atoms": len(s), "area": area}


def _cb_state(potential: Potential, lattice: str, a: float):
    """(pressure, energy per atom, A / unit volume) from Cauchy-Born at F = I.

    For the triangular layer the per-atom quantities are rescaled to a unit thickness of 1 Å
    (energy / in-plane area), whatever thickness CauchyBorn itself divides by.
    """
    cb = CauchyBorn(potential, lattice, a, dim=get_lattice(lattice).dimension)
    P, A, W = cb.evaluate_one(np.eye(3), tangent=True)
    e = W * cb.V0
    if get_lattice(lattice).dimension == 2:
        cell = cb.cell.cell_cc
        v = float(np.linalg.norm(np.cross(cell[0], cell[1]))) * 1.0
        p = -0.5 * float(P[0, 0] + P[1, 1])
    else:
        v = cb.V0
        p = -float(np.trace(P)) / 3.0
    return p * cb.V0 / v, e, A * cb.V0 / v


def lattice_constant(potential: Potential, lattice: str, a_guess: float | None = None) -> float:
    """Zero-pressure lattice parameter (Å) from Cauchy-Born.

    Cubic lattices: :func:`atomistic.elastic.equilibrium_lattice_constant` (cube edge).
    ``triangular``: the nearest-neighbour distance at which the in-plane pressure
    ``-(P_xx + P_yy)/2`` vanishes; the energy minimum on a grid of distances up to the cutoff
    gives the bracket, ``brentq`` the root.
    """
    lat = get_lattice(lattice)
    if lat.dimension == 3:
        from atomistic.elastic import equilibrium_lattice_constant

        return equilibrium_lattice_constant(potential, lat.name, a_guess)

    def pressure(a):
        return _cb_state(potential, lat.name, a)[0]

    if a_guess is None:
        grid = np.linspace(0.3, 1.0, 71) * potential.cutoff
        e = [_cb_state(potential, lat.name, a)[1] for a in grid]
        a_guess = float(grid[int(np.argmin(e))])
    lo, hi = 0.97 * a_guess, 1.02 * a_guess
    for _ in range(20):
        if pressure(lo) > 0 > pressure(hi):
            break
        lo, hi = 0.97 * lo, min(1.02 * hi, potential.cutoff * (1 - 1e-9))
    else:
        raise CalculationFailed(f"could not bracket zero pressure of the triangular lattice "
                                f"around a = {a_guess:.4g} Å; pass a better a_guess")
    return float(scipy.optimize.brentq(pressure, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=200))


def elastic_tensor(potential: Potential, lattice: str, a0: float, *,
                   orientation=None) -> np.ndarray:
    """Full stiffness C_ijkl (eV/Å³) at F = I from Cauchy-Born, optionally in a crack frame.

    ``C = sym(A)`` (A = ∂P/∂F symmetrised over ij and kl, as :mod:`atomistic.elastic` does);
    at zero stress this is the elastic tensor. For ``triangular`` it is per unit thickness
    1 Å (2D moduli in eV/Å² divided by 1 Å); λ = C_xxyy, μ = C_xyxy and, the lattice being
    isotropic, C_xxxx = λ + 2μ.

    Args:
        potential: the interatomic potential.
        lattice: lattice name.
        a0: lattice parameter (Å), normally :func:`lattice_constant`.
        orientation: Miller directions of the crack frame's x, y, z as rows (cubic lattices);
            C is returned in that frame, ``C'_abcd = R_ai R_bj R_ck R_dl C_ijkl``
            (:func:`fe2qc.lefm.crack_frame_rotation`).
    """
    lat = get_lattice(lattice)
    _, _, A = _cb_state(potential, lat.name, a0)
    C = minor_sym(A)
    if orientation is not None:
        if lat.dimension == 2:
            raise InputError("orientation is supported for the cubic lattices only")
        R = crack_frame_rotation(orientation)
        C = rotate4(C, R)
    return C


def griffith(potential: Potential, lattice: str, a0: float | None = None, *, orientation=None,
             layers: int = 6, inplane=(1, 1), E_prime: float | None = None,
             relax: bool = True) -> dict:
    """Griffith quantities of a crack on the plane y = 0 (normal y, front z).

    Args:
        potential: the interatomic potential.
        lattice: lattice name.
        a0: lattice parameter (Å); default :func:`lattice_constant`.
        orientation: crack frame as Miller rows x (propagation), y (normal), z (front).
        layers: oriented unit cells of the slab along the normal (:func:`surface_energy`).
        inplane: in-plane repetitions of the slab.
        relax: relax the slab's atom positions (the unrelaxed γ otherwise).
        E_prime: plane-strain modulus (eV/Å³) with G = K²/E', to use instead of the one
            computed from C: :class:`fe2qc.lefm.AnisotropicCrack` for the cubic lattices
            (whose crack frame must then be a mirror plane of the crystal, e.g. a <100> or
            <110> front), the isotropic formula for ``triangular``.

    Returns:
        dict with ``a0`` (Å), ``gamma`` (eV/Å²), ``gamma_unrelaxed``, ``C_ijkl`` (eV/Å³,
        crack frame), ``E_prime`` (eV/Å³), ``K_G`` = sqrt(2 γ E') (eV/Å^{5/2}) and
        ``K_G_MPa_sqrt_m``. For triangular also ``lam`` and ``mu`` (2D Lamé constants per
        1 Å, eV/Å³).
    """
    lat = get_lattice(lattice)
    if a0 is None:
        a0 = lattice_constant(potential, lat.name)
    # the elastic side first (Cauchy-Born, cheap): a frame without E' is refused before the slab
    C = elastic_tensor(potential, lat.name, a0, orientation=orientation)
    lam_mu = {}
    if lat.dimension == 2:
        lam_mu = {"lam": float(C[0, 0, 1, 1]), "mu": float(C[0, 1, 0, 1])}
    if E_prime is None:
        if lat.dimension == 2:
            E_prime = isotropic_plane_strain_modulus(lam_mu["lam"], lam_mu["mu"])
        else:
            E_prime = AnisotropicCrack(C).plane_strain_modulus
    E_prime = float(E_prime)
    if not (np.isfinite(E_prime) and E_prime > 0):
        raise InputError(f"E_prime must be a positive modulus (eV/Å³), got {E_prime}")
    gamma, det = surface_energy(potential, lat.name, a0, orientation=orientation, normal_axis=1,
                                layers=layers, inplane=inplane, relax=relax,
                                return_details=True)
    gamma_u = (det["energy_unrelaxed"] - det["n_atoms"] * det["energy_bulk_per_atom"]) / (
        2 * det["area"])
    K = griffith_K(gamma, E_prime)
    return {"lattice": lat.name, "a0": float(a0), "gamma": float(gamma),
            "gamma_unrelaxed": float(gamma_u), "C_ijkl": C, **lam_mu, "E_prime": E_prime,
            "K_G": K, "K_G_MPa_sqrt_m": K * EV_PER_A52_IN_MPA_SQRT_M}


def traction_separation(potential: Potential, lattice: str, a0: float, *, layers: int = 6,
                        n_open: int = 241, max_open: float | None = None) -> dict:
    """The traction-separation curve of rigid cleavage on the plane normal to y.

    The periodic bulk cell of :func:`slab` (``layers`` oriented unit cells along y) is split
    between its middle planes and the upper half is moved rigidly by ``δ`` along y (the cell
    grows by ``δ``), for ``n_open`` openings from 0 to ``max_open`` (Å, default the
    potential's cutoff). The cohesive traction is ``σ(δ) = dE/dδ / A`` (A the area of one
    plane; finite differences on the grid); its peak ``σ_max`` is at ``δ*``, refined by a
    parabola through the three grid points around the largest value. Past ``δ*`` the plane
    is on the softening branch: it has lost its cohesive strength. For a nearest-neighbour
    pair potential ``δ*`` is the inflection point of φ; EAM works unchanged.

    Returns:
        dict with ``delta`` (Å, the grid), ``energy`` (eV, of the cell), ``sigma`` (eV/Å³),
        ``area`` (Å²), ``delta_star`` (Å), ``sigma_max`` (eV/Å³, the largest grid value) and
        ``gamma_rigid`` (eV/Å², ``(E(max_open) - E(0)) / 2A``: the unrelaxed surface energy
        when ``max_open`` reaches past the cutoff).
    """
    _, bulk, area = slab(lattice, a0, normal_axis=1, layers=layers)
    calc = Calculator(potential, multiple_images=True)
    y = bulk.positions_nc[:, 1]
    ys = np.unique(np.round(y, 6))
    cut = 0.5 * (ys[len(ys) // 2 - 1] + ys[len(ys) // 2])
    top = y > cut
    max_open = potential.cutoff if max_open is None else max_open
    deltas = np.linspace(0.0, max_open, n_open)
    E = np.empty(n_open)
    for k, dlt in enumerate(deltas):
        pos = bulk.positions_nc.copy()
        pos[top, 1] += dlt
        cell = bulk.cell_cc.copy()
        cell[1, 1] += dlt
        c = type(bulk)(pos, cell, bulk.pbc, bulk.types_n)
        E[k] = calc.energy(c)
    sigma = np.gradient(E, deltas) / area
    k = int(np.argmax(sigma))
    # parabola through the peak for a sub-grid δ*
    if 0 < k < n_open - 1:
        s0, s1, s2 = sigma[k - 1: k + 2]
        den = s0 - 2 * s1 + s2
        off = 0.5 * (s0 - s2) / den if den != 0 else 0.0
        d_star = float(deltas[k] + off * (deltas[1] - deltas[0]))
    else:
        d_star = float(deltas[k])
    return {"delta": deltas, "energy": E, "sigma": sigma, "area": area, "delta_star": d_star,
            "sigma_max": float(sigma[k]), "gamma_rigid": float((E[-1] - E[0]) / (2 * area))}


def bonds_across_plane(X_nc: np.ndarray, y_plane: float = 0.0, *,
                       z_period: float | None = None):
    """Nearest-neighbour bonds between the two atomic rows next to the plane ``y = y_plane``.

    Args:
        X_nc: reference positions (n, 2) or (n, 3) (Å); the rows are found among them.
        y_plane: the crack plane (Å), between two rows.
        z_period: cell length along z when the atoms are periodic along the front (bonds
            then use the minimum image), else None.

    Returns:
        ``(i_b, j_b, shift_bc, d_nn)``: for each bond the atom below (``i_b``) and above
        (``j_b``), indices into ``X_nc``; the image shift (b, c) to add to ``X_nc[j_b]``; and
        the nearest-neighbour distance across the plane (Å).

    Raises:
        InputError: no atoms on one side of the plane.
    """
    X = np.asarray(X_nc, dtype=float)
    y = X[:, 1] - y_plane
    if not ((y < 0).any() and (y > 0).any()):
        raise InputError(f"no atoms on both sides of the crack plane y = {y_plane} Å")
    yb, ya = y[y < 0].max(), y[y > 0].min()
    below = np.flatnonzero(np.abs(y - yb) < 1e-6)
    above = np.flatnonzero(np.abs(y - ya) < 1e-6)
    d = X[above][None, :, :] - X[below][:, None, :]
    shift = np.zeros_like(d)
    if z_period is not None:
        shift[..., 2] = -z_period * np.rint(d[..., 2] / z_period)
    r = np.linalg.norm(d + shift, axis=2)
    d_nn = float(r.min())
    bi, bj = np.nonzero(r < d_nn * (1 + 1e-6))
    return below[bi], above[bj], shift[bi, bj], d_nn


def crack_tip_x(X_ref_nc: np.ndarray, x_nc: np.ndarray, i_b: np.ndarray, j_b: np.ndarray,
                bond_cut: float, shift_bc: np.ndarray | None = None) -> float:
    """Locate the crack tip's x: the largest reference x-midpoint of a broken bond.

    A bond (i, j) is broken when its current length ``|x_j + shift - x_i|`` exceeds
    ``bond_cut`` (Å), e.g. the bond length at the traction peak of
    :func:`traction_separation`.

    Args:
        X_ref_nc: reference positions (n, c) (Å).
        x_nc: current positions (n, c) (Å).
        i_b: the bonds' first atoms, e.g. from :func:`bonds_across_plane`.
        j_b: the bonds' second atoms.
        bond_cut: length (Å) beyond which a bond counts as broken.
        shift_bc: periodic image shifts added to ``x_nc[j_b]`` (None: no shifts).

    Returns:
        The tip's x (Å), ``-inf`` when no bond is broken.
    """
    d = x_nc[j_b] - x_nc[i_b] if shift_bc is None else x_nc[j_b] + shift_bc - x_nc[i_b]
    broken = np.linalg.norm(d, axis=1) > bond_cut
    mid_x = 0.5 * (X_ref_nc[i_b, 0] + X_ref_nc[j_b, 0])
    return float(mid_x[broken].max()) if broken.any() else float("-inf")
