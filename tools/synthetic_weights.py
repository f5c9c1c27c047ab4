"""Write the seeded state dict of a reference fixture as a file, without torch: the very
tensors tools/make_weight_fixtures.py gave PyTorch's model (for trying `archspec weights`,
and for make docs):

    python tools/synthetic_weights.py resnet18 resnet18.safetensors
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from archspec.weights import read, synthetic  # noqa: E402

if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    meta = json.loads((ROOT / "tests" / "weights" / "fixtures" / f"{name}.json").read_text())
    read.write_tensors(synthetic.state_dict(meta["manifest"], meta["seed"]), out)
