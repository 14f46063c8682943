"""The peer side of bench/dynunet_step.sh: one training step of MONAI 1.6.1's DynUNet on
PyTorch (CPU), built from the JSON that autoseg's bench_bundle_step example prints for a
bundle (network, patch, batch, loss, optimiser), and the machine's fp32 GEMM rate.

Usage: PEER_PY bench/peer_dynunet_step.py --spec STEP.json [--steps 6] [--threads 2] [--bf16]
       PEER_PY bench/peer_dynunet_step.py --gemm [--threads 2]

The step is what a MONAI user writes: DynUNet(deep_supervision=True; its heads come back
upsampled to the patch), DeepSupervisionLoss(DiceCELoss(softmax)) with its halving weights,
AdamW (or SGD as the bundle says), on a random batch; `--bf16` runs the network under
torch.autocast("cpu", bfloat16) (oneDNN's bf16 convolutions where the CPU has AVX-512 BF16),
the loss in fp32 as autoseg's mixed precision has it. Prints one JSON object: the median step
(the first left out), the losses, and the FLOPs of one step (forward and backward, counted by
torch.utils.flop_counter: convolutions and matrix products, the work a CPU's FMA units do).
`--gemm` prints the best of 5 products of two 4096 x 4096 fp32 matrices in GFLOP/s (oneDNN /
MKL, tuned to the CPU's widest vector units): the measured fp32 peak the steps are put against;
and the same product in bf16 (f32 sums), what bf16 instructions reach.
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
from monai.losses import DeepSupervisionLoss, DiceCELoss
from monai.networks.nets import DynUNet
from torch.utils.flop_counter import FlopCounterMode


def gemm_gflops(n=4096, repeats=5, dtype=torch.float32):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def network(spec):
    net = spec["network"]
    if net["name"] != "dynunet":
        raise SystemExit(f"network {net['name']} has no MONAI peer here")
    heads = net.get("deep_supervision_heads", 0)
    return DynUNet(3, net["in_channels"], net["out_channels"], net["kernel_sizes"], net["strides"],
                   net["strides"][1:], filters=net.get("filters"),
                   norm_name=("INSTANCE", {"affine": True}),
                   act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
                   deep_supervision=heads > 0, deep_supr_num=max(heads, 1), res_block=False)


def optimizer(spec, params):
    o, lr = spec["optimizer"], spec["learning_rate"]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr, momentum=o.get("momentum", 0.99),
                               nesterov=o.get("nesterov", True), weight_decay=o.get("weight_decay", 3e-5))
    if o["name"] in ("adamw", "adam_w"):
        return torch.optim.AdamW(params, lr, betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)),
                                 eps=float(o.get("eps", 1e-8)), weight_decay=o.get("weight_decay", 1e-2))
    raise SystemExit(f"optimizer {o['name']} has no peer here")


def step(a):
    spec = json.load(open(a.spec))
    torch.manual_seed(0)
    net = network(spec).train()
    opt = optimizer(spec, net.parameters())
    loss_spec = spec["loss"]["loss"]
    loss_fn = DeepSupervisionLoss(DiceCELoss(include_background=loss_spec.get("include_background", False),
                                             softmax=True, batch=loss_spec.get("batch", False)))
    b, (x, y, z), classes = spec["batch_size"], spec["patch_size"], spec["classes"]
    image = torch.randn(b, spec["network"]["in_channels"], x, y, z)
    labels = (torch.arange(b * x * y * z).reshape(b, x, y, z) * 7) % classes
    target = F.one_hot(labels, classes).permute(0, 4, 1, 2, 3).float()

    def one_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            out = net(image)
        outputs = list(torch.unbind(out.float(), 1)) if out.dim() == 6 else [out.float()]
        loss = loss_fn(outputs, target)
        loss.backward()
        opt.step()
        return loss.item()

    with FlopCounterMode(display=False) as counter:
        one_step()
    times, losses = [], []
    for _ in range(a.steps):
        t = time.perf_counter()
        losses.append(one_step())
        times.append(time.perf_counter() - t)
    print(json.dumps({"torch": torch.__version__, "mixed_precision": "bf16" if a.bf16 else "f32",
                      "step_seconds": statistics.median(times[1:]),
                      "first_loss": losses[0], "last_loss": losses[-1],
                      "parameters": sum(p.numel() for p in net.parameters()),
                      "step_flops": counter.get_total_flops()}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--spec"); p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=2); p.add_argument("--gemm", action="store_true")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.gemm:
        print(json.dumps({"torch": torch.__version__, "gemm_gflops": gemm_gflops(),
                          "gemm_bf16_gflops": gemm_gflops(dtype=torch.bfloat16)}))
    else:
        step(a)
