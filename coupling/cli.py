"""The ``fe2qc`` command line: one entry point, a subcommand per task.

Examples:
    fe2qc elastic --potential Cu_u3.eam --lattice fcc --json
    mpirun -n 2 fe2qc run demos/fe2_crack.toml
    fe2qc qc patch-test --scheme gfc --dim 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from fe2qc import __version__
from fe2qc.errors import CalculationFailed, InputError

__all__ = ["main"]


def _cmd_elastic(args: argparse.Namespace) -> int:
    from atomistic.elastic import elastic_constants
    from atomistic.potentials import load_potential
    from atomistic.potentials.factory import pair_potential_from_lammps
    from fe2qc.checks import require_positive

    # every option is checked before any work
    _check_temperature_options(args)
    if args.temperature is not None and args.engine == "lammps":
        return _cmd_elastic_lammps(args)
    if args.lattice == "diamond":
        raise InputError("the diamond lattice needs a potential made for it (Stillinger-Weber, "
                         "Tersoff, ...), which only the LAMMPS engine has: add --temperature T "
                         "--engine lammps --pair-style sw --pair-coeff '* * Si.sw Si' "
                         "--mass 28.0855 --a0 5.43")
    if args.a0 is not None:
        require_positive("--a0 (a guess of the lattice constant)", args.a0, unit="Å")
    if (args.potential is None) == (args.pair_style is None):
        raise InputError("give either --potential FILE (EAM) or --pair-style with --pair-coeff "
                         "(a pair potential), e.g. --pair-style 'lj/cut 5.5' --pair-coeff "
                         "'0.4 2.2'")
    if args.pair_style is None:
        for opt in ("pair_coeff", "cutoff"):
            if getattr(args, opt) is not None:
                raise InputError(f"--{opt.replace('_', '-')} belongs to --pair-style; an EAM "
                                 "file given with --potential has its own parameters")
        if args.shift:
            raise InputError("--shift belongs to --pair-style (pair_modify shift yes)")
        pot = load_potential(args.potential)
        spec = args.potential
        type_index = 0
        if args.element is not None:
            if args.element not in pot.elements:
                raise InputError(f"element {args.element!r} is not in {args.potential} "
                                 f"(it has {list(pot.elements)}); pick one of those with "
                                 "--element")
            type_index = pot.elements.index(args.element)
    else:
        if args.temperature is not None and args.mass is None:
            raise InputError("a pair potential has no mass: give --mass (amu) for molecular "
                             "dynamics, e.g. --mass 39.948 for argon")
        pot = pair_potential_from_lammps(args.pair_style, args.pair_coeff, cutoff=args.cutoff,
                                         shift=args.shift, element=args.element,
                                         mass=args.mass)
        spec = pot.lammps_commands()
        type_index = 0
    res = elastic_constants(pot, args.lattice, args.a0, type_index=type_index)
    if args.temperature is not None:
        from atomistic.md.engine import NativeEngine

        return _finite_temperature(args, NativeEngine(pot), res.a0, res.C,
                                   float(args.mass or pot.masses[type_index]), spec,
                                   pot.elements[type_index])
    out = res.as_dict()
    out["potential"] = spec
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


#: the finite-temperature options of `fe2qc elastic` and their defaults (the parser's too)
_T_DEFAULTS = {"pressure": 0.0, "engine": "native", "method": "fluctuation", "cells": 4,
               "time": 20.0, "dt": 0.001, "seed": 1, "mass": None, "adiabatic": False,
               "fixed_cell": False, "friction": 5.0, "ensemble": "nvt", "barostat": False}


def _check_temperature_options(args: argparse.Namespace) -> None:
    """Refuse finite-T options without --temperature, and bad values, before any work."""
    from fe2qc.checks import require_positive

    if args.temperature is None:
        given = [o for o, d in _T_DEFAULTS.items() if getattr(args, o) != d]
        if given:
            raise InputError(f"--{given[0]} belongs to a finite-temperature run: add "
                             "--temperature T (K)")
        return
    require_positive("--temperature", args.temperature, unit="K")
    require_positive("--time", args.time, unit="ps")
    require_positive("--dt", args.dt, unit="ps")
    if args.dt > 0.01:
        raise InputError(f"--dt {args.dt:g} ps is far too large for atoms (typical: 0.001 ps)")
    if args.time < 50 * args.dt * 10:
        raise InputError(f"--time {args.time:g} ps is too short to sample anything with --dt "
                         f"{args.dt:g} ps: give at least {500 * args.dt:g} ps (tens of ps for "
                         "error bars of a few GPa)")
    if args.cells < 1:
        raise InputError(f"--cells must be a positive integer, got {args.cells}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if args.mass is not None:
        require_positive("--mass", args.mass, unit="amu")
    require_positive("--friction", args.friction, unit="1/ps")
    if args.ensemble == "nve":
        raise InputError("--ensemble nve (adiabatic constants from microcanonical "
                         "fluctuations) is not implemented: sampling is canonical (nvt); "
                         "--adiabatic reports the adiabatic constants by the thermodynamic "
                         "conversion C_S = C_T + T V lambda lambda / C_V from the same run")
    if args.barostat and args.fixed_cell:
        raise InputError("--barostat finds the cell and --fixed-cell keeps it: give one")
    if args.fixed_cell and (args.a0 is None or args.pressure != 0.0):
        raise InputError("--fixed-cell keeps the lattice constant given with --a0 (and then "
                         "--pressure cannot be imposed): give --a0, drop --pressure")


def _finite_temperature(args, engine, a0_0K: float, C0_gpa, mass: float, spec,
                        element: str) -> int:
    """Run the finite-temperature recipe on ``engine`` and print its result."""
    from atomistic.md.elastic import elastic_at_temperature
    from fe2qc.units import EV_PER_A3_IN_GPA

    C0 = np.asarray(C0_gpa, float)
    bulk = (C0[0, 0] + 2.0 * C0[0, 1]) / 3.0 / EV_PER_A3_IN_GPA
    res = elastic_at_temperature(
        engine, args.lattice, args.a0 if args.fixed_cell else a0_0K, mass, args.temperature,
        pressure=args.pressure / EV_PER_A3_IN_GPA, cells=args.cells, time_ps=args.time,
        dt=args.dt, seed=args.seed, method=args.method, bulk_guess=bulk if bulk > 0 else None,
        friction=args.friction, fixed_cell=args.fixed_cell,
        lattice_method="npt" if args.barostat else "nvt", progress=10.0)
    out = res.as_dict(isothermal=not args.adiabatic)
    out.update(potential=spec, element=element, lattice=args.lattice, a0_0K=a0_0K,
               C0=C0.tolist(), C11_0K=float(C0[0, 0]), C12_0K=float(C0[0, 1]),
               C44_0K=float(C0[3, 3]))
    if out["warning"]:
        print(f"fe2qc elastic: warning: {out['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
        return 0
    kind = "isothermal" if out["isothermal"] else "adiabatic"
    print(f"{element} {args.lattice} at T = {out['T']:g} K, P = {out['P']:g} GPa "
          f"({res.n_atoms} atoms, {args.engine} engine, {out['method']}, {kind}):")
    print(f"a0 = {out['a0']:.5f} Å (0 K: {a0_0K:.5f} Å)")
    for k in ("C11", "C12", "C44"):
        print(f"{k} = {out[k]:.2f} ± {out[k + '_err']:.2f} GPa (0 K: {out[k + '_0K']:.2f})")
    return 0


def _cmd_elastic_lammps(args: argparse.Namespace) -> int:
    """``fe2qc elastic --temperature T --engine lammps``: the user's LAMMPS potential lines."""
    from atomistic.lammps.md import LammpsEngine
    from atomistic.lammps.reference import lammps_cubic_elastic
    from atomistic.potentials import load_potential

    if args.potential is not None:
        if args.pair_style is not None or args.pair_coeff is not None:
            raise InputError("give either --potential FILE or --pair-style with --pair-coeff")
        pot = load_potential(args.potential)
        commands = pot.lammps_commands()
        t = pot.elements.index(args.element) if args.element in pot.elements else 0
        mass = args.mass if args.mass is not None else float(pot.masses[t])
        a0 = args.a0 if args.a0 is not None else getattr(pot, "lattice_constant", None)
        element = pot.elements[t]
    else:
        if args.pair_style is None or args.pair_coeff is None:
            raise InputError("the LAMMPS engine needs the potential: --pair-style 'STYLE ...' "
                             "and --pair-coeff '* * FILE ELEMENT' (LAMMPS's own lines), or "
                             "--potential FILE (EAM)")
        if args.mass is None or args.a0 is None:
            raise InputError("with --pair-style the LAMMPS engine needs --mass (amu) and --a0 "
                             "(a guess of the lattice constant, Å)")
        commands = [f"pair_style {args.pair_style}", f"pair_coeff {args.pair_coeff}"]
        mass, a0, element = args.mass, args.a0, args.element or "X"
    if a0 is None:
        raise InputError("give --a0 (a guess of the lattice constant, Å)")
    # checks the style and lines on an empty box first; the Born term by numdiff with the
    # native engine's strain step (its average then includes the same cutoff term)
    engine = LammpsEngine(commands, born_delta=1e-3)
    ref = lammps_cubic_elastic(engine.commands, a0, mass=mass, lattice=args.lattice)
    C0 = np.asarray(ref["C"], float)
    return _finite_temperature(args, engine, float(ref["a0"]), C0, mass, engine.commands,
                               element)


