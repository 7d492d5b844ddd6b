#!/usr/bin/env python3
"""Times PyTorch on the work `verify profile --steps-only` times, at the same sizes, on the same
number of threads, and prints the two side by side. Run by hand (not part of `swift test`):

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # or: pip install torch
    swift build -c release                                              # builds verify
    python3 scripts/bench_pytorch.py [--preset cpu] [--workers N] [--ours FILE.json] [--verify PATH]

What it times, float32, torch.set_num_threads(N), N = the worker count of our figures (default:
every core, as `verify profile` uses), each the median of several calls after warm-up calls:

- the pretraining step (docs/PROTOCOL.md section 3): batch 8 slices, two intensity-augmented views
  each, one random affine phi per slice; z = phi · g(f(v)) with g's last 1x1 layer applied to the
  M = 1000 sampled rows only (after the warp of g's hidden activations, itself at those rows only),
  z' = g(f(phi · v')) the same way; the positions drawn among those whose warp source lies inside
  the image; InfoNCE on the
  L2-normalised rows (2M x 2M similarities without the diagonal, tau 0.53); backward; Adam
  (lr 4.7e-4) over backbone and projection head. BatchNorm statistics per view;
- the fine-tuning step (section 4): batch 16, intensity augmentation, backbone (training mode) and
  1x1 head, soft Dice with softmax (background included, smoothing 1e-5), backward, Adam with
  lr 5e-5 (backbone) and 1e-2 (head);
- the linear-probing step: batch 16, augmentation, the frozen backbone in evaluation mode (no
  gradient), the head forward and backward, Adam (lr 7.6e-3) on the head;
- prediction: 100 slices in evaluation mode, batches of 16, arg-max labels and the 3D Dice of each
  volume of 10 slices (RV, MYO, LV), as `evaluate` does.

The intensity augmentation is the protocol's (noise, separable Gaussian blur with reflected borders,
gamma, polynomial bias field, inversion, each with its probability), drawn per slice in Python and
applied with torch operations, as the PyTorch pipeline would. Inputs are seeded random images in
[0, 1) and random labels, as in `verify profile`.

Our figures come from `--ours FILE` (the JSON of `verify profile --steps-only --json FILE`), or
else this script runs `verify profile --preset P --steps-only --workers N --json TMP` (the binary
from --verify, or `swift build -c release --show-bin-path`). It prints the table with the ratios
PyTorch / ours, the machine (CPU model, cores), the versions and the date. The machine should be
otherwise idle: figures move 10-20% on a shared one.
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pix2rep_torch import official_unet  # noqa: E402

PRESETS = {
    # widths, D, image side, projection hidden, projection output
    "cpu": dict(widths=[16, 32, 64, 128], features=64, size=64, hidden=256, output=256),
    "smoke": dict(widths=[8, 16, 32], features=16, size=32, hidden=32, output=32),
}
CLASSES = 4
PRETRAINING_BATCH = 8
DOWNSTREAM_BATCH = 16
POSITIONS = 1000
TEMPERATURE = 0.53
PREDICTION_SLICES = 100
SLICES_PER_VOLUME = 10

# Our row names in the JSON (the pretraining row is "pretraining step (ref +)" when its reference
# time is extrapolated): matched by prefix, first match. Prediction has two rows, "prediction, 100
# slices F(2x2)" (the presets' evaluation-mode convolutions, first) and "... F(4x4)" (the faster
# --inference-convolutions winograd4x4); the first is taken.
OUR_ROWS = {
    "pretraining": "pretraining step",
    "fine-tuning": "fine-tuning step",
    "probing": "linear-probing step",
    "prediction": "prediction, 100 slices",
}


def import_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("bench_pytorch: torch is not installed (pip install torch --index-url "
                 "https://download.pytorch.org/whl/cpu, or pip install torch)")
    import torch
    return torch


# MARK: - Model (docs/PROTOCOL.md section 2)

def build_model(torch, p):
    nn = torch.nn

    backbone = official_unet(torch, 1, p["widths"], p["features"])
    projection_hidden = nn.Sequential(
        nn.Conv2d(p["features"], p["hidden"], 1), nn.BatchNorm2d(p["hidden"]), nn.ReLU(inplace=True))
    projection_last = nn.Linear(p["hidden"], p["output"])  # net.3, a 1x1 conv, on the sampled rows
    head = nn.Conv2d(p["features"], CLASSES, 1)
    return backbone, projection_hidden, projection_last, head


# MARK: - Intensity augmentation (docs/PROTOCOL.md section 3)

def sample_intensity(rng):
    params = {}
    if rng.random() < 0.3:
        params["noise"] = rng.uniform(0, 0.5)
    if rng.random() < 0.5:
        params["blur"] = (rng.uniform(0, 1.3), rng.uniform(0, 1.3))
    if rng.random() < 0.9:
        params["log_gamma"] = rng.uniform(-0.05, 0.05)
    if rng.random() < 0.75:
        params["bias"] = [rng.uniform(-0.9, 0.9) for _ in range(10)]
    params["invert"] = rng.random() < 0.35
    return params


def gaussian_taps(torch, sigma):
    radius = int(4 * sigma + 0.5)
    if radius == 0:
        return None
    k = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = torch.exp(-k * k / (2 * sigma * sigma))
    return taps / taps.sum()


def blur_axis(torch, image, taps, along_x):
    """One pass of scipy's gaussian_filter1d (mode reflect: d c b a | a b c d | d c b a)."""
    F = torch.nn.functional
    radius = (taps.numel() - 1) // 2
    x = image if along_x else image.transpose(-1, -2)
    h, w = x.shape[-2:]
    rows = x.reshape(-1, 1, w)
    # Half-sample symmetric reflection, for radii beyond the side too.
    index = torch.arange(-radius, w + radius)
    period = 2 * w
    index = torch.remainder(index, period)
    index = torch.where(index < w, index, period - 1 - index)
    padded = rows[..., index]
    out = F.conv1d(padded, taps.view(1, 1, -1)).reshape(x.shape)
    return out if along_x else out.transpose(-1, -2)


