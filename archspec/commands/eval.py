"""`archspec eval`: loss, accuracy, per-class precision/recall and the confusion matrix of a
trained run on one split."""
from __future__ import annotations

from pathlib import Path

from archspec import jsonout
from archspec.commands.options import choose


def eval_run(*, run_dir: Path, split: str, checkpoint: str, as_json: bool) -> None:
    from archspec.use.evaluate import run_eval
    from archspec.ui.evaluation import eval_tables
    from archspec.ui.render import console, warn

    choose(split, ("train", "val", "test"), "--split")
    choose(checkpoint, ("best", "latest"), "--checkpoint")
    out = run_eval(run_dir, split, checkpoint, warn=warn)
    if as_json:
        print(jsonout.dumps(out, indent=2))
        return
    for t in eval_tables(out):
        console.print(t)
