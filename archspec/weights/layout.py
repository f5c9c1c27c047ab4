"""PyTorch's tensor layouts to Flax's, by archspec layer kind, and back.

A kind's tensors are `Piece`s: one tensor of the file (the module's name + `suffix`, PyTorch's
own names: weight, bias, running_mean, ...) becomes one or more variables of the node
(`targets`: (collection, path inside the node)). `load` turns the file's tensor into them,
`save` the variables back into the file's tensor; both are written with array methods and
`xp` (numpy or jax.numpy), so the file-layout shape of a spec tensor is `save` traced by
jax.eval_shape. A piece whose targets the node does not have (a conv without bias) is left
out; a piece without targets (`num_batches_tracked`) is a tensor PyTorch keeps and
archspec does not."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

P, S = "params", "batch_stats"


@dataclass(frozen=True)
class Piece:
    suffix: str                    # "" for a bare tensor (ViT's class_token)
    targets: tuple                 # ((collection, path tuple), ...)
    load: Callable | None = None   # (file tensor, xp) -> tuple of variables
    save: Callable | None = None   # (tuple of variables, xp) -> file tensor
    loose: bool = False            # any shape of the same values up to axes of size 1


def plain(suffix, collection, path):
    """A tensor that is the same array in both layouts."""
    return Piece(suffix, ((collection, path),), lambda w, xp: (w,), lambda v, xp: v[0])


def conv(n: int, bias: bool = True) -> list[Piece]:
    """Convolution: PyTorch's (O, I/groups, *k) is Flax's (*k, I/groups, O): grouped and
    depthwise kernels alike, since both put the in-group channel on the same axis."""
    spatial = tuple(range(2, 2 + n))
    to_flax = spatial + (1, 0)
    to_torch = (n + 1, n) + tuple(range(n))
    return [Piece("weight", ((P, ("kernel",)),), lambda w, xp: (w.transpose(to_flax),),
                  lambda v, xp: v[0].transpose(to_torch)),
            plain("bias", P, ("bias",))]


def conv_transpose(n: int, groups: int) -> list[Piece]:
    """Transposed convolution: PyTorch's (I, O/groups, *k) is applied as the transpose of a
    convolution; archspec applies (*k, I/groups, O) as a convolution over the stride-dilated
    input, which is PyTorch's kernel flipped in space, its channels regrouped."""
    flip = (slice(None, None, -1),) * n

    def load(w, xp):
        i, og, *k = w.shape
        g = w.reshape(groups, i // groups, og, *k)
        g = g.transpose(tuple(range(3, 3 + n)) + (1, 0, 2))
        return (g.reshape(*k, i // groups, groups * og)[flip],)

    def save(v, xp):
        *k, ig, o = v[0].shape
        g = v[0][flip].reshape(*k, ig, groups, o // groups)
        g = g.transpose((n + 1, n, n + 2) + tuple(range(n)))
        return g.reshape(groups * ig, o // groups, *k)

    return [Piece("weight", ((P, ("kernel",)),), load, save), plain("bias", P, ("bias",))]


def dense(flat: tuple | None) -> list[Piece]:
    """Linear: PyTorch's (out, in) transposed. `flat`: the (*spatial, C) map a flatten made
    the input from; PyTorch flattened it as (C, *spatial), so the input axis is reordered."""
    def load(w, xp):
        if flat:
            *sp, c = flat
            n = len(sp)
            w = w.reshape(w.shape[0], c, *sp).transpose((0,) + tuple(range(2, 2 + n)) + (1,))
            w = w.reshape(w.shape[0], -1)
        return (w.T,)

    def save(v, xp):
        w = v[0].T
        if flat:
            *sp, c = flat
            n = len(sp)
            w = w.reshape(w.shape[0], *sp, c).transpose((0, n + 1) + tuple(range(1, n + 1)))
            w = w.reshape(w.shape[0], -1)
        return w

    return [Piece("weight", ((P, ("kernel",)),), load, save), plain("bias", P, ("bias",))]


def batchnorm() -> list[Piece]:
    """BatchNorm: γ, β, and the running statistics into the `batch_stats` collection."""
    return [plain("weight", P, ("scale",)), plain("bias", P, ("bias",)),
            plain("running_mean", S, ("mean",)), plain("running_var", S, ("var",)),
            Piece("num_batches_tracked", (), None, lambda v, xp: xp.zeros((), "int64"))]


def layernorm() -> list[Piece]:
    return [plain("weight", P, ("scale",)), plain("bias", P, ("bias",))]


# the tensors of one attention module: (the fused q/k/v weight, its bias, the output
# projection's module): nn.MultiheadAttention's, and timm's `Attention` (the same packing)
ATTENTION_NAMES = {"torchvision": ("in_proj_weight", "in_proj_bias", "out_proj"),
                   "timm": ("qkv.weight", "qkv.bias", "proj")}


def attention(heads: int, source: str = "torchvision") -> list[Piece]:
    """nn.MultiheadAttention (timm's Attention: the same rows under other names): one
    in_proj of 3·D rows (query, key, value) split into Flax's (D_in, heads, D/heads)
    kernels; out_proj's (D_out, D) into (heads, D/heads, D_out)."""
    w_name, b_name, out = ATTENTION_NAMES.get(source, ATTENTION_NAMES["torchvision"])
    names = ("query", "key", "value")

    def load_w(w, xp):
        d = w.shape[0] // 3
        return tuple(w[i * d:(i + 1) * d].T.reshape(w.shape[1], heads, d // heads)
                     for i in range(3))

    def save_w(v, xp):
        return xp.concatenate([k.reshape(k.shape[0], -1).T for k in v], axis=0)

    def load_b(b, xp):
        d = b.shape[0] // 3
        return tuple(b[i * d:(i + 1) * d].reshape(heads, d // heads) for i in range(3))

    def save_b(v, xp):
        return xp.concatenate([b.reshape(-1) for b in v], axis=0)

    def load_out(w, xp):
        return (w.T.reshape(heads, w.shape[1] // heads, w.shape[0]),)

    def save_out(v, xp):
        k = v[0]
        return k.reshape(-1, k.shape[-1]).T

    return [Piece(w_name, tuple((P, (n, "kernel")) for n in names), load_w, save_w),
            Piece(b_name, tuple((P, (n, "bias")) for n in names), load_b, save_b),
            Piece(f"{out}.weight", ((P, ("out", "kernel")),), load_out, save_out),
            plain(f"{out}.bias", P, ("out", "bias"))]


def bare(path: tuple, torch_shape: Callable) -> list[Piece]:
    """A tensor stored as the module itself (ViT's class_token and pos_embedding, ConvNeXt's
    layer_scale): PyTorch keeps it with a leading batch axis of 1, or a per-channel scale
    with trailing 1s for the spatial axes; any such shape of the same values loads."""
    return [Piece("", ((P, path),), lambda w, xp: (w,), lambda v, xp: v[0].reshape(
        torch_shape(v[0].shape)), loose=True)]


def pieces(node, graph, source: str = "torchvision") -> list[Piece] | None:
    """The pieces of one node, in the layout of `source` (the map's: torchvision, timm);
    None for a kind that holds tensors no converter knows."""
    kind, o = node.kind, node.opts
    n_in = len(graph.nodes[node.inputs[0]].shape) - 1 if node.inputs else 0  # spatial axes
    if kind == "conv":
        return conv(n_in)
    if kind == "conv_transpose":
        return conv_transpose(n_in, o.groups)
    if kind == "dense":
        return dense(flattened(node, graph))
    if kind == "batchnorm":
        return batchnorm()
    if kind == "layernorm":
        return layernorm()
    if kind == "attention":
        return attention(o.heads, source)
    if kind == "parameter":
        return bare(("value",), lambda s: (1, *s))
    if kind == "positional":
        return bare(("embedding",), lambda s: (1, *s))
    if kind == "scale" and source == "timm":
        return bare(("scale",), tuple)  # timm's `gamma`: (C,)
    if kind == "scale":
        return bare(("scale",), lambda s: (*s, *(1,) * n_in))  # (C, 1, 1) on an H×W map
    if kind == "embedding":
        return [plain("weight", P, ("embedding",))]
    return None


def flattened(node, graph) -> tuple | None:
    """The spatial map (*spatial, C) a dense node's input was flattened from, through
    parameter-free layers that keep the shape (dropout, an activation); None otherwise."""
    cur = graph.nodes[node.inputs[0]]
    while cur.kind not in ("flatten", "reshape", "input"):
        if len(cur.inputs) != 1 or cur.params or cur.state:
            return None
        prev = graph.nodes[cur.inputs[0]]
        if prev.shape != cur.shape:
            return None
        cur = prev
    if cur.kind == "input" or len(cur.shape) != 1:
        return None
    src = graph.nodes[cur.inputs[0]].shape
    return tuple(src) if len(src) >= 2 else None
