"""Hostile input: whatever a file or a command line holds, archspec answers with located errors
(file:line:col) or a usage message and exit status 2, quickly, without a traceback, without
running anything the file names and without allocating what an absurd size asks for.

Property tests (hypothesis, derandomised so that every run checks the same examples) mutate the
zoo and build random small specs from the layer registry; every example must either resolve
and summarise or raise `SpecErrors` whose every error has a position. A crash found here is
fixed where it happens and kept as a case in tests/corpus/.
"""
from __future__ import annotations

import json
import random
import re
import resource
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from archspec.cli import app
from archspec.errors import SpecErrors
from archspec.layers.activation import PARAMS as ACTIVATIONS
from archspec.layers.base import kinds
from archspec.layers.init import PARAMETERISED
from archspec.spec.resolve import load_architecture, load_architecture_text
from helpers import ROOT, run_cli, time_limit

# A bound that only a hang or a real expansion would cross (expanding a billion-laughs
# file or a huge repeat takes minutes or all memory); speed itself lives in benchmarks/.
QUICK = 15.0

SEEDS = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in sorted([*(ROOT / "architectures").glob("*.yaml"),
                          *(ROOT / "tests" / "specs").glob("*.yaml")])}
KINDS = sorted(kinds())
HANG_S = 20            # an example this slow is a hang: fail it instead of blocking CI
SUMMARY_LAYERS = 60    # summarise (build the Flax model abstractly) graphs up to this size
EXAMPLES = 150


def check(text: str, filename: str = "hostile.yaml", input_shape=None) -> str:
    """Validate and summarise `text`: "ok", or "refused" with every error located."""
    from archspec.model.summary import summarize

    with time_limit(HANG_S):
        try:
            graph = load_architecture_text(text, filename, input_shape)
        except SpecErrors as exc:
            assert exc.errors, "SpecErrors without errors"
            lines = text.count("\n") + 2
            for e in exc.errors:
                assert e.pos is not None, f"error without a position: {e.render_plain()}"
                assert e.pos.file == filename, e.render_plain()
                assert 1 <= e.pos.line <= lines and e.pos.col >= 1, e.render_plain()
                assert e.message and e.render_plain()
            return "refused"
        if len(graph.layers) <= SUMMARY_LAYERS:
            summarize(graph)
        return "ok"


# --- (a) mutations of the zoo ----------------------------------------------------------------

EXPRESSIONS = [
    "${", "${}", "$", "$$x", "${1/0}", "${i}", "${x", "${maps * 4}", "${undefined}",
    "${'a' * 999999999}", "${2 ** 64}", "${(10 ** 60) ** 60}", "${2 ** 64 * 2 ** 64}", "${max()}",
    "${__import__('os').system('true')}", "${[1, 2]}", "${lambda: 1}", "${-'a'}",
    "${'a' < 1}", "${1e308 * 10}", "${int(1e400)}", "${ceil(1e400)}", "${(-8) ** 0.5}",
    "${round(1.5, 10 ** 9)}", "${" + "(" * 300 + "1" + ")" * 300 + "}", "${" + "-" * 3000 + "1}",
    "conv${i + 1}", "${i if i else}", "${1 if 2}", "${a.b}", "${x[0]}", "${{1: 2}}",
    "${min(1, 'a')}", "${abs(-3)}", "${1 // 0.0}", "${0 ** -1}", "${not}", "${\x00}",
]
SCALARS = [0, -1, 1, 2, 3, -(10 ** 12), 10 ** 12, 10 ** 30, 10 ** 99, 0.5, -0.5, 1.0, 1e308,
           float("inf"), float("-inf"), float("nan"), True, False, None, "", "3", "relu", "same",
           "valid", "max", "avg", "linear", "softmax", "int32", "input", "conv1", "_in", "a.b",
           "x" * 300, "é", [], {}, [1], [0, 0], [[1, 1], [1, 1]], [-1], [1, 2, 3, 4, 5],
           {"relu": None}, {"elu": {"beta": 2.0}}, {"constant": 1.0}, {"a": 1}]
