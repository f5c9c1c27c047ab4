"""Experiment configs: what to train, on what data, how. Loaded with the same located
errors as architectures; `--set key.path=value` overrides are validated like the file."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import ConfigDict, AfterValidator, Field, model_validator

from archspec.data import DataConfig
from archspec.errors import ErrorCollector, Pos, SpecErrors, parses_as_float
from archspec.spec.locate import validate
from archspec.spec.schema import Strict
from archspec.spec.yaml_file import read_yaml_text
from archspec.spec.yaml_loader import YMap, load_yaml_file, load_yaml_text
from archspec.experiment import expect as E
from archspec.engine.augment import AugmentStep
from archspec.engine.losses import LossKind

SEED_MAX = 2**63 - 1  # seeds become int64 PRNG keys


class LossSpec(Strict):
    kind: LossKind
    weight: float | None = Field(None, ge=0, description="default: the head's loss_weight")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="categorical_crossentropy: "
                                   "train towards (1 - s) on the class and s spread evenly")


class Schedule(Strict):
    name: Literal["constant", "step", "cosine", "linear", "one_cycle"] = "constant"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 before the schedule")
    boundaries: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="step: drop points (steps)")
    factor: float = Field(0.1, gt=0, description="step: multiply the rate by this at each boundary")
    final_lr: float = Field(0.0, ge=0, description="cosine/linear: the rate at the last step")
    pct_start: float = Field(0.3, gt=0, lt=1, description="one_cycle: the share of the steps "
                             "spent rising to the peak rate `lr`")
    div_factor: float = Field(25.0, ge=1, description="one_cycle: the rate starts at lr / "
                              "div_factor")
    final_div_factor: float = Field(1e4, ge=1, description="one_cycle: the rate ends at "
                                    "lr / (div_factor × final_div_factor)")

    @model_validator(mode="after")
    def _one_cycle_warms_up_itself(self):
        if self.name == "one_cycle" and self.warmup_steps:
            raise ValueError("one_cycle rises to its peak by itself (pct_start): remove "
                             "warmup_steps")
        return self


DecayGroup = Literal["bias", "norm", "slope"]
DECAY_GROUPS = get_args(DecayGroup)


def _distinct(groups: list[str]) -> list[str]:
    repeated = sorted({g for g in groups if groups.count(g) > 1})
    if repeated:
        raise ValueError(f"each group once; {', '.join(repeated)} is listed more than once")
    return groups


class LayerGroup(Strict):
    layers: list[str] = Field(min_length=1, description="layer globs (a block's name covers "
                              "its layers)")
    lr_scale: float = Field(gt=0, description="the group's rate: the schedule's times this")


class Optimizer(Strict):
    name: Literal["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0, description="learning rate (the peak, with a schedule)")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum/nesterov: the decay of the "
                                                         "velocity")
    weight_decay: float = Field(0.0, ge=0, description="decoupled for adamw, added to the "
                                                       "gradient otherwise")
    weight_decay_exclude: Annotated[list[DecayGroup], AfterValidator(_distinct)] = Field(
        default_factory=list, max_length=len(DECAY_GROUPS),
        json_schema_extra={"uniqueItems": True}, description="parameters kept out "
        "of weight decay (default: none, every parameter decays): bias (the biases of layers "
        "with weights), norm (the scale and offset of batchnorm and layernorm, the factors of "
        "`scale` layers), slope (prelu slopes)")
    clip_norm: float | None = Field(None, gt=0, description="clip gradients to this global norm")
    accumulate: int = Field(1, ge=1, description="average the gradients of this many batches "
                                                 "before each update (effective batch = "
                                                 "accumulate × batch_size)")
    schedule: Schedule = Field(default_factory=Schedule)
    groups: list[LayerGroup] = Field(default_factory=list, description="layers trained at a "
                                     "scaled rate, e.g. [{layers: [stage4], lr_scale: 0.1}]; "
                                     "the first group naming a layer sets its rate")


class Ema(Strict):
    decay: float = Field(gt=0, lt=1, description="the share of the average kept at each step "
                         "(0.999: it spans about 1,000 steps)")
    warmup: bool = Field(True, description="use min(decay, (1 + t) / (10 + t)) at step t, "
                         "so early on the average follows the weights")


class Init(Strict):
    """`init:` — start a new run from a tensor file's weights (archspec/weights/load.py)."""

    model_config = ConfigDict(serialize_by_alias=True)  # `from:` in a run's config.yaml

    from_: str = Field(alias="from", min_length=1,
                       description="the tensor file: .safetensors, .npz, or a PyTorch state "
                       "dict (.pt/.pth, read without unpickling code); relative paths are "
                       "from the working directory")
    format: Literal["safetensors", "npz", "torch"] | None = Field(
        None, description="the file's format (default: from its bytes)")
    map: str = Field("torchvision", min_length=1,
                     description="the name map: torchvision or timm (or <source>/<family>), "
                     "archspec (archspec's own names, as `archspec export --format "
                     "safetensors` writes them) or a map file")
    skip: list[str] = Field(default_factory=list, description="layer globs that keep their "
                            "initial values, e.g. [fc] for a new head")
    strict: bool = Field(True, description="any gap not in skip is an error (false: gaps are "
                         "reported, those layers keep their initial values)")


