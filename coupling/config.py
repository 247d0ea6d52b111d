"""The TOML problem file behind ``fe2qc run``: schema, defaults and validation.

A problem file has these sections (every key optional unless marked)::

    [mesh]              # either a generator (meshes.generators) and its parameters ...
    generator = "cracked_plate"   # "cracked_plate" | "rectangle" | "crack_disc"
    width = 2000.0      # Å, half width of the plate
    height = 2000.0     # Å, half height
    crack_length = 200.0  # Å, half crack length (tip at x = crack_length, y = 0)
    tip_size = 4.0      # Å
    far_size = 400.0    # Å
    grading = 0.3
    # generator = "rectangle": width = 100.0, height = 100.0 (Å), nx = 4, ny = 4 (cells)
    # generator = "crack_disc": radius = 43.4 (Å, required), growth = 1.0 (mesh coarsening,
    #   Å per Å): the concurrent solver's own geometry (coupling.qc.run), see below
    # ... or a gmsh file; its physical groups of facets name the boundary parts (a file that
    # names none is read with the markers of meshes.crack.TAGS)
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
    engine = "native"   # "native" | "lammps": who relaxes the RVE (atomistic.lammps.rve: LAMMPS,
                        # on [mpi] rve_ranks ranks per RVE; tangent by central differences)
    # neo-hookean: mu, lmbda (GPa)

    [loading]
    mode = "K"          # "K" (K_I in MPa √m), "traction" (GPa), "displacement" (Å)
    value = 0.2         # multiplies the loaded boundary conditions (below)
    steps = 4           # or a list of increasing load factors, e.g. [0.5, 1.0]

    [solver]
    degree = 1
    rtol = 1e-8
    max_iterations = 25
    min_increment = 1e-4

    [mpi]
    workers = 0         # ranks that only relax RVEs (coupling.dispatch); 0: every rank does both
    groups = 2          # optional: groups of macro ranks and workers sharing work by cost
                        # (coupling.farm); default min(macro ranks, workers), without workers 1
    rve_ranks = 1       # worker ranks per RVE (a team; [material] engine = "lammps" only)

    [output]
    directory = "results"
    vtx = true
    checkpoint = true
    overwrite = false   # a non-empty directory is refused unless true (or --overwrite)

    [atomistic]         # optional, generator = "crack_disc" only: explicit atoms at the tip
    radius = 10.8       # Å, required: the atomistic disc around the crack tip
    scheme = "bgfc"     # "bgfc" | "bqce" | "qce" (the energy-based QC couplings)
    handshake = 4.95    # Å, the handshake band; default and least: the potential's cutoff
    rve_radius = 30.0   # Å, [material] type = "rve": cells beyond it get the RVE, the others
                        # the Cauchy-Born crystal; default: atomistic radius + 2 cutoffs

    [[boundary]]        # optional, repeated: a condition on a named boundary part of the mesh
    name = "left"       # required; the boundary parts of the mesh source (an unknown name is
                        # refused with the list of the mesh's names)
    u_x = 0.0           # Å, a fixed displacement component (also u_y); not scaled by the load
    [[boundary]]
    name = "top"
    traction = [0.0, 1.0]   # nominal traction, times [loading] value (GPa) times the load factor
    # u_y = 1.0         # with loaded = true: a displacement times value (Å) times the load factor
    # loaded = true

A ``[[boundary]]`` entry gives displacement components (``u_x``, ``u_y``) or a ``traction``,
not both. The loaded entries (every traction, and the displacements with ``loaded = true``)
are multiplied by ``[loading] value`` and the load factor of each step; the other
displacements are held fixed. Mode ``"traction"`` needs loaded tractions only, mode
``"displacement"`` loaded displacements only. Without ``[[boundary]]`` entries the mesh
source's default boundary conditions apply: for ``cracked_plate`` (and a mesh file) the
quarter model's, u_x = 0 on ``left``, u_y = 0 on ``ligament`` (symmetry) and on ``top`` a
traction ``(0, value)`` or a displacement u_y = value; for ``rectangle`` u_x = 0 on ``left``,
u_y = 0 on ``bottom`` and a traction ``(value, 0)`` or a displacement u_x = value on
``right``. Mode ``"K"`` loads the default boundary conditions of a generator that has a K
calibration (``cracked_plate``: the traction whose handbook K_I,
:func:`meshes.crack.center_crack_K`, equals ``value``); it is refused with ``[[boundary]]``
entries and for a geometry without one. Another geometry is a mesh function and an entry in
:data:`meshes.generators.GENERATORS` (its parameters, boundary names and default boundary
conditions), then a problem file: nothing here or in ``coupling.driver`` changes.

The concurrent crack (``[mesh] generator = "crack_disc"``, run by :mod:`coupling.qc.run`): the
concurrent solver meshes its own domain (mesh nodes on the lattice sites near the atoms), so
for now it takes one geometry: a disc of ``radius`` Å of the ``[material]``'s fcc crystal (x =
[100], y = [010], z = [001], one period thick) around a straight pre-cut crack along -x with
its tip at the centre, the mode-I K-field of that crystal imposed on the clamped outer layer
(one cutoff wide). ``[loading]`` must be mode ``"K"`` (``value``: K_I in MPa √m at load factor
1; no ``[[boundary]]`` entries); ``[material]`` is ``"cauchy-born"`` or ``"rve"`` (the RVE of
the same crystal: ``[mpi] workers``, if any, evaluate it; workers need it); ``[solver]`` takes
``min_increment`` (and ``degree = 1``) only, each K being relaxed to a largest force of 1e-8
eV/Å, and ``[output]`` no ``checkpoint``. With an ``[atomistic]`` section the atoms within its
``radius`` are explicit; without one every cell is a continuum cell (pure FE² on the same kind
of mesh, its lattice sites within 3 a0 of the tip resolved). ``[atomistic]`` with another
geometry is refused: the ``cracked_plate`` quarter model's symmetry planes would cut the
lattice.

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
from meshes.generators import GENERATORS, MESH_FILE, MeshGenerator

__all__ = [
    "MeshConfig", "MaterialConfig", "LoadingConfig", "BoundaryConfig", "SolverConfig",
    "MPIConfig", "OutputConfig", "Config", "load_config", "parse_config", "MATERIAL_TYPES",
    "LOADING_MODES", "MESH_GENERATORS", "BOUNDARY_KEYS", "check_boundary_names", "check_rve_ranks",
    "AtomisticConfig", "ATOMISTIC_SCHEMES", "CONCURRENT_GENERATORS", "concurrent_reach",
]

MATERIAL_TYPES = ("neo-hookean", "cauchy-born", "rve")
LOADING_MODES = ("K", "traction", "displacement")
LATTICES = ("fcc", "bcc")
#: the QC schemes of ``[atomistic] scheme`` (:data:`coupling.qc.concurrent.ENERGY_SCHEMES`)
ATOMISTIC_SCHEMES = ("bgfc", "bqce", "qce")


def _concurrent_mesh(comm, **_):
    raise InputError("[mesh] generator = 'crack_disc' is meshed by the concurrent solver "
                     "(coupling.qc.run), not as a DOLFINx mesh of FE²")


def _check_crack_disc(*, radius, growth) -> None:
    if radius is None:
        raise InputError("generator = 'crack_disc' needs 'radius' (Å, the radius of the disc "
                         "around the crack tip)")


#: geometries of the concurrent solver (:mod:`coupling.qc.run`), which meshes its own domain
CONCURRENT_GENERATORS: dict[str, MeshGenerator] = {
    "crack_disc": MeshGenerator(
        name="crack_disc",
        build=_concurrent_mesh,
        parameters={"radius": ("posfloat", None), "growth": ("posfloat", 1.0)},
        boundary_names=lambda **_: (),
        check=_check_crack_disc,
        description="a disc of radius Å around a pre-cut crack tip, the K-field clamped on "
                    "its outer layer (the concurrent solver, coupling.qc.run)",
    ),
}
_ALL_GENERATORS = {**GENERATORS, **CONCURRENT_GENERATORS}
MESH_GENERATORS = tuple(_ALL_GENERATORS)


@dataclass
class MeshConfig:
    """``[mesh]``: a generator of :mod:`meshes.generators` and its parameters, or a gmsh file.

    The parameters are also attributes (``cfg.mesh.crack_length``), read and written.
    """

    generator: str | None = "cracked_plate"
    file: Path | None = None
    #: parameter name -> value (default: the generator's defaults)
    parameters: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Fill in the generator's default parameters when none are given."""
        if self.parameters is None:
            self.parameters = {} if self.file is not None else self.source.defaults()

    def __getattr__(self, name: str) -> Any:
        """A parameter read as an attribute (``cfg.mesh.crack_length``)."""
        params = self.__dict__.get("parameters")
        if not name.startswith("_") and params and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or [mesh] parameter "
                             f"{name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """A parameter written as an attribute goes to :attr:`parameters`."""
        params = self.__dict__.get("parameters")
        if params and name in params and name not in self.__dataclass_fields__:
            params[name] = value
        else:
            object.__setattr__(self, name, value)

    @property
    def source(self) -> MeshGenerator:
        """The registry entry of this mesh source (``MESH_FILE`` for a file)."""
        return MESH_FILE if self.file is not None else _ALL_GENERATORS[self.generator]

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of the source's ``build`` and ``boundary_names``."""
        return {"file": self.file} if self.file is not None else dict(self.parameters)

    def describe(self) -> str:
        """``[mesh] generator = '...'`` or ``[mesh] file = '...'``, for messages."""
        if self.file is not None:
            return f"[mesh] file = '{os.fspath(self.file)}'"
        return f"[mesh] generator = {self.generator!r}"

    def boundary_names(self) -> tuple[str, ...]:
        """The names of the boundary parts the mesh will have (a file: read from it)."""
        return tuple(self.source.boundary_names(**self.arguments()))

    def build(self, comm):
        """Build (or read) the mesh on ``comm``: a :class:`meshes.tagged.TaggedMesh`."""
        return self.source.build(comm, **self.arguments())

    @property
    def concurrent(self) -> bool:
        """True for a geometry of the concurrent solver (:data:`CONCURRENT_GENERATORS`)."""
        return self.file is None and self.generator in CONCURRENT_GENERATORS

    def stress_intensity(self) -> float:
        """K_I (eV/Å³ √Å) of the default boundary conditions at unit load (1 eV/Å³).

        Raises:
            InputError: the geometry has no K calibration.
        """
        k = self.source.stress_intensity
        if k is None:
            raise InputError(_no_K_message(self))
        return float(k(**self.arguments()))


