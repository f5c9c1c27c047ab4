"""What an experiment must reach: `expect: {test.accuracy: ">= 0.985", time_s: "<= 120"}`.

A name is `time_s` (the run's training time in seconds: its final attempt's steps,
compilation included, the test evaluation not) or `<split>.<metric>` with split train
(the last epoch), val (the last validation) or test (the test record), and metric

    loss             the total loss the run minimises (weighted over the heads)
    accuracy         the accuracy of the first head, in `heads:` order, that records one
    loss_<head>      one head's loss
    accuracy_<head>  one head's accuracy (classification heads)
    mean_iou         the mean IoU of the first per-pixel head (segmentation; val, test)
    mean_iou_<head>  one per-pixel head's mean IoU

A bound is `>= x`, `<= x`, `> x` or `< x`; accuracies and IoUs are fractions (0.985, not 98.5).
Names and bounds are checked with the file's lines when the experiment loads
(`check_expect`), head names once the architecture is resolved (`check_expect_heads`).
A finished run is judged from its records (`facts_of_run`, `facts_of_result`) by `judge`."""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from archspec.errors import ErrorCollector, SpecError, describe, did_you_mean

SPLITS = ("train", "val", "test")
METRICS = ("loss", "accuracy", "mean_iou")
TIME = "time_s"
NAMES = tuple(f"{s}.{m}" for s in SPLITS for m in METRICS
              if (s, m) != ("train", "mean_iou")) + (TIME,)  # IoU: val and test only
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
EXAMPLE = '">= 0.985"'
_BOUND = re.compile(r"\s*(>=|<=|>|<)\s*(\S+)\s*")
_NAME = re.compile(r"(train|val|test)\.(loss|accuracy|mean_iou)(?:_(.+))?")

# The JSON Schema of `expect:` (editors complete the names and check the bounds' form).
SCHEMA = {
    "propertyNames": {"pattern": r"^((train|val|test)\.(loss|accuracy|mean_iou)(_.+)?|time_s|"
                                 r"train|val|test)$"},
    "additionalProperties": {"anyOf": [
        {"type": "string", "pattern": r"^\s*(>=|<=|>|<)\s*\S+\s*$"},
        {"type": "object", "additionalProperties": {"type": "string"}}]},
    "examples": [{"test.accuracy": ">= 0.985", "test.loss": "<= 0.08", "time_s": "<= 120"}],
}


