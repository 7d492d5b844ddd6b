#!/usr/bin/env python3
"""Checks a file written by `verify export-weights` against the safetensors format and against
the official Pix2Rep U-Net (docs/PROTOCOL.md section 2), run by hand (not part of `swift test`):

    pip install safetensors numpy        # required
    pip install torch                    # optional: enables the strict load into the nn.Module
    python3 scripts/check_safetensors.py FILE.safetensors [SAMPLE.safetensors]

1. Parses the header by hand (8-byte little-endian length, JSON, dtype, shape, contiguous
   data_offsets covering the data exactly).
2. Loads it with the `safetensors` library (numpy) and compares every tensor with step 1.
3. With torch: builds the official UNet structure (DoubleConv/Down/Up with the official
   attribute names, widths and D read from the file's shapes) and calls
   load_state_dict(..., strict=True), then runs a forward pass; with SAMPLE (written by
   `verify export-weights --sample`), compares PyTorch's features of its input in eval mode with
   the features this package computed (max |diff| <= 1e-4 + 1e-3 |ours|). Without torch: checks that the
   file's keys and shapes are exactly those the official module would have (computed here).
Exit status 0 only if every check passes.
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pix2rep_torch import official_unet  # noqa: E402

SIZES = {"F32": 4, "F64": 8, "I64": 8, "I32": 4, "F16": 2, "BF16": 2, "U8": 1, "I8": 1, "BOOL": 1}


def fail(message):
    print("check_safetensors: FAIL: " + message)
    sys.exit(1)


def parse_header(path):
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        fail(f"header length {n} exceeds file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = []
    for name, info in header.items():
        if info["dtype"] not in SIZES:
            fail(f"{name}: unknown dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        expected = int(np.prod(info["shape"], dtype=np.int64)) * SIZES[info["dtype"]]
        if end - begin != expected:
            fail(f"{name}: {end - begin} bytes for shape {info['shape']} {info['dtype']}")
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            fail(f"{name}: data_offsets not contiguous (begins at {begin}, expected {cursor})")
        cursor = end
    if cursor != len(data):
        fail(f"offsets cover {cursor} bytes, data holds {len(data)}")
    print(f"header: {n} bytes, {len(header)} tensors, {len(data)} data bytes, offsets contiguous; metadata {meta}")
    return header, data


def official_shapes(widths, features, channels=1):
    """The state dict keys and shapes of the official UNet (docs/PROTOCOL.md section 2)."""
    shapes = {}

    def double_conv(prefix, cin, cout):
        shapes[f"{prefix}.0.weight"] = [cout, cin, 3, 3]
        shapes[f"{prefix}.3.weight"] = [cout, cout, 3, 3]
        for bn in ("1", "4"):
            for field in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.{bn}.{field}"] = [cout]
            shapes[f"{prefix}.{bn}.num_batches_tracked"] = []

    depth = len(widths) - 1
    double_conv("inc.double_conv", channels, widths[0])
    for k in range(1, depth + 1):
        double_conv(f"down{k}.maxpool_conv.1.double_conv", widths[k - 1], widths[k])
    for k in range(1, depth + 1):
        cin = widths[depth - k + 1]
        cout = features if k == depth else widths[depth - k]
        shapes[f"up{k}.up.weight"] = [cin, cin // 2, 2, 2]
        shapes[f"up{k}.up.bias"] = [cin // 2]
        double_conv(f"up{k}.conv.double_conv", cin, cout)
    return shapes


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(64)
    path = sys.argv[1]
    header, _ = parse_header(path)
    tensors = load_file(path)
    for name, info in header.items():
        if list(tensors[name].shape) != info["shape"]:
            fail(f"{name}: safetensors library reads shape {tensors[name].shape}, header says {info['shape']}")
    print(f"safetensors library: loaded {len(tensors)} tensors, shapes agree with the header")

    channels = header["inc.double_conv.0.weight"]["shape"][1]
    widths = [header["inc.double_conv.0.weight"]["shape"][0]]
    while f"down{len(widths)}.maxpool_conv.1.double_conv.0.weight" in header:
        widths.append(header[f"down{len(widths)}.maxpool_conv.1.double_conv.0.weight"]["shape"][0])
    depth = len(widths) - 1
    features = header[f"up{depth}.conv.double_conv.3.weight"]["shape"][0]
    expected = official_shapes(widths, features, channels)
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    wrong = sorted(k for k in expected if k in header and header[k]["shape"] != expected[k])
    if missing or extra or wrong:
        fail(f"missing {missing[:5]}, unexpected {extra[:5]}, wrong shapes {wrong[:5]}")
    print(f"keys: exactly the official UNet's {len(expected)} state-dict entries (widths {widths}, D {features})")

    try:
        import torch
    except ImportError:
        print("torch: not installed; the strict load into the nn.Module was NOT run (keys and shapes checked above)")
        return

    from safetensors.torch import load_file as load_torch
    model = official_unet(torch, channels, widths, features)
    result = model.load_state_dict(load_torch(path), strict=True)
    model.eval()
    size = 2 ** depth * 4
    with torch.no_grad():
        out = model(torch.rand(1, channels, size, size))
    if list(out.shape) != [1, features, size, size] or not torch.isfinite(out).all() or (out < 0).any():
        fail(f"forward pass gave shape {list(out.shape)} or non-finite/negative values")
    if len(sys.argv) == 3:
        sample = load_torch(sys.argv[2])
        with torch.no_grad():
            theirs = model(sample["input"])
        ours = sample["features"]
        if theirs.shape != ours.shape:
            fail(f"PyTorch features {list(theirs.shape)} vs ours {list(ours.shape)}")
        excess = ((theirs - ours).abs() - (1e-4 + 1e-3 * ours.abs())).max().item()
        print(f"sample: max |PyTorch - ours| = {(theirs - ours).abs().max().item():.3g} over {ours.numel()} values (largest |ours| {ours.abs().max().item():.3g})")
        if excess > 0:
            fail("PyTorch's features of the sample input differ from this package's beyond 1e-4 + 1e-3 |ours|")
    print(f"torch {torch.__version__}: load_state_dict(strict=True) OK ({result}); forward pass (1, {channels}, {size}, {size}) -> {list(out.shape)}, finite and non-negative")


if __name__ == "__main__":
    main()
