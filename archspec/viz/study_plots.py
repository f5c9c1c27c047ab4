"""The pictures of a sweep's study, drawn by Optuna's matplotlib plots: the optimisation
history (each trial's value, and the best so far), the parameters' importances (fANOVA: how
much of the value's variance each parameter explains) and parallel coordinates (each
trial's values across the parameters, coloured by its result)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

PICTURES = ("history", "importance", "parallel")


def find_study(folder: Path):
    """The study a sweep folder's study.json names (None: not a sweep's folder, or a
    database whose password is not written down), and why not."""
    from archspec.experiment.storage import JOURNAL, Place
    from archspec.experiment.study import load_study

    note_path = Path(folder) / "study.json"
    if not note_path.exists():
        return None, None
    note = json.loads(note_path.read_text())
    if note.get("kind") == "journal":
        place = Place("journal", path=Path(folder) / JOURNAL) \
            if (Path(folder) / JOURNAL).exists() else Place("journal", path=Path(note["storage"]))
    elif "***" in note.get("storage", ""):
        return None, (f"the study of {folder} is in {note['storage']}: draw its pictures with "
                      "optuna-dashboard, or from a storage URL without a password (.pgpass)")
    else:
        place = Place(note.get("kind", "postgresql"), url=note["storage"])
    return load_study(note["study"], place), None


def plot_study(study, output: Path) -> list[tuple[Path | None, str]]:
    """<output stem>-history, -importance and -parallel beside `output`; for each, the file
    written (None when the study cannot show it yet) and what it shows."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as om

    from archspec.viz import pyplot, save_figure

    pyplot()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    varied = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    metric = study.user_attrs.get("archspec", {}).get("metric", "value")
    drawers = {
        "history": (lambda: om.plot_optimization_history(study, target_name=metric),
                    len(done) >= 1, f"{metric} of each trial and the best so far"),
        "importance": (lambda: om.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), target_name=metric),
            len(done) >= 2 and varied, f"fANOVA importance of each parameter for {metric}"),
        "parallel": (lambda: om.plot_parallel_coordinate(study, target_name=metric),
                     len(done) >= 1 and varied, "each trial across its parameters"),
    }
    out = []
    for name in PICTURES:
        draw, possible, what = drawers[name]
        path = output.with_name(f"{output.stem}-{name}{output.suffix}")
        if not possible:
            out.append((None, f"{name}: not yet ({len(done)} complete trial(s))"))
            continue
        ax = draw()
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        out.append((save_figure(figure, path), what))
    return out


__all__ = ["find_study", "plot_study", "PICTURES"]
