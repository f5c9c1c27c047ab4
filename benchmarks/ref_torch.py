"""The benchmark networks written by hand in PyTorch (eager, CPU, NCHW). Parametrised
modules are registered under the archspec node ids with '.' written as '__'."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.ModuleDict()

    def add(self, node_id, module):
        self.m[node_id.replace(".", "__")] = module
        return module


class LeNet(Named):
    def __init__(self):
        super().__init__()
        self.c1 = self.add("conv1", nn.Conv2d(1, 32, 3, padding=1))
        self.c2 = self.add("conv2", nn.Conv2d(32, 64, 3, padding=1))
        self.f1 = self.add("fc1", nn.Linear(64 * 2 * 2, 128))
        self.out = self.add("logits", nn.Linear(128, 10))
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        x = self.drop(torch.relu(self.f1(x.flatten(1))))
        return self.out(x)


class CNN6(Named):
    def __init__(self):
        super().__init__()
        chans, self.convs, ci = (32, 32, 64, 64, 128, 128), [], 3
        for i, co in enumerate(chans):
            self.convs.append(self.add(f"conv{i + 1}", nn.Conv2d(ci, co, 3, padding=1)))
            ci = co
        self.f1 = self.add("fc1", nn.Linear(128 * 4 * 4, 256))
        self.out = self.add("logits", nn.Linear(256, 10))

    def forward(self, x):
        for i, c in enumerate(self.convs):
            x = torch.relu(c(x))
            if i % 2:
                x = nn.functional.max_pool2d(x, 2)
        return self.out(torch.relu(self.f1(x.flatten(1))))


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class Block(nn.Module):
    def __init__(self, owner, prefix, ci, maps, stride, bottleneck):
        super().__init__()
        a, p = owner.add, prefix
        co = maps * 4 if bottleneck else maps
        if bottleneck:
            self.body = [a(p + "conv1", nn.Conv2d(ci, maps, 1, bias=False)), a(p + "bn1", _bn(maps)),
                         a(p + "conv2", nn.Conv2d(maps, maps, 3, stride, 1, bias=False)),
                         a(p + "bn2", _bn(maps)),
                         a(p + "conv3", nn.Conv2d(maps, co, 1, bias=False)), a(p + "bn3", _bn(co))]
        else:
            self.body = [a(p + "conv1", nn.Conv2d(ci, maps, 3, stride, 1, bias=False)),
                         a(p + "bn1", _bn(maps)),
                         a(p + "conv2", nn.Conv2d(maps, maps, 3, 1, 1, bias=False)),
                         a(p + "bn2", _bn(maps))]
        self.proj = None
        if stride != 1 or ci != co:
            self.proj = [a(p + "projection", nn.Conv2d(ci, co, 1, stride, bias=False)),
                         a(p + "projection_norm", _bn(co))]

    def forward(self, x):
        y = x
        n = len(self.body) // 2
        for i in range(n):
            y = self.body[2 * i + 1](self.body[2 * i](y))
            if i < n - 1:
                y = torch.relu(y)
        if self.proj:
            x = self.proj[1](self.proj[0](x))
        return torch.relu(x + y)


class ResNet(Named):
    def __init__(self, blocks, bottleneck, classes, cifar):
        super().__init__()
        self.cifar = cifar
        self.stem = self.add("conv1", nn.Conv2d(3, 64, 3 if cifar else 7, 1 if cifar else 2,
                                                1 if cifar else 3, bias=False))
        self.bn = self.add("bn1", _bn(64))
        self.blocks, ci = [], 64
        kind = "bottleneck" if bottleneck else "basic"
        for s, n in enumerate(blocks):
            for j in range(n):
                maps = 64 * 2 ** s
                b = Block(self, f"stage{s + 1}.{kind}{j + 1}.residual1.", ci, maps,
                          2 if s and not j else 1, bottleneck)
                self.blocks.append(b)
                ci = maps * 4 if bottleneck else maps
        self.fc = self.add("fc", nn.Linear(ci, classes))

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        if not self.cifar:
            x = nn.functional.max_pool2d(x, 3, 2, 1)
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)))


MODELS = {
    "lenet": LeNet,
    "cnn6": CNN6,
    "resnet18": lambda: ResNet((2, 2, 2, 2), False, 10, True),
    "resnet50": lambda: ResNet((3, 4, 6, 3), True, 1000, False),
}


def make(name):
    return MODELS[name]()


def make_train_step(model, lr=1e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def set_from_archspec(model, params, stats, flatten_hwc=None):
    """Copy archspec variables into the torch modules. `flatten_hwc`: (h, w, c) of the map
    flattened before the first dense layer (row order differs: NHWC vs NCHW)."""
    first_dense = True
    with torch.no_grad():
        for key, mod in model.m.items():
            node = key.replace("__", ".")
            p = {k: np.asarray(v) for k, v in params[node].items()}
            if isinstance(mod, nn.Conv2d):
                mod.weight.copy_(torch.from_numpy(p["kernel"].transpose(3, 2, 0, 1).copy()))
                if mod.bias is not None:
                    mod.bias.copy_(torch.from_numpy(p["bias"]))
            elif isinstance(mod, nn.Linear):
                k = p["kernel"]
                if first_dense and flatten_hwc:
                    h, w, c = flatten_hwc
                    k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                first_dense = False
                mod.weight.copy_(torch.from_numpy(k.T.copy()))
                mod.bias.copy_(torch.from_numpy(p["bias"]))
            elif isinstance(mod, nn.BatchNorm2d):
                s = {k: np.asarray(v) for k, v in stats[node].items()}
                mod.weight.copy_(torch.from_numpy(p["scale"]))
                mod.bias.copy_(torch.from_numpy(p["bias"]))
                mod.running_mean.copy_(torch.from_numpy(s["mean"]))
                mod.running_var.copy_(torch.from_numpy(s["var"]))
