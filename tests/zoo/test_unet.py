"""U-Net (architectures/unet.yaml): the parameter count derived by hand from the 2015 layout
equals the real Flax variables, any input divisible by 16 works, and another size is refused
at the concat that cannot join its skip."""
from __future__ import annotations

from archspec.model.summary import summarize
from archspec.spec.resolve import load_architecture

from zoo.test_zoo import ARCH, cli

UNET = ARCH / "unet.yaml"


def conv(k: int, cin: int, cout: int) -> int:
    """A k×k conv (or up-conv) with bias: k·k·cin·cout weights + cout biases."""
    return k * k * cin * cout + cout


def unet_params(channels: int = 1, classes: int = 2, widths=(64, 128, 256, 512, 1024)) -> int:
    """Down: each level two 3×3 convs (cin -> w, w -> w). Up, from the bottom: a 2×2 up-conv
    w -> w/2, the skip (w/2 maps) concatenated so the first 3×3 conv reads w maps again,
    w -> w/2, then w/2 -> w/2. Last: a 1×1 conv to the classes. Pools and concats have none."""
    total, cin = 0, channels
    for w in widths:
        total += conv(3, cin, w) + conv(3, w, w)
        cin = w
    for w in reversed(widths[1:]):
        total += conv(2, w, w // 2) + conv(3, w, w // 2) + conv(3, w // 2, w // 2)
    return total + conv(1, widths[0], classes)


def test_hand_count():
    # 64: 640 + 36,928; 128: 73,856 + 147,584; 256: 295,168 + 590,080;
    # 512: 1,180,160 + 2,359,808; 1024: 4,719,616 + 9,438,208 (the bottom);
    # up to 512: 2,097,664 + 4,719,104 + 2,359,808; to 256: 524,544 + 1,179,904 + 590,080;
    # to 128: 131,200 + 295,040 + 147,584; to 64: 32,832 + 73,792 + 36,928; 1×1: 130
    assert unet_params() == 31_030_658


def test_summary_equals_the_hand_count():
    result = cli("summary", str(UNET), "--depth", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("trainable parameters"))
    assert int(line.split()[-1].replace(",", "")) == unet_params()
    assert "256×256×2  softmax" in result.stdout


def test_any_input_divisible_by_16():
    graph = load_architecture(UNET, input_shape=(128, 128, 1))
    s = summarize(graph)
    assert s.trainable == unet_params()
    assert graph.nodes["logits"].shape == (128, 128, 2)
    assert graph.nodes["bottom.double1.conv2"].shape == (8, 8, 1024)


def test_input_not_divisible_by_16_is_refused_at_the_concat():
    result = cli("summary", str(UNET), "--input-shape", "100,100,1")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    # 100 -> 50 -> 25 -> 12 -> 6 down; 6 -> 12 -> 24 up meets the 25×25 skip of enc3
    assert "unet.yaml:27:" in out and "up2.concat1" in out
    assert "(25, 25, 256)" in out and "(24, 24, 256)" in out
