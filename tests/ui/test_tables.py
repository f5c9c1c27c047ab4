"""Every table archspec prints keeps its numbers and names whole (issue 13): in a narrow
terminal, a wide one, and piped to a file, where it is drawn at its natural width."""
from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from archspec.fmt import fmt_dims, human
from helpers import ROOT, run_cli

RESNET = ROOT / "architectures" / "resnet50.yaml"
WIDTHS = (60, 80, 200)
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def render(renderable, width: int, terminal: bool) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal, record=True,
                      highlight=False, soft_wrap=True)
    console.print(renderable)
    return console.export_text()


def assert_whole(text: str, cells) -> None:
    assert "…" not in text, text
    missing = [c for c in cells if c and c not in text]
    assert not missing, f"cut or missing: {missing}\n{text}"


def hidden_columns(text: str) -> list[str]:
    """The headers a caption says were hidden: "MACs, RF columns hidden: ..."."""
    m = re.search(r"^(.*) columns? hidden:", text, re.M)
    return m.group(1).split(", ") if m else []


def _axes(v) -> str:
    if v == "global":
        return v
    return "" if not v else str(v[0]) if len(set(v)) == 1 else "×".join(map(str, v))


def summary_cells(rows, hidden=()):
    """The numbers (and names) of summary rows as the table writes them."""
    cells = []
    for r in rows:
        cells += [r["name"].split(".")[-1], fmt_dims(r["shape"], "-"),
                  f"{r['params']:,}" if r["params"] else "",
                  f"{r['state']:,}" if r["state"] else ""]
        cells += [human(r["macs"]) if r["macs"] else ""] if "MACs" not in hidden else []
        cells += [_axes(r["rf"])] if "RF" not in hidden else []
    return cells


