"""README's results tables, written from real `archspec check --full --json` runs, never by hand.

    python tools/results_table.py run experiments/              # seed 0
    python tools/results_table.py run recipes/ --seeds 0 1 2    # one check per seed
    python tools/results_table.py add check.json --seed 0       # a check already run
    python tools/results_table.py write                         # README from docs/results/
    python tools/results_table.py write --check                 # exit 1 if README differs

`run` runs `archspec check PATHS --full --json --no-compile-cache --set seed=S` once per seed
(every file trained as written, its `expect:` judged), reads each run's test record from its
run folder, and saves what the tables need in docs/results/FOLDER.json (FOLDER: experiments
or recipes), replacing the entries of the files it ran. `add` saves the JSON of a
`check --full --json --output DIR` run the same way. `write` renders each saved file as a
Markdown table between `<!-- results: FOLDER -->` and `<!-- /results -->` in README.md;
`make docs` runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
ARCHSPEC = [sys.executable, "-m", "archspec"]


# --- run: real checks into docs/results/FOLDER.json ------------------------------------

def run(paths: list[str], seeds: list[int]) -> list[Path]:
    """Check `paths` (files or folders) once per seed; each file's entry in its folder's
    saved results is replaced by these runs."""
    rows = []
    for seed in seeds:
        rows += [(seed, r) for r in _check(paths, seed)]
    return save(rows)


def add(check_json: Path, seed: int) -> list[Path]:
    """The rows of a `check --full --json --output DIR` already run (its run folders still
    there), saved as one seed's results."""
    rows = [r for r in json.loads(check_json.read_text()) if r["kind"] == "experiment"]
    for r in rows:
        r["test"] = _test_record(r.get("run_dir"))
    return save([(seed, r) for r in rows])


def save(rows: list[tuple[int, dict]]) -> list[Path]:
    measured = {"date": date.today().isoformat(), "commit": _git("rev-parse", "--short", "HEAD"),
                "machine": _machine()}
    fresh: dict[str, dict] = {}
    for seed, row in rows:
        entry = fresh.setdefault(row["file"], {**_describe(row["file"]), **measured})
        entry["runs"].append(_run_of(row, seed))
    written = []
    for folder in sorted({Path(f).parts[0] for f in fresh}):
        out = RESULTS / f"{folder}.json"
        saved = json.loads(out.read_text()) if out.exists() else {"folder": folder, "files": {}}
        saved["files"].update({f: e for f, e in fresh.items() if Path(f).parts[0] == folder})
        saved["files"] = dict(sorted(saved["files"].items()))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=1) + "\n")
        written.append(out)
    return written


def _check(paths: list[str], seed: int) -> list[dict]:
    """One `archspec check --full --json` of the paths with this seed; each row gains the
    test record of its run (read before the runs' folder is removed)."""
    with tempfile.TemporaryDirectory(prefix="results-") as runs:
        cmd = [*ARCHSPEC, "check", *paths, "--full", "--json", "--no-compile-cache",
               "--output", runs, "--set", f"seed={seed}"]
        print("$", " ".join(cmd[2:]), file=sys.stderr)
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "120"})
        if done.returncode not in (0, 1):  # 1: a miss, which the table shows
            sys.exit(f"archspec check exited {done.returncode}:\n{done.stderr[-3000:]}")
        rows = [r for r in json.loads(done.stdout) if r["kind"] == "experiment"]
        for r in rows:
            r["test"] = _test_record(r.get("run_dir"))
    return rows


