"""One way to load what a training runs: an experiment file (with `--set` overrides), a bare
architecture with a built-in data set, or the run folder of a run to resume."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archspec.errors import ArchspecError, ErrorCollector, Pos
from archspec.spec.graph import Graph
from archspec.spec.locate import validate
from archspec.spec.resolve import load_architecture_text, resolve
from archspec.spec.yaml_file import read_yaml_text
from archspec.spec.yaml_loader import YMap, load_yaml_file
from archspec.experiment import config as C
from archspec.experiment import documents
from archspec.experiment.config import Experiment
from archspec.engine.reporter import Warn, ignore
from archspec.runs.files import RunFolderError
from archspec.runs.sources import changed_sources


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
        exp, graph, arch_text = load_run(resume, warn)
        return LoadedExperiment(exp, graph, arch_text, run_dir=Path(resume))
    return from_document(documents.load(file), list(overrides or []), data, input_shape)


def from_document(doc: documents.Document, overrides: list[str], data=None,
                  input_shape=None) -> LoadedExperiment:
    """The experiment of an architecture or experiment document (any other kind is refused)."""
    if doc.kind == "architecture":
        exp, root = C.experiment_for_architecture(str(doc.path), data, overrides)
        exp_path = None
    elif doc.kind == "experiment":
        if data is not None:
            overrides.append(f"data.name={data}")
        exp, root = C.load_experiment(doc.path, overrides, doc.root)
        exp_path = str(doc.path)
    else:
        raise NotTrainable(f"{doc.path} is a {doc.kind}, not an experiment or an architecture",
                           _HOW_TO_RUN[doc.kind], pos=Pos(str(doc.path), 1, 1))
    graph, arch_text = C.architecture_graph(exp, exp_path, root, input_shape=input_shape)
    return LoadedExperiment(exp, graph, arch_text, root, exp_path)


def graph_of(file: str | Path | documents.Document, input_shape=None) -> Graph:
    """The network of an architecture file, or of an experiment file (whose experiment keys,
    data options and `variables:` are checked on the way): what summary, graph, bench and
    validate show."""
    doc = file if isinstance(file, documents.Document) else documents.load(file)
    if doc.kind == "architecture":
        return resolve(doc.root, filename=str(doc.path), input_shape=input_shape)
    return from_document(doc, [], input_shape=input_shape).graph


class NotTrainable(ArchspecError):
    """A sweep file or a run folder given where one network is meant (exit 2)."""


_HOW_TO_RUN = {
    "sweep": "run its points with `archspec sweep FILE`; `archspec summary` takes the "
             "experiment file it names",
    "run": "resume it with `archspec train --resume RUN`, score it with `archspec eval RUN`",
}


def load_run(run_dir: Path, warn: Warn = ignore):
    """(Experiment, Graph, arch_text) from a run folder: config.yaml + architecture.yaml.
    Data or experiment files changed since the run started are told to `warn`."""
    run_dir = Path(run_dir)
    cfg_path, arch_path = run_dir / "config.yaml", run_dir / "architecture.yaml"
    if not cfg_path.exists() or not arch_path.exists():
        raise RunFolderError(f"{run_dir} is not a run folder (no config.yaml / architecture.yaml)",
                             "pass a folder like runs/<experiment>/<timestamp>")
    # validated as an experiment file is (spec.locate): a key that does not validate is a
    # located error; the checks of a new experiment against its data are not rerun
    root, errors = load_yaml_file(cfg_path), ErrorCollector()
    exp = validate(Experiment, root, root, errors, "", Pos(str(cfg_path), 1, 1),
                   "the run's experiment")
    errors.raise_if_any()
    text = read_yaml_text(arch_path)
    graph = load_architecture_text(text, str(arch_path))
    warn_changed_sources(run_dir, warn)
    return exp, graph, text


_warned: set = set()


def warn_changed_sources(run_dir: Path, warn: Warn) -> None:
    """Name every data (or experiment) file that moved or changed since the run started,
    once per process: the run folder's config is used as it is, the change is not silent."""
    if warn is ignore:  # nobody to tell: keep the once-per-process warning for a caller who is
        return
    for message in changed_sources(run_dir):
        if (str(Path(run_dir).resolve()), message) not in _warned:
            _warned.add((str(Path(run_dir).resolve()), message))
            warn(message, "this run uses its own config.yaml; results may differ from the "
                          "original run's")
