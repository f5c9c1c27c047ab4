"""The reports of `archspec check`: the table of files, the JUnit XML a CI system reads,
and the table of a run's expectations (met or missed) that `check` and `train` print.

A checked file is any object with `file`, `kind`, `status`, `seconds`, `detail`, `errors`
(located SpecErrors) and `outcomes` (train.expect Outcomes)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from rich import box

from archspec.ui.tables import Column, table

STATUS_STYLE = {"passed": "green", "skipped": "dim", "invalid": "red", "failed": "red",
                "missed": "yellow", "error": "magenta"}
FAILURES = ("invalid", "failed", "missed")   # JUnit <failure>; "error" is <error>


def check_table(results, title: str | None = None, caption: str | None = None):
    """One row per file: file, kind, status, time, detail (observed vs expected for a
    miss). Narrow terminals hide the time first."""
    cols = [Column("file", "name"), Column("kind", "name"), Column("status", "name"),
            Column("time", "number", drop=1), Column("detail", "text")]
    rows = [[_escape(str(r.file)), r.kind,
             f"[{STATUS_STYLE.get(r.status, 'white')}]{r.status}[/]",
             f"{r.seconds:.1f} s", _escape(r.detail or "")] for r in results]
    return table(cols, rows, title=title, caption=caption, box=box.SIMPLE_HEAD)


def expectations_table(outcomes, title: str = "expectations"):
    """Each expectation of a finished run: name, expected, observed, met or missed."""
    cols = [Column("metric", "name"), Column("expected", "number", justify="left"),
            Column("observed", "number"), Column("", "name")]
    rows = [[o.name, o.expected, "not recorded" if o.observed is None else f"{o.observed:.4g}",
             "[green]met[/]" if o.met else "[red]missed[/]"] for o in outcomes]
    return table(cols, rows, title=title, box=box.SIMPLE_HEAD)


def counts_line(results) -> str:
    """`5 passed, 1 missed, 1 invalid` in the order of STATUS_STYLE."""
    counts = {s: sum(r.status == s for r in results) for s in STATUS_STYLE}
    return ", ".join(f"[{STATUS_STYLE[s]}]{n} {s}[/]" for s, n in counts.items() if n)


def junit_xml(results, suite: str = "archspec check", properties: dict | None = None) -> str:
    """JUnit XML: one <testsuite>, one <testcase classname="archspec.check"> per file; an
    invalid file, a failed run or a missed expectation is a <failure> (its message the
    first located error, or observed vs expected), an unexpected exception an <error>."""
    total = sum(r.seconds for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)),
                      failures=str(sum(r.status in FAILURES for r in results)),
                      errors=str(sum(r.status == "error" for r in results)),
                      time=f"{total:.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=root.get("tests"),
                       failures=root.get("failures"), errors=root.get("errors"),
                       skipped=str(sum(r.status == "skipped" for r in results)),
                       time=root.get("time"))
    if properties:
        props = ET.SubElement(ts, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=str(key), value=str(value))
    for r in results:
        case = ET.SubElement(ts, "testcase", classname="archspec.check", name=str(r.file),
                             time=f"{r.seconds:.3f}")
        if r.status in FAILURES or r.status == "error":
            tag = "failure" if r.status in FAILURES else "error"
            text = failure_text(r)
            el = ET.SubElement(case, tag, message=text.splitlines()[0] if text else r.status,
                               type=r.status)
            el.text = text
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=r.detail or "skipped")
        if r.status == "passed" and r.detail:
            ET.SubElement(case, "system-out").text = r.detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def failure_text(r) -> str:
    """What went wrong with one file, as plain text: every located error (file:line:col,
    expected, found, hint), or each missed expectation, or the run's outcome."""
    if r.errors:
        return "\n".join(e.render_plain() for e in r.errors)
    missed = [o for o in (r.outcomes or []) if not o.met]
    if missed:
        return "\n".join(o.describe() for o in missed)
    return r.detail or r.status


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
