"""The `archspec` command: Typer wiring only. Each command's work lives in
archspec/commands/<name>.py; every ArchspecError ends here in one handler.
JAX is imported only by the commands that need it, so `archspec --help` stays instant."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from archspec import cli_base
from archspec.cli_base import (CACHE_HELP, JSON_HELP, SHAPE, SHAPE_HELP, WAIT_HELP,
                               _checkpoint, _file, _run_dir, work)
from archspec.cli_io import register

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Write a neural network down in YAML, see exactly what it is, train it.")


def command(name: str | None = None, group: typer.Typer = app, examples: tuple = ()):
    """cli_base.command, on the top-level app unless a group is named."""
    return cli_base.command(name, group, examples)


def _version(value: bool) -> None:
    if value:
        from archspec import __version__

        print(f"archspec {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="print archspec's version and exit")):
    """Write a neural network down in YAML, see exactly what it is, train it."""


@command(examples=(
    'archspec validate architectures/*.yaml',
    'archspec validate experiments/digits_lenet.yaml',
))
def validate(files: List[Path] = typer.Argument(..., help="architecture or experiment YAML files", exists=True,
                                                dir_okay=False, readable=True)):
    """Check architecture and experiment files: every error at once, each with file:line:col."""
    return work("validate:validate", locals())


@command(examples=(
    'archspec check experiments/',
    'archspec check experiments/ --full --junit report.xml',
    'archspec check recipes/ --full --json --set seed=1',
))
def check(
    paths: List[Path] = typer.Argument(..., help="experiment or architecture YAML files, or "
                                                 "folders of them (every *.yaml inside)",
                                       exists=True, readable=True),
    full: bool = typer.Option(False, "--full", help="train each experiment as written and "
                                                    "judge its expect: (default: --smoke)"),
    output: Optional[Path] = typer.Option(None, help="keep the runs in this folder "
                                                     "(default: a temporary one, removed)"),
    junit: Optional[Path] = typer.Option(None, "--junit", help="also write JUnit XML here"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    compile_cache: bool = typer.Option(True, "--compile-cache/--no-compile-cache",
                                       help=CACHE_HELP),
    set_: List[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                   help="override a key of every experiment: --set seed=1"),
):
    """Validate every file, then train each experiment briefly (or --full): a table of
    results, exit 0 only when all pass. For CI."""
    return work("check:check", locals())


@command(examples=(
    'archspec summary architectures/resnet50.yaml',
    'archspec summary architectures/resnet50.yaml --depth 0',
    'archspec summary architectures/vgg16.yaml --input-shape 64,64,3 --json',
))
def summary(
    spec: Path = _file("architecture or experiment YAML file"),
    depth: Optional[int] = typer.Option(None, help="fold rows nested deeper than this (0: top level)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    input_shape: Optional[str] = typer.Option(None, metavar=SHAPE, help=SHAPE_HELP),
):
    """Shapes, parameters, MACs and receptive field of every layer, from the built Flax model."""
    return work("summary:summary", locals())


@command(examples=(
    'archspec schema architecture -o schema/architecture.schema.json',
    'archspec schema experiment',
))
def schema(
    kind: str = typer.Argument("architecture", help="architecture or experiment"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to a file"),
):
    """Print the JSON Schema of the spec language (for editor validation and completion)."""
    return work("schema:schema", locals())


@command(examples=(
    'archspec train experiments/digits_lenet.yaml',
    'archspec train experiments/shapes_resnet.yaml --epochs 3 --set optimizer.lr=1e-3',
    'archspec train architectures/vgg16.yaml --data shapes --input-shape 64,64,3 --steps 5',
    'archspec train --resume runs/digits_lenet/20261203-170756',
))
def train(
    file: Optional[Path] = typer.Argument(None, help="experiment YAML, or an architecture YAML"),
    data: Optional[str] = typer.Option(None, metavar="NAME", help="data set: digits, shapes, "
                                       "... (default: the experiment's; shapes for a bare "
                                       "architecture)"),
    epochs: Optional[int] = typer.Option(None, metavar="N", help="number of epochs (default: "
                                                                 "the experiment's)"),
    steps: Optional[int] = typer.Option(None, help="stop after this many steps"),
    batch_size: Optional[int] = typer.Option(None, help="examples per step"),
    set_: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override a config key: --set optimizer.lr=3e-4"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder",
                                          exists=True, file_okay=False),
    smoke: bool = typer.Option(False, "--smoke", help="a few steps on a little data: checks a config runs"),
    output: Optional[str] = typer.Option(None, help="folder for runs (default: runs)"),
    track: Optional[str] = typer.Option(None, help="also log the run to a tracker: mlflow "
                                                   "(TensorBoard files are always written)"),
    input_shape: Optional[str] = typer.Option(None, metavar=SHAPE, help=SHAPE_HELP + " (the data is drawn or "
                                                         "resized to it)"),
    compile_cache: bool = typer.Option(True, "--compile-cache/--no-compile-cache",
                                       help=CACHE_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
):
    """Train an experiment (or an architecture on a built-in data set)."""
    return work("train:train", locals())


@command("eval", examples=(
    'archspec eval runs/digits_lenet/20261203-170756',
    'archspec eval runs/digits_lenet/20261203-170756 --split val --checkpoint latest --json',
))
def eval_(
    run_dir: Path = _run_dir(),
    split: str = typer.Option("test", help="train, val or test"),
    checkpoint: str = _checkpoint(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Measure a trained run: loss, accuracy, per-class precision/recall, confusion matrix."""
    return work("eval:eval_run", locals())