class Health(Strict):
    dead_warn: float = Field(0.9, gt=0, le=1,
                             description="warn when this fraction of a layer's ReLU units is dead")
    collapse_steps: int = Field(20, ge=1, description="declare collapse after this many steps in a "
                                                      "row with a fully dead layer or constant outputs")
    max_nonfinite: int = Field(5, ge=1, description="declare divergence after this many "
                                                    "non-finite steps in a row")
    explode_factor: float = Field(1e3, gt=1, description="declare divergence when the smoothed "
                                                         "loss exceeds this multiple of its "
                                                         "starting value")
    chance_epochs: int = Field(3, ge=0, description="declare a failure when train accuracy is "
                                                    "still at chance after this many epochs "
                                                    "and the loss has stopped improving "
                                                    "(0: never)")
    chance_min_steps: int = Field(100, ge=0, description="declare no stall before this many steps")
    restarts: int = Field(0, ge=0, description="re-initialise with a new seed after "
                                               "collapse/divergence, up to N times")
    restart_lr_factor: float = Field(1.0, gt=0, description="multiply the learning rate by this "
                                                            "at each restart")


class Checkpoint(Strict):
    every_steps: int | None = Field(None, ge=1, description="also save every N steps")
    every_minutes: float = Field(1.0, ge=0, description="save `latest` when this many minutes "
                                 "have passed since the last save (checked after every "
                                 "dispatch; 0: after every one); always at the end and on a stop")
    keep: int = Field(2, ge=1, description="checkpoints kept (the newest; 'best' is kept apart)")
    best_every_minutes: float = Field(0.5, ge=0, description="write a new `best` at most this "
                                      "often while validation keeps improving (held in memory "
                                      "meanwhile); always at the end and on a stop; 0: each one")


def _run_folder_name(name: str) -> str:
    from archspec.runs.folder import NAME_HINT, name_problem

    problem = name_problem(name)
    if problem:  # the name is a folder under `output`: it must not lead anywhere else
        raise ValueError(f"one folder name under `output` ({NAME_HINT}); this one {problem}")
    return name