def _test_record(run_dir: str | None) -> dict:
    if not run_dir or not (Path(run_dir) / "metrics.jsonl").exists():
        return {}
    records = [json.loads(line) for line in
               (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    tests = [r for r in records if r.get("split") == "test"]
    return tests[-1] if tests else {}


def _describe(file: str) -> dict:
    """What the table says of a file besides its results: its description and parameters."""
    exp = yaml.safe_load((ROOT / file).read_text())
    summary = subprocess.run([*ARCHSPEC, "summary", file, "--json"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
    return {"name": exp["name"], "description": exp.get("description", ""),
            "parameters": json.loads(summary.stdout)["trainable"], "runs": []}


def _run_of(row: dict, seed: int) -> dict:
    return {"seed": seed, "status": row["status"], "seconds": row["seconds"],
            "test": {k: v for k, v in row["test"].items()
                     if k.startswith(("loss", "accuracy", "mean_iou"))},
            "expectations": row["expectations"]}


def _machine() -> str:
    """The machine, and how busy it was (the 15-minute load average as the runs ended)."""
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}, load "
            f"average {os.getloadavg()[2]:.1f}")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


# --- write: the tables in README.md ------------------------------------------------------

def table(saved: dict) -> list[str]:
    """experiments/: one run per file (seed 0); any other folder (recipes/): the mean and
    spread over the seeds each file was run with."""
    if saved["folder"] != "experiments":
        return _seeds_table(saved)
    lines = ["| experiment | what it shows | parameters | test result | `expect:` | time |",
             "|---|---|---:|---|---|---:|"]
    for file, entry in saved["files"].items():
        r = entry["runs"][0]
        lines.append(f"| [`{entry['name']}`]({file}) | {entry['description']} | "
                     f"{entry['parameters']:,} | {_result(r['test'])} | {_verdict(r)} | "
                     f"{r['seconds']:.0f} s |")
    return lines + ["", _caption(saved)]


def _seeds_table(saved: dict) -> list[str]:
    lines = ["| recipe | parameters | published | archspec test accuracy: mean ± std (each "
             "seed) | `expect:` met | time per run | command |",
             "|---|---:|---|---|---|---:|---|"]
    for file, entry in saved["files"].items():
        runs = entry["runs"]
        accs = [a for a in (_accuracy(r["test"]) for r in runs) if a is not None]
        each = ", ".join(f"{100 * a:.2f}" for a in accs)
        if len(accs) > 1:
            shown = (f"**{100 * statistics.mean(accs):.2f}% ± "
                     f"{100 * statistics.stdev(accs):.2f}** ({each}; seeds "
                     f"{', '.join(str(r['seed']) for r in runs)})")
        else:
            shown = f"**{each}%** (one run, seed {runs[0]['seed']})" if accs else "no result"
        met = sum(r["status"] == "passed" and all(o["met"] for o in r["expectations"])
                  for r in runs)
        seconds = statistics.mean(r["seconds"] for r in runs)
        lines.append(f"| [`{entry['name']}`]({file}) | {entry['parameters']:,} | "
                     f"{entry['description']} | {shown} | {met}/{len(runs)} | "
                     f"{seconds:.0f} s | `archspec check {file} --full` |")
    return lines + ["", _caption(saved)]


def _caption(saved: dict) -> str:
    groups: dict[tuple, list[str]] = {}
    for file, e in sorted(saved["files"].items()):
        groups.setdefault((e["date"], e["commit"], e["machine"]), []).append(e["name"])
    where = "; ".join(f"{', '.join(names)} on {d} (commit {c}), {m}"
                      for (d, c, m), names in groups.items())
    return ("Written by `tools/results_table.py` from `archspec check --full --json` runs "
            f"(one per seed): {where}; no GPU, other jobs beside the runs. Time is check's "
            "seconds for the file: loading, compiling, training and the test evaluation. The "
            "test result is of the checkpoint the run scores (the best on the val split, else "
            "the latest).")


def _accuracy(test: dict):
    return next((v for k, v in test.items() if k.startswith("accuracy")), None)


def _result(test: dict) -> str:
    acc = _accuracy(test)
    iou = next((v for k, v in test.items() if k.startswith("mean_iou")), None)
    if iou is not None:
        return f"mean IoU {iou:.4f}, {100 * acc:.2f}% pixel accuracy"
    if acc is not None:
        return f"**{100 * acc:.2f}%** accuracy"
    return f"loss {test['loss']:.4g}" if "loss" in test else "no test record"


def _verdict(r: dict) -> str:
    if r["status"] != "passed":
        missed = [o["name"] for o in r["expectations"] if not o["met"]]
        return f"{r['status']}" + (f": {', '.join(missed)}" if missed else "")
    return f"met ({len(r['expectations'])})" if r["expectations"] else "none"


def write(check_only: bool) -> int:
    text = README.read_text()
    new = text
    for path in sorted(RESULTS.glob("*.json")):
        saved = json.loads(path.read_text())
        new = _replace(new, saved["folder"], table(saved))
    if check_only:
        if new != text:
            print("README.md's results tables differ from docs/results/: run "
                  "`python tools/results_table.py write`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


def _replace(text: str, folder: str, lines: list[str]) -> str:
    start, end = f"<!-- results: {folder} -->", "<!-- /results -->"
    head, sep, rest = text.partition(start)
    if not sep:
        raise SystemExit(f"README.md has no `{start}` marker")
    _, sep2, tail = rest.partition(end)
    if not sep2:
        raise SystemExit(f"README.md has no `{end}` after `{start}`")
    return head + start + "\n" + "\n".join(lines) + "\n" + end + tail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="archspec check the paths, save docs/results/, write")
    r.add_argument("paths", nargs="+")
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    a = sub.add_parser("add", help="save a `check --full --json --output DIR` output, write")
    a.add_argument("check_json", type=Path)
    a.add_argument("--seed", type=int, default=0)
    w = sub.add_parser("write", help="write README's tables from docs/results/")
    w.add_argument("--check", action="store_true", help="only compare")
    args = ap.parse_args(argv)
    if args.cmd in ("run", "add"):
        saved = run(args.paths, args.seeds) if args.cmd == "run" else add(args.check_json,
                                                                           args.seed)
        print("\n".join(map(str, saved)))
    return write(args.check if args.cmd == "write" else False)


if __name__ == "__main__":
    sys.exit(main())
