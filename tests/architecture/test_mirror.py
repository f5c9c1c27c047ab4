"""tests/ mirrors the package: the tests of archspec/<stage>/<module>.py are in
tests/<stage>/test_<module>.py (top-level modules: tests/core/, the command line: tests/cli/).
A module tested only through a suite of another name (every layer kind by the contract
suite, a command through the CLI tests of what it shows) is listed below with that suite.
The cross-cutting suites keep folders of their own: contract/, corpus/, hostile/,
architecture/, docs/, experiments/, recipes/, zoo/."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE, TESTS = ROOT / "archspec", ROOT / "tests"

# module (relative to archspec/) -> the suite that tests it, until it has a file of its own
TESTED_ELSEWHERE = {
    "runs/checksums.py": "tests/runs/test_checkpoint.py",
    "runs/events.py": "tests/runs/test_disk_full.py",
    "runs/quiet.py": "tests/runs/test_disk_full.py",
    "__main__.py": "tests/architecture/test_layering.py",
    "cli.py": "tests/cli/test_structure.py",
    "cli_base.py": "tests/cli/test_structure.py",
    "cli_io.py": "tests/commands/test_weights.py",
    "commands/bench.py": "tests/use/test_bench.py",
    "commands/data.py": "tests/engine/test_augment.py",
    "commands/eval.py": "tests/train/test_loop.py",
    "commands/export.py": "tests/use/test_export.py",
    "commands/graph.py": "tests/viz/test_pictures.py",
    "commands/maps.py": "tests/viz/test_pictures.py",
    "commands/options.py": "tests/cli/test_usage_errors.py",
    "commands/plot.py": "tests/viz/test_plot.py",
    "commands/pool.py": "tests/viz/test_pictures.py",
    "commands/predict.py": "tests/use/test_predict.py",
    "commands/runs.py": "tests/runs/test_listing.py",
    "commands/schema.py": "tests/train/test_loop.py",
    "commands/summary.py": "tests/model/test_summary.py",
    "commands/sweep.py": "tests/experiment/test_sweep.py",
    "commands/train.py": "tests/train/test_loop.py",
    "commands/validate.py": "tests/corpus/test_corpus.py",
    "data/batching.py": "tests/data/test_dataset.py",
    "data/config.py": "tests/engine/test_head_losses.py",
    "data/errors.py": "tests/data/test_refusals.py",
    "data/images.py": "tests/data/test_refusals.py",
    "data/labels.py": "tests/data/test_dataset.py",
    "data/normalize.py": "tests/data/test_dataset.py",
    "data/options.py": "tests/data/test_refusals.py",
    "data/prefetch.py": "tests/data/test_lazy.py",
    "data/registry.py": "tests/data/test_dataset.py",
    "data/seeding.py": "tests/data/test_dataset.py",
    "data/shaping.py": "tests/data/test_dataset.py",
    "data/sources/builtin.py": "tests/data/test_dataset.py",
    "data/sources/cifar.py": "tests/recipes/test_cifar10_resnet18.py",
    "data/sources/function.py": "tests/data/test_dataset.py",
    "data/sources/idx.py": "tests/data/test_dataset.py",
    "data/sources/npz.py": "tests/data/test_dataset.py",
    "data/sources/shape_masks.py": "tests/engine/test_head_losses.py",
    "data/sources/shapes.py": "tests/data/test_dataset.py",
    "data/sources/text.py": "tests/data/test_sequence_sources.py",
    "data/sources/timeseries.py": "tests/data/test_sequence_sources.py",
    "data/sources/video.py": "tests/data/test_sequence_sources.py",
    "data/splits.py": "tests/data/test_dataset.py",
    "data/values.py": "tests/data/test_refusals.py",
    "engine/compile_cache.py": "tests/commands/test_check.py",
    "engine/losses.py": "tests/engine/test_head_losses.py",
    "engine/measure.py": "tests/train/test_setup.py",
    "engine/reporter.py": "tests/train/test_setup.py",
    "errors.py": "tests/cli/test_structure.py",
    "experiment/config.py": "tests/engine/test_optim.py",
    "experiment/load.py": "tests/train/test_setup.py",
    "experiment/sweep_reads.py": "tests/experiment/test_sweep.py",
    "fmt.py": "tests/ui/test_tables.py",
    "jsonout.py": "tests/architecture/test_layering.py",
    "layers/attention.py": "tests/layers/test_recurrent.py",
    "layers/base.py": "tests/contract/test_kinds.py",
    "layers/conv.py": "tests/contract/test_kinds.py",
    "layers/conv_ops.py": "tests/layers/test_pooling_ops.py",
    "layers/conv_transpose.py": "tests/layers/test_layers.py",
    "layers/dense.py": "tests/contract/test_kinds.py",
    "layers/embed.py": "tests/contract/test_kinds.py",
    "layers/init.py": "tests/hostile/test_hostile.py",
    "layers/learned.py": "tests/contract/test_kinds.py",
    "layers/merge.py": "tests/layers/test_layers.py",
    "layers/norm.py": "tests/model/test_numerics_edges.py",
    "layers/onednn/build.py": "tests/layers/test_onednn.py",
    "layers/onednn/partition.py": "tests/layers/test_onednn.py",
    "layers/onednn/choice.py": "tests/layers/test_onednn.py",
    "layers/pool.py": "tests/model/test_build.py",
    "layers/reference.py": "tests/docs/test_docs.py",
    "layers/shape.py": "tests/contract/test_kinds.py",
    "layers/tensor.py": "tests/contract/test_kinds.py",
    "layers/upsample.py": "tests/layers/test_layers.py",
    "reading.py": "tests/data/test_files.py",
    "runs/records.py": "tests/runs/test_folder.py",
    "runs/sources.py": "tests/runs/test_folder.py",
    "spec/expr.py": "tests/spec/test_inshape.py",
    "spec/frame.py": "tests/spec/test_expand.py",
    "spec/graph.py": "tests/model/test_summary.py",
    "spec/heads.py": "tests/hostile/test_trust.py",
    "spec/infer.py": "tests/model/test_summary.py",
    "spec/inputs.py": "tests/corpus/test_corpus.py",
    "spec/jsonschema.py": "tests/zoo/test_zoo.py",
    "spec/limits.py": "tests/hostile/test_hostile.py",
    "spec/lint.py": "tests/contract/test_kinds.py",
    "spec/locate.py": "tests/corpus/test_corpus.py",
    "spec/macros.py": "tests/spec/test_expand.py",
    "spec/refs.py": "tests/corpus/test_corpus.py",
    "spec/resolve.py": "tests/contract/test_kinds.py",
    "spec/schema.py": "tests/corpus/test_corpus.py",
    "spec/values.py": "tests/corpus/test_corpus.py",
    "spec/yaml_file.py": "tests/spec/test_yaml_loader.py",
    "train/tracking.py": "tests/runs/test_listing.py",
    "ui/bench_table.py": "tests/ui/test_tables.py",
    "ui/check_table.py": "tests/commands/test_check.py",
    "ui/curves.py": "tests/viz/test_plot.py",
    "ui/evaluation.py": "tests/ui/test_tables.py",
    "ui/predictions.py": "tests/ui/test_tables.py",
    "ui/progress.py": "tests/train/test_loop.py",
    "ui/render.py": "tests/cli/test_usage_errors.py",
    "ui/runs.py": "tests/ui/test_tables.py",
    "ui/summary.py": "tests/model/test_summary.py",
    "ui/train_tables.py": "tests/cli/test_new_user.py",
    "ui/weights.py": "tests/commands/test_weights.py",
    "use/estimate.py": "tests/cli/test_new_user.py",
    "use/evaluate.py": "tests/use/test_predict.py",
    "viz/examples.py": "tests/engine/test_augment.py",
    "viz/graph.py": "tests/contract/test_kinds.py",
    "viz/images.py": "tests/viz/test_pictures.py",
    "viz/maps.py": "tests/viz/test_pictures.py",
    "viz/pool.py": "tests/data/test_refusals.py",
    "weights/errors.py": "tests/weights/test_read.py",
    "weights/plan.py": "tests/weights/test_load.py",
    "weights/synthetic.py": "tests/weights/test_reference.py",
    "experiment/samplers.py": "tests/experiment/test_study.py",
    "experiment/storage.py": "tests/experiment/test_study.py",
    "ui/study_table.py": "tests/commands/test_sweep_study.py",
    "viz/study_plots.py": "tests/commands/test_sweep_study.py",
}


def own_test_file(module: Path) -> Path:
    parts = module.relative_to(PACKAGE).parts
    if len(parts) == 1:
        folder = "cli" if parts[0] in ("cli.py", "__main__.py") else "core"
        return TESTS / folder / f"test_{parts[0]}"
    return TESTS.joinpath(*parts[:-1]) / f"test_{parts[-1]}"


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_tests_where_a_reader_looks():
    untested = [str(m.relative_to(PACKAGE)) for m in modules()
                if not own_test_file(m).exists()
                and str(m.relative_to(PACKAGE)) not in TESTED_ELSEWHERE]
    assert not untested, f"no tests/<stage>/test_<module>.py and no TESTED_ELSEWHERE entry: {untested}"


def test_the_list_holds_only_what_it_must():
    known = {str(m.relative_to(PACKAGE)): m for m in modules()}
    stale = [k for k in TESTED_ELSEWHERE if k not in known]
    has_own = [k for k in TESTED_ELSEWHERE if k in known and own_test_file(known[k]).exists()]
    missing_suite = [v for v in TESTED_ELSEWHERE.values() if not (ROOT / v).exists()]
    assert not stale, f"modules that no longer exist: {stale}"
    assert not has_own, f"tested in their own file now, remove from TESTED_ELSEWHERE: {has_own}"
    assert not missing_suite, f"suites that do not exist: {missing_suite}"
