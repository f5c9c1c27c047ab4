"""`archspec maps RUN IMAGE`: what chosen layers of a trained network compute for one input.

The picture is resized to the architecture's input, mapped onto the pixel range the run was
trained on (digits are 0..16, photos 0..255) and normalised with the run's own statistics;
a `.npy` array is taken as raw data values of that range. One forward pass in Flax with
`mutable=["intermediates"]` returns every node's output; each chosen layer becomes a grid
of its first 32 feature maps."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.errors import did_you_mean
from archspec.viz import PictureInputError
from archspec.viz.images import image_array, is_array_file, read_npy

MAX_LAYERS = 4
MAX_MAPS = 32


@dataclass
class LayerMaps:
    node_id: str
    kind: str
    description: str
    values: np.ndarray  # the node's output for the one example, without the batch axis


def choose_layers(graph, names: list[str]) -> list[str]:
    """Node ids for --layer names (full dotted ids or their last part); default: the first
    MAX_LAYERS layers whose kind makes feature maps (conv)."""
    from archspec.layers import REGISTRY

    if not names:
        convs = [n.id for n in graph.layers if REGISTRY[n.kind].feature_maps]
        if not convs:
            spatial = [n.id for n in graph.layers if n.shape and len(n.shape) >= 2][:8]
            raise PictureInputError(f"{graph.name} has no feature-map (conv) layers to show",
                           "choose layers with --layer NAME" +
                           (f", e.g. {', '.join(spatial)}" if spatial else
                            f"; its layers: {', '.join(n.id for n in graph.layers[:8])}"))
        return convs[:MAX_LAYERS]
    out = []
    for name in names:
        if name in graph.nodes and graph.nodes[name].kind != "input":
            out.append(name)
            continue
        matches = [n.id for n in graph.layers if n.id.rsplit(".", 1)[-1] == name
                   or n.id.endswith("." + name)]
        if len(matches) == 1:
            out.append(matches[0])
            continue
        if matches:
            raise PictureInputError(f"layer '{name}' is ambiguous: {', '.join(matches[:6])}",
                           "give the full dotted name")
        ids = [n.id for n in graph.layers]
        hint = did_you_mean(name, ids + [i.rsplit(".", 1)[-1] for i in ids])
        raise PictureInputError(f"{graph.name} has no layer '{name}'",
                       hint or f"its layers: {', '.join(ids[:12])}" +
                       (", ..." if len(ids) > 12 else ""))
    return list(dict.fromkeys(out))


def raw_range(dataset, sample: int = 4096) -> tuple[float, float]:
    """The range of the training pixels before normalisation (digits: 0..16)."""
    from archspec.data import PIXELS, normalization_terms

    x = dataset.train.x[:sample]
    terms = normalization_terms(dataset.norm_stats or {"kind": "none"})
    if x.dtype != PIXELS and terms is not None:  # raw pixels are not normalised yet
        x = np.asarray(x, np.float32) * terms[1] + terms[0]
    return float(x.min()), float(x.max())


def prepare_input(path: Path, shape: tuple, dataset, invert: bool = False) -> np.ndarray:
    """(1, *shape) float32, normalised like the run's training data."""
    from archspec.data import apply_normalization

    if is_array_file(path):
        a = read_npy(path)
        if a.ndim == len(shape) + 1 and a.shape[0] == 1:
            a = a[0]
        if a.ndim == len(shape) - 1 and shape[-1] == 1:
            a = a[..., None]
        if tuple(a.shape) != tuple(shape):
            raise PictureInputError(f"{path} has shape {tuple(a.shape)}, the network reads {tuple(shape)}",
                           "save one example with the architecture's input shape")
        if invert:
            lo, hi = raw_range(dataset)
            a = lo + hi - a
    else:
        if len(shape) != 3 or shape[-1] not in (1, 3):
            raise PictureInputError(f"this network reads {tuple(shape)}, not an image",
                           "pass one example as a .npy array of that shape")
        a = image_array(path, channels=shape[-1], size=(shape[0], shape[1]))
        if invert:
            a = 1.0 - a
        lo, hi = raw_range(dataset)
        a = lo + a * (hi - lo)
    return apply_normalization(a[None].astype(np.float32), dataset.norm_stats)


def feature_maps(run_dir: Path, image: Path, layers: list[str], which: str = "best",
                 invert: bool = False, warn=None):
    """(maps per chosen layer, prediction text or None, checkpoint used)."""
    import jax
    import jax.numpy as jnp

    from archspec.model.build import OUT
    from archspec.use.evaluate import load_state
    from archspec.engine.reporter import ignore
    from archspec.viz.graph import describe

    setup, state, which = load_state(run_dir, which, warn or ignore)
    graph = setup.graph
    chosen = choose_layers(graph, layers)
    (inp,) = graph.inputs.values()
    x = prepare_input(Path(image), tuple(inp.shape), setup.dataset, invert)
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    outputs, inter = setup.model.apply(variables, jnp.asarray(x), train=False,
                                       mutable=["intermediates"])
    inter = jax.device_get(inter["intermediates"])
    maps = [LayerMaps(nid, graph.nodes[nid].kind, describe(graph.nodes[nid], graph),
                      np.asarray(inter[OUT + nid][0][0], dtype=np.float32)) for nid in chosen]
    return maps, _prediction(setup, jax.device_get(outputs)), which


def _prediction(setup, outputs) -> str | None:
    from archspec.layers.activation import head_output

    head = setup.heads[0]
    logits = np.asarray(outputs[head.head][0], dtype=np.float64).reshape(-1)
    if head.kind != "categorical_crossentropy" or logits.size < 2:
        return None
    p = np.asarray(head_output("softmax", logits), np.float64)  # class probabilities
    k = int(p.argmax())
    names = setup.dataset.class_names
    name = names[k] if names and k < len(names) else str(k)
    return f"{name} ({100 * p[k]:.1f}%)"


def output_paths(output: Path, maps: list[LayerMaps]) -> list[Path]:
    if len(maps) == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{m.node_id}{output.suffix}") for m in maps]


def plot_layer(m: LayerMaps, output: Path, caption: str = "") -> Path:
    from archspec.viz import pyplot, save_figure
    from archspec.fmt import fmt_dims

    plt = pyplot()
    v = m.values
    if v.ndim == 4:               # (time, h, w, c): the middle frame
        v = v[v.shape[0] // 2]
    title = f"{m.node_id}  ·  {m.description}  ·  output {fmt_dims(m.values.shape)}"
    if v.ndim == 3:
        n = min(v.shape[-1], MAX_MAPS)
        cols = min(8, n)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols + 0.4, 1.45 * rows + 0.8),
                                 dpi=100, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= n:
                ax.axis("off")
                continue
            ax.imshow(v[..., k], cmap="viridis", interpolation="nearest")
            ax.set_title(f"map {k}", fontsize=7, pad=2)
        if v.shape[-1] > n:
            title += f"  (first {n} of {v.shape[-1]} maps)"
    else:
        fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
        if v.ndim == 2:           # (length, channels): channels as rows
            im = ax.imshow(v[:, :MAX_MAPS].T, aspect="auto", cmap="viridis",
                           interpolation="nearest")
            ax.set_xlabel("position")
            ax.set_ylabel("channel")
            fig.colorbar(im, ax=ax)
        else:                     # a vector: one bar per unit
            flat = v.reshape(-1)[:256]
            ax.bar(np.arange(len(flat)), flat, color="#3d85c6")
            ax.set_xlabel("unit")
            ax.set_ylabel("value")
    fig.suptitle(title + (f"\n{caption}" if caption else ""), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, output)
