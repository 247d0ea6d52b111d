"""FE²: the macroscopic finite-strain solver on DOLFINx, with a material point at each Gauss point.

* :mod:`fe2.materials` - analytic batched material points (neo-Hookean, St Venant-Kirchhoff);
  numpy only.
* :mod:`fe2.solver` - :class:`~fe2.solver.Problem`: total-Lagrangian Newton with load
  cut-back (:class:`fe2qc.stepping.LoadStepper`), calling ``material.evaluate(F_qij)`` on the
  owned Gauss points only.
* :mod:`fe2.terms` - the residual as a sum of terms: bulk material, body force, tractions,
  and the :class:`~fe2.terms.Term` base for more (cohesive interface, phase field).
* :mod:`fe2.quadrature` - quadrature spaces, owned points, their ids and coordinates.
* :mod:`fe2.io` - VTX (ADIOS2) output for ParaView.

Knows nothing of ``atomistic`` or ``coupling``. The DOLFINx modules are imported lazily,
so ``import fe2`` works without DOLFINx.
"""

from fe2.materials import NeoHookean, StVenantKirchhoff

__all__ = ["NeoHookean", "StVenantKirchhoff", "Problem", "Dirichlet", "Traction", "StepReport",
           "Term", "BulkMaterial", "BodyForce", "TractionLoad"]


def __getattr__(name):
    if name in ("Problem", "Dirichlet", "Traction", "StepReport"):
        from fe2 import solver

        return getattr(solver, name)
    if name in ("Term", "BulkMaterial", "BodyForce", "TractionLoad"):
        from fe2 import terms

        return getattr(terms, name)
    raise AttributeError(f"module 'fe2' has no attribute {name!r}")
