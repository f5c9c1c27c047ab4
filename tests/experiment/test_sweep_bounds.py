"""Sweeps whose files ask for unbounded work: a million-point grid, a hundred million random
samples. A single point is found without listing the others (`--point K`); listing,
checking or running a whole sweep beyond MAX_POINTS is a located error, exit 2."""
from __future__ import annotations

import itertools
import json
import resource

import pytest

from helpers import ROOT, run_cli, time_limit

from archspec.experiment.sweep import MAX_POINTS, load_sweep

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"


def million(path):
    """A grid of 100 x 100 x 100 = 1,000,000 points, on line 2."""
    lrs = ", ".join(f"{0.0001 * (i + 1):.4f}" for i in range(100))
    seeds = ", ".join(str(i) for i in range(100))
    batches = ", ".join(str(8 + i) for i in range(100))
    path.write_text(f"experiment: {EXPERIMENT}\ngrid:\n  optimizer.lr: [{lrs}]\n"
                    f"  seed: [{seeds}]\n  batch_size: [{batches}]\nset: {{epochs: 1}}\n")
    return path


def test_point_k_of_a_million_is_the_same_as_in_the_full_product(tmp_path):
    sw = load_sweep(million(tmp_path / "big.yaml"))
    assert sw.count == 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with time_limit(5):
        picks = [sw.point(k) for k in (0, 1, 99, 100, 123_456, 999_999)]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KiB
    product = list(itertools.islice(itertools.product(*sw.grid.values()), 123_457))
    for p in picks[:-1]:
        assert p.varying == dict(zip(sw.grid, product[p.index]))
        assert p.overrides == {"epochs": 1, **p.varying}
    assert picks[-1].varying == {k: v[-1] for k, v in sw.grid.items()}


def test_random_points_drawn_lazily_equal_the_listed_ones(tmp_path):
    file = tmp_path / "r.yaml"
    file.write_text(f"experiment: {EXPERIMENT}\ngrid: {{batch_size: [16, 32]}}\n"
                    "random: {optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}}\n"
                    "samples: 3\nseed: 5\n")
    sw = load_sweep(file)
    listed = sw.points()
    assert [sw.point(k) for k in range(sw.count)] == listed and len(listed) == 6


@pytest.mark.parametrize("flags", [["--summary"], ["--parallel-hint"], []])
def test_a_whole_million_point_sweep_is_refused_at_the_grid(tmp_path, flags):
    file = million(tmp_path / "big.yaml")
    r = run_cli("sweep", file, "--output", tmp_path / "out", *flags, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    text = " ".join(r.stderr.split())
    assert f"{file}:2:1" in text and "1,000,000 points" in text and f"{MAX_POINTS:,}" in text
    assert "--point" in text
    assert not (tmp_path / "out").exists()


def test_samples_beyond_the_bound_are_refused_at_their_line(tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text(f"experiment: {EXPERIMENT}\n"
                    "random: {optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}}\n"
                    "samples: 100000000\n")
    r = run_cli("sweep", file, "--point", "0", "--output", tmp_path / "out", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{file}:3:10" in r.stderr and "samples" in r.stderr


def test_point_k_of_a_million_point_sweep_runs_alone(tmp_path):
    file = million(tmp_path / "big.yaml")
    out = tmp_path / "out"
    r = run_cli("sweep", file, "--point", "123456", "--output", out, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1,000,000 points" in r.stdout or "1000000 points" in r.stdout
    (run,) = [p for p in (out / "big").iterdir() if p.is_dir()]
    config = json.loads((out / "big" / "sweep.json").read_text())
    assert config["count"] == 1_000_000 and "points" not in config  # not a million entries
    bad = run_cli("sweep", file, "--point", "1000000", "--output", out, timeout=60)
    assert bad.returncode == 2 and "0 to 999999" in bad.stderr