@dataclass(frozen=True)
class Bound:
    op: str
    value: float

    def holds(self, observed: float) -> bool:
        return OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def parse_bound(text) -> Bound:
    """`">= 0.985"` -> Bound(">=", 0.985); ValueError (saying what is wrong) otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a comparison in quotes, like {EXAMPLE}")
    m = _BOUND.fullmatch(text)
    if not m:
        raise ValueError(f"a comparison: >=, <=, > or < and a number, like {EXAMPLE}")
    try:
        value = float(m.group(2))
    except ValueError:
        raise ValueError(f"a number after {m.group(1)}, like {EXAMPLE}") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return Bound(m.group(1), value)


def flat(expect) -> dict:
    """`{test: {accuracy: ...}}` (what `--set expect.test.accuracy=...` writes) as
    `{test.accuracy: ...}`; flat entries are kept as they are."""
    if not isinstance(expect, dict):
        return expect
    out = {}
    for key, value in expect.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def entries(node) -> list[tuple[str, object, object, object]]:
    """(name, bound text, position of the name, position of the bound) of an `expect:`
    mapping as loaded (nested entries flattened, each with its own positions)."""
    out = []
    for key, value in node.items():
        kpos, vpos = node.key_pos.get(key), node.val_pos.get(key)
        if isinstance(value, dict) and hasattr(value, "key_pos"):
            out += [(f"{key}.{k}", v, value.key_pos.get(k), value.val_pos.get(k))
                    for k, v in value.items()]
        else:
            out.append((str(key), value, kpos, vpos))
    return out


def name_problem(name: str, eval_splits=None, dropped_by: str | None = None
                 ) -> tuple[str, str, str | None] | None:
    """(message, expected, hint) when `name` is no metric a run of this experiment records
    (`eval_splits` None: any split may be measured; `dropped_by`: the --set flag that gave
    eval_splits)."""
    if name == TIME:
        return None
    m = _NAME.fullmatch(name)
    if not m:
        return (f"unknown expectation '{name}'", "one of: " + ", ".join(NAMES) +
                " (or loss_<head>, accuracy_<head>, mean_iou_<head> after a split)",
                did_you_mean(name, NAMES))
    split = m.group(1)
    if eval_splits is not None and split != "train" and split not in eval_splits:
        return (f"'{name}' is never measured: eval_splits has no {split}" +
                (f" ({dropped_by})" if dropped_by else ""),
                "a split in eval_splits: " + ", ".join(["train", *eval_splits]),
                f"add {split} to eval_splits, or remove the expectation" +
                (" (--set 'expect={}' drops them all)" if dropped_by else ""))
    return None


def check_expect(node, errors: ErrorCollector, eval_splits=("val", "test"),
                 eval_splits_pos=None) -> None:
    """Add one located error per bad name or bound of a loaded `expect:` mapping. A split
    missing from `eval_splits` is an error, whether the file or a --set flag leaves it out:
    the run could never be judged on it."""
    if not hasattr(node, "key_pos"):
        return  # not a mapping: the experiment's model reports it
    flag = eval_splits_pos.file if eval_splits_pos is not None and \
        eval_splits_pos.on_command_line else None
    seen = {}
    for name, text, kpos, vpos in entries(node):
        if name in seen:  # `test.accuracy:` and `test: {accuracy:}`: one would be ignored
            errors.add(f"'{name}' is bounded twice", kpos, "expect",
                       expected="one bound per metric", found=f"a second bound for '{name}'",
                       hint=f"the first is at {seen[name]}; keep one")
            continue
        seen[name] = kpos
        problem = name_problem(name, eval_splits, flag)
        if problem:
            message, expected, hint = problem
            errors.add(message, kpos, "expect", expected=expected, found=repr(name), hint=hint)
            continue
        try:
            bound = parse_bound(text)
        except ValueError as exc:
            errors.add(f"bad expectation for '{name}'", vpos, "expect", expected=str(exc),
                       found=describe(text), hint=_bound_hint(text))
            continue
        if (".accuracy" in name or ".mean_iou" in name) and bound.value > 1:
            errors.add(f"'{name}' is a fraction, never above 1", vpos, "expect",
                       expected="a bound between 0 and 1", found=str(bound),
                       hint=f"write \"{bound.op} {bound.value / 100:g}\" for {bound.value:g}%"
                       if bound.value <= 100 else None)
        elif never_met(name, bound):
            errors.add(f"'{name}' can never be {bound}", vpos, "expect",
                       expected=f"a bound a run can meet ({_RANGE[_scale(name)]})",
                       found=str(bound), hint="a run judged on it would always fail")


_RANGE = {"fraction": "accuracies and IoUs lie between 0 and 1",
          "nonnegative": "losses and times are 0 or more"}


def _scale(name: str) -> str:
    return "fraction" if (".accuracy" in name or ".mean_iou" in name) else "nonnegative"


def never_met(name: str, bound: Bound) -> bool:
    """Whether no run can meet `bound`: a fraction above 1 or below 0, a loss or time below
    0 (or at 0 for `<`)."""
    lo, hi = (0.0, 1.0) if _scale(name) == "fraction" else (0.0, math.inf)
    return not {">=": bound.value <= hi, ">": bound.value < hi,
                "<=": bound.value >= lo, "<": bound.value > lo}[bound.op]


def _bound_hint(text) -> str | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return f'say which way: ">= {text}" or "<= {text}" (in quotes)'
    if not isinstance(text, str):
        return None
    if text.strip().startswith(("=>", "=<", "==", "=")):
        return "write >=, <=, > or < (the < or > comes first)"
    if "%" in text:
        return "accuracies are fractions: write 0.985 for 98.5%"
    if re.search(r"\d\s*[a-z]+\s*$", text):
        return "write the number alone: time_s is in seconds, the metrics have no unit"
    return None


def check_expect_heads(expect: dict, graph, losses: dict, node=None) -> None:
    """Refuse a per-head name for a head the architecture lacks, and an accuracy where no
    head records one (regression), at the line of the name."""
    positions = {n: kpos for n, _, kpos, _ in entries(node)} if hasattr(node, "key_pos") else {}
    classifiers = classifier_heads(graph, losses)
    segmenters = [n for n in classifiers if len(graph.heads[n].shape or ()) > 1]
    errors = []
    for name in expect:
        m = _NAME.fullmatch(name)
        if not m:
            continue
        metric, head = m.group(2), m.group(3)
        if head is not None and head not in graph.heads:
            names = [f"{m.group(1)}.{metric}_{h}" for h in graph.heads]
            errors.append(SpecError(
                f"'{name}' names unknown head '{head}'", positions.get(name), "expect",
                expected="one of: " + ", ".join(names), found=repr(name),
                hint=did_you_mean(name, names)))
        elif metric == "accuracy" and (head is None and not classifiers or
                                       head is not None and head not in classifiers):
            why = (f"head '{head}' is not a classifier (its loss is mse)" if head else
                   "no head is a classifier (every loss is mse)")
            errors.append(SpecError(
                f"'{name}' is never recorded: {why}",
                positions.get(name), "expect", expected=f"{m.group(1)}.loss",
                found=repr(name), hint="bound the loss of a regression head"))
        elif metric == "mean_iou" and (head is None and not segmenters or
                                       head is not None and head not in segmenters):
            why = (f"head '{head}' has no class map per position" if head else
                   "no head classifies every position of a map (segmentation)")
            errors.append(SpecError(
                f"'{name}' is never recorded: {why}", positions.get(name), "expect",
                expected=f"{m.group(1)}.accuracy", found=repr(name),
                hint="mean IoU is measured for heads with a class map per position"))
        elif metric == "mean_iou" and m.group(1) == "train":
            errors.append(SpecError(
                f"'{name}' is never recorded: mean IoU is measured on val and test",
                positions.get(name), "expect", expected="val.mean_iou or test.mean_iou",
                found=repr(name)))
    if errors:
        from archspec.errors import SpecErrors
        raise SpecErrors(errors)


def classifier_heads(graph, losses: dict) -> list[str]:
    """The heads that record an accuracy: every head whose loss is not mse."""
    from archspec.engine.losses import DEFAULT_FOR_OUTPUT

    kinds = {name: _kind(losses.get(name)) or DEFAULT_FOR_OUTPUT[h.output]
             for name, h in graph.heads.items()}
    return [n for n, k in kinds.items() if k != "mse"]


def _kind(spec):
    return spec if isinstance(spec, str) else getattr(spec, "kind", None)


# ---------------------------------------------------------------- judging a finished run

@dataclass
class Facts:
    """What a finished run measured: the last record of each split (keys as metrics.jsonl
    writes them: loss, loss_<head>, accuracy_<head>), its training seconds, its heads."""

    splits: dict = field(default_factory=dict)   # split -> record
    seconds: float | None = None
    heads: list = field(default_factory=list)    # head names in `heads:` order

    def value(self, name: str):
        if name == TIME:
            return self.seconds
        split, _, metric = name.partition(".")
        record = self.splits.get(split) or {}
        if metric in ("accuracy", "mean_iou"):
            ordered = [f"{metric}_{h}" for h in self.heads] + sorted(record)
            return next((record[k] for k in ordered if k.startswith(f"{metric}_")
                         and k in record), None)
        return record.get(metric)


@dataclass(frozen=True)
class Outcome:
    name: str
    expected: str     # "<= 0.08"
    observed: float | None  # None: the run recorded no such value
    met: bool

    def describe(self) -> str:
        seen = "not recorded" if self.observed is None else f"{self.observed:.4g}"
        return f"{self.name} {seen}, expected {self.expected}"

    def to_dict(self) -> dict:
        return {"name": self.name, "expected": self.expected, "observed": self.observed,
                "met": self.met}


def judge(expect: dict, facts: Facts) -> list[Outcome]:
    """Each expectation met or missed by what the run measured."""
    out = []
    for name, text in flat(expect or {}).items():
        bound = parse_bound(text)
        value = facts.value(name)
        seen = float(value) if isinstance(value, (int, float)) else None
        met = seen is not None and math.isfinite(seen) and bound.holds(seen)
        out.append(Outcome(name, str(bound), seen, met))
    return out


def facts_of_records(records: list[dict], heads=()) -> Facts:
    """The facts in metrics.jsonl's records: the final attempt's last train and val
    records, the test record, the summary's seconds."""
    facts = Facts(heads=list(heads))
    last = max((r.get("attempt", 0) for r in records if r.get("split") == "summary"), default=0)
    for r in records:
        split = r.get("split")
        if r.get("attempt", last) != last and split in ("train", "summary"):
            continue
        if split in SPLITS:
            facts.splits[split] = r
        elif split == "summary" and isinstance(r.get("seconds"), (int, float)):
            facts.seconds = float(r["seconds"])
    return facts


