"""Plain PyTorch twins of what scripts/gpu-check.sh times in autoseg (the GPU machine has PyTorch
but no MONAI): one training step of a bundle's DynUNet, and a sliding window over a volume.

  python torch_reference.py step --spec STEP.json [--device cuda] [--steps 8]
  python torch_reference.py window [--device cuda] [--size 240,240,155] [--roi 96] [--overlap 0.5] [--sw-batch 2]

`step` reads the JSON that autoseg's bench_bundle_step example prints (network, patch, batch,
loss, optimiser, mixed precision) and builds the same step: MONAI's DynUNet (no bias in the
blocks' convolutions, affine instance norm, LeakyReLU 0.01, transposed convolutions up, 1x1x1
heads), Dice + CE over the deep-supervision outputs (halving weights, targets resized
nearest), SGD or AdamW as the bundle says, gradient clipping; bf16 autocast when autoseg ran
bf16. `window` runs the small U-Net that bench/sliding_window.sh compares (16/32/64 channels)
over a random volume with Gaussian blending (MONAI's sigma 0.125 of the window), in f32.
Each prints one JSON object with the median seconds (the first run left out).
"""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_padding(kernel, stride):
    return tuple((k + 1 - min(s, k + 1)) // 2 for k, s in zip(kernel, stride))


class BasicBlock(nn.Module):
    def __init__(self, ci, co, kernel, stride):
        super().__init__()
        self.conv1 = nn.Conv3d(ci, co, kernel, stride, same_padding(kernel, stride), bias=False)
        self.conv2 = nn.Conv3d(co, co, kernel, 1, same_padding(kernel, (1, 1, 1)), bias=False)
        self.norm1, self.norm2 = nn.InstanceNorm3d(co, affine=True), nn.InstanceNorm3d(co, affine=True)

    def forward(self, x):
        x = F.leaky_relu(self.norm1(self.conv1(x)), 0.01)
        return F.leaky_relu(self.norm2(self.conv2(x)), 0.01)


class DynUNet(nn.Module):
    """autoseg's `dynunet` network (MONAI's DynUNet) from a bundle's network config."""

    def __init__(self, net):
        super().__init__()
        k, s = net["kernel_sizes"], net["strides"]
        n = len(s)
        f = net.get("filters") or [min(32 * 2 ** i, 320) for i in range(n)]
        self.input_block = BasicBlock(net["in_channels"], f[0], k[0], s[0])
        self.downsamples = nn.ModuleList(BasicBlock(f[i - 1], f[i], k[i], s[i]) for i in range(1, n - 1))
        self.bottleneck = BasicBlock(f[n - 2], f[n - 1], k[n - 1], s[n - 1])
        self.transp = nn.ModuleList(
            nn.ConvTranspose3d(f[i + 1], f[i], s[i + 1], s[i + 1], bias=False) for i in reversed(range(n - 1)))
        self.up_blocks = nn.ModuleList(
            BasicBlock(2 * f[i], f[i], k[i + 1], (1, 1, 1)) for i in reversed(range(n - 1)))
        classes = net["out_channels"]
        self.output_block = nn.Conv3d(f[0], classes, 1)
        self.heads = nn.ModuleList(nn.Conv3d(f[i + 1], classes, 1) for i in range(net.get("deep_supervision_heads", 0)))

    def forward(self, x):
        skips = [self.input_block(x)]
        for block in self.downsamples:
            skips.append(block(skips[-1]))
        x = self.bottleneck(skips[-1])
        levels, deep = len(self.up_blocks), []
        for j, (up, block) in enumerate(zip(self.transp, self.up_blocks)):
            x = block(torch.cat([up(x), skips.pop()], 1))
            stage = levels - 1 - j
            if 1 <= stage <= len(self.heads):
                deep.append(self.heads[stage - 1](x))
        return [self.output_block(x)] + deep[::-1]


def dice_ce(logits, onehot, include_background, batch, smooth=1e-5):
    ce = -(F.log_softmax(logits, 1) * onehot).sum(1).mean()
    p = F.softmax(logits, 1)
    if not include_background:
        p, onehot = p[:, 1:], onehot[:, 1:]
    dims = (0, 2, 3, 4) if batch else (2, 3, 4)
    dice = (2 * (p * onehot).sum(dims) + smooth) / (p.sum(dims) + onehot.sum(dims) + smooth)
    return ce + 1 - dice.mean()


def optimizer_of(spec, params):
    o = spec["optimizer"]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, spec["learning_rate"], momentum=o.get("momentum", 0.99),
                               nesterov=o.get("nesterov", True), weight_decay=o.get("weight_decay", 3e-5))
    if o["name"] == "adamw":
        return torch.optim.AdamW(params, spec["learning_rate"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)),
                                 eps=o.get("eps", 1e-8), weight_decay=o.get("weight_decay", 1e-2))
    raise SystemExit(f"optimizer {o['name']} has no twin here")


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step(a):
    spec = json.load(open(a.spec))
    net_spec = spec["network"]
    if net_spec["name"] != "dynunet":
        raise SystemExit(f"network {net_spec['name']} has no twin here")
    device = torch.device(a.device)
    torch.manual_seed(0)
    net = DynUNet(net_spec).to(device)
    opt = optimizer_of(spec, net.parameters())
    loss_spec = spec["loss"]["loss"]
    b, (x, y, z), classes = spec["batch_size"], spec["patch_size"], spec["classes"]
    image = torch.randn(b, net_spec["in_channels"], x, y, z, device=device)
    labels = (torch.arange(b * x * y * z, device=device).reshape(b, x, y, z) * 7) % classes
    target = F.one_hot(labels, classes).permute(0, 4, 1, 2, 3).float()
    bf16 = spec["mixed_precision"] == "bf16" and device.type == "cuda"
    times, losses = [], []
    for _ in range(a.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            outputs = net(image)
        weights = [0.5 ** i for i in range(len(outputs))]
        loss = sum(w / sum(weights) * dice_ce(o.float(), F.interpolate(target, o.shape[2:], mode="nearest-exact"),
                                              loss_spec.get("include_background", False), loss_spec.get("batch", False))
                   for w, o in zip(weights, outputs))
        loss.backward()
        if spec.get("grad_clip_norm"):
            torch.nn.utils.clip_grad_norm_(net.parameters(), spec["grad_clip_norm"])
        opt.step()
        losses.append(loss.item())  # waits for the step, as autoseg's reading of the loss does
        synchronize(device)
        times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"torch": torch.__version__, "device": str(device), "mixed_precision": "bf16" if bf16 else "f32",
                      "step_seconds": statistics.median(times[1:]), "first_step_seconds": times[0],
                      "first_loss": losses[0], "last_loss": losses[-1], "parameters": params}))


