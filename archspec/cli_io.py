"""The `archspec weights` commands and `archspec export`: Typer wiring only, like cli.py
(whose helpers they use; cli.py imports this module once its own names exist)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from archspec.cli_base import (JSON_HELP, SHAPE, SHAPE_HELP, _checkpoint, _file, _run_dir, command,
                               work)

weights_app = typer.Typer(no_args_is_help=True, help="Look into and convert tensor files "
                                                      "(safetensors, npz, PyTorch state dicts).")
FORMAT_HELP = "safetensors, npz or torch (default: from the file's bytes)"


@command("inspect", weights_app, examples=(
    'archspec weights inspect resnet18.safetensors',
    'archspec weights inspect resnet18.pth --json',
))
def weights_inspect(
    file: Path = _file("a tensor file: .safetensors, .npz, or a PyTorch state dict (.pth, "
                       "read with torch.load(weights_only=True) where torch is installed)"),
    fmt: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Every tensor of a file: name, shape, dtype, values; and the totals."""
    return work("weights:inspect", locals())


@command("convert", weights_app, examples=(
    'archspec weights convert resnet18.safetensors --spec architectures/resnet18.yaml '
    '--map torchvision -o resnet18_archspec.safetensors',
    'archspec weights convert resnet18.pth --spec architectures/resnet18.yaml --skip fc '
    '-o backbone.npz',
))
def weights_convert(
    file: Path = _file("the tensor file to convert"),
    spec: Path = typer.Option(..., "--spec", exists=True, dir_okay=False,
                              help="the architecture (or experiment) the weights are for"),
    namemap: str = typer.Option("torchvision", "--map", help="torchvision, timm, torchvision/resnet, "
                                "a map .yaml file, or archspec (archspec's own names)"),
    output: Path = typer.Option(..., "-o", "--output", help="file to write: .safetensors or "
                                                             ".npz"),
    fmt: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    skip: List[str] = typer.Option([], "--skip", metavar="GLOB",
                                   help="layers left out (a replaced head: --skip fc)"),
    input_shape: Optional[str] = typer.Option(None, metavar=SHAPE, help=SHAPE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Load a file into a spec through a name map, refusing any gap (missing, unexpected or
    wrong-shape tensors, all named), and write it in archspec's names and Flax layouts."""
    return work("weights:convert", locals())


def export(
    run_dir: Path = _run_dir(),
    fmt: str = typer.Option(..., "--format", help="stablehlo, onnx or safetensors"),
    output: Path = typer.Option(..., "-o", "--output", help="file to write (a sidecar "
                                                             "PATH.json is written beside it)"),
    checkpoint: str = _checkpoint(),
    batch: str = typer.Option("dynamic", "--batch", help="dynamic (any batch size) or a fixed "
                                                         "batch size"),
    namemap: str = typer.Option("archspec", "--map", help="safetensors: the names to write "
                                "(archspec, torchvision, timm, a map .yaml file)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """A trained run as a StableHLO program, an ONNX model or a safetensors file, read back
    and checked against archspec's own forward at two batch sizes before it is kept."""
    return work("export:export", locals())


EXPORT_EXAMPLES = (
    'archspec export runs/digits_lenet/20261203-170756 --format onnx -o lenet.onnx',
    'archspec export runs/digits_lenet/20261203-170756 --format stablehlo -o lenet.stablehlo',
    'archspec export runs/digits_lenet/20261203-170756 --format safetensors -o lenet.safetensors',
)


def register(app: typer.Typer) -> None:
    """Add these commands to the `archspec` app."""
    app.add_typer(weights_app, name="weights")
    command("export", app, examples=EXPORT_EXAMPLES)(export)