SNIPPETS = [":", ": ", "[", "]", "{", "}", ",", "- ", "-", '"', "'", "&a ", "*a", "*undefined",
            "!!python/object/apply:os.system ['true'] ", "!!binary ", "!!set ", "---\n", "...\n",
            "|\n", ">", "%YAML 1.1\n", "? ", "#", "\t", "\x00", "\x1b", "\ufeff", "\u2028",
            "<<: ", "&a [*a]", "${", "$", "\\", "@", "`", "%", "  ", "\n", "\r\n", "!x "]


class Chooser:
    """Random choices through hypothesis (shrinkable) or a seeded `random.Random`."""

    def __init__(self, draw=None, rnd: random.Random | None = None):
        self.draw, self.rnd = draw, rnd

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi)) if self.draw else self.rnd.randint(lo, hi)

    def pick(self, seq):
        seq = list(seq)
        return self.draw(st.sampled_from(seq)) if self.draw else self.rnd.choice(seq)

    def text(self) -> str:
        if self.draw:
            return self.draw(st.text(max_size=12))
        return "".join(self.rnd.choice("ab_$.{}[]:- 0é\t") for _ in range(self.rnd.randint(0, 8)))


def value(c: Chooser):
    roll = c.int(0, 9)
    if roll < 5:
        return c.pick(SCALARS)
    if roll < 7:
        return c.pick(EXPRESSIONS)
    if roll < 8:
        return c.pick(KINDS)
    if roll < 9:
        return c.text()
    return [c.pick(SCALARS) for _ in range(c.int(0, 4))]


def slots(tree, out=None, depth=0):
    """Every (container, key) of a loaded YAML tree."""
    out = [] if out is None else out
    if depth > 40:
        return out
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) \
        if isinstance(tree, list) else ()
    for k, v in list(items):
        out.append((tree, k))
        slots(v, out, depth + 1)
    return out


def mutate_tree(tree, c: Chooser):
    places = slots(tree)
    if not places:
        return value(c)
    parent, key = places[c.int(0, len(places) - 1)]
    old = parent[key]
    op = c.pick(["drop", "rename", "replace", "swap_kind", "wrap", "expr", "duplicate", "negate",
                 "huge", "empty"])
    if op == "drop":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        new = c.pick([str(key)[:-1] or "x", str(key) + "s", str(key).upper(), c.pick(KINDS),
                      c.pick(["name", "inputs", "repeat", "layers", "heads", "blocks", "input",
                              "variables", "defaults", "from", "body", "paths", "params",
                              "shape", "dtype", "maps", "kernel", "units", "global"]),
                      c.text(), 5, True, None])
        parent.pop(key)
        parent[new] = old
    elif op == "swap_kind" and isinstance(old, dict) and len(old) == 1:
        (k, v), = old.items()
        parent[key] = {c.pick(KINDS): v}
    elif op == "swap_kind" and isinstance(old, str) and old in KINDS:
        parent[key] = c.pick(KINDS)
    elif op == "wrap":
        parent[key] = [old]
    elif op == "expr":
        parent[key] = c.pick(EXPRESSIONS)
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(key, old)
    elif op == "negate" and isinstance(old, (int, float)) and not isinstance(old, bool):
        parent[key] = -old
    elif op == "huge":
        parent[key] = c.pick([10 ** 6, 10 ** 9, 10 ** 12, 10 ** 18, 10 ** 40, "${10 ** 12}"])
    elif op == "empty":
        parent[key] = c.pick([None, [], {}, ""])
    else:
        parent[key] = value(c)
    return tree


def mutate_text(text: str, c: Chooser) -> str:
    lines = text.split("\n")
    n = c.int(0, len(lines) - 1)
    op = c.pick(["delete", "duplicate", "indent", "dedent", "insert", "truncate", "swap", "tab",
                 "join", "flow"])
    if op == "delete":
        del lines[n]
    elif op == "duplicate":
        lines.insert(n, lines[n])  # duplicate keys, repeated layers
    elif op == "indent":
        lines[n] = " " * c.int(1, 5) + lines[n]
    elif op == "dedent":
        lines[n] = lines[n].lstrip()
    elif op == "insert":
        col = c.int(0, len(lines[n]))
        lines[n] = lines[n][:col] + c.pick(SNIPPETS) + lines[n][col:]
    elif op == "truncate":
        return text[:c.int(0, len(text))]
    elif op == "swap":
        m = c.int(0, len(lines) - 1)
        lines[n], lines[m] = lines[m], lines[n]
    elif op == "tab":
        lines[n] = "\t" + lines[n].lstrip(" ")
    elif op == "join" and n + 1 < len(lines):
        lines[n:n + 2] = [lines[n] + " " + lines[n + 1].strip()]
    else:
        lines[n] = lines[n].replace(": ", ": [", 1)
    return "\n".join(lines)