class Experiment(Strict):
    name: Annotated[str, AfterValidator(_run_folder_name)] = Field(
        description="also the folder of its runs under `output`")
    description: str | None = None
    architecture: str | dict[str, Any] = Field(
        description="path (relative to this file) or an inline architecture")
    data: DataConfig
    loss: dict[str, LossKind | LossSpec] = Field(
        default_factory=dict, description="per head; default from the head's output function")
    optimizer: Optimizer = Field(default_factory=Optimizer)
    epochs: int = Field(10, ge=1)
    steps: int | None = Field(None, ge=1, description="stop after this many steps (overrides epochs)")
    batch_size: int = Field(64, ge=1)
    steps_per_execution: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        "auto", description="train steps per device dispatch (a lax.scan over that many "
        "batches); auto: up to 16 for models whose step is cheaper than dispatching it, else 1")
    eval_batch_size: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    precision: Literal["float32", "bf16"] = "float32"
    eval_splits: list[Literal["val", "test"]] = Field(default_factory=lambda: ["val", "test"])
    eval_every: int = Field(1, ge=1, description="validate every N epochs (and after the "
                            "last): for long runs of short epochs")
    eval_flip: bool = Field(False, description="evaluate each image as the mean of the logits "
                            "of it and of its horizontal mirror (val, test, eval, predict)")
    ema: Ema | None = Field(None, description="keep an exponential moving average of the "
                            "weights, checkpointed with them, and evaluate with it, e.g. "
                            "{decay: 0.999}")
    init: Init | None = Field(None, description="start from a tensor file's weights, e.g. "
                              "{from: resnet18.safetensors, map: torchvision, skip: [fc]}: "
                              "a new run only (a resume restores its own checkpoint)")
    freeze: list[str] = Field(default_factory=list, description="layer globs trained as in "
                              "evaluation and never updated, e.g. [conv1, bn1, stage1] (a "
                              "block's name covers its layers; a batchnorm keeps its running "
                              "statistics)")
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    health: Health = Field(default_factory=Health)
    output: str = "runs"
    augment: list[AugmentStep] = Field(default_factory=list, description="ops applied in order "
                                       "to every training batch, e.g. [flip, {random_crop: "
                                       "{padding: 4}}]")
    variables: dict[str, int | float | bool | str] = Field(
        default_factory=dict, description="override the architecture's variables, e.g. "
                                          "{classes: 6} for a 1000-way network on 6 classes")
    expect: Annotated[dict[str, Any], AfterValidator(E.flat)] = Field(
        default_factory=dict, json_schema_extra=E.SCHEMA, description="what a full run must "
        "reach, e.g. {test.accuracy: \">= 0.985\", time_s: \"<= 120\"}: judged by "
        "`archspec check --full` and reported by `train`")


def parse_override(text: str, index: int):
    """`optimizer.lr=3e-4` -> (["optimizer", "lr"], 0.0003). Values are YAML scalars."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecErrors([_override_error(text, index, "an override is key.path=value",
                                          "e.g. --set optimizer.lr=3e-4")])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and parses_as_float(value):
        value = float(value)   # YAML 1.1 reads "3e-4" as a string; a number was meant
    return key.strip().split("."), value




def _override_error(text, index, message, hint=None, expected=None, found=None):
    from archspec.errors import SpecError
    return SpecError(message, Pos.command_line(f"--set #{index + 1}"), text, expected, found, hint)


def apply_overrides(root: YMap, overrides: list[str]) -> None:
    """Write each override into the loaded tree, keeping a position that names the flag."""
    for index, text in enumerate(overrides):
        keys, value = parse_override(text, index)
        pos = Pos.command_line(f"--set {text}")
        node = root
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            if last:
                node[key] = value
                node.key_pos[key] = node.val_pos[key] = pos
            else:
                child = node.get(key)
                if not isinstance(child, YMap):
                    child = YMap(child if isinstance(child, dict) else {}, pos)
                    node[key] = child
                    node.key_pos[key] = node.val_pos[key] = pos
                node = child


def _fix_floats(node):
    """YAML 1.1 reads `1e-3` (no dot) as a string; accept it as the number it is."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and parses_as_float(v) and "e" in v.lower():
                node[k] = float(v)
            else:
                _fix_floats(v)
    elif isinstance(node, list):
        for v in node:
            _fix_floats(v)


def load_experiment(path: str | Path, overrides: list[str] | None = None,
                    root=None) -> tuple[Experiment, YMap]:
    """The experiment in `path` (its YAML tree `root` when already parsed), with overrides."""
    root = load_yaml_file(path) if root is None else root
    errors = ErrorCollector()
    if not isinstance(root, YMap):
        errors.add("an experiment file is a YAML mapping", Pos(str(path), 1, 1),
                   expected="keys name, architecture, data, ...", found=type(root).__name__)
        errors.raise_if_any()
    apply_overrides(root, overrides or [])
    _fix_floats(root)
    exp = _validate(root, errors, root.pos)
    errors.raise_if_any()
    return exp, root


def experiment_for_architecture(arch_path: str, data: str | None, overrides: list[str]):
    """`archspec train net.yaml --data shapes`: an experiment with sensible defaults."""
    pos = Pos(str(arch_path), 1, 1)
    # the data set comes from the command line: errors about it point at the flag
    flag = Pos.command_line(f"--data {data}" if data else
                            "--data shapes (the default: no --data given)")
    root = YMap({"name": Path(arch_path).stem, "architecture": str(Path(arch_path).resolve()),
                 "data": YMap({"name": data or "shapes"}, flag)}, pos, val_pos={"data": flag})
    apply_overrides(root, overrides)
    _fix_floats(root)
    errors = ErrorCollector()
    exp = _validate(root, errors, pos)
    errors.raise_if_any()
    return exp, root


