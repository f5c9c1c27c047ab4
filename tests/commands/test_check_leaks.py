"""`archspec check` never puts the content of a file it should not read into its output:
links that leave the checked folder are not followed, bytes of a file that is not YAML text
are never quoted, and every quoted value is capped (terminal, JSON and JUnit alike)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from helpers import ROOT, run_cli

SECRET = "SECRET=hunter2-do-not-print"
KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACBmYWtlZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZQAAAJhmYWtlZmFr\n"
       "-----END OPENSSH PRIVATE KEY-----\n")
LEAKS = ("hunter2", "SECRET", "BEGIN OPENSSH", "b3BlbnNzaC1", "QyNTUxOQ", "zz-environ-zz")


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    """A checked folder with links out of it (an environment file, a private key, a folder,
    /proc/self/environ), a binary .yaml inside it, a link inside it, and a good file."""
    base = tmp_path_factory.mktemp("leaks")
    outside, tree = base / "outside", base / "tree"
    (outside / "sub").mkdir(parents=True)
    tree.mkdir()
    (outside / "env").write_bytes(f"{SECRET}\0HOME=/root\0".encode())
    (outside / "id_ed25519").write_text(KEY)
    (outside / "sub" / "creds.yaml").write_text(f"token: {SECRET}\n")
    shutil.copy(ROOT / "architectures/mlp.yaml", tree / "good.yaml")
    os.symlink(outside / "env", tree / "env.yaml")
    os.symlink("../outside/id_ed25519", tree / "key.yaml")
    os.symlink(outside / "sub", tree / "linked")
    os.symlink("/proc/self/environ", tree / "proc.yaml")
    os.symlink("good.yaml", tree / "inside.yaml")  # stays in the tree: checked
    (tree / "binary.yaml").write_bytes(b"name: x\n" + SECRET.encode() + b"\0\x01\x02\n")
    (tree / "latin1.yaml").write_bytes(b"name: caf\xe9\n" + SECRET.encode() + b"\n")
    junit = base / "report.xml"
    r = run_cli("check", tree, "--json", "--junit", junit, "--no-compile-cache",
                env={"ARCHSPEC_PROBE": "zz-environ-zz"}, timeout=120)
    return r, junit.read_text(), tree


def test_nothing_from_outside_the_tree_or_from_binary_files_is_printed(leaky):
    r, junit, _ = leaky
    assert "Traceback" not in r.stderr
    for text, where in ((r.stdout, "stdout"), (r.stderr, "stderr"), (junit, "JUnit")):
        for word in LEAKS:
            assert word not in text, f"{word!r} leaked into {where}"


def test_links_out_of_the_tree_are_skipped_and_say_so(leaky):
    r, _, tree = leaky
    rows = {Path(x["file"]).relative_to(tree).as_posix(): x for x in json.loads(r.stdout)}
    for name in ("env.yaml", "key.yaml", "proc.yaml", "linked"):  # a linked folder too
        assert rows[name]["status"] == "skipped", rows[name]
        assert "outside" in rows[name]["detail"] and "not followed" in rows[name]["detail"]
    assert rows["good.yaml"]["status"] == rows["inside.yaml"]["status"] == "passed"
    for name in ("binary.yaml", "latin1.yaml"):
        assert rows[name]["status"] == "invalid"
        assert "not shown" in json.dumps(rows[name]["errors"])
    assert r.returncode == 2  # the binary files are invalid


def test_a_link_named_on_the_command_line_that_leaves_its_folder_is_skipped(leaky):
    _, _, tree = leaky
    r = run_cli("check", tree / "key.yaml", "--json", "--no-compile-cache", timeout=60)
    assert [x["status"] for x in json.loads(r.stdout)] == ["skipped"]
    assert not any(w in r.stdout + r.stderr for w in LEAKS)


def test_every_quoted_value_is_capped(tmp_path):
    huge = "x" * 5000  # a value; a key is at most 1024 characters in YAML
    (tmp_path / "a.yaml").write_text(
        "name: a\ninput: {shape: [4]}\nlayers:\n"
        f"  - dense: {{units: 2, activation: {huge}}}\n"
        f"  - dense: {{units: 2, {huge[:1000]}: 1}}\n")
    junit = tmp_path / "r.xml"
    r = run_cli("check", tmp_path / "a.yaml", "--json", "--junit", junit,
                "--no-compile-cache", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    for text in (r.stdout, r.stderr, junit.read_text()):
        assert "x" * 200 not in text
    (row,) = json.loads(r.stdout)
    assert len(row["errors"]) >= 2
    for e in row["errors"]:
        assert all(len(e[k] or "") <= 400 for k in ("message", "found", "expected", "hint"))