def _cmd_run(args: argparse.Namespace, guard=None) -> int:
    """Run ``fe2qc run`` on one rank (every rank of an mpirun job runs this).

    Progress lines come from rank 0 only: on stdout, or on stderr with ``--json`` (stdout then
    holds the one JSON object and nothing else).
    """
    from coupling.config import load_config

    cfg = load_config(args.problem)  # validated before MPI or DOLFINx is touched
    if args.workers is not None:
        cfg.mpi.workers = args.workers
    if args.groups is not None:
        cfg.mpi.groups = args.groups
    if args.rve_ranks is not None:
        from coupling.config import check_rve_ranks

        cfg.mpi.rve_ranks = args.rve_ranks
        check_rve_ranks(cfg, "--rve-ranks")
    if args.outdir is not None:
        from pathlib import Path

        cfg.output.directory = Path(args.outdir)
    if args.overwrite:
        cfg.output.overwrite = True
    if args.restart is not None:
        if args.overwrite:
            raise InputError("--restart continues the run in its folder; it cannot be "
                             "combined with --overwrite (which deletes that run's files)")
        if args.outdir is not None and os.path.abspath(args.outdir) != os.path.abspath(
                args.restart):
            raise InputError(f"--restart {args.restart} writes into that folder; --outdir "
                             f"{args.outdir} names another one (leave --outdir out)")
    import fe2qc.mpi
    from coupling.driver import done_line, make_simulation
    from fe2qc.errors import is_interrupt
    from fe2qc.progress import LEVELS, Log, ProgressBar

    comm = fe2qc.mpi.mpi().COMM_WORLD
    if guard is not None:
        guard.attach(comm)
    stream = sys.stderr if args.json else sys.stdout
    factors = cfg.loading.load_factors()
    # on a terminal only, rank 0 only, and not when the progress lines are off
    bar = ProgressBar(max(abs(f) for f in factors), enabled=comm.rank == 0 and LEVELS.index(
        args.log_level) >= LEVELS.index("info"))
    log = Log(args.log_level, stream=stream, enabled=comm.rank == 0,
              bar=bar if bar.enabled else None)

    # refuses a non-empty output folder (collectively); crack_disc: the concurrent solver
    sim = make_simulation(cfg, comm, log=log, restart=args.restart,
                          progress=bar if bar.enabled else None)
    if guard is not None:
        guard.describe = sim.progress_note
    try:
        summary = sim.run()
    except BaseException as exc:
        if not is_interrupt(exc):  # an error every mesh rank raised alike
            sim.destroy()  # collective (MUMPS): here, not whenever the GC runs on each rank
        raise
    sim.destroy()
    if not sim.is_worker and comm.rank == 0:
        log(done_line(summary))
        if args.json:
            print(json.dumps(summary), flush=True)
    return 0


