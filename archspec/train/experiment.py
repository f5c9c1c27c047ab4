"""One way to load what a training runs: an experiment file (with `--set` overrides), a bare
architecture with a built-in data set, or the run folder of a run to resume."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archspec.spec.graph import Graph
from archspec.spec.yaml_loader import YMap
from archspec.train import config as C
from archspec.train.config import Experiment
from archspec.train.reporter import Warn, ignore


@dataclass(frozen=True)
class LoadedExperiment:
    exp: Experiment
    graph: Graph
    arch_text: str
    root: YMap | None = None            # the YAML tree; errors point at its lines (None: resume)
    experiment_file: str | None = None  # the experiment file, fingerprinted in the run folder
    run_dir: Path | None = None         # the run folder it was loaded from (resume)

    @property
    def config(self) -> dict:
        """The resolved experiment as written to the run's config.yaml."""
        return self.exp.model_dump(mode="json")


def load(file: str | Path | None = None, overrides: list[str] | None = None,
         data: str | None = None, resume: str | Path | None = None,
         input_shape=None, warn: Warn = ignore) -> LoadedExperiment:
    """`file`: an experiment YAML, or an architecture YAML (then `data` names the data set,
    default shapes). `resume`: a run folder, rebuilt from its own files (its changed data
    files are told to `warn`). `data` given with an experiment file replaces its data.name."""
    if resume is not None:
        from archspec.train.evaluate import load_run

        exp, graph, arch_text = load_run(resume, warn)
        return LoadedExperiment(exp, graph, arch_text, run_dir=Path(resume))
    overrides = list(overrides or [])
    if C.is_architecture_file(file):
        exp, root = C.experiment_for_architecture(str(file), data, overrides)
        exp_path = None
    else:
        if data is not None:
            overrides.append(f"data.name={data}")
        exp, root = C.load_experiment(file, overrides)
        exp_path = str(file)
    graph, arch_text = C.architecture_graph(exp, exp_path, root, input_shape=input_shape)
    return LoadedExperiment(exp, graph, arch_text, root, exp_path)


def graph_of(file: str | Path, input_shape=None) -> Graph:
    """The network of an architecture file, or of an experiment file (whose experiment keys,
    data options and `variables:` are checked on the way): what summary, graph, bench and
    validate show."""
    root = C.load_yaml_file(file)
    if not (isinstance(root, dict) and "architecture" in root):
        from archspec.spec.resolve import load_architecture  # its errors name what is missing

        return load_architecture(file, input_shape=input_shape)
    return load(file, input_shape=input_shape).graph


def prepare_loaded(loaded: LoadedExperiment, smoke: bool = False):
    """The Setup of a loaded experiment (data loaded, model built, everything checked)."""
    from archspec.train.loop import prepare

    return prepare(loaded.exp, loaded.graph, loaded.arch_text, loaded.config, smoke=smoke,
                   root=loaded.root, experiment_file=loaded.experiment_file)