def mutated(c: Chooser) -> tuple[str, str]:
    name = c.pick(SEEDS)
    text = SEEDS[name]
    for _ in range(c.int(1, 3)):
        if c.int(0, 2) == 0:
            text = mutate_text(text, c)
            continue
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError:
            text = mutate_text(text, c)
            continue
        tree = mutate_tree(tree, c)
        text = yaml.safe_dump(tree, sort_keys=False, default_flow_style=None, allow_unicode=True)
    return name, text


@st.composite
def zoo_mutations(draw):
    return mutated(Chooser(draw=draw))


@settings(max_examples=EXAMPLES, derandomize=True, deadline=5000, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(zoo_mutations())
def test_mutated_zoo_files_resolve_or_give_located_errors(case):
    name, text = case
    check(text, Path(name).name)


# --- (b) random small specs from the layer registry -----------------------------------------

OPTION_NAMES = sorted({*ACTIVATIONS, *PARAMETERISED, "beta", "a", "slope", "foo"})


def for_annotation(ann, depth=0):
    """Mostly valid, sometimes wrong values of a layer option's type."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is type(None):
        return st.none()
    if ann is bool:
        return st.booleans()
    if ann is int:
        return st.one_of(st.integers(1, 8), st.integers(-2, 12), st.sampled_from([0, 10 ** 9]))
    if ann is float:
        return st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 1.0, -1.0, 2.0, 1e-5]),
                         st.floats(allow_nan=True, allow_infinity=True))
    if ann is str:
        return st.sampled_from(["a", "", "relu", "x.y"])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of(*[for_annotation(a, depth) for a in args])
    if origin is list and depth < 3:
        return st.lists(for_annotation(args[0], depth + 1), max_size=4)
    if origin is dict and depth < 3:
        return st.dictionaries(st.sampled_from(OPTION_NAMES), for_annotation(args[1], depth + 1),
                               max_size=2)
    return st.sampled_from([None, 1, "x", [1], {}])


@st.composite
def layer_item(draw, names: list[str]):
    kind = draw(st.sampled_from(KINDS))
    model = kinds()[kind].Options
    opts = {}
    for fname, f in model.model_fields.items():
        key = f.alias or fname
        if key in ("name", "inputs"):
            continue
        if f.is_required() or draw(st.integers(0, 3)) == 0:
            opts[key] = draw(st.one_of(for_annotation(f.annotation),
                                       st.sampled_from(SCALARS))
                             if draw(st.integers(0, 9)) == 0 else for_annotation(f.annotation))
    merge = kinds()[kind].n_inputs is None
    if merge or draw(st.integers(0, 5)) == 0:
        many = merge and draw(st.integers(0, 9)) > 0
        opts["inputs"] = draw(st.lists(st.sampled_from(names), min_size=2 if many else 1,
                                       max_size=3 if many else 1))
    if draw(st.integers(0, 3)) == 0:
        opts["name"] = f"n{len(names)}"
        names.append(opts["name"])
    if draw(st.integers(0, 9)) == 0:
        opts["repeat"] = draw(st.sampled_from([0, 1, 2, 3, -1, "${1 + 1}"]))
    if not opts and draw(st.booleans()):
        return kind
    return {kind: opts}


@st.composite
def random_specs(draw):
    rank = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(1, 12), min_size=rank, max_size=rank))
    spec = {"name": "random", "input": {"shape": shape}}
    if draw(st.integers(0, 3)) == 0:
        spec["input"]["dtype"] = "int32"
    if draw(st.integers(0, 3)) == 0:
        spec["defaults"] = {"activation": draw(st.sampled_from(sorted(ACTIVATIONS))),
                            "bias": draw(st.booleans())}
    names = ["input"]
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            layers.append({"residual": {"body": [draw(layer_item(names))],
                                        "shortcut": draw(st.sampled_from(["auto", "projection",
                                                                          "identity"]))}})
        elif roll == 1:
            layers.append({"branches": [[draw(layer_item(names))], [],
                                        [draw(layer_item(names))]]})
        elif roll == 2:  # a block with a parameter, called with arguments and `inputs:`
            spec.setdefault("blocks", {"blk": {"params": {"m": 2},
                                               "layers": [draw(layer_item(["_in"]))]}})
            call = {"m": draw(st.sampled_from([1, 3, -1, "${m}", "x"]))}
            if draw(st.booleans()):
                call["inputs"] = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2))
            layers.append({"blk": call})
        else:
            layers.append(draw(layer_item(names)))
    spec["layers"] = layers
    if draw(st.integers(0, 4)) == 0:
        spec["heads"] = {"out": {"from": draw(st.sampled_from(names)),
                                 "output": draw(st.sampled_from(["softmax", "linear",
                                                                 "sigmoid", "softplus"]))}}
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=5000, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_specs())
def test_random_specs_resolve_and_summarise_or_give_located_errors(text):
    check(text)


def test_the_generators_reach_both_answers():
    """The property tests are only worth something if both answers occur."""
    rnd = random.Random(7)
    seen = {check(mutated(Chooser(rnd=rnd))[1]) for _ in range(40)}
    assert seen == {"ok", "refused"}, seen


# --- subprocess: the real command line on mutated files ----------------------------------------

def _mutated_files(tmp_path, n: int, seed: int) -> list[Path]:
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        name, text = mutated(Chooser(rnd=rnd))
        path = tmp_path / f"{k}_{Path(name).name}"
        path.write_text(text)
        out.append(path)
    return out


def test_validate_on_mutated_files_exits_0_or_2_without_traceback(tmp_path):
    files = _mutated_files(tmp_path, 12, seed=1)
    r = run_cli("validate", *files, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode in (0, 2), out
    assert "Traceback" not in out, out
    for f in files:
        assert str(f) in out, f"{f} not reported:\n{out}"


@pytest.mark.parametrize("seed", [2, 3])
def test_summary_on_mutated_files_exits_0_or_2_without_traceback(tmp_path, seed):
    (path,) = _mutated_files(tmp_path, 1, seed)
    r = run_cli("summary", path, "--input-shape", "32,32,3", timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode in (0, 2), out
    assert "Traceback" not in out, out


# --- safety -----------------------------------------------------------------------------------

TAGS = ["!!python/object/apply:os.system", "!!python/object/new:os.system",
        "!!python/name:os.system", "!!python/module:os",
        "!<tag:yaml.org,2002:python/object/apply:os.system>"]


@pytest.mark.parametrize("tag", TAGS)
def test_python_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"name: evil\ninput: {{shape: [8]}}\nlayers:\n"
                    f"  - dense: {tag} ['touch {marker}']\n")
    with pytest.raises(SpecErrors) as info:
        load_architecture(spec)
    (err,) = info.value.errors
    assert (err.pos.line, err.pos.col) == (4, 12) and "is not allowed" in err.message
    assert not marker.exists()


def test_python_tag_through_the_command_line_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n"
                    "input: {shape: [8]}\nlayers: [dense: 2]\n")
    r = run_cli("summary", spec, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert f"{spec}:1:7: error: YAML tag" in r.stderr
    assert not marker.exists()


def _timed_refusal(text: str, filename="hostile.yaml"):
    start = time.perf_counter()
    with time_limit(HANG_S), pytest.raises(SpecErrors) as info:
        load_architecture_text(text, filename)
    return info.value.errors, time.perf_counter() - start


def test_billion_laughs_is_refused_in_under_2_s():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")  # 10^10 nodes
    errors, seconds = _timed_refusal("\n".join(lines) + "\nname: x\n")
    assert seconds < QUICK, seconds
    assert "billion laughs" in errors[0].message and errors[0].pos.line == 6  # f: 10**6 nodes


def test_many_aliases_are_refused():
    text = "a: &a [1]\nb: [" + ", ".join(["*a"] * 500) + "]\n"
    errors, seconds = _timed_refusal(text)
    assert "more than 100 aliases" in errors[0].message and seconds < QUICK


@pytest.mark.parametrize("make", [
    lambda n: "layers: " + "[" * n + "]" * n,
    lambda n: "layers: " + "{a: " * n + "1" + "}" * n,
    lambda n: "layers:\n" + "".join("  " * (k + 1) + "-\n" for k in range(300)),
    lambda n: "layers: [" + "- " * n + "]",
], ids=["lists", "mappings", "block", "dashes"])
def test_deep_nesting_is_refused_cleanly(make):
    errors, seconds = _timed_refusal(make(10_000))
    (err,) = errors
    assert seconds < QUICK, seconds
    assert "nests too deeply" in err.message or "YAML syntax error" in err.message, err
    assert err.pos.line >= 1 and err.expected and err.found


def test_deeply_nested_expression_is_a_located_error():
    text = 'name: x\ninput: {shape: [8]}\nlayers:\n  - dense: "${' + "(" * 5000 + "1" \
           + ")" * 5000 + '}"\n'
    errors, _ = _timed_refusal(text)
    assert (errors[0].pos.line, errors[0].pos.col) == (4, 12)


def test_file_above_the_size_limit_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write("name: big\ninput: {shape: [8]}\nlayers:\n")
        line = "  - dense: {units: 10}  # " + "x" * 1000 + "\n"
        for _ in range(50 * 2**20 // len(line)):  # 50 MB
            f.write(line)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        load_architecture(big)
    assert time.perf_counter() - start < QUICK
    (err,) = info.value.errors
    assert str(err.pos) == f"{big}:1:1" and "larger than 1 MiB" in err.message
    assert err.hint and err.expected and err.found
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    r = run_cli("validate", big, timeout=120)
    assert r.returncode == 2 and "larger than 1 MiB" in r.stderr and "Traceback" not in r.stderr


def test_endless_file_is_refused(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with time_limit(HANG_S), pytest.raises(SpecErrors) as info:
        load_architecture("/dev/zero")
    assert info.value.errors[0].pos is not None


def test_a_million_character_line_is_handled():
    long_text = "x" * 10**6
    ok = f"name: long\ndescription: {long_text}\ninput: {{shape: [8]}}\nlayers: [dense: 2]\n"
    start = time.perf_counter()
    with time_limit(HANG_S):
        graph = load_architecture_text(ok, "long.yaml")
    assert graph.name == "long" and time.perf_counter() - start < QUICK
    # a million-character flow list: too many values, refused where the limit is crossed
    items = ",".join(["1"] * (10**6 // 2))
    errors, seconds = _timed_refusal(f"name: wide\ninput: {{shape: [8]}}\nlayers: [{items}]\n")
    assert seconds < QUICK and errors[0].pos.line == 3 and "values" in errors[0].message
    # a million-character expression
    errors, seconds = _timed_refusal("name: x\ninput: {shape: [8]}\nlayers:\n  - dense: '${"
                                     + "1+" * (5 * 10**5) + "1}'\n")
    assert seconds < QUICK and (errors[0].pos.line, errors[0].pos.col) == (4, 12)


def test_huge_integer_literal_is_a_located_error():
    errors, _ = _timed_refusal("name: x\ninput: {shape: [8]}\nlayers:\n  - dense: 1"
                               + "0" * 5000 + "\n")
    assert (errors[0].pos.line, errors[0].pos.col) == (4, 12) and "too large" in errors[0].message


ABSURD = {
    "dense_1e12": ("input: {shape: [28, 28, 1]}\nlayers:\n  - flatten\n"
                   "  - dense: {units: 1000000000000}\n", "parameters", 5),
    "conv_1e6_maps": ("input: {shape: [224, 224, 3]}\nlayers:\n"
                      "  - conv: {maps: 1000000, kernel: 3}\n", "values", 4),
    "repeat_1e6": ("input: {shape: [8]}\nlayers:\n  - dense: {units: 8, repeat: 1000000}\n",
                   "too deep", 4),
    "nested_repeats": ("input: {shape: [8]}\nblocks:\n  deep:\n    layers:\n"
                       "      - dense: {units: 8, repeat: 10000}\n"
                       "layers:\n  - deep: {repeat: 10000}\n", "more than", 6),
    "input_1e15": ("input: {shape: [100000, 100000, 100000]}\nlayers:\n  - flatten\n",
                   "values", 2),
    "expression_units": ("variables: {w: '${10 ** 15}'}\ninput: {shape: [8]}\nlayers:\n"
                         "  - dense: $w\n", "parameters", 5),
    "embedding": ("input: {shape: [16], dtype: int32}\nlayers:\n"
                  "  - embedding: {vocabulary: 1000000000, dimension: 1000000}\n", "parameters", 4),
    "beyond_float": ("input: {shape: [8]}\nlayers:\n  - dense: '${(10 ** 50) ** 8}'\n",
                     "parameters", 4),
}
_ABSURD_SCRIPT = """
import json, resource, sys, time
from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture_text
load_architecture_text("name: warm\\ninput: {shape: [8]}\\nlayers: [dense: 2]\\n")
out = {}
for name, text in json.loads(sys.stdin.read()).items():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        load_architecture_text(text, name + ".yaml")
        out[name] = {"refused": False}
        continue
    except SpecErrors as exc:
        e = exc.errors[0]
        out[name] = {"refused": True, "n": len(exc.errors), "message": e.message,
                     "line": e.pos.line if e.pos else None, "hint": e.hint,
                     "seconds": time.perf_counter() - start,
                     "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def absurd_results():
    """All absurd sizes in one fresh interpreter, so that its peak memory means something."""
    texts = {k: "name: absurd\n" + text for k, (text, _, _) in ABSURD.items()}
    proc = subprocess.run([sys.executable, "-c", _ABSURD_SCRIPT], input=json.dumps(texts),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ABSURD)
def test_absurd_sizes_are_refused_quickly_before_allocating(absurd_results, name):
    _, needle, line = ABSURD[name]
    r = absurd_results[name]
    assert r["refused"], f"{name} was accepted"
    assert needle in r["message"], r
    assert r["line"] == line, r
    assert r["seconds"] < QUICK, r
    assert r["rss_kib"] < 100_000, f"{name}: peak memory grew by {r['rss_kib']} KiB"
    if needle in ("parameters", "values"):  # the estimate, in bytes
        assert re.search(r"~[\d.,]+ [KMGTP]iB|bytes", r["message"]), r["message"]


# --- the command line on bad arguments --------------------------------------------------------

def _leaves(group, prefix=()):
    """Every command, subcommands of groups included ("data show")."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _leaves(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd


def _hints(typer_app, prefix=()):
    for c in typer_app.registered_commands:
        name = typer.main.get_command_name(c.name or c.callback.__name__)
        yield " ".join((*prefix, name)), typing.get_type_hints(c.callback)
    for g in typer_app.registered_groups:
        yield from _hints(g.typer_instance, (*prefix, g.name))


COMMANDS = dict(_leaves(typer.main.get_command(app)))
HINTS = dict(_hints(app))


def _py_type(command: str, param) -> type:
    """The Python type of a command's parameter: `Optional[int]` -> int, `List[Path]` -> Path."""
    ann = HINTS[command].get(param.name)
    while typing.get_origin(ann) is not None:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if not args:
            break
        ann = args[0]
    return ann
GOOD_SPEC = "name: tiny\ninput: {shape: [8, 8, 1]}\nlayers:\n  - flatten\n  - dense: 2\n"


def test_every_registered_command_is_covered():
    assert set(COMMANDS) == set(HINTS) and len(COMMANDS) >= 10


def _placeholders(cmd, tmp_path) -> list[str]:
    """Values for every required argument: an existing file, so other checks come first."""
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_SPEC)
    out = []
    for p in cmd.params:
        if p.param_type_name == "argument" and p.required:
            target = tmp_path if "dir" in p.name or p.name == "runs" else good
            out.append(str(target))
    return out


def _options_of(name, *types):
    return [p for p in COMMANDS[name].params if p.param_type_name == "option"
            and _py_type(name, p) in types]


def _cases():
    for name, cmd in COMMANDS.items():
        yield pytest.param(name, "unknown-option", id=f"{name}-unknown-option")
        if any(p.param_type_name == "argument" and p.required for p in cmd.params):
            yield pytest.param(name, "missing-argument", id=f"{name}-missing-argument")
        for p in _options_of(name, int, float):
            yield pytest.param(name, f"wrong-type:{p.opts[0]}", id=f"{name}-wrong-type{p.opts[0]}")
        if any(p.param_type_name == "argument" and _py_type(name, p) is Path
               for p in cmd.params):
            yield pytest.param(name, "nonexistent-file", id=f"{name}-nonexistent-file")


def _invoke(args: list[str]):
    runner = CliRunner()
    env = {"NO_COLOR": "1", "COLUMNS": "120", "TERMINAL_WIDTH": "120"}
    with time_limit(60):
        return runner.invoke(app, args, env=env)


@pytest.mark.parametrize("name,case", list(_cases()))
def test_bad_arguments_exit_2_with_a_message(name, case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a command would write stays here
    cmd = COMMANDS[name]
    args = _placeholders(cmd, tmp_path)
    words = name.split()
    if case == "unknown-option":
        args, needle = [*words, *args, "--no-such-option"], "No such option"
    elif case == "missing-argument":
        args, needle = words, "Missing argument"
    elif case.startswith("wrong-type:"):
        args, needle = [*words, *args, case.split(":", 1)[1], "lots"], "Invalid value"
    else:
        missing = str(tmp_path / "no" / "such.yaml")
        args = [*words, *[missing if a.endswith("good.yaml") or a == str(tmp_path) else a
                          for a in args]] if args else [*words, missing]
        needle = "does not exist|not found"
    result = _invoke(args)
    out = result.output
    assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{out}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{args}: {result.exception!r}"
    assert "Traceback" not in out
    assert re.search(needle, re.sub(r"[\s│]+", " ", out)), f"{args}: no {needle!r} in\n{out}"


# --- regressions the property tests found (accepted inputs; refused ones are in tests/corpus) ----

@pytest.mark.parametrize("text", [
    # an automatic name that a layer or an input already has: skipped, not overwritten
    "name: x\ninput: {shape: [8]}\nlayers:\n  - dense: {units: 4, name: dense2}\n  - dense: 3\n"
    "  - dense: 2\n",
    "name: x\ninputs: {dense1: {shape: [8]}}\nlayers:\n  - dense: {units: 3, inputs: dense1}\n"
    "  - dense: 2\n",
    # every layer left out by `repeat: 0`: a model of its input alone
    "name: x\ninput: {shape: [8]}\nlayers:\n  - dense: {units: 4, repeat: 0}\n",
    # token ids may be flattened, reshaped and concatenated before an embedding
    "name: x\ninput: {shape: [2, 4], dtype: int32}\nlayers:\n  - flatten: {name: a}\n"
    "  - reshape: {shape: [4, 2], inputs: input}\n  - flatten: {name: b}\n"
    "  - concat: {inputs: [a, b]}\n  - embedding: {vocabulary: 10, dimension: 3}\n",
], ids=["auto-name-taken", "auto-name-is-an-input", "all-repeat-0", "token-reshapes"])
def test_found_crashes_now_build(text):
    assert check(text) == "ok"


def test_auto_names_skip_names_in_use():
    graph = load_architecture_text("name: x\ninput: {shape: [8]}\nlayers:\n"
                                   "  - dense: {units: 4, name: dense2}\n  - dense: 3\n"
                                   "  - dense: 2\n")
    assert list(graph.nodes) == ["input", "dense2", "dense1", "dense3"]


def test_schema_into_a_missing_folder_is_a_usage_error(tmp_path):
    result = _invoke(["schema", "-o", str(tmp_path / "no" / "schema.json")])
    assert result.exit_code == 2 and "cannot write" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("array,args,needle", [
    ((0, 3), [], "has shape (0, 3, 1)"),
    ((8, 8), ["--stride", "0"], "must be positive"),
], ids=["empty-array", "stride-0"])
def test_pool_command_refuses_empty_pictures_and_zero_strides(tmp_path, monkeypatch, array,
                                                              args, needle):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "a.npy", np.ones(array, np.float32))
    result = _invoke(["pool", str(tmp_path / "a.npy"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and not (tmp_path / "pooling.png").exists()


@pytest.mark.parametrize("args", [["--batch", str(10**11)], ["--matmul-size", str(10**8)]],
                         ids=["batch", "matmul"])
def test_bench_refuses_absurd_sizes_before_allocating(tmp_path, monkeypatch, args):
    if "bench" not in COMMANDS:
        pytest.skip("no bench command")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD_SPEC)
    start = time.perf_counter()
    result = _invoke(["bench", str(spec), *args])
    assert result.exit_code == 2, result.output
    assert time.perf_counter() - start < QUICK and "at most" in result.output, result.output