def facts_of_run(run_dir) -> Facts:
    """The facts a run folder holds (metrics.jsonl, the heads of architecture.yaml)."""
    from archspec.runs.records import read_metrics

    return facts_of_records(read_metrics(Path(run_dir)), _heads_of(Path(run_dir)))


def facts_of_result(result, setup) -> Facts:
    """The facts of a `fit` result as it returns (the same values as its run folder; the
    heads from the run's own graph, not re-read from architecture.yaml)."""
    from archspec.runs.records import read_metrics

    facts = facts_of_records(read_metrics(Path(result.run_dir)), setup.graph.heads)
    if facts.seconds is None:
        facts.seconds = result.seconds
    return facts


def judge_run(run_dir) -> list[Outcome]:
    """A run folder judged against the `expect:` of the experiment it ran (config.yaml)."""
    import yaml

    from archspec.errors import ArchspecError
    from archspec.spec.yaml_file import read_yaml_text

    try:
        config = yaml.safe_load(read_yaml_text(Path(run_dir) / "config.yaml")) or {}
    except (ArchspecError, yaml.YAMLError):
        config = {}
    expect = config.get("expect") if isinstance(config, dict) else None
    return judge(expect or {}, facts_of_run(run_dir))


def _heads_of(run_dir: Path) -> list:
    import yaml

    from archspec.errors import ArchspecError
    from archspec.spec.yaml_file import read_yaml_text

    try:
        arch = yaml.safe_load(read_yaml_text(run_dir / "architecture.yaml"))
    except (ArchspecError, yaml.YAMLError):
        return []
    heads = arch.get("heads") if isinstance(arch, dict) else None
    return list(heads) if isinstance(heads, dict) else ["output"]
