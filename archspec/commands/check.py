"""`archspec check PATH...`: the CI run of a folder of experiments. Every file is validated
first (every error of every file at once, located); then each valid experiment trains in
this process, briefly (`--smoke`'s meaning: 3 steps on at most 300 examples) or fully
(`--full`, which also judges its `expect:`). Architectures and sweeps are validated only.
A table of results, and JUnit XML or JSON for machines. Exit 0 when every file passed,
2 when a file is invalid, else 1."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from archspec import jsonout
from archspec.commands import BadParameter, Exit
from archspec.commands.options import overrides as flag_overrides
from archspec.experiment import documents
from archspec.engine.reporter import NullReporter

SUFFIXES = (".yaml", ".yml")


@dataclass
class Checked:
    """One file's result: status passed, skipped, invalid, failed (the run did not
    finish), missed (an expectation, --full only) or error (an unexpected exception)."""

    file: Path
    kind: str = "?"             # experiment, architecture or sweep
    status: str = "passed"
    seconds: float = 0.0
    detail: str = ""
    errors: list = field(default_factory=list)     # located SpecErrors
    outcomes: list = field(default_factory=list)   # expectations judged (--full)
    run_dir: str | None = None  # kept only with --output
    loaded: object = None       # the LoadedExperiment, between validating and running

    def to_dict(self) -> dict:
        return {"file": str(self.file), "kind": self.kind, "status": self.status,
                "seconds": round(self.seconds, 3), "detail": self.detail,
                "errors": [_error_dict(e) for e in self.errors],
                "expectations": [o.to_dict() for o in self.outcomes],
                "run_dir": self.run_dir}


def check(*, paths: list[Path], full: bool, output: Optional[Path], junit: Optional[Path],
          as_json: bool, compile_cache: bool = True, set_: list[str] | None = None) -> None:
    from archspec.ui.check_table import check_table, counts_line
    from archspec.ui.render import console, err_console

    entries = yaml_files(paths)
    stats = None
    if compile_cache:
        from archspec.engine.compile_cache import enable_compilation_cache

        stats = enable_compilation_cache()
    with tempfile.TemporaryDirectory(prefix="archspec-check-") as tmp:
        runs = Path(output) if output is not None else Path(tmp)
        overrides = flag_overrides(set_ or [], smoke=not full, output=str(runs))
        results = [e if isinstance(e, Checked) else validate_file(e, overrides)
                   for e in entries]
        _print_invalid(results)
        todo = [r for r in results if r.kind == "experiment" and r.status == "passed"]
        for n, r in enumerate(todo, 1):
            err_console.print(f"[dim]check {n}/{len(todo)}: training {r.file} "
                              f"({'full' if full else 'smoke'})[/dim]")
            outcome = run_file(r, full, keep=output is not None)
            _print_invalid([r])  # a mistake found while preparing the run (data, heads)
            if outcome == "stopped":
                for rest in todo[n:]:
                    rest.status, rest.detail = "skipped", "not run: check was stopped"
                break
    if junit is not None:
        _write_junit(junit, results, full)
    if as_json:
        print(jsonout.dumps([r.to_dict() for r in results], indent=2))
        if stats:
            err_console.print(stats.describe())
    else:
        caption = [_mode_caption(full)] + ([stats.describe()] if stats else [])
        console.print(check_table(results, f"archspec check: {counts_line(results)}",
                                  "\n".join(caption)))
    code = exit_code(results)
    if code:
        raise Exit(code)


def exit_code(results) -> int:
    if any(r.status == "invalid" for r in results):
        return 2
    return 1 if any(r.status not in ("passed", "skipped") for r in results) else 0


def yaml_files(paths: list[Path]) -> list:
    """The files named, and every *.yaml / *.yml inside the folders named (recursively,
    sorted), each once. A link among them that leads out of the folder checked (a file
    named alone: out of its folder) comes as a skipped Checked instead and is never opened:
    in a pull request it could point at /proc/self/environ or a private key."""
    out: dict[Path, object] = {}
    for p in paths:
        if p.is_dir():
            found = _walk(p)
            if not found:
                raise BadParameter(f"no YAML files in {p}", param_hint="PATH")
            for q, away in found:
                out.setdefault(q, _left_tree(q, p) if away else q)
        else:
            out.setdefault(p, _left_tree(p, p.parent) if _outside(p, p.parent) else p)
    return list(out.values())


def _walk(root: Path) -> list[tuple[Path, bool]]:
    """(path, leaves the tree) of each YAML file under `root` and of each link to a folder
    outside it, sorted. Links to folders are never descended into: one that stays inside
    the tree holds files that are checked at their own place."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            d = Path(folder) / name
            if d.is_symlink() and _outside(d, root):
                found.append((d, True))
        for name in files:
            q = Path(folder) / name
            if q.suffix not in SUFFIXES:
                continue
            if q.is_symlink() and _outside(q, root):
                found.append((q, True))
            elif q.is_file():
                found.append((q, False))
    return sorted(found)


def _outside(path: Path, root: Path) -> bool:
    return not path.resolve().is_relative_to(root.resolve())


def _left_tree(path: Path, root: Path) -> Checked:
    from archspec.errors import clip_quoted

    target = clip_quoted(f"'{os.readlink(path)}'") if path.is_symlink() else "a link"
    return Checked(path, kind="link", status="skipped",
                   detail=f"a link to {target}, outside {root}: not followed")


