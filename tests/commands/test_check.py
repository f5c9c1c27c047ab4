"""`archspec check`: a folder of experiments validated, trained and judged against their
`expect:`; the table, the exit code and the JUnit XML a CI system reads; `expect:`
mistakes located; the pre-commit hook; the persistent compilation cache."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, run_cli

TINY = """\
name: {name}
architecture:
  name: tiny
  input: {{shape: [64]}}
  layers:
    - dense: {{units: 10, activation: linear, name: logits}}
  heads:
    digits: {{from: logits, output: softmax}}
data: {{name: digits, limit: 200}}
optimizer: {{name: adam, lr: 0.05}}
epochs: 2
batch_size: 32
expect:
{expect}
"""
GOOD = '  test.accuracy: ">= 0.2"\n  test.loss: "<= 5"\n  time_s: "<= 600"'
MISSING = '  test.accuracy: ">= 0.2"\n  test.loss: "<= 0.0001"\n  time_s: "<= 0.001"'
INVALID = '  test.acuracy: ">= 0.9"\n  test.loss: "=< 0.1"'


def _tiny(path: Path, name: str, expect: str) -> Path:
    path.write_text(TINY.format(name=name, expect=expect))
    return path


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One `check --full` of a folder (good, expectation-missing, invalid experiments and
    an architecture) in a fresh compilation cache, shared by the assertions below."""
    base = tmp_path_factory.mktemp("check")
    folder = base / "suite"
    (folder / "nested").mkdir(parents=True)
    _tiny(folder / "good.yaml", "good", GOOD)
    _tiny(folder / "nested" / "missing.yaml", "missing", MISSING)
    _tiny(folder / "invalid.yaml", "invalid", INVALID)
    shutil.copy(ROOT / "architectures/mlp.yaml", folder / "arch.yaml")
    report = base / "report.xml"
    r = run_cli("check", folder, "--full", "--junit", report, "--output", base / "runs",
                env=_cache_env(base), timeout=240)
    return folder, r, report, base


def _cache_env(base: Path) -> dict:
    return {"COLUMNS": "200", "ARCHSPEC_CACHE_DIR": str(base / "cache"),
            "ARCHSPEC_NO_COMPILE_CACHE": ""}


def test_check_table_and_exit_code(suite):
    folder, r, _, _ = suite
    assert r.returncode == 2, r.stdout + r.stderr  # an invalid file: exit 2
    assert "Traceback" not in r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()
            if line.strip().startswith(str(folder))}
    status = {Path(k).name: v.split()[2] for k, v in rows.items()}
    assert status == {"arch.yaml": "passed", "good.yaml": "passed",
                      "invalid.yaml": "invalid", "missing.yaml": "missed"}
    assert list(rows) == sorted(rows)  # every *.yaml inside, recursively, sorted
    missed = rows[str(folder / "nested" / "missing.yaml")]
    assert "test.loss" in missed and "expected <= 0.0001" in missed
    assert "expected <= 0.001" in missed and "time_s" in missed
    assert "test.accuracy" not in missed  # met, so not among the misses
    assert "2 passed" in r.stdout and "1 missed" in r.stdout and "1 invalid" in r.stdout
    # the invalid file's errors come first, all of them, located
    assert f"{folder / 'invalid.yaml'}:14:3: error: expect: unknown expectation" in r.stderr
    assert f"{folder / 'invalid.yaml'}:15:14: error: expect: bad expectation" in r.stderr


def test_check_junit_report(suite):
    folder, _, report, _ = suite
    root = ET.parse(report).getroot()
    (ts,) = root.iter("testsuite")
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors")) == ("4", "2", "0")
    assert float(ts.get("time")) > 0
    cases = {Path(c.get("name")).name: c for c in ts.iter("testcase")}
    assert {c.get("classname") for c in cases.values()} == {"archspec.check"}
    assert cases["good.yaml"].find("failure") is None
    assert cases["arch.yaml"].find("failure") is None
    bad = cases["invalid.yaml"].find("failure")
    assert bad.get("type") == "invalid"
    assert bad.get("message").startswith(f"{folder / 'invalid.yaml'}:14:3: error:")
    assert "did you mean 'test.accuracy'?" in bad.text
    miss = cases["missing.yaml"].find("failure")
    assert miss.get("type") == "missed"
    assert "test.loss" in miss.get("message") and "expected <= 0.0001" in miss.get("message")
    assert "time_s" in miss.text


