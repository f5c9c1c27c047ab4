"""`archspec sweep FILE --summary` of a search: the study's best trial, its trials by state,
and a table of every trial sorted by the metric (best first)."""
from __future__ import annotations

from archspec.ui.tables import Column, grid, table

STATE_STYLE = {"COMPLETE": "green", "PRUNED": "cyan", "RUNNING": "magenta", "FAIL": "red",
               "WAITING": "yellow"}
ORDER = ("COMPLETE", "PRUNED", "RUNNING", "WAITING", "FAIL")


def state_counts(trials) -> str:
    """"8 trials: 5 complete, 2 pruned, 1 running"."""
    counts = {s: sum(t.state.name == s for t in trials) for s in ORDER}
    parts = [f"{n} {s.lower()}" for s, n in counts.items() if n]
    return f"{len(trials)} trial{'s' if len(trials) != 1 else ''}: " + ", ".join(parts) \
        if trials else "no trials yet"


def _value(v) -> str:
    return "-" if v is None else repr(float(v))   # every digit: a value is never cut


def _params(params: dict) -> str:
    return "  ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items()) or "(none)"


def sorted_trials(trials, maximize: bool):
    """Best first: finished trials by value, then pruned (by their last value), then the
    rest in trial order."""
    def key(t):
        rank = {"COMPLETE": 0, "PRUNED": 1}.get(t.state.name, 2)
        v = t.value if t.value is not None else None
        return (rank, 0.0 if v is None else (-v if maximize else v), t.number)
    return sorted(trials, key=key)


def study_tables(study, sweep, place) -> list:
    note = study.user_attrs.get("archspec", {})
    metric, direction = note.get("metric", "value"), study.direction.name.lower()
    trials = study.get_trials(deepcopy=False)
    head = [["study", f"{study.study_name} in {place.describe()}"],
            ["search", f"{note.get('search', '?')}, {metric} ({direction})"],
            ["trials", state_counts(trials)]]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    if done:
        best = study.best_trial
        head.append(["best", f"trial {best.number}: {metric} {_value(best.value)}  "
                             f"{_params(best.params)}  ({best.user_attrs.get('run', '')})"])
    late = {k: v for k, v in study.user_attrs.items() if k.startswith("late_result_trial_")}
    if late:
        head.append(["late results", f"{len(late)} (a worker presumed dead finished a trial "
                                     "another had finished; kept in the study's attributes)"])
    rows = []
    for t in sorted_trials(trials, direction == "maximize"):
        why = t.user_attrs.get("pruned_because") or t.user_attrs.get("failed_because") or ""
        state = t.state.name
        rows.append([str(t.number), f"[{STATE_STYLE.get(state, 'white')}]{state.lower()}[/]",
                     _value(t.value), str(len(t.intermediate_values)), _params(t.params),
                     t.user_attrs.get("run", "-"), why])
    columns = [Column("#", "number"), Column("state", "name"), Column(metric, "number"),
               Column("epochs", "number"), Column("values", "text"),
               Column("run", "name", drop=2), Column("why", "text", drop=1)]
    return [grid([Column("", "name", style="bold"), Column("", "text")], head),
            table(columns, rows, f"trials of {study.study_name}, best first")]
