"""Reference fixtures for the weight loaders (tests/weights/): PyTorch's logits for its own
models with seeded weights. Needs torch and torchvision's model code, and timm for the
timm_* models (not the test suite):

    python tools/make_weight_fixtures.py [resnet18 convnext_tiny vit_b_16 layout_net ...]

For each model it writes tests/weights/fixtures/<name>.json (the state dict's key -> shape
manifest, the seeds, the archspec spec and input shape) and <name>.npz (torch's logits
for the seeded input batch). archspec.weights.synthetic makes the state dict from the manifest and seed
with NumPy alone, so the tests rebuild the very tensors torch ran without torch."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from archspec.weights import synthetic  # noqa: E402  (NumPy only)

OUT = ROOT / "tests" / "weights" / "fixtures"
SEED, INPUT_SEED = 20260427, 7

# name: (torchvision builder, kwargs, archspec spec, input (H, W, C), map)
MODELS = {
    "resnet18": ("resnet18", {}, "architectures/resnet18.yaml", (64, 64, 3), "torchvision"),
    "resnet50": ("resnet50", {}, "architectures/resnet50.yaml", (64, 64, 3), "torchvision"),
    "convnext_tiny": ("convnext_tiny", {}, "architectures/convnext_tiny.yaml", (64, 64, 3),
                      "torchvision"),
    "vit_b_16": ("vit_b_16", {"image_size": 32}, "architectures/vit_b_16.yaml", (32, 32, 3),
                 "torchvision"),
    "alexnet": ("alexnet", {}, "architectures/alexnet.yaml", (64, 64, 3), "torchvision"),
    "vgg11_bn": ("vgg11_bn", {}, "architectures/vgg11_bn.yaml", (32, 32, 3), "torchvision"),
    "googlenet": ("googlenet", {"aux_logits": True, "init_weights": False},
                  "architectures/googlenet.yaml", (64, 64, 3), "torchvision"),
    "efficientnet_b0": ("efficientnet_b0", {}, "architectures/efficientnet_b0.yaml",
                        (64, 64, 3), "torchvision"),
    "layout_net": (None, {}, "tests/weights/specs/layout_net.yaml", (8, 8, 4),
                   "tests/weights/specs/layout_net_map.yaml"),
    # timm's models (`timm:<name>`, timm.create_model; needs timm as well)
    "timm_resnet18": ("timm:resnet18", {}, "architectures/resnet18.yaml", (64, 64, 3), "timm"),
    "timm_convnext_tiny": ("timm:convnext_tiny", {}, "architectures/convnext_tiny.yaml",
                           (64, 64, 3), "timm"),
    "timm_vit_b_16": ("timm:vit_base_patch16_224", {"img_size": 32},
                      "architectures/vit_b_16.yaml", (32, 32, 3), "timm"),
}


def torchvision_models():
    """torchvision.models, importing only its pure-PyTorch model code where its compiled ops
    do not load beside this torch (a CUDA torchvision next to a CPU torch)."""
    try:
        import torchvision.models as models
        return models
    except (RuntimeError, ImportError, OSError):
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("torchvision")
        pkg = types.ModuleType("torchvision")
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["torchvision"] = pkg
        import torchvision.models as models
        return models


def layout_net():
    from torch import nn

    class LayoutNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(4, 8, 3, padding=1, groups=2)
            self.bn1 = nn.BatchNorm2d(8)
            self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
            self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1,
                                         groups=2)
            self.fc = nn.Linear(6 * 8 * 8, 5)

        def forward(self, x):
            x = self.dw(self.bn1(self.c1(x)).relu())
            return self.fc(self.up(x).relu().flatten(1))

    return LayoutNet()


def make(name: str) -> None:
    import torch

    builder, kwargs, spec, hwc, namemap = MODELS[name]
    if builder is None:
        model = layout_net()
    elif builder.startswith("timm:"):
        torchvision_models()  # timm imports torchvision's transforms: its pure-Python code
        import timm
        model = timm.create_model(builder[5:], pretrained=False, **kwargs)
    else:
        model = getattr(torchvision_models(), builder)(weights=None, **kwargs)
    manifest = {k: list(v.shape) for k, v in model.state_dict().items()}
    tensors = synthetic.state_dict(manifest, SEED)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    model.eval()
    x = synthetic.inputs((2, hwc[2], hwc[0], hwc[1]), INPUT_SEED)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"model": name, "builder": builder, "torch": torch.__version__, "seed": SEED, "input_seed": INPUT_SEED,
            "input_nchw": list(x.shape), "spec": spec, "input_shape": list(hwc),
            "map": namemap, "manifest": manifest}
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    np.savez_compressed(OUT / f"{name}.npz", logits=logits)
    print(f"{name}: {len(manifest)} tensors, logits {logits.shape}, "
          f"|logits| max {np.abs(logits).max():.3g}")


if __name__ == "__main__":
    for n in sys.argv[1:] or list(MODELS):
        make(n)