@dataclass
class MaterialConfig:
    """``[material]``: the material law or the RVE of the Gauss points."""

    type: str = "rve"
    potential: str | dict | None = "Cu_u3.eam"  # an EAM file, or a pair-style table
    lattice: str = "fcc"
    a0: float | None = None
    size: tuple[int, int, int] = (2, 2, 2)
    vacancy: bool = False
    fmax: float = 1e-9
    engine: str = "native"  # who relaxes the RVE: "native" or "lammps"
    mu: float = 50.0  # GPa (neo-hookean)
    lmbda: float = 100.0  # GPa (neo-hookean)


@dataclass
class LoadingConfig:
    """``[loading]``: what the load value means, its size and the load steps."""

    mode: str = "K"
    value: float = 0.2
    steps: int | list[float] = 4

    def load_factors(self) -> list[float]:
        """The target load factors of the steps."""
        if isinstance(self.steps, int):
            return [(i + 1) / self.steps for i in range(self.steps)]
        return list(self.steps)


#: the keys of a ``[[boundary]]`` entry and their kinds
BOUNDARY_KEYS = {"name": "str", "u_x": "float", "u_y": "float", "traction": "vector2",
                 "loaded": "bool"}


@dataclass(frozen=True)
class BoundaryConfig:
    """One ``[[boundary]]`` entry: displacement components or a traction on a boundary part.

    Attributes:
        name: the boundary part (a name of the mesh source's boundary).
        u_x, u_y: prescribed displacement components (Å), None where free.
        traction: nominal traction at unit load value (times ``[loading] value`` in GPa).
        loaded: the values scale with ``[loading] value`` and the load factor (always true
            for a traction); false: the displacements are held fixed.
    """

    name: str
    u_x: float | None = None
    u_y: float | None = None
    traction: tuple[float, float] | None = None
    loaded: bool = False

    def displacements(self) -> list[tuple[int, float]]:
        """``(component, value)`` of each prescribed displacement component."""
        return [(c, v) for c, v in enumerate((self.u_x, self.u_y)) if v is not None]


