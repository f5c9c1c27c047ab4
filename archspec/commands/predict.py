"""`archspec predict`: class probabilities or values of a trained run for new examples."""
from __future__ import annotations

from pathlib import Path

from archspec import jsonout
from archspec.commands.options import at_least, choose


def predict(*, run_dir: Path, inputs: list[Path], as_json: bool, top: int, checkpoint: str) -> None:
    from archspec.use.predict import predict as run_predict
    from archspec.ui.predictions import print_predictions
    from archspec.ui.render import console, warn

    choose(checkpoint, ("best", "latest"), "--checkpoint")
    at_least(top, 1, "--top", "top must be >= 1")
    result = run_predict(run_dir, inputs, top, checkpoint, warn=warn)
    if as_json:
        print(jsonout.dumps(result, indent=2))
        return
    print_predictions(result, console)