class SmallUNet(nn.Module):
    """bench/sliding_window.sh's small U-Net (autoseg's SmallUNet): 16/32/64 channels, 3 classes."""

    def __init__(self):
        super().__init__()
        block = lambda ci, co, stride=1: BasicBlockBias(ci, co, stride)
        self.e1, self.e2, self.e3 = block(1, 16), block(16, 32, 2), block(32, 64, 2)
        self.u2, self.d2 = nn.ConvTranspose3d(64, 32, 2, 2), block(64, 32)
        self.u1, self.d1 = nn.ConvTranspose3d(32, 16, 2, 2), block(32, 16)
        self.head = nn.Conv3d(16, 3, 1)

    def forward(self, x):
        s1 = self.e1(x); s2 = self.e2(s1); b = self.e3(s2)
        y = self.d2(torch.cat([self.u2(b), s2], 1))
        return self.head(self.d1(torch.cat([self.u1(y), s1], 1)))


class BasicBlockBias(nn.Module):
    def __init__(self, ci, co, stride):
        super().__init__()
        self.c1, self.n1 = nn.Conv3d(ci, co, 3, stride, 1), nn.InstanceNorm3d(co, affine=True)
        self.c2, self.n2 = nn.Conv3d(co, co, 3, 1, 1), nn.InstanceNorm3d(co, affine=True)

    def forward(self, x):
        return F.leaky_relu(self.n2(self.c2(F.leaky_relu(self.n1(self.c1(x)), 0.01))), 0.01)


def starts(size, roi, overlap):
    if size <= roi:
        return [0]
    interval = max(int(roi * (1 - overlap)), 1)
    n = -(-(size - roi) // interval) + 1
    return sorted({min(i * interval, size - roi) for i in range(n)})


def gaussian(roi, device):
    axes = [torch.exp(-0.5 * ((torch.arange(r, device=device) - (r - 1) / 2) / (0.125 * r)) ** 2) for r in roi]
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


def sliding_window(net, image, roi, overlap, sw_batch, classes=3):
    size, device = image.shape[2:], image.device
    weight = gaussian(roi, device)
    out = torch.zeros(1, classes, *size, device=device)
    norm = torch.zeros(1, 1, *size, device=device)
    corners = [(x, y, z) for x in starts(size[0], roi[0], overlap)
               for y in starts(size[1], roi[1], overlap) for z in starts(size[2], roi[2], overlap)]
    for i in range(0, len(corners), sw_batch):
        group = corners[i:i + sw_batch]
        windows = torch.cat([image[:, :, x:x + roi[0], y:y + roi[1], z:z + roi[2]] for x, y, z in group])
        logits = net(windows)
        for (x, y, z), o in zip(group, logits):
            out[0, :, x:x + roi[0], y:y + roi[1], z:z + roi[2]] += o * weight
            norm[0, :, x:x + roi[0], y:y + roi[1], z:z + roi[2]] += weight
    return out / norm


def window(a):
    device = torch.device(a.device)
    torch.manual_seed(0)
    net = SmallUNet().to(device).eval()
    size = [int(v) for v in a.size.split(",")]
    image = torch.randn(1, 1, *size, device=device)
    times = []
    with torch.inference_mode():
        for _ in range(4):
            t = time.perf_counter()
            sliding_window(net, image, (a.roi,) * 3, a.overlap, a.sw_batch).cpu()
            synchronize(device)
            times.append(time.perf_counter() - t)
    print(json.dumps({"torch": torch.__version__, "device": str(device), "size": size,
                      "window_seconds": statistics.median(times[1:]), "first_seconds": times[0]}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step"); s.add_argument("--spec", required=True)
    w = sub.add_parser("window")
    for q in (s, w):
        q.add_argument("--device", default="cuda"); q.add_argument("--threads", type=int, default=0)
    s.add_argument("--steps", type=int, default=8)
    w.add_argument("--size", default="240,240,155"); w.add_argument("--roi", type=int, default=96)
    w.add_argument("--overlap", type=float, default=0.5); w.add_argument("--sw-batch", type=int, default=2)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    step(a) if a.what == "step" else window(a)
