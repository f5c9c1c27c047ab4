"""archspec/hugepages.py: when the `archspec` command re-executes itself with glibc's
huge-page tunable, and that it does so once (the command's end-to-end check is in
test_bench: its JSON says what the process got)."""
from __future__ import annotations

import subprocess
import sys

from archspec import hugepages
from archspec.hugepages import TUNABLE, hugepage_env

GLIBC = "glibc 2.36"


def test_added_where_it_helps():
    env = hugepage_env({"PATH": "/bin"}, "madvise", GLIBC)
    assert env["GLIBC_TUNABLES"] == TUNABLE and env["PATH"] == "/bin"
    # another tunable the user set is kept
    env = hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "madvise", GLIBC)
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"


def test_left_alone_where_it_cannot_help_or_is_not_wanted():
    assert hugepage_env({}, "always", GLIBC) is None  # the kernel gives huge pages already
    assert hugepage_env({}, "never", GLIBC) is None
    assert hugepage_env({}, None, GLIBC) is None  # no transparent huge pages at all
    assert hugepage_env({}, "madvise", "") is None  # not glibc (musl, macOS)
    assert hugepage_env({}, "madvise", "glibc 2.31") is None  # before the tunable existed
    assert hugepage_env({}, "madvise", "glibc 2.40") is not None
    for off in ("0", "off", "false", "no", "OFF"):
        assert hugepage_env({hugepages.ENV: off}, "madvise", GLIBC) is None
    # the user's own choice of the tunable wins
    assert hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise", GLIBC) is None


def test_never_a_second_exec():
    env = hugepage_env({}, "madvise", GLIBC)
    assert hugepage_env(env, "madvise", GLIBC) is None
    env.pop("GLIBC_TUNABLES")  # even if something stripped the tunable on the way
    assert hugepage_env(env, "madvise", GLIBC) is None


def test_the_command_runs_once_and_keeps_its_exit_code(tmp_path):
    """Through the real entry point, re-executed where this machine allows: argv survives
    the exec (the usage line names the command) and a usage error still exits 2 with its
    one message."""
    proc = subprocess.run([sys.executable, "-m", "archspec", "summary", "no.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("Usage: python -m archspec summary") == 1, proc.stderr
    assert "no.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_describe_names_the_setting(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", TUNABLE)
    assert hugepages.describe().startswith("huge pages for malloc's mappings")
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv(hugepages.ENV, "0")
    monkeypatch.setattr(hugepages, "thp_mode", lambda: "madvise")
    assert hugepages.describe() == f"4 KiB pages ({hugepages.ENV}=0)"