# --- summary, as the user runs it ------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet_rows():
    r = run_cli("summary", RESNET, "--depth", "0", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("columns", WIDTHS)
def test_summary_piped_is_drawn_at_natural_width(resnet_rows, columns):
    r = run_cli("summary", RESNET, "--depth", "0", env={"COLUMNS": str(columns)})
    assert r.returncode == 0, r.stderr
    assert_whole(r.stdout, summary_cells(resnet_rows["rows"]) +
                 [f"{resnet_rows['trainable']:,}", "14,964,736"])
    assert "hidden" not in r.stdout


def test_summary_in_a_narrow_terminal_hides_columns_and_says_so(resnet_rows):
    r = run_cli("summary", RESNET, "--depth", "0", env={"COLUMNS": "60", "TTY_COMPATIBLE": "1"})
    assert r.returncode == 0, r.stderr
    out = ANSI.sub("", r.stdout)
    assert "MACs, RF, jump columns hidden: widen the terminal or pipe to a file" in out
    assert_whole(out, summary_cells(resnet_rows["rows"], hidden=("MACs", "RF")))


@pytest.fixture(scope="module")
def summaries():
    from archspec.model.summary import summarize
    from archspec.spec.resolve import load_architecture

    graph = load_architecture(RESNET)
    return {depth: summarize(graph, depth) for depth in (0, 1)}


@pytest.mark.parametrize("depth", (0, 1))
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", (True, False), ids=("terminal", "piped"))
def test_summary_tables_keep_every_number(summaries, depth, width, terminal):
    from archspec.ui.summary import summary_table, summary_totals

    s = summaries[depth]
    text = render(summary_table(s), width, terminal)
    hidden = hidden_columns(text)
    assert not hidden or terminal, "columns are hidden only in a terminal"
    rows = [r.__dict__ for r in s.rows]
    cells = summary_cells(rows, hidden)
    if not terminal or width >= 80:  # names fold only when a terminal is too narrow
        cells += [r.name.split(".")[-1] for r in s.rows]
    else:
        cells = [c for c in cells if not c[:1].isalpha()]
    assert_whole(text, cells)
    totals = render(summary_totals(s), width, terminal)
    assert_whole(totals, [f"{s.trainable:,}", f"{s.state:,}", f"{s.macs:,}"])


# --- the other commands' tables, from hand-made data ---------------------------------------

def bench_result():
    from archspec.use.bench import BenchResult

    return BenchResult(
        spec="architectures/resnet50.yaml", name="resnet50", batch=256, precision="bf16",
        devices=8, device="gpu:NVIDIA H200", params=25_557_032, compile_s=41.234,
        step_s=0.123456, step_s_min=0.120001, step_s_max=0.199999, steps=100,
        examples_per_s=2073.61, forward_macs_per_example=4_089_184_256,
        train_flops_per_step=6.28e15, achieved_flops=5.09e16, peak_matmul_flops=7.9e17,
        matmul_size=8192, utilisation=0.0644, peak_memory_bytes=123_456_789_012,
        memory_source="device", step_memory_bytes=98_765_432_109)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", (True, False), ids=("terminal", "piped"))
def test_bench_table_keeps_every_number(width, terminal):
    from archspec.ui.bench_table import bench_table

    text = render(bench_table(bench_result()), width, terminal)
    assert_whole(text, ["25,557,032", "41.23 s", "123.46 ms", "2,073.6", "6280.00 TFLOP",
                        "50900.00 TFLOP/s", "790000.00 TFLOP/s", "8192²", "6.4%", "114.98 GiB",
                        "91.98 GiB"])


def run_rows():
    from archspec.runs.listing import RunRow

    return [RunRow(run=f"very_long_experiment_name_number_{i}/20250101-10000{i}",
                   experiment=f"sweep_point_{i}", date=f"2025-01-0{i + 1} 10:00:00",
                   val_metric="accuracy_digits", best_val=0.98765 - i / 100, best_epoch=12 + i,
                   test_metric="loss", test=0.123456, epochs=12 + i, planned_epochs=30,
                   examples_per_s=1234567.0 * (i + 1), seconds=12.5, status=status)
            for i, status in enumerate(("finished", "running/killed", "collapsed"))]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", (True, False), ids=("terminal", "piped"))
def test_runs_table_keeps_every_number(width, terminal):
    from archspec.ui.runs import fmt_metric, runs_table

    rows = run_rows()
    text = render(runs_table(rows, "3 runs in runs"), width, terminal)
    hidden = hidden_columns(text)
    cells = []
    for r in rows:
        cells += [f"{fmt_metric(r.val_metric, r.best_val)} @{r.best_epoch}",
                  fmt_metric(r.test_metric, r.test), f"{r.epochs}/{r.planned_epochs}"]
        cells += [f"{r.examples_per_s:,.0f}"] if "ex/s" not in hidden else []
        cells += [r.date[:16]] if "started" not in hidden else []
        if not terminal or width >= 200:
            cells += [r.run, r.experiment, r.status]
    assert_whole(text, cells)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("terminal", (True, False), ids=("terminal", "piped"))
def test_predict_table_keeps_every_number(width, terminal):
    from archspec.ui.predictions import predictions_table

    top = [{"class": c, "name": f"class_{c}", "probability": p}
           for c, p in ((3, 0.7512), (5, 0.2001), (8, 0.0487))]
    result = {"run": "runs/digits_lenet/20250101-100000", "checkpoint": "best", "step": 123456,
              "heads": {"digit": "softmax", "size": "linear"},
              "predictions": [{"input": f"inputs/batch_{i}.npy", "index": i, "heads": {
                  "digit": {"top": top, "probabilities": []},
                  "size": {"values": [12345.678, -0.000123456]}}} for i in range(3)]}
    text = render(predictions_table(result), width, terminal)
    assert_whole(text, ["75.1%", "20.0%", "4.9%", "12345.7", "-0.000123456", "123456"])
    if not terminal:
        assert_whole(text, [f"inputs/batch_{i}.npy [index {i}]" for i in range(3)])


@pytest.mark.parametrize("width", WIDTHS)
def test_eval_tables_keep_every_number(width):
    from archspec.ui.evaluation import eval_tables

    names = [f"category_{i}" for i in range(10)]
    out = {"split": "test", "checkpoint": "best", "step": 4242, "class_names": names,
           "metrics": {"examples": 123456, "loss": 0.123456},
           "report": {"accuracy": 0.98765, "precision": [0.987654] * 10,
                      "recall": [0.876543] * 10, "support": [12345] * 10,
                      "confusion": [[12345 if i == j else 7 for j in range(10)]
                                    for i in range(10)]}}
    for terminal in (True, False):
        text = "".join(render(t, width, terminal) for t in eval_tables(out))
        assert_whole(text, ["0.1235", "98.77%", "0.988", "0.877", "12345", "123456"])


# --- the table module itself -------------------------------------------------------------------

def test_a_number_too_wide_for_the_terminal_is_still_whole():
    from archspec.ui.tables import Column, table

    big = f"{10**40:,}"
    t = table([Column("name", "name"), Column("value", "number"),
               Column("note", "text", drop=1)], [["a_rather_long_layer_name", big, "dropped"]])
    text = render(t, 30, True)
    assert big in text and "…" not in text
    assert "note column hidden" in text and "dropped" not in text.split("hidden")[0]
    assert "a_rather_long_layer_name" in render(t, 30, False)