@command(examples=(
    'archspec plot runs/digits_lenet -o curves.png',
    'archspec plot runs/ --terminal',
))
def plot(
    runs: List[Path] = typer.Argument(..., help="run folders (or folders holding runs)"),
    output: Path = typer.Option(Path("curves.png"), "-o", "--output", help="picture to write"),
    terminal: bool = typer.Option(False, "--terminal", help="draw the curves in the terminal"),
):
    """Loss and accuracy per epoch (train and validation) of one or more runs, overlaid."""
    return work("plot:plot", locals())


@command("graph", examples=(
    'archspec graph architectures/resnet18.yaml -o resnet18.svg',
    'archspec graph architectures/googlenet.yaml --depth 0 -o googlenet.png',
))
def graph_cmd(
    spec: Path = _file("architecture or experiment YAML file"),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="net.svg, .png, .pdf (Graphviz), .dot or .mmd "
                                               "(Mermaid); default: DOT to the terminal"),
    collapse: Optional[bool] = typer.Option(None, "--collapse/--no-collapse",
                                            help="fold blocks into one box each "
                                                 "(default: only graphs of over 80 nodes)"),
    depth: Optional[int] = typer.Option(None, help="fold nodes nested deeper than this "
                                                   "(0: top level; implies --collapse; default 1)"),
    input_shape: Optional[str] = typer.Option(None, metavar=SHAPE, help=SHAPE_HELP),
):
    """The architecture as a diagram: branches, skip connections, heads, shapes."""
    return work("graph:graph", locals())


@command(examples=(
    'archspec maps runs/digits_lenet/20261203-170756 docs/img/three.png',
    'archspec maps runs/digits_lenet/20261203-170756 docs/img/three.png --layer c1 -o c1.png',
))
def maps(
    run_dir: Path = _run_dir(),
    image: Path = _file("PNG/JPEG picture, or a .npy array of one input"),
    layer: List[str] = typer.Option([], "--layer", help="layer name, repeatable "
                                                        "(default: the first 4 conv layers)"),
    output: Path = typer.Option(Path("maps.png"), "-o", "--output",
                                help="picture to write; with several layers, one per layer "
                                     "named maps_<layer>.png"),
    checkpoint: str = _checkpoint(),
    invert: bool = typer.Option(False, "--invert", help="invert the picture first (dark ink on light "
                                            "paper for data of light ink on dark)"),
):
    """Feature maps of chosen layers of a trained run for one input picture."""
    return work("maps:maps", locals())


@command("pool", examples=(
    'archspec pool docs/img/three.png',
    'archspec pool docs/img/three.png --op max -k 3 --stride 2',
))
def pool_cmd(
    image: Path = _file("PNG/JPEG picture (or a .npy array)"),
    op: str = typer.Option("all", help="max, min, avg or all"),
    size: int = typer.Option(2, "--size", "-k", help="window size K (K×K)"),
    stride: Optional[int] = typer.Option(None, help="step between windows (default: K)"),
    output: Path = typer.Option(Path("pooling.png"), "-o", "--output", help="picture to write"),
):
    """Downsampling by pooling: a picture and its max, min and average pooled versions."""
    return work("pool:pool", locals())