def _agree(comm, rc: int, error: tuple[str, str] | None, *, timeout: float = 60.0) -> int:
    """End ``fe2qc run`` on every rank with one error message in all and one exit status.

    The message is printed by rank 0, with the reporting ranks named when not all of them
    report it; the exit status is the largest.

    Every rank must get here; one that does not within ``timeout`` seconds (stuck in a
    collective that another rank left because of an error) is not waited for: this rank
    prints its own message and aborts the job.
    """
    def line(err, tag=""):
        kind, text = err
        return f"fe2qc run: {kind}{tag}: {text}"

    from fe2qc.threads import launched_size

    if comm is None and launched_size() > 1:
        import fe2qc.mpi

        comm = fe2qc.mpi.mpi().COMM_WORLD
    if comm is None or comm.size == 1:
        if error is not None:
            print(line(error), file=sys.stderr, flush=True)
        return rc
    import time

    import fe2qc.mpi
    from coupling.interrupts import abort_all

    MPI = fe2qc.mpi.mpi()
    req = comm.Ibarrier()
    deadline = time.monotonic() + timeout
    while not req.Test():
        if time.monotonic() > deadline:
            err = error or ("error", "the run ended on this rank")
            print(line(err, f" [rank {comm.rank} of {comm.size}; other ranks did not finish "
                       f"within {timeout:g} s, aborting them]"), file=sys.stderr, flush=True)
            abort_all(comm, rc or 1)
        time.sleep(0.01)
    # objects with collective destructors (PETSc, DOLFINx) left in reference cycles: free them
    # here, at the same point on every rank, not whenever each rank's collector runs
    import gc

    gc.collect()
    outcomes = comm.gather(error, root=0)
    if comm.rank == 0:
        by_message: dict[tuple[str, str], list[int]] = {}
        for r, e in enumerate(outcomes):
            if e is not None:
                by_message.setdefault(tuple(e), []).append(r)
        for err, ranks in by_message.items():
            tag = "" if len(ranks) == comm.size else (
                f" [reported by rank{'s' if len(ranks) > 1 else ''} "
                f"{', '.join(map(str, ranks))} of {comm.size}]")
            print(line(err, tag), file=sys.stderr, flush=True)
    return int(comm.allreduce(rc, op=MPI.MAX))


