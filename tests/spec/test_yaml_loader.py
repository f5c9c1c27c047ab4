"""Reading a YAML file: a FIFO, a device or a huge file is refused before it can block or
fill memory; a file that is not YAML text (binary, another encoding, an environment block,
a credentials file) is refused without a byte of it in the error."""
from __future__ import annotations

import os

import pytest

from helpers import ROOT, run_cli

from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture

SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize("command", [["validate"], ["summary"], ["check", "--no-compile-cache"]])
def test_a_fifo_given_as_a_yaml_file_is_refused_not_waited_on(tmp_path, command):
    fifo = tmp_path / "arch.yaml"
    os.mkfifo(fifo)
    r = run_cli(*command, fifo, timeout=60)  # a regression fails here instead of hanging
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not a regular file (a FIFO)" in r.stderr + r.stdout


def test_an_experiment_naming_a_fifo_as_its_architecture_is_refused(tmp_path):
    os.mkfifo(tmp_path / "net.yaml")
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\narchitecture: net.yaml\ndata: {name: digits}\n")
    r = run_cli("validate", exp, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "a FIFO" in r.stderr


@pytest.mark.parametrize("content", [
    f"SECRET={SECRET}\0PATH=/bin\0".encode(),                     # /proc/self/environ
    b"\x89PNG\r\n\x1a\n" + SECRET.encode(),                        # binary
    f"name: caf\xe9 {SECRET}\n".encode("latin-1"),                 # not UTF-8
    f"name: x\ninput: {{shape: [4]}}\n# {SECRET}\x07\n".encode(),  # a control character
])
def test_a_file_that_is_not_yaml_text_is_refused_without_quoting_it(tmp_path, content):
    path = tmp_path / "a.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecErrors) as info:
        load_architecture(path)
    (err,) = info.value.errors
    assert "not YAML text" in err.message and "not shown" in err.message
    assert SECRET not in err.render_plain() and "SECRET" not in err.render_plain()
    assert err.pos.file == str(path) and err.pos.line >= 1


def test_a_private_key_as_an_architecture_is_not_quoted(tmp_path):
    key = tmp_path / "id.yaml"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n"
                   "-----END OPENSSH PRIVATE KEY-----\n")
    r = run_cli("validate", key, timeout=60)
    assert r.returncode == 2 and "a YAML mapping" in r.stderr
    assert "BEGIN" not in r.stderr and "b3Bl" not in r.stderr
    assert "one string of" in r.stderr


@pytest.mark.parametrize("name,content", [
    ("credentials", f"[default]\naws_access_key_id = AKIA{SECRET}\n"),
    ("passwd", f"root:x:0:0:root:/root:/bin/bash\nuser:x:1:1:{SECRET}:/home\n"),
    (".env", f"TOKEN={SECRET}\n"),
])
def test_a_reference_to_a_file_that_is_not_yaml_is_refused_unread(tmp_path, name, content):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / name).write_text(content)
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: out/{name}\ndata: {{name: digits}}\n")
    r = run_cli("validate", exp, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert SECRET not in r.stderr + r.stdout and "AKIA" not in r.stderr
    assert "not a YAML file" in r.stderr


def test_a_yaml_link_to_a_file_that_is_not_yaml_is_refused_unread(tmp_path):
    (tmp_path / "creds").write_text(f"[default]\nkey = {SECRET}\n")
    os.symlink(tmp_path / "creds", tmp_path / "arch.yaml")
    r = run_cli("validate", tmp_path / "arch.yaml", timeout=60)
    assert r.returncode == 2 and SECRET not in r.stderr and "not a YAML file" in r.stderr


def test_json_and_yml_files_still_load(tmp_path):
    text = (ROOT / "architectures/mlp.yaml").read_text()
    for name in ("a.yml", "a.json"):
        (tmp_path / name).write_text(text if name.endswith("yml") else _as_json(text))
        assert load_architecture(tmp_path / name).layers


def _as_json(text: str) -> str:
    import json

    import yaml

    return json.dumps(yaml.safe_load(text))
