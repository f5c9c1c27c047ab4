"""`archspec export`: a trained run as StableHLO, ONNX or safetensors, checked on reload."""
from __future__ import annotations

from pathlib import Path

from archspec import jsonout
from archspec.commands import BadParameter
from archspec.commands.options import choose


def export(*, run_dir: Path, fmt: str, output: Path, checkpoint: str, batch: str, namemap: str,
           as_json: bool) -> None:
    from archspec.use.export import FORMATS

    choose(fmt, FORMATS, "--format")
    choose(checkpoint, ("best", "latest"), "--checkpoint")
    if batch != "dynamic" and not (batch.isdigit() and int(batch) >= 1):
        raise BadParameter("expected dynamic or a whole number >= 1", param_hint="--batch")
    from archspec.ui.render import console, warn
    from archspec.use.export import export as run

    sidecar = run(run_dir, fmt, output, checkpoint, batch, namemap, warn)
    if as_json:
        print(jsonout.dumps(sidecar, indent=2))
        return
    for row in sidecar["check"]["batches"]:
        console.print(f"checked batch {row['batch']}: largest difference "
                      f"{row['max_abs_diff']:.3g} ({row['max_rel_diff']:.2g} relative)")
    console.print(f"wrote {output} ({fmt}) and {output}.json")