def _main_run(args: argparse.Namespace) -> int:
    """Run ``fe2qc run`` with the rules for errors and interrupts on every rank.

    * InputError (exit 2) and CalculationFailed (exit 3) are raised on every rank alike by the
      library; they are printed once, by rank 0 (:func:`_agree`).
    * Ctrl-C (SIGINT; also when numba wraps it in a SystemError): one message, from the
      interrupted rank (rank 0 when every rank got it, as under mpirun), naming the last
      converged step and its checkpoint; exit status 130; with several ranks ``comm.Abort(130)``
      ends all of them (:mod:`coupling.interrupts`).
    * Any other exception is a bug: with several ranks the traceback is printed by the rank
      that raised it and the job is aborted (exit 1), since the other ranks may be waiting for
      that rank in a collective and a plain exit would leave them (and mpirun) hanging.
    """
    from coupling.interrupts import InterruptGuard, abort_all
    from fe2qc.errors import is_interrupt

    guard = InterruptGuard(None, prog="fe2qc run").install()
    rc, error = 0, None
    try:
        try:
            rc = _cmd_run(args, guard)
        except SystemExit:
            raise
        except BaseException as exc:
            if is_interrupt(exc):
                return guard.finish()
            if isinstance(exc, InputError):
                rc, error = 2, ("error", str(exc))
            elif isinstance(exc, CalculationFailed):
                rc, error = 3, ("calculation failed", str(exc))
            else:
                comm = guard.comm
                if comm is not None and comm.size > 1:
                    import traceback

                    traceback.print_exc()
                    print(f"fe2qc run: unexpected {type(exc).__name__} on rank {comm.rank} of "
                          f"{comm.size}; aborting every rank", file=sys.stderr, flush=True)
                    abort_all(comm, 1)
                raise
        return _agree(guard.comm, rc, error)
    except KeyboardInterrupt:
        return guard.finish()
    finally:
        guard.uninstall()


