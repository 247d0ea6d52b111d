"""The continuum's material point of a QC system: built to match the atoms, and checked.

The QC continuum (:mod:`coupling.qc.continuum`) takes any 3D material point. Away from the
handshake that is physics; at the handshake it is a consistency condition: the continuum must
be the *same crystal* as the atoms it is coupled to, or the patch test (zero forces under a
uniform deformation) no longer holds and the coupling carries a spurious interface. Three
things must agree between the material point and the atoms:

* the volume per lattice site (the lattice and its lattice constant): already checked by
  :func:`coupling.qc.continuum.qc_thickness`, which :func:`check_material` calls;
* the lattice orientation: the material point's crystal must be the QC lattice in the QC
  frame (:func:`coupling.qc.system.lattice_sites`: the fcc slab is x = [100], y = [010],
  z = [001]; the triangular layer has a nearest-neighbour bond along x; the chain lies along
  x). An RVE is checked geometrically: its cell vectors must be lattice vectors of the QC
  lattice (vacuum directions of a layer or chain perpendicular to it) and most of its atoms
  (more than half: a defect's own atoms, e.g. an interstitial, may be off-site) must sit on
  QC lattice sites (to a fifth of the nearest-neighbour distance, which the relaxation around
  a vacancy or a void stays well within; a misoriented crystal whose cell happens to fit, a
  coincidence-site cell, has most of its atoms far from every site);
* the interatomic potential (and the species): compared by :func:`potential_fingerprint`
  (class, LAMMPS commands, which name the file or every parameter to full precision,
  elements, masses, cutoff). A different potential is refused unless the caller allows a
  material interface at the handshake (``allow_interface=True``), which then warns
  (:class:`MaterialInterfaceWarning`).

:func:`rve_point_model` builds the atomistic RVE that matches a system (its potential,
lattice, lattice constant and orientation); :func:`check_material` refuses a material point
that does not, before any work (:class:`coupling.qc.model.QCModel` calls it once when it sets
up its continuum).

Which materials are checked: a material made of others (e.g. one material near the atoms,
another far away) lists them in ``parts``, and each is checked; anything with a
``point_model`` (:class:`fe2qc.material.PointMaterial`,
:class:`coupling.dispatch.DispatchedMaterial`) is checked through that model; otherwise the
material itself. A model with a ``potential`` has its potential checked; one with a reference
crystal (``reference``: an :class:`atomistic.rve.AtomisticRVE`; ``cell``: an
:class:`atomistic.cauchy_born.CauchyBorn`'s primitive cell) has its orientation and
species checked. :class:`coupling.qc.continuum.LatticeCauchyBorn` exposes neither (it is a
kernel over a given primitive cell, normally the system's own), so only its ``V0`` is
checked; a material without a point model, potential or crystal (neo-Hookean for tests) is
only checked for its ``site_volume``/``V0`` if it has one. With a
:class:`~coupling.dispatch.DispatchedMaterial` the check sees the macro rank's point model;
the workers' own models (:func:`coupling.dispatch.run_worker`) are the caller's to keep
identical.
"""

from __future__ import annotations

import warnings

import numpy as np

from fe2qc.errors import InputError

__all__ = ["rve_point_model", "check_material", "potential_fingerprint",
           "MaterialInterfaceWarning"]

#: per lattice: (crystal directions, default RVE size)
_LATTICE = {"fcc": (3, (2, 2, 2)), "triangular": (2, (2, 1, 1)), "chain": (1, (4, 1, 1))}
#: an atom of the material point's crystal is on a QC lattice site if it is within this
#: fraction of the nearest-neighbour distance of one (relaxation near a defect moves atoms by
#: a few per cent of it; a misoriented crystal has atoms far from every site)
_SITE_TOLERANCE = 0.2
#: a crystal is the QC lattice if more than this share of its atoms sit on its sites
_ON_SITE_SHARE = 0.5
#: a cell vector is a lattice vector if it is one to this fraction of the neighbour distance
_CELL_TOLERANCE = 1e-6
#: the QC frame of each lattice, for messages
_FRAME = {"fcc": "x = [100], y = [010], z = [001]",
          "triangular": "the layer in the xy plane with a nearest-neighbour bond along x",
          "chain": "the chain along x"}


