"""Error types shared by all layers.

Following ASE's calculator design, a bad input is refused before any work
starts (:class:`InputError`) while a calculation that ran but did not succeed
(a relaxation or Newton solve that did not converge) raises
:class:`CalculationFailed`. Neither is ever returned as if it were a result.
"""

__all__ = ["InputError", "CalculationFailed"]


class InputError(ValueError):
    """Invalid input: the message names the problem and how to fix it."""


class CalculationFailed(RuntimeError):
    """A calculation ran but did not reach its tolerance."""
