"""`archspec plot RUN...`: loss and accuracy per epoch from metrics.jsonl, several runs
overlaid, as a picture (matplotlib) or right in the terminal (braille line charts)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from archspec.viz import PictureInputError, VizError

SPLITS = ("train", "val")


@dataclass
class Curves:
    """One run's per-epoch curves: {split: {epoch: value}} for the loss and the accuracy of
    its first head (None when the run has no accuracy, e.g. regression)."""

    label: str
    run_dir: Path
    accuracy_key: str | None
    loss: dict = field(default_factory=lambda: {s: {} for s in SPLITS})
    accuracy: dict = field(default_factory=lambda: {s: {} for s in SPLITS})
    test: dict = field(default_factory=dict)
    last_epoch: int = 0

    def series(self, metric: str, split: str) -> tuple[list[int], list[float]]:
        points = sorted(getattr(self, metric)[split].items())
        return [e for e, _ in points], [v for _, v in points]


def run_label(run_dir: Path) -> str:
    """experiment/timestamp; a sweep point adds the values it tries (from sweep.json)."""
    import json

    from archspec.reading import UnreadableFile, read_bytes

    run_dir = Path(run_dir).resolve()
    label = f"{run_dir.parent.name}/{run_dir.name}"
    try:
        if (run_dir.parent / "trials.jsonl").exists():   # a search's trials, one line each
            text = read_bytes(run_dir.parent / "trials.jsonl", 64 * 2**20).decode()
            points = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            points = json.loads(read_bytes(run_dir.parent / "sweep.json", 64 * 2**20))["points"]
        point = next(p for p in points if p["id"] == run_dir.name)
        values = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in point.get("varying", {}).items())
        return f"{label} ({values})" if values else label
    except (UnreadableFile, ValueError, KeyError, StopIteration, TypeError, AttributeError):
        return label


def find_runs(paths) -> list[Path]:
    """Run folders from the command line: a run folder itself, or a folder of runs
    (runs/<experiment>/ or runs/) whose runs are taken in name (time) order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise PictureInputError(f"{p} does not exist", "pass a run folder: runs/<experiment>/<timestamp>")
        if p.is_file():
            out.append(p.parent if p.name == "metrics.jsonl" else p)
            continue
        if (p / "metrics.jsonl").exists() or (p / "config.yaml").exists():
            out.append(p)
            continue
        inner = sorted(m.parent for m in p.glob("*/metrics.jsonl"))
        inner = inner or sorted(m.parent for m in p.glob("*/*/metrics.jsonl"))
        if not inner:
            raise VizError(f"{p} has no metrics.jsonl and no run folders inside",
                           "pass a run folder like runs/<experiment>/<timestamp>")
        out.extend(inner)
    return out


def load_curves(run_dir: Path) -> Curves:
    from archspec.runs.records import read_metrics

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").exists():
        raise VizError(f"{run_dir} has no metrics.jsonl",
                       "a run writes metrics.jsonl when its first epoch ends; pass a folder like "
                       "runs/<experiment>/<timestamp>")
    records = read_metrics(run_dir)
    epochs = [r for r in records if r.get("split") in SPLITS and "epoch" in r]
    if not epochs:
        raise VizError(f"{run_dir}/metrics.jsonl has no finished epoch yet",
                       "plot again once the run has finished an epoch")
    acc_key = next((k for r in epochs for k in r if k.startswith("accuracy")), None)
    summary = [r for r in records if r.get("split") == "summary"]
    pruned = summary and summary[-1].get("status") == "pruned"   # a search stopped it early
    c = Curves(run_label(run_dir) + (" [pruned]" if pruned else ""), run_dir, acc_key)
    for r in epochs:  # a resumed run may log an epoch twice: the later record wins
        e, split = int(r["epoch"]), r["split"]
        if _number(r.get("loss")):
            c.loss[split][e] = float(r["loss"])
        if acc_key and _number(r.get(acc_key)):
            c.accuracy[split][e] = float(r[acc_key])
        c.last_epoch = max(c.last_epoch, e)
    test = [r for r in records if r.get("split") == "test"]
    if test:
        c.test = {"loss": test[-1].get("loss"), "accuracy": test[-1].get(acc_key) if acc_key else None}
    return c


