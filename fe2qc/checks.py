"""Input checks shared by every layer: one helper per concept, used at the public boundaries.

Non-finite numbers must never reach a numba kernel: a NaN distance fails every ``r < rc``
test there, so the pair would be dropped silently (a 108-atom Cu crystal with one NaN
coordinate gave -377.46 eV instead of -382.32 eV). The boundaries (``Configuration``,
``NeighborList``, ``Calculator``, the potentials' kernels, material points, relaxation,
lattice builders, potential constructors) call these helpers, which raise
:class:`~fe2qc.errors.InputError` naming the first offending entry, e.g.
``positions_nc[17, 2] is nan``.

Finite but absurd values are refused too where they would overflow or explode inside:
coordinates beyond :data:`MAX_COORDINATE` (Å) and deformation gradients with entries beyond
:data:`MAX_F_ENTRY`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fe2qc.errors import InputError

__all__ = ["require_finite", "require_positive", "require_nonnegative", "MAX_COORDINATE",
           "MAX_F_ENTRY"]

#: largest |coordinate| (Å) accepted for atom positions and cell vectors: 1 cm. Beyond it the
#: wrapping into the cell and the binning of the neighbour search lose all precision (and at
#: ~1e300 overflow to inf inside the kernels).
MAX_COORDINATE = 1e8
#: largest |F_iJ| accepted for a deformation gradient: a 1000-fold stretch, far beyond any
#: state a crystal survives; 1e300 would overflow det F and the deformed cell.
MAX_F_ENTRY = 1e3

_LARGEST = float(np.finfo(float).max)


def _where(shape: tuple[int, ...], flat: int) -> str:
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


def require_finite(name: str, value, *, bound: float | None = None, unit: str = "",
                   hint: str = "") -> np.ndarray:
    """Return ``value`` as a float array after checking that every entry is finite.

    Args:
        name: how the caller's user knows the array (``"positions_nc"``, ``"F_qij"``).
        value: array-like (or scalar) of numbers.
        bound: if given, entries must also satisfy ``|x| <= bound``.
        unit: unit appended to numbers in the message (e.g. ``" Å"``).
        hint: a sentence appended to the message (what to do instead).

    Raises:
        InputError: naming the first offending entry, e.g. ``positions_nc[17, 2] is nan``.
    """
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers, got {value!r}") from exc
    limit = _LARGEST if bound is None else float(bound)
    if a.size == 0:
        return a
    # one reduction for the common case (~1 ns per entry): NaN and inf make the sum non-finite
    # (a finite sum that overflows falls through to the exact test below, which then passes);
    # with a bound, NaN fails the comparison and inf exceeds it
    if bound is None:
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(a.sum())
        if math.isfinite(total):
            return a
    elif float(a.max()) <= limit and float(a.min()) >= -limit:
        return a
    tail = f" {hint}" if hint else ""
    finite = np.isfinite(a)
    if not finite.all():
        k = int(np.flatnonzero(~finite.ravel())[0])
        raise InputError(f"{name}{_where(a.shape, k)} is {float(a.ravel()[k])!r}: every entry "
                         f"must be a finite number, not NaN or inf{tail}")
    big = np.abs(a.ravel()) > limit
    if not big.any():
        return a
    k = int(np.flatnonzero(big)[0])
    raise InputError(f"{name}{_where(a.shape, k)} = {float(a.ravel()[k]):.6g}{unit} is beyond the "
                     f"supported range |{name}| <= {limit:g}{unit}{tail}")


def _scalar(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.number):
        raise InputError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    x = float(value)
    if not math.isfinite(x):
        raise InputError(f"{name} is {x!r}: it must be a finite number")
    return x


def require_positive(name: str, value, *, unit: str = "") -> float:
    """``float(value)``, checked to be a finite number > 0 (InputError naming ``name``)."""
    x = _scalar(name, value)
    if not x > 0:
        raise InputError(f"{name} must be a positive finite number{unit and ' (' + unit + ')'}, "
                         f"got {x!r}")
    return x


def require_nonnegative(name: str, value, *, unit: str = "") -> float:
    """``float(value)``, checked to be a finite number >= 0 (InputError naming ``name``)."""
    x = _scalar(name, value)
    if not x >= 0:
        raise InputError(f"{name} must be a finite number >= 0{unit and ' (' + unit + ')'}, "
                         f"got {x!r}")
    return x
