"""fit's `on_epoch` hook: it hears each validation record, and a reason it returns stops the
run there with a final checkpoint and the status `pruned` (why, in the summary record). The
folder stays a normal run: `runs`, `plot` and `eval` work on it and show the status."""
from __future__ import annotations

import json

from helpers import ROOT, read_records, run_cli

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"


def test_on_epoch_prunes_with_a_final_checkpoint(tmp_path):
    from archspec.experiment import load as experiment
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    heard = []

    def on_epoch(epoch, val):
        heard.append((epoch, {k: float(v) for k, v in val.items()}))
        return "too slow at epoch 2" if epoch == 2 else None

    loaded = experiment.load(EXPERIMENT, ["epochs=4", f"output={json.dumps(str(tmp_path))}"])
    result = fit(prepare_loaded(loaded), on_epoch=on_epoch)
    assert result.outcome == "pruned" and result.pruned == "too slow at epoch 2"
    assert [e for e, _ in heard] == [1, 2]
    records = read_records(result.run_dir)
    vals = [r for r in records if r["split"] == "val"]
    # the hook heard exactly what metrics.jsonl records (keys with "/" written with "_")
    assert [r["accuracy_classes"] for r in vals] == [v["accuracy/classes"] for _, v in heard]
    assert records[-1]["split"] == "summary" and records[-1]["status"] == "pruned"
    assert records[-1]["pruned_because"] == "too slow at epoch 2"
    assert not any(r["split"] == "test" for r in records)     # not a finished run: no test
    assert max(r["epoch"] for r in records if r["split"] == "train") == 2
    latest = result.run_dir / "checkpoints" / "latest"
    assert latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())
    attempts = json.loads((result.run_dir / "attempts.json").read_text())
    assert attempts[-1]["outcome"] == "pruned"

    runs = run_cli("runs", tmp_path, "--json")
    assert runs.returncode == 0, runs.stderr
    (row,) = json.loads(runs.stdout)
    assert row["status"] == "pruned" and row["epochs"] == 2
    ev = run_cli("eval", result.run_dir, "--json")
    assert ev.returncode == 0, ev.stderr
    out = json.loads(ev.stdout)
    assert out["status"] == "pruned" and out["why"] == "too slow at epoch 2"
    from archspec.viz.plot import load_curves   # what `archspec plot` labels it

    curves = load_curves(result.run_dir)
    assert curves.label.endswith("[pruned]") and curves.last_epoch == 2
