"""Optional experiment trackers, fed from a finished run folder. TensorBoard event files are
always written by the loop (run_dir/events); `archspec train --track mlflow` also logs the
run's config as parameters and metrics.jsonl as metrics to MLflow, at
$MLFLOW_TRACKING_URI or, when that is unset, a local file store in ./mlruns (kept open for
MLflow releases that need MLFLOW_ALLOW_FILE_STORE for it)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import yaml

from archspec.errors import did_you_mean
from archspec.spec.yaml_file import read_yaml_text

TRACKERS = ("mlflow",)
MAX_PARAM = 500   # characters of one parameter value


def check_tracker(name: str) -> None:
    """Fail before training, not after it, when the tracker cannot be used."""
    from archspec.train.setup import TrainError

    if name not in TRACKERS:
        raise TrainError(f"unknown tracker '{name}'",
                         did_you_mean(name, TRACKERS) or f"trackers: {', '.join(TRACKERS)} "
                         "(TensorBoard files are always written to the run's events/ folder)")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise TrainError("--track mlflow: mlflow is not installed",
                         "pip install mlflow (archspec does not depend on it)") from None


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a file store in ./mlruns. Recent MLflow releases keep the
    file store only on request (MLFLOW_ALLOW_FILE_STORE); choosing it here is that request.
    Point $MLFLOW_TRACKING_URI at sqlite:///mlflow.db or a server to use those instead."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path("mlruns").resolve().as_uri()


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            text = v if isinstance(v, str) else json.dumps(v)
            out[key] = text[:MAX_PARAM]
    return out


def log_run(name: str, run_dir: Path) -> str:
    """Log a run folder to the tracker; returns where it went."""
    import mlflow

    from archspec.runs.records import read_metrics

    run_dir = Path(run_dir)
    config = yaml.safe_load(read_yaml_text(run_dir / "config.yaml")) or {}
    records = read_metrics(run_dir)
    summary = [r for r in records if r.get("split") == "summary"]
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(str(config.get("name", run_dir.parent.name)))
    with mlflow.start_run(run_name=f"{run_dir.parent.name}/{run_dir.name}") as run:
        mlflow.log_params(flatten(config))
        mlflow.set_tags({"archspec.run_dir": str(run_dir.resolve()),
                         "archspec.status": str(summary[-1].get("status")) if summary else "unknown"})
        for r in records:
            split = r.get("split", "train")
            metrics = {f"{split}/{k}": float(v) for k, v in r.items()
                       if k not in ("step", "epoch") and isinstance(v, (int, float))
                       and not isinstance(v, bool) and math.isfinite(v)}
            if metrics:
                mlflow.log_metrics(metrics, step=int(r.get("step", 0)))
        for f in ("config.yaml", "architecture.yaml", "env.json"):
            if (run_dir / f).exists():
                mlflow.log_artifact(str(run_dir / f))
        run_id = run.info.run_id
    return f"{uri} (run {run_id})"