def bias_field(torch, size, coefficients):
    c = (2 * torch.arange(size, dtype=torch.float32) - (size - 1)) / (size - 1)
    y, x = torch.meshgrid(c, c, indexing="ij")
    exponents = [(i, j) for i in range(4) for j in range(4 - i)]
    p = torch.zeros(size, size)
    for coefficient, (i, j) in zip(coefficients, exponents):
        p = p + coefficient * x ** i * y ** j
    return torch.exp(p)


def augment(torch, images, rng):
    """Each slice of images (N, 1, S, S) with its own draw of the five transforms."""
    out = []
    for n in range(images.shape[0]):
        params = sample_intensity(rng)
        x = images[n]
        if "noise" in params:
            x = x + params["noise"] * torch.randn_like(x)
        if "blur" in params:
            for sigma, along_x in zip(params["blur"], (True, False)):
                taps = gaussian_taps(torch, sigma)
                if taps is not None:
                    x = blur_axis(torch, x, taps, along_x)
        if "log_gamma" in params:
            x = torch.sign(x) * torch.abs(x) ** math.exp(params["log_gamma"])
        if "bias" in params:
            x = x * bias_field(torch, x.shape[-1], params["bias"])
        if params["invert"]:
            x = 1 - x
        out.append(x)
    return torch.stack(out)


# MARK: - Spatial transform and pairing

def sample_affine(rng):
    """A = R · C · F in normalised coordinates (docs/PROTOCOL.md section 3), as a 2x3 matrix."""
    theta = rng.uniform(-math.pi / 2, math.pi / 2)
    s = rng.uniform(0.33, 0.95)
    tx, ty = rng.uniform(-(1 - s), 1 - s), rng.uniform(-(1 - s), 1 - s)
    u = rng.random()
    fx, fy = (-1, 1) if u < 0.45 else ((1, -1) if u < 0.77 else (1, 1))
    c, si = math.cos(theta), math.sin(theta)
    # R · C: rotate the zoomed, offset coordinates; F flips the input coordinates first.
    return [[c * s * fx, -si * s * fy, c * tx - si * ty], [si * s * fx, c * s * fy, si * tx + c * ty]]


def info_nce(torch, z, z_prime, temperature):
    F = torch.nn.functional
    u = F.normalize(torch.cat([z, z_prime]), dim=1)
    m = z.shape[0]
    similarity = u @ u.t() / temperature
    similarity.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(m, 2 * m), torch.arange(0, m)])
    return F.cross_entropy(similarity, targets)


def soft_dice_loss(torch, logits, labels):
    F = torch.nn.functional
    p = torch.softmax(logits, dim=1)
    y = F.one_hot(labels, CLASSES).permute(0, 3, 1, 2).to(p.dtype)
    intersection = (p * y).sum(dim=(2, 3))
    denominator = p.sum(dim=(2, 3)) + y.sum(dim=(2, 3))
    return 1 - ((2 * intersection + 1e-5) / (denominator + 1e-5)).mean()