def _number(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _panels(curves: list[Curves]) -> list[tuple[str, str]]:
    panels = [("loss", "loss")]
    if any(c.accuracy_key for c in curves):
        panels.append(("accuracy", "accuracy"))
    return panels


# --- picture -------------------------------------------------------------------------------
def plot_curves(curves: list[Curves], output: Path, title: str | None = None) -> Path:
    from matplotlib.lines import Line2D

    from archspec.viz import pyplot, save_figure

    plt = pyplot()
    panels = _panels(curves)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), dpi=100,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (metric, name) in zip(axes[0], panels):
        for i, c in enumerate(curves):
            color = colors[i % len(colors)]
            for split, style in (("train", "-"), ("val", "--")):
                x, y = c.series(metric, split)
                if x:
                    ax.plot(x, y, style, color=color, marker="o", markersize=3, linewidth=1.6)
            t = c.test.get(metric)
            if _number(t):
                ax.plot([c.last_epoch], [t], "*", color=color, markersize=11,
                        markeredgecolor="black", markeredgewidth=0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if metric == "loss" and _wide_range(curves):
            ax.set_yscale("log")
    styles = [Line2D([], [], color="black", linestyle="-", label="train"),
              Line2D([], [], color="black", linestyle="--", label="validation")]
    if any(c.test for c in curves):
        styles.append(Line2D([], [], color="grey", marker="*", linestyle="", markersize=10,
                             label="test (end)"))
    axes[0][0].legend(handles=styles, loc="upper right", fontsize=9, framealpha=0.8)
    runs = [Line2D([], [], color=colors[i % len(colors)], linewidth=2.5, label=c.label)
            for i, c in enumerate(curves)]
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    # below the panels; saving with bbox_inches="tight" keeps it in the picture
    fig.legend(handles=runs, loc="upper center", ncol=min(len(runs), 3), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return save_figure(fig, output)


def _wide_range(curves: list[Curves]) -> bool:
    values = [v for c in curves for s in SPLITS for v in c.loss[s].values() if v > 0]
    return bool(values) and max(values) / max(min(values), 1e-12) > 50


# --- terminal ------------------------------------------------------------------------------
# Braille cells are 2 dots wide and 4 high; bit of the dot at (column, row) in a cell.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "red", "bright_white")
# One per run, at its points and in the legend: runs stay apart without colour (NO_COLOR, a pipe).
MARKERS = ("•", "×", "+", "o", "*", "#", "@", "%", "&", "$")
MARKER_GAP = 3   # characters at least between two markers of one line


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


class BrailleCanvas:
    """A width × height character grid drawn in dots (2 × 4 per character), one colour per
    character (the last drawn wins); a marker glyph replaces the dots of its character."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.color: list[list[str | None]] = [[None] * width for _ in range(height)]
        self.marks: dict[tuple[int, int], tuple[str, str]] = {}   # (cx, cy) -> glyph, colour

    @property
    def dots(self) -> tuple[int, int]:
        return self.width * 2, self.height * 4

    def dot(self, x: int, y: int, color: str) -> None:
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            cx, cy = x // 2, y // 4
            self.bits[cy][cx] |= _DOTS[y % 4][x % 2]
            self.color[cy][cx] = color

    def mark(self, x: int, y: int, glyph: str, color: str) -> None:
        """Draw `glyph` in the character that holds dot (x, y)."""
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            self.marks[x // 2, y // 4] = glyph, color

    def line(self, x0: int, y0: int, x1: int, y1: int, color: str, dotted: bool = False) -> None:
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for k in range(n + 1):
            if dotted and k % 4 >= 2:
                continue
            self.dot(round(x0 + (x1 - x0) * k / n), round(y0 + (y1 - y0) * k / n), color)

    def rows(self):
        from rich.text import Text

        for cy in range(self.height):
            t = Text()
            for cx in range(self.width):
                if (cx, cy) in self.marks:
                    glyph, color = self.marks[cx, cy]
                    t.append(glyph, style=f"bold {color}")
                    continue
                b = self.bits[cy][cx]
                t.append(chr(0x2800 + b) if b else " ", style=self.color[cy][cx] or "")
            yield t


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def terminal_chart(curves: list[Curves], metric: str, width: int = 72, height: int = 12):
    """One metric of every run as a braille line chart: train solid, validation dotted, the
    run's marker on its points (at most one every MARKER_GAP characters, the last always)."""
    from rich.text import Text

    series = [(i, split, *c.series(metric, split)) for i, c in enumerate(curves) for split in SPLITS]
    series = [s for s in series if s[2]]
    if not series:
        return [Text(f"{metric}: no values", style="dim")]
    xs = [x for s in series for x in s[2]]
    ys = [y for s in series for y in s[3]]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    label_w = max(len(_fmt(v)) for v in (y_hi, y_lo, (y_hi + y_lo) / 2)) + 1
    canvas = BrailleCanvas(max(width - label_w - 1, 10), height)
    dw, dh = canvas.dots

    def px(x):
        return 0 if x_hi == x_lo else round((x - x_lo) / (x_hi - x_lo) * (dw - 1))

    def py(y):
        return round((y_hi - y) / (y_hi - y_lo) * (dh - 1))

    marked = []
    for i, split, x, y in series:
        color = PALETTE[i % len(PALETTE)]
        pts = [(px(a), py(b)) for a, b in zip(x, y)]
        if len(pts) == 1:
            canvas.dot(*pts[0], color)
        for (a, b), (c, d) in zip(pts, pts[1:]):
            canvas.line(a, b, c, d, color, dotted=split == "val")
        marked.append((i, color, _spaced(pts)))
    for i, color, pts in marked:  # over every line, so no line hides a marker
        for a, b in pts:
            canvas.mark(a, b, marker(i), color)
    lines = [Text(metric, style="bold")]
    for r, row in enumerate(canvas.rows()):
        label = {0: _fmt(y_hi), height - 1: _fmt(y_lo),
                 (height - 1) // 2: _fmt((y_hi + y_lo) / 2)}.get(r, "")
        lines.append(Text(label.rjust(label_w - 1) + " ┤", style="dim") + row)
    axis = " " * (label_w - 1) + " └" + "─" * canvas.width
    lines.append(Text(axis, style="dim"))
    left, right = f"epoch {x_lo}", f"{x_hi}"
    lines.append(Text(" " * (label_w + 1) + left + right.rjust(canvas.width - len(left)),
                      style="dim"))
    return lines


def _spaced(pts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The points that carry a marker: the last, and before it one every MARKER_GAP
    characters or more."""
    out: list[tuple[int, int]] = []
    for p in reversed(pts):
        if not out or out[-1][0] // 2 - p[0] // 2 >= MARKER_GAP:
            out.append(p)
    return out


def terminal_legend(curves: list[Curves]):
    from rich.text import Text

    out = []
    for i, c in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        t = Text("  ")
        t.append("━━ train  ┅┅ val", style=color)
        t.append("  ")
        t.append(marker(i), style=f"bold {color}")
        t.append(f" {c.label}")
        if c.test:
            parts = [f"{k} {v:.4f}" for k, v in c.test.items() if _number(v)]
            t.append(f"  (test: {', '.join(parts)})", style="dim")
        out.append(t)
    return out


def terminal_lines(curves: list[Curves], width: int) -> list:
    """Every line of the terminal drawing: one chart per metric, then the legend
    (archspec/ui/curves.py prints them)."""
    from rich.text import Text

    lines = []
    for metric, _ in _panels(curves):
        lines += [*terminal_chart(curves, metric, width=width), Text("")]
    return lines + terminal_legend(curves)