class MaterialInterfaceWarning(UserWarning):
    """The continuum's potential differs from the atoms': the handshake is a material interface."""


def _lattice_name(system) -> str:
    name = str(system.info.get("lattice", "")).lower()
    if name not in _LATTICE:
        raise InputError(f"QC lattice {name!r} of the system is not one of "
                         f"{', '.join(_LATTICE)}; build the system with build_system()")
    return name


def rve_point_model(system, *, size=None, vacancy: bool = False, **rve_kwargs):
    """Return the atomistic RVE (``dim=3``) of a QC system's own crystal.

    The RVE has the system's potential, lattice, lattice constant and orientation (the QC
    frame, see the module docstring), so :func:`check_material` accepts it; as the
    continuum's material point wrap it in :class:`fe2qc.material.PointMaterial` or
    :class:`coupling.dispatch.DispatchedMaterial`. A perfect RVE reproduces the Cauchy-Born
    continuum; ``vacancy=True`` (or ``void_radius``) gives the defective far field.

    Args:
        system: a :class:`coupling.qc.system.QCSystem` (from ``build_system``).
        size: repetitions of the unit cell along x, y, z. Default: (2, 2, 2) for the fcc slab
            (32 sites), (2, 1, 1) for the triangular layer (4 sites: the rectangular cell of
            two sites, one layer), (4, 1, 1) for the chain (4 sites). A layer is one layer
            thick (z count 1); a chain is one chain (y, z counts 1).
        vacancy: remove the site nearest the cell's centre (then relax the reference).
        **rve_kwargs: further keywords of :meth:`atomistic.rve.AtomisticRVE.from_lattice`
            (``void_radius``, ``fmax``, ``max_iter``, ``skin``...); ``multiple_images``
            defaults to True (small cells). ``dim`` other than 3 and ``orientation`` are
            refused (the continuum needs the 3D point in the QC frame).

    Returns:
        The :class:`atomistic.rve.AtomisticRVE`.

    Raises:
        InputError: a bad size, a ``dim`` or ``orientation`` keyword, a defect in a chain, or
            a system whose atoms are not all of species 0 (the RVE's).
    """
    from atomistic.rve import AtomisticRVE
    from atomistic.structure import check_repetitions

    lattice = _lattice_name(system)
    k, default = _LATTICE[lattice]
    if rve_kwargs.get("dim", 3) != 3:
        raise InputError(f"the QC continuum needs a 3D material point: dim must be 3, got "
                         f"{rve_kwargs['dim']!r}")
    if "orientation" in rve_kwargs:
        raise InputError("rve_point_model() orients the RVE as the QC lattice (x = [100], "
                         "y = [010], z = [001]); do not pass orientation")
    rve_kwargs["dim"] = 3
    rve_kwargs.setdefault("multiple_images", True)
    size = check_repetitions(default if size is None else size)
    if any(int(n) != 1 for n in size[k:]):
        raise InputError(f"the {lattice} QC lattice is periodic along {k} direction(s): the RVE "
                         f"size along the others must be 1, got {tuple(size)}")
    types = np.unique(system.reference.types_n[system.present_s])
    if types.tolist() != [0]:
        raise InputError(f"rve_point_model() builds RVEs of species 0; the QC atoms are "
                         f"species {types.tolist()}: build the RVE yourself")
    a0 = float(system.info["a0"])
    pot = system.potential
    if lattice != "chain":
        return AtomisticRVE.from_lattice(pot, lattice, a0, size=size, vacancy=vacancy,
                                         **rve_kwargs)
    if vacancy or rve_kwargs.get("void_radius", 0.0):
        raise InputError("a chain RVE with a vacancy or a void is two open chain ends, not a "
                         "material point: use the perfect chain")
    from atomistic.structure import Configuration

    # the chain: n sites along x; y and z span vacuum of the QC's own transverse size, and the
    # cross-section counts 1 Å² (the Cauchy-Born convention of the chain, qc_site_volume):
    # AtomisticRVE's layer volume |c0 x c1| * thickness with thickness = 1 / H
    n = int(size[0])
    H = float(system.cauchy_born.primitive_cc[1, 1])
    x = np.zeros((n, 3))
    x[:, 0] = a0 * np.arange(n)
    conf = Configuration(x, np.diag([n * a0, H, H]), (True, True, True),
                         info={"lattice": "chain", "a0": a0})
    rve_kwargs.pop("void_radius", None)
    return AtomisticRVE(pot, conf, thickness=1.0 / H, **rve_kwargs)