# MARK: - Timing

def median_seconds(torch, body, reps, warmup=2):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_torch(torch, p, reps):
    torch.manual_seed(17)
    rng = random.Random(17)
    F = torch.nn.functional
    size = p["size"]
    backbone, hidden, last, head = build_model(torch, p)
    results = {}

    # Pretraining.
    slices = torch.rand(PRETRAINING_BATCH, 1, size, size)
    parameters = list(backbone.parameters()) + list(hidden.parameters()) + list(last.parameters())
    adam = torch.optim.Adam(parameters, lr=4.7e-4)
    backbone.train(), hidden.train()
    losses = []

    def pretraining_step():
        v, v_prime = augment(torch, slices, rng), augment(torch, slices, rng)
        theta = torch.tensor([sample_affine(rng) for _ in range(PRETRAINING_BATCH)])
        grid = F.affine_grid(theta, list(v.shape), align_corners=True)
        valid = (grid.abs() <= 1).all(dim=-1).flatten()
        candidates = valid.nonzero().flatten()
        positions = candidates[torch.randperm(candidates.numel())[:POSITIONS]]
        adam.zero_grad(set_to_none=True)
        h = hidden(backbone(v))
        # The warp of h at the sampled positions only (as ours, `warpGather`): per image, grid_sample
        # at its positions' grid points, then the rows put back in the positions' order.
        image_of = positions // (size * size)
        grid_rows = grid.reshape(-1, 2)[positions]
        parts, order = [], []
        for n in range(PRETRAINING_BATCH):
            mine = (image_of == n).nonzero().flatten()
            if mine.numel() == 0:
                continue
            sampled = F.grid_sample(h[n:n + 1], grid_rows[mine].view(1, 1, -1, 2), mode="bilinear",
                                    padding_mode="zeros", align_corners=True)
            parts.append(sampled[0, :, 0, :].t())
            order.append(mine)
        rows = last(torch.cat(parts)[torch.argsort(torch.cat(order))])
        h_prime = hidden(backbone(F.grid_sample(v_prime, grid, mode="bilinear", padding_mode="zeros", align_corners=True)))
        rows_prime = last(h_prime.permute(0, 2, 3, 1).reshape(-1, p["hidden"])[positions])
        loss = info_nce(torch, rows, rows_prime, TEMPERATURE)
        loss.backward()
        adam.step()
        losses.append(loss.item())

    results["pretraining"] = median_seconds(torch, pretraining_step, reps)
    print(f"  PyTorch pretraining step: {results['pretraining']:.3f} s (InfoNCE {losses[0]:.3f} at the first step; "
          f"log(2M - 1) = {math.log(2 * POSITIONS - 1):.3f} for random features)")

    # Downstream: a fresh head on the same backbone.
    images = torch.rand(DOWNSTREAM_BATCH, 1, size, size)
    labels = torch.randint(0, CLASSES, (DOWNSTREAM_BATCH, size, size))
    adam = torch.optim.Adam([
        {"params": backbone.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 1e-2}])
    backbone.train()

    def fine_tuning_step():
        x = augment(torch, images, rng)
        adam.zero_grad(set_to_none=True)
        loss = soft_dice_loss(torch, head(backbone(x)), labels)
        loss.backward()
        adam.step()

    results["fine-tuning"] = median_seconds(torch, fine_tuning_step, reps)
    print(f"  PyTorch fine-tuning step: {results['fine-tuning']:.3f} s")

    adam = torch.optim.Adam(head.parameters(), lr=7.6e-3)
    backbone.eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)

    def probing_step():
        x = augment(torch, images, rng)
        with torch.no_grad():
            features = backbone(x)
        adam.zero_grad(set_to_none=True)
        loss = soft_dice_loss(torch, head(features), labels)
        loss.backward()
        adam.step()

    results["probing"] = median_seconds(torch, probing_step, reps)
    print(f"  PyTorch linear-probing step: {results['probing']:.3f} s")

    test_images = torch.rand(PREDICTION_SLICES, 1, size, size)
    test_labels = torch.randint(0, CLASSES, (PREDICTION_SLICES, size, size))
    head.eval()

    def prediction():
        with torch.no_grad():
            predicted = torch.cat([
                head(backbone(test_images[i:i + DOWNSTREAM_BATCH])).argmax(dim=1)
                for i in range(0, PREDICTION_SLICES, DOWNSTREAM_BATCH)])
            for v in range(0, PREDICTION_SLICES, SLICES_PER_VOLUME):
                p_volume, t_volume = predicted[v:v + SLICES_PER_VOLUME], test_labels[v:v + SLICES_PER_VOLUME]
                for k in range(1, CLASSES):
                    both = ((p_volume == k) & (t_volume == k)).sum().item()
                    total = (p_volume == k).sum().item() + (t_volume == k).sum().item()
                    _ = 1.0 if total == 0 else 2 * both / total

    results["prediction"] = median_seconds(torch, prediction, max(3, reps // 2))
    print(f"  PyTorch prediction: {results['prediction']:.3f} s per {PREDICTION_SLICES} slices")
    return results


# MARK: - Our figures

def our_figures(args, workers):
    path = args.ours
    if path is None:
        binary = args.verify
        if binary is None:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            bin_path = subprocess.run(
                ["swift", "build", "-c", "release", "--show-bin-path"], cwd=root, capture_output=True, text=True,
                check=True).stdout.strip()
            binary = os.path.join(bin_path, "verify")
        if not os.path.exists(binary):
            sys.exit(f"bench_pytorch: {binary} not found; build it with `swift build -c release` or pass --verify/--ours")
        path = os.path.join(tempfile.mkdtemp(), "profile.json")
        command = [binary, "profile", "--preset", args.preset, "--steps-only", "--workers", str(workers), "--json", path]
        print("running " + " ".join(command) + " ...")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        report = json.load(f)
    figures = {}
    for key, name in OUR_ROWS.items():
        rows = [r for r in report["rows"] if r["name"].startswith(name) and "worker(s)" not in r["name"]]
        if not rows:
            sys.exit(f"bench_pytorch: no row '{name}' in {path}")
        figures[key] = rows[0]["optimizedMilliseconds"] / 1e3
    return report, figures


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model, os.cpu_count()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--workers", type=int, help="threads for both (default: our JSON's workers, else every core)")
    parser.add_argument("--ours", help="JSON written by verify profile --steps-only --json FILE")
    parser.add_argument("--verify", help="the verify binary (default: swift build -c release --show-bin-path)")
    parser.add_argument("--reps", type=int, default=7, help="timed calls per step (median)")
    args = parser.parse_args()
    torch = import_torch()

    workers = args.workers
    if workers is None and args.ours:
        with open(args.ours) as f:
            workers = json.load(f)["workers"]
    workers = workers or min(os.cpu_count() or 1, 16)
    report, ours = our_figures(args, workers)
    if report["workers"] != workers:
        print(f"note: our figures are for {report['workers']} workers, PyTorch runs on {workers} threads")
    if report["preset"] != args.preset:
        sys.exit(f"bench_pytorch: our figures are for preset {report['preset']}, not {args.preset}")
    torch.set_num_threads(workers)
    print(f"timing PyTorch {torch.__version__} on {torch.get_num_threads()} threads, float32, preset {args.preset} ...")
    theirs = bench_torch(torch, PRESETS[args.preset], args.reps)

    model, cores = machine()
    p = PRESETS[args.preset]
    print("")
    print(f"{model}, {cores} cores; {datetime.date.today().isoformat()}; PyTorch {torch.__version__} on {workers} "
          f"thread(s) vs verify profile on {report['workers']} worker(s); preset {args.preset} "
          f"({p['size']} x {p['size']}, widths {'-'.join(map(str, p['widths']))}, D = {p['features']}); medians")
    print("")
    labels = {
        "pretraining": f"pretraining step (batch {PRETRAINING_BATCH} x 2 views, InfoNCE, Adam)",
        "fine-tuning": f"fine-tuning step (batch {DOWNSTREAM_BATCH}, augmentation, soft Dice, Adam)",
        "probing": f"linear-probing step (batch {DOWNSTREAM_BATCH}, frozen backbone)",
        "prediction": f"prediction, {PREDICTION_SLICES} slices (evaluation mode)",
    }
    print("| operation | PyTorch | ours | PyTorch / ours |")
    print("|---|---|---|---|")
    for key, label in labels.items():
        print(f"| {label} | {theirs[key]:.3f} s | {ours[key]:.3f} s | {theirs[key] / ours[key]:.2f}x |")


if __name__ == "__main__":
    main()