def test_a_kept_run_folder_is_judged_the_same(suite):
    from archspec.experiment.expect import judge_run

    *_, base = suite
    (run,) = (base / "runs" / "missing").iterdir()
    outcomes = {o.name: o for o in judge_run(run)}
    assert outcomes["test.accuracy"].met and not outcomes["test.loss"].met
    assert not outcomes["time_s"].met and outcomes["time_s"].observed > 0.001


def test_expect_mistakes_are_located_with_did_you_mean(tmp_path):
    from archspec.errors import SpecErrors
    from archspec.experiment import load as experiment

    bad = _tiny(tmp_path / "bad.yaml", "bad",
                '  test.acuracy: ">= 0.9"\n  val.accuracy: 0.9\n  test.accuracy: ">= 98"\n'
                '  time_s: "<= 12 s"')
    with pytest.raises(SpecErrors) as info:
        experiment.load(bad)
    errors = {(e.pos.line, e.pos.col): e for e in info.value.errors}
    assert set(errors) == {(14, 3), (15, 17), (16, 18), (17, 11)}
    assert errors[14, 3].hint == "did you mean 'test.accuracy'?"
    assert "in quotes" in errors[15, 17].expected and "0.9" in errors[15, 17].hint
    assert errors[16, 18].hint == 'write ">= 0.98" for 98%'
    assert "seconds" in errors[17, 11].hint
    # a per-head name is checked against the architecture's heads
    head = _tiny(tmp_path / "head.yaml", "head", '  test:\n    accuracy_digit: ">= 0.5"')
    with pytest.raises(SpecErrors) as info:
        experiment.load(head)
    (e,) = info.value.errors
    assert (e.pos.line, e.pos.col) == (15, 5)
    assert e.hint == "did you mean 'test.accuracy_digits'?"
    # a split the file never measures; a --set that drops it is refused the same way (at
    # the expectation's line, naming the flag) unless it drops the expectations too
    only_val = tmp_path / "val.yaml"
    only_val.write_text(TINY.format(name="v", expect=GOOD).replace("expect:", "eval_splits: "
                                                                   "[val]\nexpect:"))
    with pytest.raises(SpecErrors) as info:
        experiment.load(only_val)
    errors = info.value.errors
    assert [e.pos.line for e in errors] == [15, 16]  # test.accuracy, test.loss
    assert all("eval_splits has no test" in e.message for e in errors)
    ok = _tiny(tmp_path / "ok.yaml", "ok", GOOD)
    with pytest.raises(SpecErrors) as info:
        experiment.load(ok, ["eval_splits=[val]"])
    assert all("(--set eval_splits=[val])" in e.message for e in info.value.errors)
    assert experiment.load(ok, ["eval_splits=[val]", "expect={}"]).exp.eval_splits == ["val"]
    # --set writes a nested entry, validated like the file
    loaded = experiment.load(ok, ["expect.val.loss=<= 1"])
    assert loaded.exp.expect["val.loss"] == "<= 1"
    with pytest.raises(SpecErrors) as info:
        experiment.load(ok, ["expect.val.los=<= 1"])
    (e,) = info.value.errors
    assert str(e.pos.file).startswith("--set") and e.hint == "did you mean 'val.loss'?"


def test_judge_reads_what_a_run_recorded():
    from archspec.experiment.expect import Facts, judge

    facts = Facts({"test": {"loss": 0.05, "accuracy_aux": 0.5, "accuracy_main": 0.99}},
                  seconds=12.0, heads=["main", "aux"])
    out = judge({"test.accuracy": ">= 0.98", "test.accuracy_aux": "> 0.6",
                 "val.loss": "<= 1", "time_s": "< 20"}, facts)
    assert [(o.name, o.observed, o.met) for o in out] == [
        ("test.accuracy", 0.99, True), ("test.accuracy_aux", 0.5, False),
        ("val.loss", None, False), ("time_s", 12.0, True)]
    assert out[2].describe() == "val.loss not recorded, expected <= 1"


def test_second_check_is_served_from_the_compilation_cache(suite):
    """The same check again in the same cache folder compiles nothing: every program is
    read from the cache, and the folder gains no entry."""
    from archspec.engine.compile_cache import cache_entries

    folder, first, _, base = suite
    written = cache_entries(base / "cache")
    assert written >= 3 and f"{written} compiled and written" in first.stdout  # init, train, eval
    again = run_cli("check", folder, "--full", "--json", "--junit", base / "again.xml",
                    env=_cache_env(base), timeout=240)
    assert again.returncode == 2, again.stderr
    assert cache_entries(base / "cache") == written
    assert "0 compiled and written" in again.stderr
    read = int(re.search(r"(\d+) program\(s\) read", again.stderr).group(1))
    assert read >= written  # the two tiny experiments share their programs
    rows = {Path(r["file"]).name: r for r in json.loads(again.stdout)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "arch.yaml": "passed", "good.yaml": "passed", "invalid.yaml": "invalid",
        "missing.yaml": "missed"}
    assert rows["invalid.yaml"]["errors"][0]["line"] == 14
    miss = {e["name"]: e for e in rows["missing.yaml"]["expectations"]}
    assert miss["test.loss"]["met"] is False and miss["test.accuracy"]["met"] is True