# ---------------------------------------------------------------------------------------------
# Checks


def potential_fingerprint(potential) -> tuple | None:
    """What makes two potential objects the same interaction, or None if it cannot tell.

    ``(class, LAMMPS commands, elements, masses, cutoff)``: the LAMMPS commands
    (:meth:`atomistic.potentials.base.Potential.lammps_commands`) name an EAM file by its
    resolved path and a pair potential's style and every parameter as the exact double, so
    two potentials loaded from the same file or with the same parameters have the same
    fingerprint, and different ones differ.
    """
    commands = getattr(potential, "lammps_commands", None)
    if not callable(commands):
        return None
    try:
        cmds = tuple(str(c) for c in commands())
    except Exception:  # noqa: BLE001 - no LAMMPS form: identity only
        return None
    cls = type(potential)
    return (f"{cls.__module__}.{cls.__qualname__}", cmds,
            tuple(getattr(potential, "elements", ())),
            tuple(float(m) for m in getattr(potential, "masses", ())),
            float(getattr(potential, "cutoff", np.nan)))


def _same_potential(a, b) -> bool:
    if a is b:
        return True
    fa, fb = potential_fingerprint(a), potential_fingerprint(b)
    return fa is not None and fa == fb


def _crystal_of(model):
    """The model's reference crystal (a Configuration) or None."""
    for name in ("reference", "cell"):  # AtomisticRVE, CauchyBorn
        conf = getattr(model, name, None)
        if conf is not None and hasattr(conf, "cell_cc") and hasattr(conf, "positions_nc"):
            return conf
    return None


def _describe(model, conf) -> str:
    info = getattr(conf, "info", {}) or {}
    parts = [f"{type(model).__name__}"]
    if "lattice" in info:
        parts.append(f"lattice {info['lattice']!r}")
    if "orientation" in info:
        parts.append(f"orientation {info['orientation']}")
    return ", ".join(parts)


def _orientation_problem(system, conf) -> str | None:
    """Why the crystal ``conf`` is not the QC lattice in the QC frame, or None."""
    k = int(system.ncomp)  # crystal directions: 1 chain, 2 triangular layer, 3 fcc slab
    B = np.asarray(system.cauchy_born.primitive_cc, float)[:k]  # crystal directions (rows)
    nn = float(np.linalg.norm(B, axis=1).min())  # the primitive vectors are nearest bonds
    Binv = np.linalg.pinv(B)  # (3, k): coefficients of the in-span part

    def split(v):  # (nearest lattice vector coefficients, in-span residual, out-of-span part)
        c = v @ Binv
        inspan = c @ B
        n = np.round(c)
        return n, np.linalg.norm(inspan - n @ B, axis=-1), np.linalg.norm(v - inspan, axis=-1)

    n_lat = 0
    for a, v in enumerate(np.asarray(conf.cell_cc, float)):
        n, res, perp = split(v)
        tol = _CELL_TOLERANCE * nn
        if res <= tol and perp <= tol and np.any(n != 0):
            n_lat += 1
        elif k < 3 and np.linalg.norm(v @ Binv @ B) <= tol:
            pass  # a vacuum direction of a layer or chain
        else:
            return (f"its cell vector {a} {np.round(v, 6).tolist()} Å is not a lattice vector of "
                    f"the QC lattice (residual {max(res, perp):.3g} Å)")
    if n_lat != k:
        return (f"its cell has {n_lat} lattice vectors of the QC lattice, the QC lattice is "
                f"periodic along {k} direction(s)")
    x = np.asarray(conf.positions_nc, float)
    if not len(x):
        return None
    # the share of atoms on QC sites, relative to the best of a few atoms taken as the origin
    # (a defect's own atoms, e.g. an interstitial, may be off-site: a majority suffices)
    best = 0.0
    for i0 in np.unique(np.linspace(0, len(x) - 1, min(len(x), 8)).astype(int)):
        _, res, perp = split(x - x[i0])
        best = max(best, float(np.mean(np.hypot(res, perp) <= _SITE_TOLERANCE * nn)))
        if best > _ON_SITE_SHARE:
            return None
    return (f"only {100 * best:.0f}% of its atoms sit on sites of the QC lattice (within "
            f"{_SITE_TOLERANCE} nearest-neighbour distances, {nn:.4g} Å)")