def _cmd_qc_patch(args: argparse.Namespace) -> int:
    """Exit 0: PASS (gfc/qcf/bgfc) or the expected ghost forces (qce/bqce); 1: FAIL."""
    from coupling.qc.patch import patch_test
    from coupling.qc.system import check_scheme
    from fe2qc.checks import require_nonnegative

    # every option is checked before any work
    scheme = check_scheme(args.scheme)
    if args.dim not in (1, 2, 3):
        raise InputError(f"--dim must be 1 (chain), 2 (triangular lattice) or 3 (Cu slab), "
                         f"got {args.dim}")
    k = {1: 1, 2: 2, 3: 2}[args.dim]
    F = None
    if args.F is not None:
        if args.amplitude is not None:
            raise InputError("give either --F or --amplitude (the random part of F), not both")
        try:
            vals = [float(v) for v in args.F.replace(",", " ").split()]
        except ValueError as exc:
            raise InputError(f"--F must be {k * k} numbers (the in-plane block of F, row by "
                             f"row), got {args.F!r}") from exc
        rows = {k * k: k, 6: 3} if args.dim == 3 else {k * k: k}
        if len(vals) not in rows:
            extra = " or 6 (F11 F12 F21 F22 F31 F32: out-of-plane too)" if args.dim == 3 else ""
            raise InputError(f"--F needs {k * k} numbers for --dim {args.dim} (the in-plane "
                             f"{k}x{k} block of F, row by row){extra}, got {len(vals)}")
        F = [vals[i * k:(i + 1) * k] for i in range(rows[len(vals)])]
    amplitude = 0.02 if args.amplitude is None else args.amplitude
    require_nonnegative("--amplitude (the size of the random part of F)", amplitude)
    out = patch_test(scheme, args.dim, seed=args.seed, amplitude=amplitude, F=F)
    code = 1 if out["status"] == "FAIL" else 0
    if args.json:
        print(json.dumps(out))
        return code
    print(f"QC patch test: scheme {scheme}, {out['lattice']} lattice (dim {args.dim}), "
          f"{out['sites']} sites, {out['nodes']} nodes")
    for case in out["cases"]:
        Fk = [row[:k] for row in case["F"][:k]]
        print(f"  F = {Fk} (det {case['det_F']:.4g}): max |force| = {case['max_force']:.3e} "
              f"eV/Å on {case['nodes_with_force_above_1e-10']} nodes above 1e-10")
    if "hand_calculation" in out:
        h = out["hand_calculation"]
        print(f"  1D chain vs hand calculation: max difference {h['max_difference']:.2e} eV/Å, "
              f"carriers {h['carriers']}: {h['status']}")
    if out["claims_patch_test"]:
        print(f"{out['status']}: max |force| {out['max_force']:.3e} eV/Å "
              f"{'<=' if out['status'] == 'PASS' else '>'} {out['tolerance']:g} eV/Å")
    else:
        print(f"ghost forces (expected for {scheme}, which does not pass the patch test): max "
              f"|force| {out['max_force']:.3e} eV/Å"
              + ("" if out["status"] != "FAIL" else "; FAIL: the hand calculation disagrees"))
    return code


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
    e.add_argument("--potential", default=None,
                   help="EAM file (.eam funcfl or .eam.alloy setfl; a bare name is also looked up "
                   "among the potentials shipped with the lammps wheel)")
    e.add_argument("--pair-style", default=None, metavar="'STYLE [CUTOFF]'",
                   help="instead of --potential, a pair potential as LAMMPS's pair_style: "
                   "lj/cut, lj/smooth/linear or morse, with the global cutoff in Å "
                   "(here or as --cutoff), e.g. 'lj/cut 5.5'")
    e.add_argument("--pair-coeff", default=None, metavar="'COEFFS'",
                   help="the pair_coeff coefficients of --pair-style: 'epsilon sigma' (eV, Å) "
                   "for lj/cut and lj/smooth/linear, 'D0 alpha r0' (eV, 1/Å, Å) for morse")
    e.add_argument("--cutoff", type=float, default=None,
                   help="global cutoff (Å) of --pair-style, if not given there")
    e.add_argument("--shift", action="store_true",
                   help="pair_modify shift yes (lj/cut, morse): energy zero at the cutoff")
    e.add_argument("--element", default=None, help="element of a multi-element setfl file; "
                   "with --pair-style, the name of its single species")
    e.add_argument("--lattice", required=True, choices=["fcc", "bcc", "diamond"],
                   help="cubic lattice (diamond: finite temperature with --engine lammps only)")
    e.add_argument("--a0", type=float, default=None, help="initial guess of the lattice "
                   "constant (Å, positive; the zero-pressure root is searched within a factor "
                   "1.5 of it); default: the file's value, else an energy scan")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    t = e.add_argument_group(
        "finite temperature (molecular dynamics)",
        "With --temperature: the lattice constant at T and P (NVT runs scaled to the target "
        "pressure) and the elastic constants with one-standard-error bars (GPa) from NVT "
        "sampling (Langevin), by the stress-fluctuation formula (Born term, kinetic term, "
        "stress covariance) or by direct deformation; isothermal, or adiabatic with "
        "--adiabatic. Progress on stderr.")
    t.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="temperature (K, > 0); without it the 0 K constants are printed")
    t.add_argument("--pressure", type=float, default=_T_DEFAULTS["pressure"], metavar="P",
                   help="pressure (GPa, default 0)")
    t.add_argument("--engine", choices=["native", "lammps"], default=_T_DEFAULTS["engine"],
                   help="native (fe2qc's kernels) or lammps (with --engine lammps, "
                   "--pair-style and --pair-coeff are LAMMPS's own lines, e.g. --pair-style sw "
                   "--pair-coeff '* * Si.sw Si', and need --mass and --a0)")
    t.add_argument("--method", choices=["fluctuation", "deformation"],
                   default=_T_DEFAULTS["method"],
                   help="stress-fluctuation formula (default) or mean stresses at ±1 %% strain")
    t.add_argument("--cells", type=int, default=_T_DEFAULTS["cells"],
                   help="conventional cells per edge of the periodic supercell (default 4)")
    t.add_argument("--time", type=float, default=_T_DEFAULTS["time"], metavar="PS",
                   help="production time (ps, default 20)")
    t.add_argument("--dt", type=float, default=_T_DEFAULTS["dt"], metavar="PS",
                   help="time step (ps, default 0.001)")
    t.add_argument("--seed", type=int, default=_T_DEFAULTS["seed"],
                   help="seed of velocities and noise")
    t.add_argument("--mass", type=float, default=_T_DEFAULTS["mass"],
                   help="atomic mass (amu; default: the potential file's)")
    t.add_argument("--ensemble", choices=["nvt", "nve"], default=_T_DEFAULTS["ensemble"],
                   help="sampling ensemble: nvt (Langevin; nve is not implemented, see "
                   "--adiabatic)")
    t.add_argument("--barostat", action="store_true",
                   help="find the cell at T and P as the mean cell of an NPT run (MTK "
                   "barostat, LAMMPS's fix npt iso) instead of the NVT pressure search")
    t.add_argument("--fixed-cell", action="store_true",
                   help="keep the lattice constant --a0 (NVT at that volume, no pressure "
                   "search), as LAMMPS's ELASTIC_T examples do")
    t.add_argument("--friction", type=float, default=_T_DEFAULTS["friction"], metavar="GAMMA",
                   help="Langevin friction (1/ps, default 5; LAMMPS's damp = 1/GAMMA)")
    t.add_argument("--adiabatic", action="store_true",
                   help="report the adiabatic constants (from the isothermal ones and the "
                   "thermal stress and heat capacity of the same run) as C11, C12, C44, C")
    e.set_defaults(func=_cmd_elastic)

    r = sub.add_parser("run", help="run an FE² or a concurrent (crack_disc) problem "
                       "described by a TOML file",
                       description="Build the mesh, material and loads of a TOML problem file "
                       "(see coupling.config) and run the load steps, writing VTX fields, a "
                       "per-step log (steps.jsonl) and checkpoints. Launch under mpirun for "
                       "parallel runs.")
    r.add_argument("problem", help="the TOML problem file")
    r.add_argument("--workers", type=int, default=None, help="override [mpi] workers")
    r.add_argument("--groups", type=int, default=None,
                   help="override [mpi] groups: groups of mesh ranks and workers that share "
                   "the RVEs by their measured cost (default: min(mesh ranks, workers); "
                   "without workers 1, or the number of ranks to share by cost)")
    r.add_argument("--rve-ranks", type=int, default=None,
                   help="override [mpi] rve_ranks: worker ranks that relax each RVE together "
                   "(LAMMPS on a sub-communicator; needs [material] engine = 'lammps' and "
                   "divides --workers)")
    r.add_argument("--outdir", default=None, help="override [output] directory")
    r.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty output folder, deleting the files of the run "
                   "there before (steps.jsonl, checkpoint.npz, fe2_*.bp; nothing else); "
                   "without it a non-empty folder is refused. Also [output] overwrite = true")
    r.add_argument("--restart", default=None, metavar="DIR",
                   help="continue the run whose output folder is DIR from its checkpoint "
                   "(checkpoint.npz: the last converged load step), on any number of ranks "
                   "and workers, writing into DIR: steps.jsonl is appended to, the VTX series "
                   "continue in fe2_restart<n>_*.bp. The problem file must describe the same "
                   "problem (mesh, material, boundary conditions, load mode and value, degree; "
                   "more load steps may be added); another one is refused")
    r.add_argument("--json", action="store_true", help="print the summary as one JSON object "
                   "on stdout (the progress lines go to stderr)")
    r.add_argument("--log-level", choices=["error", "warning", "info", "debug"], default="info",
                   help="how much rank 0 prints: errors only, warnings too, the progress lines "
                   "of every step (default), or details (threads, layout, dispatch per step, "
                   "checkpoint writes). A progress bar of the load and the RVE batches is drawn "
                   "on stderr when it is a terminal (level info and up)")
    r.set_defaults(func=_cmd_run)

    q = sub.add_parser("qc", help="quasicontinuum tools (patch test)",
                       description="Quasicontinuum: atoms near defects, Cauchy-Born finite "
                       "elements elsewhere; schemes qce, gfc, qcf, bqce, bgfc.")
    qsub = q.add_subparsers(dest="qc_command", metavar="QC_COMMAND", required=True)
    pt = qsub.add_parser(
        "patch-test", help="forces of a scheme under homogeneous deformations",
        description="Deform the lattice homogeneously (F = I, then a random or given F) and "
        "report the largest force on any free atom or node (eV/Å), with the forces near the "
        "atomistic/continuum interface. gfc, qcf and bgfc claim the patch test: PASS when every "
        "force is <= 1e-10 eV/Å (exit 0), else FAIL (exit 1). qce and bqce have ghost forces: "
        "they are reported as the expected outcome (exit 0). --dim 1 with qce also compares the "
        "chain's ghost forces with the hand calculation (FAIL, exit 1, if they differ by more "
        "than 1e-10 eV/Å). F must have det F > 0 and leave the lattice stable (positive "
        "Cauchy-Born acoustic tensor and phonons), else the command refuses it. Exit status: "
        "0 pass (or expected ghost forces), 1 fail, 2 bad input, 3 a failed calculation.")
    pt.add_argument("--scheme", required=True, help="qce, gfc, qcf, bqce or bgfc")
    pt.add_argument("--dim", type=int, default=2, help="1: chain, 2: triangular lattice with a "
                    "pair potential, 3: Cu_u3 fcc slab periodic along z (default 2)")
    pt.add_argument("--seed", type=int, default=0, help="seed of the random F")
    pt.add_argument("--amplitude", type=float, default=None,
                    help="size of the random part of F: F = I + amplitude * R, R uniform in "
                    "[-1, 1] from --seed on the entries the model can change (F_xx for the "
                    "chain, the in-plane block in 2D, the first two columns for the slab); a "
                    "finite number >= 0 (default 0.02)")
    pt.add_argument("--F", default=None, metavar="F11,F12,F21,F22",
                    help="a given F instead of a random one: the in-plane block row by row "
                    "(1 number for --dim 1, 4 for --dim 2 and 3; --dim 3 also takes 6, the "
                    "first two columns with F31 F32), e.g. --F 0.9,0,0,0.9 (--F=-1,... when "
                    "the first entry is negative)")
    pt.add_argument("--json", action="store_true", help="print one JSON object (the exit "
                    "status is the same)")
    pt.set_defaults(func=_cmd_qc_patch)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit status.

    The status is 2 for bad input, 3 for a failed calculation and 130 for an interrupted
    ``run``.
    """
    args = build_parser().parse_args(argv)
    if args.func is _cmd_run:
        return _main_run(args)
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