def _validate(root: YMap, errors: ErrorCollector, pos: Pos):
    """The Experiment of a loaded tree; a data error (raised by the data options' checks)
    points at its line."""
    from archspec.data import DataError

    try:
        exp = validate(Experiment, root, root, errors, "", pos, "the experiment")
        E.check_expect(root.get("expect", {}), errors, exp.eval_splits if exp else None,
                       root.val_pos.get("eval_splits"))
        return exp
    except DataError as exc:
        locate_data_error(exc, root)
        raise


def locate_data_error(exc, root) -> None:
    """Give a data error without a place the line of `data.options.<option>` in the
    experiment (or the --set flag that gave it), else of `data:`. A data file's own problem
    (exc.file without an option) keeps its place in that file."""
    if exc.pos is None and root is not None and (exc.option or not exc.file):
        exc.pos = data_position(root, exc.option)


def data_position(root: YMap, option: str | None) -> Pos | None:
    data = root.get("data")
    options = data.get("options") if isinstance(data, dict) else None
    key = option.split(".")[0] if option else None
    if key is not None and key in getattr(options, "key_pos", {}):
        return options.key_pos[key]
    return root.val_pos.get("data")


def architecture_graph(exp: Experiment, exp_path: str | None, root: YMap, input_shape=None):
    """Resolve the experiment's architecture (a path relative to the experiment, or inline)."""
    from archspec.spec.resolve import resolve

    if isinstance(exp.architecture, str):
        base = Path(exp_path).parent if exp_path else Path(".")
        path = Path(exp.architecture)
        path = path if path.is_absolute() else base / path
        if not path.exists():
            raise SpecErrors([_missing(root, path)])
        text = read_yaml_text(path)  # read once: the run's copy is what was validated
        arch, filename = load_yaml_text(text, str(path)), str(path)
    else:
        arch, filename, text = root["architecture"], str(exp_path), None
    if exp.variables:
        _override_variables(arch, root, exp.variables)
        text = None  # the run's copy of the architecture carries the new values
    graph = resolve(arch, filename=filename, input_shape=input_shape)
    E.check_expect_heads(exp.expect, graph, exp.loss, root.get("expect") if root else None)
    if text is None or input_shape is not None:
        text = yaml.safe_dump(_with_input_shape(_plain(arch), input_shape), sort_keys=False)
    return graph, text


def _with_input_shape(arch: dict, shape) -> dict:
    """The run's copy of the architecture carries an --input-shape override (resolve has
    already refused one for several inputs), so a resume rebuilds the same network."""
    if shape is not None:
        spec = arch.get("input") or next(iter(arch["inputs"].values()))
        spec["shape"] = list(shape)
    return arch


def _override_variables(arch, root: YMap, variables: dict) -> None:
    """`variables: {classes: 6}` in the experiment (or `--set variables.classes=6`) replaces
    the architecture's own value, as Keras' `classes=` argument does."""
    from archspec.errors import SpecError, did_you_mean

    declared = arch.get("variables") if isinstance(arch, YMap) else None
    given = root.get("variables")
    errors = []
    for key, value in variables.items():
        if isinstance(declared, YMap) and key in declared:
            declared[key] = value
            declared.val_pos[key] = given.val_pos[key]
            continue
        names = list(declared) if isinstance(declared, YMap) else []
        errors.append(SpecError(f"the architecture has no variable '{key}'",
                                given.key_pos.get(key), f"variables.{key}",
                                expected="one of: " + ", ".join(names) if names else
                                "an architecture with a `variables:` section",
                                found=repr(key), hint=did_you_mean(key, names)))
    if errors:
        raise SpecErrors(errors)


def _missing(root, path):
    from archspec.errors import SpecError
    return SpecError("architecture file not found", root.val_pos.get("architecture"),
                     "architecture", expected="a path relative to the experiment file",
                     found=str(path), hint="paths are relative to the experiment's folder")


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x

