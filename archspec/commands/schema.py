"""`archspec schema`: the JSON Schema of the architecture or the experiment language.

The experiment schema is built here, not in spec/: it describes train.config's models, and
the spec language does not depend on training."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from archspec.commands import BadParameter


def schema(*, kind: str, output: Optional[Path]) -> None:
    if kind not in ("architecture", "experiment"):
        raise BadParameter("expected 'architecture' or 'experiment'", param_hint="KIND")
    text = json.dumps(architecture_schema() if kind == "architecture" else experiment_schema(),
                      indent=2)
    if output:
        try:
            output.write_text(text + "\n")
        except OSError as exc:
            raise BadParameter(f"cannot write {output}: {exc.strerror or exc}",
                               param_hint="--output") from None
    else:
        print(text)


def architecture_schema() -> dict:
    from archspec.spec.jsonschema import schema_for

    return schema_for("architecture")


def experiment_schema() -> dict:
    from archspec.experiment.config import Experiment

    top = Experiment.model_json_schema(by_alias=True)
    top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    top["title"] = "archspec experiment"
    return top  # experiments hold plain values: no expressions
