"""`archspec eval RUN_DIR`: rebuild a run from its folder alone and measure it on a split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archspec.engine.reporter import Warn, ignore


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> dict:
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return report_from_confusion(cm)


def report_from_confusion(cm: np.ndarray) -> dict:
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
    return {"confusion": cm.tolist(), "precision": precision.tolist(),
            "recall": recall.tolist(), "support": cm.sum(1).tolist(),
            "accuracy": float(tp.sum() / max(cm.sum(), 1))}


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    err = y_pred.reshape(len(y_pred), -1) - y_true.reshape(len(y_true), -1)
    return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}


def load_state(run_dir: Path, which: str = "best", warn: Warn = ignore):
    """(setup, state, which) of a trained run, rebuilt from its folder alone; a run that
    kept an average of its weights (`ema:`) gives the state with the averaged weights."""
    from archspec.runs import checkpoint as ckpt
    from archspec.train.setup import prepare
    from archspec.experiment.load import load_run
    from archspec.runs.checkpoint import scored_checkpoint
    from archspec.engine.ema import evaluated
    from archspec.engine.step import init_state

    exp, graph, arch_text = load_run(run_dir, warn)
    setup = prepare(exp, graph, arch_text, {})
    state = init_state(setup.model, graph, setup.tx, exp.seed, setup.dataset.example(),
                       ema=exp.ema is not None)
    which = scored_checkpoint(run_dir, which)
    state, _ = ckpt.restore(run_dir, state, which, warn=warn)
    return setup, evaluated(state), which


def run_eval(run_dir: Path, split: str = "test", which: str = "best", warn: Warn = ignore):
    from archspec.engine.measure import evaluate

    setup, state, which = load_state(run_dir, which, warn)
    data = getattr(setup.dataset, split)
    metrics, outputs = evaluate(setup, state, data, _eval_step(setup))
    head = setup.heads[0]
    logits = outputs[head.head]
    if head.kind == "categorical_crossentropy":
        k = max(int(logits.shape[-1]), int(data.y.max()) + 1)
        report = classification_report(data.y.astype(int), logits.argmax(-1), k)
        if setup.dataset.num_classes:
            report = _trim(report, setup.dataset.num_classes)
    elif head.kind == "binary_crossentropy":
        pred = (logits.reshape(len(logits), -1)[:, 0] > 0).astype(int)
        report = classification_report(data.y.reshape(len(data.y), -1)[:, 0].astype(int), pred, 2)
    else:
        import jax.numpy as jnp

        from archspec.layers.activation import head_output

        report = regression_report(data.y, np.asarray(head_output(head.output,
                                                                  jnp.asarray(logits))))
    return {"split": split, "checkpoint": which, "metrics": metrics, "report": report,
            "head": head.head, "kind": head.kind, "dead_units": dead_units(setup, state, data),
            "class_names": setup.dataset.class_names, "step": int(state.step),
            **run_status(run_dir)}


def run_status(run_dir: Path) -> dict:
    """How the run ended (its last summary record): {"status": ..., "why": ...}; "why" is
    the reason a search pruned it."""
    from archspec.runs.records import read_metrics

    summary = [r for r in read_metrics(run_dir) if r.get("split") == "summary"]
    last = summary[-1] if summary else {}
    return {"status": last.get("status"), "why": last.get("pruned_because")}


def _eval_step(setup):
    from archspec.engine.step import make_eval_step

    return make_eval_step(setup.model, setup.heads, setup.mesh, setup.dataset.norm_stats,
                          setup.exp.eval_flip)


def _trim(report: dict, k: int) -> dict:
    """Heads wider than the class count (1000-way nets on small sets): show the real classes."""
    cm = np.asarray(report["confusion"])
    if cm.shape[0] <= k or cm[k:].sum() or cm[:, k:].sum():
        return report
    return report_from_confusion(cm[:k, :k])


def dead_units(setup, state, split, batch_size: int = 256) -> dict:
    """Per ReLU layer: the fraction of units (channels) that are zero for every example of
    the split — units that no input can revive by itself."""
    import jax
    import jax.numpy as jnp

    from archspec.data import to_network
    from archspec.model.build import OUT, relu_nodes

    watch = relu_nodes(setup.graph)
    if not watch:
        return {}
    variables = {"params": state.params, "batch_stats": state.batch_stats}

    @jax.jit
    def alive(x):
        x = to_network(x, setup.dataset.norm_stats)
        _, inter = setup.model.apply(variables, x, train=False, mutable=["intermediates"])
        out = {}
        for k, v in inter["intermediates"].items():
            node = k.removeprefix(OUT)
            if node in watch:
                y = v[0]
                out[node] = jnp.any(y > 0, axis=tuple(range(y.ndim - 1)))
        return out

    seen = {}
    for start in range(0, len(split.x), batch_size):
        for k, v in jax.device_get(alive(jnp.asarray(split.x[start:start + batch_size]))).items():
            seen[k] = v | seen[k] if k in seen else v
    order = [n.id for n in setup.graph.layers if n.id in seen]
    return {k: float(1.0 - seen[k].mean()) for k in order}