@dataclass
class AtomisticConfig:
    """``[atomistic]``: the explicit atoms of a concurrent problem (``crack_disc`` only).

    Attributes:
        radius: radius (Å) of the atomistic disc around the crack tip.
        scheme: the QC coupling, one of :data:`ATOMISTIC_SCHEMES`.
        handshake: width (Å) of the handshake band; None: the potential's cutoff.
        rve_radius: cells whose centroid is this far from the tip (Å) or farther get the RVE
            (``[material] type = "rve"``); None: the atomistic radius plus two cutoffs.
    """

    radius: float
    scheme: str = "bgfc"
    handshake: float | None = None
    rve_radius: float | None = None


@dataclass
class SolverConfig:
    """``[solver]``: element degree and Newton settings."""

    degree: int = 1
    rtol: float = 1e-8
    max_iterations: int = 25
    min_increment: float = 1e-4


@dataclass
class MPIConfig:
    """``[mpi]``: the RVE worker ranks and the groups (:func:`coupling.farm.split_world`)."""

    workers: int = 0
    groups: int | None = None  # None: min(macro ranks, workers), or 1 without workers
    rve_ranks: int = 1  # worker ranks per RVE (engine = "lammps")


@dataclass
class OutputConfig:
    """``[output]``: where and what a run writes."""

    directory: Path = Path("results")
    vtx: bool = True
    checkpoint: bool = True
    overwrite: bool = False  # replace a previous run's files in a non-empty directory