def test_the_compilation_cache_can_be_turned_off(monkeypatch, tmp_path):
    from archspec.engine import compile_cache

    monkeypatch.setenv("ARCHSPEC_NO_COMPILE_CACHE", "1")
    assert compile_cache.enable_compilation_cache(tmp_path / "c") is None
    assert not (tmp_path / "c").exists()
    monkeypatch.setenv("ARCHSPEC_NO_COMPILE_CACHE", "")
    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.default_folder() == tmp_path / "mine"
    monkeypatch.delenv("ARCHSPEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_folder() == tmp_path / "xdg" / "archspec" / "jax"


def test_a_shipped_experiment_meets_its_expectations():
    """The quickest shipped experiment, trained in full: its `expect:` (set from measured
    runs, with a margin) holds. `archspec check experiments/ --full` runs all of them."""
    r = run_cli("check", ROOT / "experiments/text_embedding.yaml", "--full", "--json",
                "--no-compile-cache")
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = json.loads(r.stdout)
    assert row["status"] == "passed"
    assert {e["name"] for e in row["expectations"] if e["met"]} == {
        "test.accuracy", "test.loss", "time_s"}


def _hook() -> dict:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "archspec-validate" and hook["language"] == "python"
    return hook


def _git(repo: Path, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_pre_commit_hook_validates_changed_yaml(tmp_path):
    """The hook's entry, files and exclude patterns, run by pre-commit itself on a scratch
    repository. pre-commit would install archspec into its own environment for
    `language: python`; here the hook runs as a local `system` hook with this
    environment's archspec, so nothing is downloaded."""
    hook = _hook()
    repo = tmp_path / "repo"
    (repo / "experiments").mkdir(parents=True)
    (repo / ".github").mkdir()
    shutil.copy(ROOT / "architectures/mlp.yaml", repo / "experiments/net.yaml")
    (repo / "experiments/broken.yaml").write_text("name: b\ninput: {shape: [3]}\n"
                                                  "layers:\n  - dense: {unit: 2}\n")
    (repo / ".github/ci.yml").write_text("on: push\n")  # not a spec: excluded
    (repo / "notes.txt").write_text("not yaml\n")
    try:
        import pre_commit  # noqa: F401
    except ImportError:  # without pre-commit: the hook's entry on the files it selects
        chosen = [p.relative_to(repo) for p in sorted(repo.rglob("*")) if p.is_file()
                  and re.search(hook["files"], str(p.relative_to(repo)))
                  and not re.search(hook["exclude"], str(p.relative_to(repo)))]
        assert [str(p) for p in chosen] == ["experiments/broken.yaml", "experiments/net.yaml"]
        r = run_cli(*hook["entry"].split()[1:], *chosen, cwd=repo)
        assert r.returncode == 2 and "experiments/broken.yaml:4:13: error" in r.stderr
        return
    local = {**hook, "language": "system"}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(
        {"repos": [{"repo": "local", "hooks": [local]}]}))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
    r = subprocess.run(run, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "experiments/broken.yaml:4:13: error" in r.stdout and "did you mean 'units'" in r.stdout
    assert "ci.yml" not in r.stdout
    (repo / "experiments/broken.yaml").unlink()
    _git(repo, "add", "-A")
    r = subprocess.run(run, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "archspec validate" in r.stdout and "Passed" in r.stdout


def test_a_cache_written_without_a_size_limit_is_adopted(tmp_path):
    """Entries without access-time files (an older archspec, or JAX used directly) must not
    make the bounded cache fail its writes."""
    (tmp_path / "jit_old-0123-cache").write_bytes(b"x" * 10)
    code = ("import jax, jax.numpy as jnp\n"
            "from archspec.engine.compile_cache import enable_compilation_cache\n"
            f"enable_compilation_cache({str(tmp_path)!r})\n"
            "jax.jit(lambda x: x * 3 + 1)(jnp.ones(7)).block_until_ready()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "ARCHSPEC_NO_COMPILE_CACHE": ""}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Error writing persistent compilation cache" not in r.stderr, r.stderr
    assert (tmp_path / "jit_old-0123-atime").exists()
    assert len(list(tmp_path.glob("*-cache"))) >= 2
