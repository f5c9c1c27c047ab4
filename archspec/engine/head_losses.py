"""Does each head fit the data? Checked before step 1, because a head that cannot fit its
targets still trains: a softmax over regression targets ends at chance, a 1-unit sigmoid on
three classes reports a negative loss and 100% accuracy. Each refusal names the head's line
in the architecture, the data's line in the experiment, and the fix."""
from __future__ import annotations

import numpy as np

from archspec.errors import Pos, SpecError, SpecErrors
from archspec.fmt import fmt_dims
from archspec.engine.losses import DEFAULT_FOR_OUTPUT
from archspec.engine.step import HeadLoss


def head_losses(exp, graph, dataset, data_pos: Pos | None = None,
                loss_pos: dict | None = None) -> list[HeadLoss]:
    """One HeadLoss per head, after checking it against the data; every mismatch of every
    head is reported at once."""
    loss_pos = loss_pos or {}
    errors, out = [], []
    unknown = sorted(set(exp.loss) - set(graph.heads))
    for name in unknown:
        errors.append(SpecError(f"loss names unknown head '{name}'", loss_pos.get(name),
                                f"loss.{name}", expected="one of: " + ", ".join(graph.heads),
                                found=repr(name)))
    for name, head in graph.heads.items():
        spec = exp.loss.get(name)
        kind = (spec if isinstance(spec, str) else spec.kind) if spec else DEFAULT_FOR_OUTPUT[head.output]
        weight = (spec.weight if spec is not None and not isinstance(spec, str)
                  and spec.weight is not None else head.loss_weight)
        problem = _mismatch(kind, head, dataset, graph.variables)
        if problem:
            message, expected, found, hint = problem
            where = f"{dataset.name} data" + (f" at {data_pos}" if data_pos else "")
            errors.append(SpecError(message, head.pos, f"heads.{name}", expected=expected,
                                    found=f"{found} ({where})", hint=hint))
        smoothing = spec.label_smoothing if spec is not None and not isinstance(spec, str) else 0.0
        if smoothing and kind != "categorical_crossentropy":
            errors.append(SpecError(f"label smoothing applies to categorical_crossentropy, not "
                                    f"{kind}", loss_pos.get(name), f"loss.{name}",
                                    hint="remove label_smoothing, or use a softmax head"))
        out.append(HeadLoss(name, kind, head.output, float(weight), float(smoothing),
                            head.train_only))
    if errors:
        raise SpecErrors(errors)
    return out


def _mismatch(kind: str, head, dataset, variables: dict):
    """(message, expected, found, hint) when the loss `kind` cannot fit the data, else None."""
    units = head.shape[-1] if head.shape else None
    y = dataset.train.y
    if head.shape and len(head.shape) > 1 and y.ndim == 1:
        return (f"the head gives a {fmt_dims(head.shape)} map per example, but the data has "
                "one target per example", f"({'outputs' if units is None else units},)",
                f"{fmt_dims(head.shape)} per example",
                "dense applies to the last axis only: add `- flatten` (or a global pool) "
                "before the head's last layer")
    if dataset.task == "classification" and y.ndim > 1:
        return _mask_mismatch(kind, head, tuple(y.shape[1:]), dataset.num_classes)
    if dataset.task == "classification":
        c = dataset.num_classes
        if kind == "mse":
            return (f"a regression head ({head.output} output, mse) cannot fit class labels",
                    "`output: softmax` for class labels", f"{c} classes",
                    f"use `output: softmax` with {c} units, or a regression data set")
        if kind == "categorical_crossentropy" and units is not None and c and units != c:
            same = [k for k, v in variables.items() if v == units and not isinstance(v, bool)]
            return (f"the head has {units} outputs but the data has {c} classes",
                    f"{c} outputs (one per class)", f"{units} outputs, {c} classes",
                    f"--set variables.{same[0]}={c}" if same else
                    f"give the last layer units: {c}")
        if kind == "binary_crossentropy" and not (c == 2 and units == 1):
            return (f"a sigmoid head with {units} output(s) cannot fit {c} classes",
                    "1 sigmoid output for two classes", f"{units} output(s), {c} classes",
                    f"use `output: softmax` with units: {c}" if c != 2 else
                    "give the last layer units: 1 (the probability of class 1)")
        return None
    dims = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if kind == "categorical_crossentropy":
        return ("a softmax head needs class labels, but the data's targets are real-valued "
                "(regression)", "integer class ids", f"regression targets, {dims} per example",
                "class ids stored as whole numbers are read as classes (also as floats); "
                "set the data option `task: classification`, or use `output: linear` for "
                "regression")
    if kind == "binary_crossentropy" and len(y) and (y.min() < 0 or y.max() > 1):
        return ("a sigmoid head needs targets between 0 and 1",
                "targets in [0, 1] for binary cross-entropy",
                f"targets from {float(y.min()):g} to {float(y.max()):g}",
                "use `output: linear` (mse) for unbounded targets, or rescale them")
    if units is not None and head.shape and len(head.shape) == 1 and units != dims:
        return (f"the head has {units} outputs but the data has {dims} target(s) per example",
                f"{dims} outputs", f"{units} outputs",
                f"give the last layer units: {dims}")
    return None


def _mask_mismatch(kind: str, head, mask: tuple, c: int):
    """A per-pixel head against masks of class ids (N, *mask): its map must be the mask's
    size with one score per class at every position (a sigmoid: one, for two classes)."""
    shape = tuple(head.shape or ())
    want = f"{fmt_dims(mask)}×{c}"
    if len(shape) != len(mask) + 1:
        return (f"the data has a {fmt_dims(mask)} mask per example, but the head gives "
                f"{fmt_dims(shape)}", f"{want} (a score per class at every position)",
                f"{fmt_dims(shape)} per example", "end with a 1×1 conv to the classes, "
                "without flatten, dense or global pooling")
    if shape[:-1] != mask:
        return (f"the head's map is {fmt_dims(shape[:-1])} but the data's masks are "
                f"{fmt_dims(mask)}", f"{want} (the masks' size)", f"{fmt_dims(shape)}",
                "use `padding: same` and bring the map back to the input's size "
                "(conv_transpose or upsample as many times as it was pooled)")
    units = shape[-1]
    if kind == "mse":
        return (f"a regression head ({head.output} output, mse) cannot fit masks of class ids",
                "`output: softmax` for class masks", f"{c} classes per pixel",
                f"use `output: softmax` with {c} maps")
    if kind == "categorical_crossentropy" and units != c:
        return (f"the head has {units} maps but the masks have {c} classes",
                f"{want}", f"{fmt_dims(shape)}", f"give the last conv maps: {c}")
    if kind == "binary_crossentropy" and not (c == 2 and units == 1):
        return (f"a sigmoid head with {units} map(s) cannot fit masks of {c} classes",
                "1 sigmoid map for two classes", f"{units} map(s), {c} classes",
                f"use `output: softmax` with maps: {c}" if c != 2 else
                "give the last conv maps: 1 (the probability of class 1)")
    return None


def chance_rate(dataset) -> float | None:
    """Accuracy of always predicting the most common training class (pixel); None for
    regression."""
    if dataset.task != "classification" or not len(dataset.train.y):
        return None
    y = np.asarray(dataset.train.y).ravel().astype(np.int64)  # masks: per pixel
    return float(np.bincount(y).max() / y.size)