def check_material(system, material, *, allow_interface: bool = False) -> float:
    """Refuse a continuum material point that is not the atoms' crystal; return the thickness.

    Checks, before any work (see the module docstring for which materials expose what): the
    volume per site (:func:`coupling.qc.continuum.qc_thickness`), the lattice orientation of
    the point's crystal against the QC lattice frame, and the potential and species against
    the atoms'.

    Args:
        system: the :class:`coupling.qc.system.QCSystem`.
        material: the continuum's 3D material point (a PointMaterial, DispatchedMaterial,
            LatticeCauchyBorn, CauchyBorn or any other; one with ``parts`` has each part
            checked too).
        allow_interface: accept a potential (or species) different from the atoms' with a
            :class:`MaterialInterfaceWarning`: the handshake then couples two materials, so it
            carries a material interface and the patch test no longer holds there.

    Returns:
        The continuum thickness ``t`` of :func:`~coupling.qc.continuum.qc_thickness`.

    Raises:
        InputError: naming the mismatch and the fix; also a dispatched material whose layout
            has more than one macro rank and that is not ``replicated`` (the QC runs whole on
            every macro rank).
    """
    from coupling.qc.continuum import qc_thickness

    layout = getattr(material, "layout", None)  # a dispatched material
    if (layout is not None and layout.n_macro != 1
            and not getattr(material, "replicated", False)):
        raise InputError(
            f"the QC is replicated on every macro rank (its atoms and its DOLFINx continuum "
            f"run whole on each), but the dispatched material's layout has {layout.n_macro} "
            "macro ranks and expects each to pass its own points: build it with "
            "DispatchedMaterial(..., replicated=True) (the ranks share the Gauss points), or "
            f"give every other rank to the RVEs as a worker (split_world(comm, n_workers="
            f"{layout.size - 1}))")
    t = qc_thickness(system, material)  # the volume per site (lattice and lattice constant)
    for part in getattr(material, "parts", None) or ():  # a material made of others
        if part is not None and part is not material:
            check_material(system, part, allow_interface=allow_interface)
    model = getattr(material, "point_model", None)
    model = material if model is None else model
    conf = _crystal_of(model)
    if conf is not None:
        why = _orientation_problem(system, conf)
        if why is not None:
            lattice = str(system.info.get("lattice", "")).lower()
            raise InputError(
                f"the continuum material point's crystal ({_describe(model, conf)}) does not "
                f"match the QC lattice {lattice!r} in the QC frame ({_FRAME.get(lattice, '?')}): "
                f"{why}; "
                "build it with "
                "coupling.qc.points.rve_point_model(system), or with the QC's lattice, lattice "
                "constant and no orientation")
    problems = []
    pot = getattr(model, "potential", None)
    if pot is not None and not _same_potential(pot, system.potential):
        problems.append(f"its potential {pot!r} is not the atoms' {system.potential!r}")
    if conf is not None and getattr(conf, "types_n", None) is not None and len(conf.types_n):
        mine = sorted(set(np.asarray(conf.types_n).tolist()))
        atoms = sorted(set(np.asarray(system.reference.types_n)[system.present_s].tolist()))
        if mine != atoms:
            problems.append(f"its atoms are of species {mine}, the QC atoms of {atoms}")
    if not problems:
        return t
    what = "; ".join(problems)
    if not allow_interface:
        raise InputError(
            f"the continuum material point is not the atoms' material: {what}. Build it with "
            "the system's potential (coupling.qc.points.rve_point_model(system)); or pass "
            "allow_interface=True to couple two materials on purpose (the handshake then "
            "carries a material interface and the patch test no longer holds)")
    warnings.warn(
        f"the continuum material point is not the atoms' material ({what}): the handshake "
        "carries a material interface and the patch test no longer holds there",
        MaterialInterfaceWarning, stacklevel=2)
    return t
