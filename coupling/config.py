"""The TOML problem file behind ``fe2qc run``: schema, defaults and validation.

A problem file has these sections (every key optional unless marked)::

    [mesh]              # either a generator ...
    generator = "cracked_plate"
    width = 2000.0      # Å, half width of the plate
    height = 2000.0     # Å, half height
    crack_length = 200.0  # Å, half crack length (tip at x = crack_length, y = 0)
    tip_size = 4.0      # Å
    far_size = 400.0    # Å
    grading = 0.3
    # ... or a gmsh file with the facet markers of meshes.crack.TAGS
    # file = "plate.msh"

    [material]
    type = "rve"        # "neo-hookean" | "cauchy-born" | "rve"
    potential = "Cu_u3.eam"   # an EAM file (funcfl .eam or setfl .eam.alloy), or, for a
                              # pair potential, a table in LAMMPS's vocabulary:
    # [material.potential]
    # style = "lj/cut"        # lj/cut, lj/smooth/linear, morse
    # cutoff = 5.5            # Å, the pair_style's global cutoff
    # coeff = [0.4, 2.2]      # pair_coeff * * epsilon sigma (morse: D0 alpha r0);
    #                         # or the keys epsilon = 0.4, sigma = 2.2
    # shift = false           # pair_modify shift yes (lj/cut, morse)
    # element = "Ar"          # optional; mass = 39.948 (amu), optional
    lattice = "fcc"
    a0 = 3.615          # Å; default: the zero-pressure lattice constant of the potential
    size = [2, 2, 2]    # conventional cells of the RVE
    vacancy = false
    fmax = 1e-9         # eV/Å
    # neo-hookean: mu, lmbda (GPa)

    [loading]
    mode = "K"          # "K" (K_I in MPa √m), "traction" (GPa), "displacement" (Å): on the top
    value = 0.2
    steps = 4           # or a list of increasing load factors, e.g. [0.5, 1.0]

    [solver]
    degree = 1
    rtol = 1e-8
    max_iterations = 25
    min_increment = 1e-4

    [mpi]
    workers = 0         # ranks that only relax RVEs (coupling.dispatch); 0: every rank does both

    [output]
    directory = "results"
    vtx = true
    checkpoint = true
    overwrite = false   # a non-empty directory is refused unless true (or --overwrite)

Relative paths: the *input* files the TOML names (``[mesh] file``, a ``[material] potential``
file) are taken relative to the TOML file's folder; the ``[output] directory`` is relative to
the current working directory, like every output path of the command line and the demos
(default ``results/<name of the TOML file without .toml>``). Every error is an
:class:`~fe2qc.errors.InputError` that names the section and key and lists the allowed
values or keys, raised before any work (and on every rank alike, since it depends on the
file only).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fe2qc.errors import InputError

__all__ = [
    "MeshConfig", "MaterialConfig", "LoadingConfig", "SolverConfig", "MPIConfig",
    "OutputConfig", "Config", "load_config", "parse_config", "MATERIAL_TYPES", "LOADING_MODES",
]

MATERIAL_TYPES = ("neo-hookean", "cauchy-born", "rve")
LOADING_MODES = ("K", "traction", "displacement")
MESH_GENERATORS = ("cracked_plate",)
LATTICES = ("fcc", "bcc")


@dataclass
class MeshConfig:
    generator: str | None = "cracked_plate"
    file: Path | None = None
    width: float = 2000.0
    height: float = 2000.0
    crack_length: float = 200.0
    tip_size: float = 4.0
    far_size: float = 400.0
    grading: float = 0.3


@dataclass
class MaterialConfig:
    type: str = "rve"
    potential: str | dict | None = "Cu_u3.eam"  # an EAM file, or a pair-style table
    lattice: str = "fcc"
    a0: float | None = None
    size: tuple[int, int, int] = (2, 2, 2)
    vacancy: bool = False
    fmax: float = 1e-9
    mu: float = 50.0  # GPa (neo-hookean)
    lmbda: float = 100.0  # GPa (neo-hookean)


@dataclass
class LoadingConfig:
    mode: str = "K"
    value: float = 0.2
    steps: int | list[float] = 4

    def load_factors(self) -> list[float]:
        """The target load factors of the steps."""
        if isinstance(self.steps, int):
            return [(i + 1) / self.steps for i in range(self.steps)]
        return list(self.steps)


@dataclass
class SolverConfig:
    degree: int = 1
    rtol: float = 1e-8
    max_iterations: int = 25
    min_increment: float = 1e-4


@dataclass
class MPIConfig:
    workers: int = 0


@dataclass
class OutputConfig:
    directory: Path = Path("results")
    vtx: bool = True
    checkpoint: bool = True
    overwrite: bool = False  # replace a previous run's files in a non-empty directory


@dataclass
class Config:
    mesh: MeshConfig = field(default_factory=MeshConfig)
    material: MaterialConfig = field(default_factory=MaterialConfig)
    loading: LoadingConfig = field(default_factory=LoadingConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    mpi: MPIConfig = field(default_factory=MPIConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: Path | None = None  # the TOML file, if any


# -- key tables: name -> kind ("float", "posfloat", "int", "posint", "bool", "str", ...) -----
_KEYS: dict[str, dict[str, str]] = {
    "mesh": {"generator": "str", "file": "path", "width": "posfloat", "height": "posfloat",
             "crack_length": "posfloat", "tip_size": "posfloat", "far_size": "posfloat",
             "grading": "posfloat"},
    "material": {"type": "str", "potential": "potential", "lattice": "str", "a0": "posfloat",
                 "size": "size", "vacancy": "bool", "fmax": "posfloat", "mu": "posfloat",
                 "lmbda": "posfloat"},
    "loading": {"mode": "str", "value": "float", "steps": "steps"},
    "solver": {"degree": "posint", "rtol": "posfloat", "max_iterations": "posint",
               "min_increment": "posfloat"},
    "mpi": {"workers": "nonnegint"},
    "output": {"directory": "outpath", "vtx": "bool", "checkpoint": "bool",
               "overwrite": "bool"},
}
_MATERIAL_KEYS = {
    "neo-hookean": {"type", "mu", "lmbda"},
    "cauchy-born": {"type", "potential", "lattice", "a0"},
    "rve": {"type", "potential", "lattice", "a0", "size", "vacancy", "fmax"},
}


def _kind_error(section: str, key: str, want: str, value: Any) -> InputError:
    return InputError(f"[{section}] '{key}' must be {want}, got {value!r} "
                      f"({type(value).__name__})")


def _coerce(section: str, key: str, kind: str, value: Any, base: Path) -> Any:
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("float", "posfloat"):
        if not is_num or not math.isfinite(value):
            raise _kind_error(section, key, "a finite number", value)
        if kind == "posfloat" and value <= 0:
            raise _kind_error(section, key, "a positive number", value)
        return float(value)
    if kind in ("posint", "nonnegint"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _kind_error(section, key, "an integer", value)
        if value < (1 if kind == "posint" else 0):
            raise _kind_error(section, key, "an integer >= " + ("1" if kind == "posint" else "0"),
                              value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _kind_error(section, key, "true or false", value)
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise _kind_error(section, key, "a string", value)
        return value
    if kind == "potential":  # an EAM file name, or a [material.potential] table (pair styles)
        if not isinstance(value, str | dict):
            raise _kind_error(section, key, "a file name (string) or a [material.potential] "
                              "table", value)
        return value
    if kind in ("path", "outpath"):
        if not isinstance(value, str) or not value:
            raise _kind_error(section, key, "a path (string)", value)
        p = Path(os.path.expanduser(value))
        # an input file is found next to the TOML file; an output folder is made relative to
        # the working directory, as every command-line tool does
        return p if (p.is_absolute() or kind == "outpath") else base / p
    if kind == "size":
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                           for v in value)):
            raise _kind_error(section, key, "a list of three positive integers", value)
        return tuple(value)
    if kind == "steps":
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise _kind_error(section, key, "an integer >= 1 or a list of load factors",
                                  value)
            return value
        if (isinstance(value, list) and value
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            fs = [float(v) for v in value]
            if not all(math.isfinite(v) for v in fs) or any(b <= a for a, b in
                                                            zip([0.0] + fs, fs, strict=False)):
                raise _kind_error(section, key, "increasing positive load factors", value)
            return fs
        raise _kind_error(section, key, "an integer >= 1 or a list of load factors", value)
    raise AssertionError(kind)


def _choice(section: str, key: str, value: str, allowed) -> str:
    if value not in allowed:
        raise InputError(f"[{section}] '{key}' = {value!r} is not allowed; allowed values: "
                         + ", ".join(repr(a) for a in allowed))
    return value


def parse_config(data: dict, *, base_dir: str | os.PathLike = ".",
                 source: Path | None = None, check_files: bool = True) -> Config:
    """Validate a parsed TOML document (a dict) and return a :class:`Config`.

    Raises:
        InputError: unknown section or key, wrong type, bad value, missing file.
    """
    base = Path(base_dir)
    if not isinstance(data, dict):
        raise InputError(f"a problem file must be a TOML table, got {type(data).__name__}")
    for name in data:
        if name not in _KEYS:
            raise InputError(f"unknown section [{name}]; allowed: "
                             + ", ".join(f"[{s}]" for s in _KEYS))
    values: dict[str, dict[str, Any]] = {}
    for section, table in _KEYS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise InputError(f"[{section}] must be a table (a [{section}] section), got "
                             f"{raw!r}")
        values[section] = {}
        for key, value in raw.items():
            if key not in table:
                raise InputError(f"unknown key '{key}' in [{section}]; allowed: "
                                 + ", ".join(table))
            values[section][key] = _coerce(section, key, table[key], value, base)

    cfg = Config(source=source)
    # -- mesh --
    m = values["mesh"]
    if "file" in m:
        if "generator" in m:
            raise InputError("[mesh] give either 'generator' or 'file', not both")
        m["generator"] = None
        if check_files and not Path(m["file"]).is_file():
            raise InputError(f"[mesh] 'file': mesh file '{m['file']}' not found")
    else:
        _choice("mesh", "generator", m.get("generator", "cracked_plate"), MESH_GENERATORS)
    cfg.mesh = MeshConfig(**m)
    if cfg.mesh.generator and cfg.mesh.crack_length >= cfg.mesh.width:
        raise InputError(f"[mesh] 'crack_length' ({cfg.mesh.crack_length}) must be smaller than "
                         f"'width' ({cfg.mesh.width})")
    if cfg.mesh.generator and cfg.mesh.tip_size > cfg.mesh.far_size:
        raise InputError(f"[mesh] 'tip_size' ({cfg.mesh.tip_size}) must not exceed 'far_size' "
                         f"({cfg.mesh.far_size})")
    # -- material --
    mat = values["material"]
    mtype = _choice("material", "type", mat.get("type", "rve"), MATERIAL_TYPES)
    for key in mat:
        if key not in _MATERIAL_KEYS[mtype]:
            raise InputError(f"key '{key}' in [material] does not apply to type = {mtype!r}; "
                             f"allowed for it: " + ", ".join(sorted(_MATERIAL_KEYS[mtype])))
    cfg.material = MaterialConfig(**mat)
    if mtype != "neo-hookean":
        _choice("material", "lattice", cfg.material.lattice, LATTICES)
        _check_potential(cfg.material.potential, base, check_files)
    # -- loading, solver, mpi, output --
    lo = values["loading"]
    if "mode" in lo:
        _choice("loading", "mode", lo["mode"], LOADING_MODES)
    cfg.loading = LoadingConfig(**lo)
    if cfg.loading.mode == "K" and cfg.mesh.generator != "cracked_plate":
        raise InputError("[loading] mode = 'K' needs [mesh] generator = 'cracked_plate' (the "
                         "crack length enters the handbook K); use 'traction' or "
                         "'displacement' with a mesh file")
    cfg.solver = SolverConfig(**values["solver"])
    if cfg.solver.degree not in (1, 2):
        raise InputError(f"[solver] 'degree' = {cfg.solver.degree} is not allowed; allowed "
                         "values: 1, 2")
    cfg.mpi = MPIConfig(**values["mpi"])
    out = values["output"]
    # relative to the working directory, never to the TOML file's folder
    out.setdefault("directory", Path("results") / (Path(source).stem if source else "."))
    cfg.output = OutputConfig(**out)
    return cfg


def _check_potential(spec: str | dict | None, base: Path, check_files: bool = True) -> None:
    """A bad potential table, a pair style without its coefficients or a missing potential
    file is an input error, found before any work starts."""
    from atomistic.potentials import factory

    if spec is None:
        raise InputError("[material] 'potential' is required for this material type")
    if isinstance(spec, dict):
        factory.pair_potential_from_table(spec, where="[material.potential]")  # every key
        return
    if spec.strip().lower() in factory.PAIR_STYLES:
        raise InputError(f"[material] 'potential' = {spec!r} is a pair style without its "
                         f"coefficients; write the pair potential as a table: "
                         f"{factory.pair_table_help(spec.strip().lower())}")
    if not check_files:
        return
    p = Path(spec)
    if not p.is_absolute() and (base / p).is_file():
        return
    from atomistic.potentials import load_potential

    try:
        load_potential(spec)
    except InputError as exc:
        raise InputError(f"[material] 'potential' = {spec!r}: {exc}") from None


def resolve_potential(spec: str | dict, source: Path | None) -> str | dict:
    """The potential spec with a relative file name taken relative to the TOML file (a
    ``[material.potential]`` table is returned as it is)."""
    if isinstance(spec, dict):
        return spec
    if source is not None and not Path(spec).is_absolute():
        cand = Path(source).parent / spec
        if cand.is_file():
            return os.fspath(cand)
    return spec


def load_config(path: str | os.PathLike, *, check_files: bool = True) -> Config:
    """Read and validate a TOML problem file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"problem file '{p}' not found")
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, base_dir=p.parent, source=p, check_files=check_files)
