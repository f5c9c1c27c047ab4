"""The benchmark networks written by hand in Keras 3 (JAX backend). Parametrised layers are
named after the archspec node ids, so weights can be copied across by name."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402


def _bn(name):
    return L.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv(maps, k, stride, pad, name, bias=False, act=None):
    """PyTorch-style symmetric padding: explicit zero padding, then a 'valid' conv."""
    def f(x):
        if pad:
            x = L.ZeroPadding2D(pad)(x)
        return L.Conv2D(maps, k, strides=stride, padding="valid", use_bias=bias,
                        activation=act, name=name)(x)
    return f


def lenet():
    x = inp = keras.Input((8, 8, 1))
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(128, activation="relu", name="fc1")(x)
    x = L.Dropout(0.25)(x)
    return keras.Model(inp, L.Dense(10, name="logits")(x))


def cnn6():
    x = inp = keras.Input((32, 32, 3))
    i = 1
    for maps in (32, 64, 128):
        for _ in range(2):
            x = L.Conv2D(maps, 3, padding="same", activation="relu", name=f"conv{i}")(x)
            i += 1
        x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(256, activation="relu", name="fc1")(x)
    return keras.Model(inp, L.Dense(10, name="logits")(x))


def _block(x, maps, stride, bottleneck, prefix):
    p = prefix
    if bottleneck:
        y = L.ReLU()(_bn(p + "bn1")(_conv(maps, 1, 1, 0, p + "conv1")(x)))
        y = L.ReLU()(_bn(p + "bn2")(_conv(maps, 3, stride, 1, p + "conv2")(y)))
        y = _bn(p + "bn3")(_conv(maps * 4, 1, 1, 0, p + "conv3")(y))
    else:
        y = L.ReLU()(_bn(p + "bn1")(_conv(maps, 3, stride, 1, p + "conv1")(x)))
        y = _bn(p + "bn2")(_conv(maps, 3, 1, 1, p + "conv2")(y))
    if x.shape[1:] != y.shape[1:]:
        x = _bn(p + "projection_norm")(_conv(y.shape[-1], 1, stride, 0, p + "projection")(x))
    return L.ReLU()(L.Add()([x, y]))


def resnet(blocks, bottleneck, classes, cifar, size):
    x = inp = keras.Input((size, size, 3))
    if cifar:
        x = L.ReLU()(_bn("bn1")(_conv(64, 3, 1, 1, "conv1")(x)))
    else:
        x = L.ReLU()(_bn("bn1")(_conv(64, 7, 2, 3, "conv1")(x)))
        x = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(x))  # inputs >= 0 after ReLU: 0-pad = -inf pad
    kind = "bottleneck" if bottleneck else "basic"
    for s, n in enumerate(blocks):
        for j in range(n):
            x = _block(x, 64 * 2 ** s, 2 if s and not j else 1, bottleneck,
                       f"stage{s + 1}.{kind}{j + 1}.residual1.")
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(classes, name="fc")(x))


MODELS = {
    "lenet": lenet,
    "cnn6": cnn6,
    "resnet18": lambda: resnet((2, 2, 2, 2), False, 10, True, 32),
    "resnet50": lambda: resnet((3, 4, 6, 3), True, 1000, False, 224),
}


def make(name, lr=1e-3):
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    return model


def set_from_archspec(model, params, stats):
    """Copy archspec variables (by node id) into the Keras layers of the same names."""
    for layer in model.layers:
        if not layer.weights:
            continue
        p = params[layer.name]
        if isinstance(layer, L.BatchNormalization):
            s = stats[layer.name]
            layer.set_weights([p["scale"], p["bias"], s["mean"], s["var"]])
        else:
            layer.set_weights([p["kernel"]] + ([p["bias"]] if "bias" in p else []))
