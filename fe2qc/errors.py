"""Error types shared by all layers.

Following ASE's calculator design, a bad input is refused before any work
starts (:class:`InputError`) while a calculation that ran but did not succeed
(a relaxation or Newton solve that did not converge) raises
:class:`CalculationFailed`. Neither is ever returned as if it were a result.
"""

__all__ = ["InputError", "CalculationFailed", "is_interrupt", "raise_if_interrupt"]


class InputError(ValueError):
    """Invalid input: the message names the problem and how to fix it."""


class CalculationFailed(RuntimeError):
    """A calculation ran but did not reach its tolerance."""


def is_interrupt(exc: BaseException | None) -> bool:
    """True when ``exc`` is, or was caused by, a KeyboardInterrupt or SystemExit.

    A SIGINT that lands while a numba function runs surfaces as ``SystemError:
    CPUDispatcher(...) returned a result with an exception set`` whose ``__context__`` (or
    ``__cause__``) is the KeyboardInterrupt; such an error is an interrupt, never a material
    failure, and must not be wrapped or cut back.
    """
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt | SystemExit):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


def raise_if_interrupt(exc: BaseException) -> None:
    """Raise ``KeyboardInterrupt`` when ``exc`` is an interrupt (:func:`is_interrupt`).

    For ``except Exception`` blocks that turn failures into records or cut-backs: an interrupt,
    also numba's ``SystemError`` around one, must end the run instead.

    Raises:
        KeyboardInterrupt: ``exc`` is, or was caused by, a KeyboardInterrupt or SystemExit.
    """
    if is_interrupt(exc):
        raise KeyboardInterrupt from None