@dataclass
class Config:
    """A validated problem file: one attribute per section."""

    mesh: MeshConfig = field(default_factory=MeshConfig)
    material: MaterialConfig = field(default_factory=MaterialConfig)
    loading: LoadingConfig = field(default_factory=LoadingConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    mpi: MPIConfig = field(default_factory=MPIConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: the ``[atomistic]`` section of a concurrent problem; None: no atoms
    atomistic: AtomisticConfig | None = None
    #: the ``[[boundary]]`` entries; None: the mesh source's default boundary conditions
    boundaries: list[BoundaryConfig] | None = None
    source: Path | None = None  # the TOML file, if any

    def boundary_conditions(self) -> list[BoundaryConfig]:
        """The boundary conditions of the problem.

        Returns:
            The ``[[boundary]]`` entries, or the mesh source's defaults for the
            ``[loading]`` mode when there are none.

        Raises:
            InputError: no entries and the mesh source has no defaults.
        """
        if self.boundaries is not None:
            return list(self.boundaries)
        defaults = self.mesh.source.default_boundaries
        if defaults is None:
            raise InputError(f"{self.mesh.describe()} has no default boundary conditions; "
                             "give [[boundary]] entries (its boundary parts: "
                             + ", ".join(repr(n) for n in self.mesh.boundary_names()) + ")")
        return _parse_boundaries(defaults(self.loading.mode),
                                 f"the default boundary conditions of {self.mesh.describe()}")


# -- key tables: name -> kind ("float", "posfloat", "int", "posint", "bool", "str", ...) -----
def _mesh_keys() -> dict[str, str]:
    """``generator``, ``file`` and the parameters of every registered generator."""
    keys = {"generator": "str", "file": "path"}
    for gen in _ALL_GENERATORS.values():
        for name, (kind, _default) in gen.parameters.items():
            if keys.setdefault(name, kind) != kind:
                raise AssertionError(f"[mesh] parameter {name!r} has two kinds: "
                                     f"{keys[name]!r} and {kind!r} ({gen.name})")
    return keys


_KEYS: dict[str, dict[str, str]] = {
    "mesh": _mesh_keys(),
    "material": {"type": "str", "potential": "potential", "lattice": "str", "a0": "posfloat",
                 "size": "size", "vacancy": "bool", "fmax": "posfloat", "mu": "posfloat",
                 "lmbda": "posfloat", "engine": "str"},
    "loading": {"mode": "str", "value": "float", "steps": "steps"},
    "solver": {"degree": "posint", "rtol": "posfloat", "max_iterations": "posint",
               "min_increment": "posfloat"},
    "mpi": {"workers": "nonnegint", "groups": "posint", "rve_ranks": "posint"},
    "output": {"directory": "outpath", "vtx": "bool", "checkpoint": "bool",
               "overwrite": "bool"},
    "atomistic": {"radius": "posfloat", "scheme": "str", "handshake": "posfloat",
                  "rve_radius": "float"},
}
_MATERIAL_KEYS = {
    "neo-hookean": {"type", "mu", "lmbda"},
    "cauchy-born": {"type", "potential", "lattice", "a0"},
    "rve": {"type", "potential", "lattice", "a0", "size", "vacancy", "fmax", "engine"},
}
#: who relaxes an RVE (``[material] engine``)
RVE_ENGINES = ("native", "lammps")


def _kind_error(section: str, key: str, want: str, value: Any) -> InputError:
    return InputError(f"[{section}] '{key}' must be {want}, got {value!r} "
                      f"({type(value).__name__})")


def _finite(value: Any) -> bool:
    """True for an int or float (not a bool) that is a finite double (a huge int is not)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the range of a double (TOML allows any size)
        return False


def _coerce(section: str, key: str, kind: str, value: Any, base: Path) -> Any:
    if kind in ("float", "posfloat"):
        if not _finite(value):
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
        if "\0" in value:
            raise InputError(f"[{section}] '{key}' = {value!r} contains a NUL character (\\0), "
                             "which no file name may hold; write the path without it")
        p = Path(os.path.expanduser(value))
        # an input file is found next to the TOML file; an output folder is made relative to
        # the working directory, as every command-line tool does
        return p if (p.is_absolute() or kind == "outpath") else base / p
    if kind == "vector2":
        if (not isinstance(value, list) or len(value) != 2
                or not all(_finite(v) for v in value)):
            raise _kind_error(section, key, "a list of two finite numbers", value)
        return tuple(float(v) for v in value)
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
            if not all(_finite(v) for v in value):
                raise _kind_error(section, key, "increasing positive load factors (finite "
                                  "numbers)", value)
            fs = [float(v) for v in value]
            if any(b <= a for a, b in zip([0.0] + fs, fs, strict=False)):
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
        if name not in _KEYS and name != "boundary":
            raise InputError(f"unknown section [{name}]; allowed: "
                             + ", ".join(f"[{s}]" for s in _KEYS) + ", [[boundary]]")
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
    cfg.mesh = _mesh_config(values["mesh"], check_files)
    # -- material --
    mat = values["material"]
    mtype = _choice("material", "type", mat.get("type", "rve"), MATERIAL_TYPES)
    for key in mat:
        if key not in _MATERIAL_KEYS[mtype]:
            raise InputError(f"key '{key}' in [material] does not apply to type = {mtype!r}; "
                             f"allowed for it: " + ", ".join(sorted(_MATERIAL_KEYS[mtype])))
    cfg.material = MaterialConfig(**mat)
    _choice("material", "engine", cfg.material.engine, RVE_ENGINES)
    if mtype != "neo-hookean":
        _choice("material", "lattice", cfg.material.lattice, LATTICES)
        _check_potential(cfg.material.potential, base, check_files)
    # -- loading, solver, mpi, output --
    lo = values["loading"]
    if "mode" in lo:
        _choice("loading", "mode", lo["mode"], LOADING_MODES)
    cfg.loading = LoadingConfig(**lo)
    # -- boundary conditions (after [mesh] and [loading], which they refer to) --
    if "boundary" in data:
        cfg.boundaries = _parse_boundaries(data["boundary"], "[[boundary]]")
    if cfg.mesh.concurrent:
        _check_concurrent(cfg, values, "atomistic" in data, base, check_files)
    else:
        if "atomistic" in data:
            raise InputError(
                f"[atomistic] needs [mesh] generator = 'crack_disc' for now, got "
                f"{cfg.mesh.describe()}: the concurrent solver meshes its own domain, with "
                "mesh nodes on the lattice sites near the atoms, and takes one geometry so far "
                "(a disc around a crack tip). The cracked_plate quarter model cannot take "
                "atoms: its symmetry planes (u_x = 0 on 'left', u_y = 0 on the ligament) "
                "would cut the lattice, and mirrored atoms are not a crystal")
        _check_boundary_conditions(cfg, check_files)
    cfg.solver = SolverConfig(**values["solver"])
    if cfg.solver.degree not in (1, 2):
        raise InputError(f"[solver] 'degree' = {cfg.solver.degree} is not allowed; allowed "
                         "values: 1, 2")
    cfg.mpi = MPIConfig(**values["mpi"])
    check_rve_ranks(cfg)
    if cfg.mesh.concurrent and (cfg.material.engine != "native" or cfg.mpi.rve_ranks > 1):
        raise InputError("the concurrent solver (generator = 'crack_disc') relaxes its RVEs "
                         "natively on one rank each: leave out [material] engine and [mpi] "
                         "rve_ranks")
    out = values["output"]
    # relative to the working directory, never to the TOML file's folder
    out.setdefault("directory", Path("results") / (Path(source).stem if source else "."))
    cfg.output = OutputConfig(**out)
    return cfg


def _check_concurrent(cfg: Config, values: dict[str, dict[str, Any]], has_atoms: bool,
                      base: Path, check_files: bool) -> None:
    """The sections of a concurrent problem (``crack_disc``): what the solver can do."""
    gen = repr(cfg.mesh.generator)
    mat = cfg.material
    if mat.type == "neo-hookean":
        raise InputError(f"[material] type = 'neo-hookean' does not apply to generator = {gen}: "
                         "the concurrent solver's continuum is a crystal (its nodes sit on "
                         "lattice sites); use type = 'cauchy-born' or 'rve'")
    if mat.lattice != "fcc":
        raise InputError(f"[material] lattice = {mat.lattice!r} is not allowed with generator "
                         f"= {gen}; allowed values: 'fcc' (the concurrent crack is the fcc "
                         "slab, x = [100], y = [010], z = [001])")
    if cfg.loading.mode != "K":
        raise InputError(f"[loading] mode = {cfg.loading.mode!r} is not allowed with "
                         f"generator = {gen}; allowed values: 'K' (the K-field of the crystal "
                         "on the clamped outer layer)")
    if cfg.loading.value <= 0:
        raise InputError(f"[loading] 'value' = {cfg.loading.value!r} must be positive with "
                         f"generator = {gen} (K_I in MPa √m at load factor 1)")
    if cfg.boundaries is not None:
        raise InputError(f"[[boundary]] entries do not apply to generator = {gen}: its outer "
                         "layer is clamped to the K-field of [loading]; remove them")
    for key in values["solver"]:
        if key not in ("min_increment", "degree"):
            raise InputError(f"[solver] '{key}' does not apply to generator = {gen} (each K "
                             "is relaxed to a largest force of 1e-8 eV/Å); allowed: "
                             "'min_increment', 'degree' = 1")
    if values["solver"].get("degree", 1) != 1:
        raise InputError(f"[solver] 'degree' = {values['solver']['degree']} is not allowed "
                         f"with generator = {gen}; allowed values: 1 (P1, nodes on sites)")
    if "checkpoint" in values["output"]:
        raise InputError(f"[output] 'checkpoint' does not apply to generator = {gen}: the "
                         "concurrent solver writes no checkpoints yet")
    if not has_atoms:
        return
    at = values["atomistic"]
    if "radius" not in at:
        raise InputError("[atomistic] needs 'radius' (Å, the atomistic disc around the tip)")
    cfg.atomistic = AtomisticConfig(**at)
    _choice("atomistic", "scheme", cfg.atomistic.scheme, ATOMISTIC_SCHEMES)
    rve_r = cfg.atomistic.rve_radius
    if rve_r is not None:
        if mat.type != "rve":
            raise InputError("[atomistic] 'rve_radius' applies to [material] type = 'rve' "
                             f"only, got type = {mat.type!r}")
        if not 0 <= rve_r < cfg.mesh.radius:
            raise InputError(f"[atomistic] 'rve_radius' = {rve_r:g} Å must be in [0, {gen} "
                             f"radius {cfg.mesh.radius:g} Å): no cell would get the RVE")
    if not check_files and isinstance(mat.potential, str):
        return
    from atomistic.potentials import load_potential

    rc = float(load_potential(_resolve(mat.potential, base)).cutoff)
    hs = cfg.atomistic.handshake
    if hs is not None and hs < rc - 1e-12:
        raise InputError(f"[atomistic] 'handshake' = {hs:g} Å is narrower than the potential's "
                         f"cutoff {rc:.4g} Å: atoms would interact with continuum sites that "
                         "have no lattice positions; use handshake >= the cutoff")
    need = concurrent_reach(cfg.atomistic.radius, rc, cfg.atomistic.scheme, hs)
    if need >= cfg.mesh.radius:
        raise InputError(
            f"[atomistic] 'radius' = {cfg.atomistic.radius:g} Å leaves no room inside [mesh] "
            f"radius = {cfg.mesh.radius:g} Å: the atoms, the handshake band and its padding "
            f"and the clamped outer layer (one cutoff, {rc:.4g} Å, each) reach {need:.4g} Å; "
            f"use an atomistic radius below {cfg.atomistic.radius + cfg.mesh.radius - need:.4g} "
            "Å or a larger disc")


def check_rve_ranks(cfg: Config, name: str = "[mpi] 'rve_ranks'") -> None:
    """Refuse ranks per RVE below 1, or above 1 for an RVE that runs on one rank only.

    ``name`` says where the value came from (the key, or a command-line option that overrides
    it).

    Raises:
        InputError: naming ``name``, the value and the fix.
    """
    r = cfg.mpi.rve_ranks
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise InputError(f"{name} must be an integer >= 1 (worker ranks per RVE), got {r!r}")
    if r > 1 and cfg.material.engine != "lammps":
        raise InputError(f"{name} = {r} needs [material] engine = 'lammps' (the native RVE "
                         "runs on one rank)")


def concurrent_reach(atomistic_radius: float, cutoff: float, scheme: str,
                     handshake: float | None = None) -> float:
    """How far from the tip (Å) a crack_disc's atoms reach, with everything they need.

    The atomistic disc, the handshake band (``handshake``, default the cutoff), for a blended
    scheme its padding (one cutoff), one cutoff of free continuum and the clamped layer (one
    cutoff): the disc's radius must exceed this
    (:func:`coupling.qc.system.build_system` refuses it otherwise).
    """
    hs = cutoff if handshake is None else float(handshake)
    blended = scheme in ("bqce", "bgfc")
    return float(atomistic_radius) + hs + (cutoff if blended else 0.0) + 2.0 * cutoff


def _resolve(spec: str | dict, base: Path) -> str | dict:
    """A potential file named relative to ``base`` (when it is there)."""
    if isinstance(spec, str) and not Path(spec).is_absolute() and (base / spec).is_file():
        return os.fspath(base / spec)
    return spec


def _mesh_config(m: dict[str, Any], check_files: bool) -> MeshConfig:
    """The ``[mesh]`` section (its values already of the right kinds) as a MeshConfig."""
    if "file" in m:
        if "generator" in m:
            raise InputError("[mesh] give either 'generator' or 'file', not both")
        for key in m:
            if key != "file":
                raise InputError(f"key '{key}' in [mesh] does not apply to a mesh file "
                                 f"([mesh] file = ...): it takes 'file' only")
        if check_files and not Path(m["file"]).is_file():
            raise InputError(f"[mesh] 'file': mesh file '{m['file']}' not found")
        return MeshConfig(generator=None, file=m["file"])
    name = _choice("mesh", "generator", m.get("generator", "cracked_plate"), MESH_GENERATORS)
    gen = _ALL_GENERATORS[name]
    for key in m:
        if key != "generator" and key not in gen.parameters:
            raise InputError(f"key '{key}' in [mesh] does not apply to generator = {name!r}; "
                             "allowed for it: " + ", ".join(["generator", *gen.parameters]))
    params = gen.defaults()
    params.update({k: v for k, v in m.items() if k != "generator"})
    if gen.check is not None:
        try:
            gen.check(**params)
        except InputError as exc:
            raise InputError(f"[mesh] {exc}") from None
    return MeshConfig(generator=name, parameters=params)


def _parse_boundaries(entries: Any, where: str) -> list[BoundaryConfig]:
    """Validate ``[[boundary]]`` entries (``where`` names them in messages)."""
    if isinstance(entries, dict):
        raise InputError(f"{where} must be an array of tables: write each entry as "
                         "[[boundary]] (two brackets), not [boundary]")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{where} must be an array of tables ([[boundary]] entries), got "
                         f"{entries!r}")
    out = []
    for i, entry in enumerate(entries, start=1):
        label = f"{where} entry {i}" + (f" (name = {entry['name']!r})"
                                        if isinstance(entry.get("name"), str) else "")
        for key in entry:
            if key not in BOUNDARY_KEYS:
                raise InputError(f"unknown key '{key}' in {label}; allowed: "
                                 + ", ".join(BOUNDARY_KEYS))
        if "name" not in entry:
            raise InputError(f"{label} has no 'name': every [[boundary]] entry names a "
                             "boundary part of the mesh")
        try:
            v = {key: _coerce("boundary", key, BOUNDARY_KEYS[key], value, Path("."))
                 for key, value in entry.items()}
        except InputError as exc:  # "[boundary] 'u_x' must be ..." -> name the entry
            raise InputError(f"{label}: {str(exc).removeprefix('[boundary] ')}") from None
        has_u = "u_x" in v or "u_y" in v
        if not has_u and "traction" not in v:
            raise InputError(f"{label} gives no condition: give 'u_x', 'u_y' (Å) or "
                             "'traction'")
        if has_u and "traction" in v:
            raise InputError(f"{label} gives both displacements and a traction; write them "
                             "as two [[boundary]] entries")
        if "traction" in v:
            if v.get("loaded") is False:
                raise InputError(f"{label}: a traction always scales with the load; drop "
                                 "'loaded = false'")
            v["loaded"] = True
        out.append(BoundaryConfig(**v))
    return out


def check_boundary_names(boundaries: list[BoundaryConfig], available, mesh: str) -> None:
    """Check that every boundary condition names a boundary part the mesh has.

    Args:
        boundaries: the boundary conditions.
        available: the names of the mesh's boundary parts.
        mesh: the mesh source, for the message (e.g. ``[mesh] generator = 'rectangle'``).

    Raises:
        InputError: an unknown name; the message lists the available names.
    """
    available = tuple(available)
    for bc in boundaries:
        if bc.name not in available:
            raise InputError(f"[[boundary]] name = {bc.name!r} is not a boundary part of the "
                             f"mesh of {mesh}; available names: "
                             + (", ".join(repr(a) for a in available) or "none (name the "
                                "facet physical groups of the mesh file)"))


def _no_K_message(mesh: MeshConfig) -> str:
    calibrated = [n for n, g in GENERATORS.items() if g.stress_intensity is not None]
    calibrated += list(CONCURRENT_GENERATORS)
    return ("[loading] mode = 'K' needs [mesh] generator = "
            + " or ".join(repr(n) for n in calibrated)
            + f" (a geometry with a K calibration, e.g. the crack length for the handbook K); "
            f"{mesh.describe()} has none: use mode 'traction' or 'displacement'")


def _check_boundary_conditions(cfg: Config, check_files: bool) -> None:
    """The boundary conditions name parts of the mesh and fit the ``[loading]`` mode."""
    mode = cfg.loading.mode
    if mode == "K":
        if cfg.mesh.source.stress_intensity is None:
            raise InputError(_no_K_message(cfg.mesh))
        if cfg.boundaries is not None:
            raise InputError("[loading] mode = 'K' loads the default boundary conditions of "
                             f"{cfg.mesh.describe()} (its K calibration holds for those only); "
                             "remove the [[boundary]] entries, or use mode 'traction' or "
                             "'displacement' with them")
    bcs = cfg.boundary_conditions()
    if check_files or cfg.mesh.file is None:
        check_boundary_names(bcs, cfg.mesh.boundary_names(), cfg.mesh.describe())
    seen: set[tuple[str, str]] = set()
    for bc in bcs:
        keys = [k for k, val in (("u_x", bc.u_x), ("u_y", bc.u_y), ("traction", bc.traction))
                if val is not None]
        for key in keys:
            if (bc.name, key) in seen:
                raise InputError(f"[[boundary]] '{key}' on {bc.name!r} is given twice")
            seen.add((bc.name, key))
    loaded_u = [bc.name for bc in bcs if bc.loaded and bc.traction is None]
    tractions = [bc.name for bc in bcs if bc.traction is not None]
    if mode == "displacement":
        if tractions:
            raise InputError(f"[[boundary]] traction on {tractions[0]!r} needs [loading] mode "
                             "= 'traction' (mode = 'displacement' scales displacements)")
        if not loaded_u:
            raise InputError("[loading] mode = 'displacement' but no [[boundary]] entry "
                             "carries the load: give one 'loaded = true' with u_x or u_y")
    else:
        if loaded_u:
            raise InputError(f"[[boundary]] 'loaded = true' on {loaded_u[0]!r} needs "
                             f"[loading] mode = 'displacement' (mode = {mode!r} scales "
                             "tractions)")
        if not tractions:
            raise InputError(f"[loading] mode = {mode!r} but no [[boundary]] entry carries a "
                             "traction: give one a 'traction = [t_x, t_y]'")


def _check_potential(spec: str | dict | None, base: Path, check_files: bool = True) -> None:
    """Refuse a bad potential before any work starts.

    A bad potential table, a pair style without its coefficients or a missing potential file
    is an input error.
    """
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
    """Return the potential spec with a relative file name taken relative to the TOML file.

    A ``[material.potential]`` table is returned as it is.
    """
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
    except UnicodeDecodeError as exc:  # tomllib decodes the whole file before parsing it
        raise InputError(f"{p}: not valid TOML: the file is not UTF-8 text (byte "
                         f"{exc.start}: {exc.reason}); save it as UTF-8") from None
    except RecursionError:
        raise InputError(f"{p}: not valid TOML for a problem file: arrays or inline tables "
                         "nested too deeply (a problem file needs two levels at most)") from None
    except OSError as exc:
        raise InputError(f"cannot read problem file '{p}': {exc.strerror or exc}") from None
    return parse_config(data, base_dir=p.parent, source=p, check_files=check_files)