@command(examples=(
    'archspec runs',
    'archspec runs runs/ --sort val --json',
))
def runs(
    directory: Path = typer.Argument(Path("runs"), help="folder of runs (default: runs)"),
    sort: str = typer.Option("date", help="date, experiment, run, val, test, epochs, speed "
                                          "or status (metrics: best first)"),
    reverse: bool = typer.Option(False, "--reverse", help="reverse the order"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """A table of runs: experiment, date, best validation and test metric, speed, status."""
    return work("runs:runs", locals())


@command(examples=(
    'archspec sweep sweeps/vgg_lr.yaml',
    'archspec sweep sweeps/vgg_lr.yaml --parallel-hint',
    'archspec sweep sweeps/vgg_lr.yaml --point 2',
    'archspec sweep sweeps/digits_tpe.yaml --workers 2',
))
def sweep(
    file: Path = _file("sweep YAML: experiment, grid and/or random"),
    point: Optional[int] = typer.Option(None, "--point", help="run only point K (0-based), "
                                        "e.g. --point $SLURM_ARRAY_TASK_ID"),
    parallel_hint: bool = typer.Option(False, "--parallel-hint", help="list the points and "
                                       "print commands that run them in parallel; train nothing"),
    summary_only: bool = typer.Option(False, "--summary", help="only print the table of points "
                                      "(of a search: the study's trials, best first)"),
    output: Optional[str] = typer.Option(None, help="folder for runs (default: the sweep "
                                                    "file's output, else runs)"),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    worker: bool = typer.Option(False, "--worker", help="claim and train trials of the "
                                "sweep's study until its budget is spent"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="start N local "
                                          "worker processes"),
    storage: Optional[str] = typer.Option(None, "--storage", help="the study's storage: "
                                          "postgresql://user@host/db shares it between "
                                          "machines (default: study.journal in the sweep folder)"),
):
    """Train an experiment at every point of a grid, or search it with Optuna (random, TPE,
    CMA-ES, QMC; pruning; one study shared by many workers), resumably."""
    return work("sweep:sweep", locals())


@command(examples=(
    'archspec predict runs/digits_lenet/20261203-170756 docs/img/three.png',
    'archspec predict runs/digits_lenet/20261203-170756 batch.npy --top 1 --json',
))
def predict(
    run_dir: Path = _run_dir(),
    inputs: List[Path] = typer.Argument(..., help="images (PNG/JPEG), .npy arrays (one "
                                                  "example or a batch) or CSV files"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    top: int = typer.Option(3, "--top", help="classes shown per example, most probable first"),
    checkpoint: str = _checkpoint(),
):
    """Class probabilities or values of a trained run for new examples."""
    return work("predict:predict", locals())


@command(examples=(
    'archspec bench architectures/resnet18.yaml --batch 8',
    'archspec bench experiments/shapes_resnet.yaml --precision bf16 --steps 20',
))
def bench(
    spec: Path = _file("architecture or experiment YAML file"),
    batch: int = typer.Option(32, "--batch", help="examples per step"),
    steps: int = typer.Option(10, "--steps", help="timed steps (after warm-up)"),
    precision: str = typer.Option("float32", help="float32 or bf16 (bfloat16 compute)"),
    warmup: int = typer.Option(2, help="untimed steps after compiling"),
    matmul_size: int = typer.Option(2048, help="n of the n×n matmul that measures the peak"),
    input_shape: Optional[str] = typer.Option(None, metavar=SHAPE, help=SHAPE_HELP),
    scan_blocks: bool = typer.Option(False, "--scan-blocks", help="compile runs of identical repeated blocks as "
                                                 "one scan (faster compiles)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Compile and time the train step on a random batch: compile time, step time,
    examples/s, FLOP/s against the measured matmul peak, peak memory."""
    return work("bench:bench", locals())


data_app = typer.Typer(no_args_is_help=True, help="Look at an experiment's data.")
app.add_typer(data_app, name="data")


@command("show", data_app, examples=(
    'archspec data show experiments/shapes_resnet.yaml',
    'archspec data show experiments/digits_lenet.yaml -o digits.png --count 16',
))
def data_show(
    file: Path = _file("experiment YAML file"),
    output: Path = typer.Option(Path("examples.png"), "-o", "--output", help="picture to write"),
    count: int = typer.Option(32, help="examples to draw (at most one batch)"),
    set_: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override a config key: --set seed=1"),
):
    """Splits, class balance, and the first training batch as the model sees it
    (augmented, in pixel units, with class names)."""
    return work("data:show", locals())


register(app)  # archspec weights ..., archspec export


def main():
    app()


if __name__ == "__main__":
    main()