def validate_file(path: Path, overrides: list[str]) -> Checked:
    """Validate one file as `archspec validate` does; an experiment is loaded with the
    overrides it will train with."""
    from archspec.spec.lint import head_warnings
    from archspec.ui.render import print_warnings

    r = Checked(path)
    t0 = time.perf_counter()
    try:
        doc = documents.load(path)
        r.kind = doc.kind
        if r.kind == "experiment":
            from archspec.experiment import load as experiment

            r.loaded = experiment.from_document(doc, list(overrides))
            graph = r.loaded.graph
        elif r.kind == "sweep":
            from archspec.commands.sweep import sweep_detail
            from archspec.experiment.sweep import check_points, load_sweep

            sw = load_sweep(path, root=doc.root)
            check_points(sw, sw.checked_points())
            r.detail = sweep_detail(sw)
            graph = None
        else:
            from archspec.experiment.load import graph_of

            graph = graph_of(doc)
        if graph is not None:
            print_warnings(head_warnings(graph))
            r.detail = f"{len(graph.layers)} layers, {graph.total('params'):,} parameters"
    except Exception as exc:  # noqa: BLE001 - every file is checked, whatever one raises
        _fail(r, exc)
    r.seconds = time.perf_counter() - t0
    return r


def run_file(r: Checked, full: bool, keep: bool) -> str | None:
    """Train a validated experiment (smoke or full) and set its status from the run;
    returns the run's outcome (None when it could not start)."""
    from archspec.experiment.expect import facts_of_result, judge
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    t0 = time.perf_counter()
    reporter = _Quiet(r.file)
    try:
        setup = prepare_loaded(r.loaded, smoke=not full)
        result = fit(setup, reporter)
    except Exception as exc:  # noqa: BLE001
        _fail(r, exc)
        return None
    finally:
        r.seconds += time.perf_counter() - t0
        r.loaded = None
    if keep:
        r.run_dir = str(result.run_dir)
    if result.outcome != "finished":
        r.status = "failed"
        r.detail = result.outcome + (f": {reporter.failure}" if reporter.failure else "")
        return result.outcome
    facts = facts_of_result(result, setup)
    measured = _measured(facts, setup.total_steps)
    expect = setup.exp.expect
    if not full:
        r.detail = measured + (f"; {len(expect)} expectation(s) not judged (smoke run)"
                               if expect else "")
        return result.outcome
    r.outcomes = judge(expect, facts)
    missed = [o for o in r.outcomes if not o.met]
    if missed:
        r.status = "missed"
        r.detail = "; ".join(o.describe() for o in missed)
    else:
        r.detail = ("; ".join(f"{o.name} {o.observed:.4g} ({o.expected})" for o in r.outcomes)
                    or measured + "; no expectations")
    return result.outcome


def _measured(facts, steps: int) -> str:
    loss, acc = facts.value("test.loss"), facts.value("test.accuracy")
    parts = [f"{steps} steps"]
    if loss is not None:
        parts.append(f"test loss {loss:.4g}")
    if acc is not None:
        parts.append(f"accuracy {acc:.4g}")
    return ", ".join(parts)


def _fail(r: Checked, exc: Exception) -> None:
    from archspec.errors import ArchspecError, SpecError, clip_quoted

    if isinstance(exc, ArchspecError):
        r.status = "invalid" if exc.exit_code == 2 else "error"
        r.errors = exc.located()
        first = r.errors[0] if r.errors else SpecError(exc.message)
        r.detail = (f"{first.pos}: " if first.pos else "") + first.message
        if len(r.errors) > 1:
            r.detail += f" (and {len(r.errors) - 1} more)"
        return
    r.status = "error"
    r.detail = clip_quoted(f"{type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
    r.errors = [SpecError(r.detail, hint="an unexpected error: please report it with the file")]


class _Quiet(NullReporter):
    """The reporter of a check run: nothing but warnings (on stderr, naming the file) and
    the reason an attempt failed."""

    def __init__(self, file):
        self.file, self.failure = file, None

    def warning(self, message, hint=None):
        from archspec.ui.render import print_problem

        print_problem("warning", message, hint, where=str(self.file))

    def training_warning(self, message):
        self.warning(message)

    def attempt_failed(self, outcome, step, detail, hint):
        self.failure = f"at step {step}: {detail}"


def _print_invalid(results) -> None:
    from archspec.ui.render import print_errors, print_problem

    for r in results:
        if r.status in ("invalid", "error") and r.errors:
            print_errors(r.errors, str(r.file))
        elif r.kind == "link":
            print_problem("warning", r.detail, where=str(r.file))


def _mode_caption(full: bool) -> str:
    if full:
        return "full runs: each experiment trained as written, its expect: judged"
    return ("smoke runs (3 steps on at most 300 examples): does it build, compile, step, "
            "checkpoint, evaluate; expectations are judged with --full")


def _write_junit(path: Path, results, full: bool) -> None:
    from archspec.ui.check_table import junit_xml

    try:
        Path(path).write_text(junit_xml(results, properties={"mode": "full" if full
                                                               else "smoke"}))
    except OSError as exc:
        raise BadParameter(f"cannot write {path}: {exc.strerror or exc}",
                           param_hint="--junit") from None


def _error_dict(e) -> dict:
    where = ({"file": e.pos.file, "line": e.pos.line, "col": e.pos.col} if e.pos else {})
    return {**where, "path": e.path, "message": e.message, "expected": e.expected,
            "found": e.found, "hint": e.hint}
