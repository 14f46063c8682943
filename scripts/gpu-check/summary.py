"""Writes scripts/gpu-check.sh's summary (markdown, on stdout) from the checks' logs in OUT.

  python3 summary.py OUT

Ends with 'all checks passed' when every check exited 0 and gave its figures.
"""
import json, pathlib, re, sys

out = pathlib.Path(sys.argv[1])
failed = []


def status(name):
    path = out / f"{name}.status"
    if not path.exists():
        failed.append(name)
        return "not run", ""
    code, seconds = path.read_text().split()
    if code != "0":
        failed.append(name)
    return ("ok" if code == "0" else f"exit {code}" + (" (timed out)" if code == "124" else "")), seconds


def log(name):
    path = out / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def last_json(name):
    for line in reversed(log(name).splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    failed.append(f"{name} figures")
    return None


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


lines = ["# autoseg GPU check", "", "```", (out / "machine.txt").read_text().strip(), "```", ""]
lines += ["| check | status | seconds |", "|---|---|---|"]
for name in ["cuda-tests", "demo", "analyze-cpu", "analyze-gpu", "analyze-same", "evaluate-cpu", "evaluate-gpu", "evaluate-same", "predict-gpu", "predict-cpu", "predict-agree", "step-autoseg", "step-torch", "window-autoseg", "window-torch"]:
    s, secs = status(name)
    lines.append(f"| {name} | {s} | {secs} |")

tests = re.findall(r"test result: (\w+)\. (\d+) passed; (\d+) failed", log("cuda-tests"))
lines += ["", "## CUDA kernels against their CPU twins", ""]
lines += [f"test result: {r}, {p} passed, {f} failed" for r, p, f in tests] or ["no test result (see cuda-tests.log)"]
lines += [l for l in log("cuda-tests").splitlines()
          if l.startswith("test ") and not l.startswith("test result") and not l.endswith("ok")]

lines += ["", "## Phantom demo", ""]
demo = log("demo")
lines += [l.strip() for l in demo.splitlines() if "mixed precision" in l][:1]
lines += [l.strip() for l in demo.splitlines() if "ensemble Dice" in l] or ["no Dice (see demo.log)"]

lines += [l.strip() for l in log("evaluate-gpu").splitlines() if l.startswith(("metrics on", "label"))]
for stage, file in [("analyze", "datastats.yaml"), ("evaluate", "summary.yaml")]:
    same = out / f"{stage}-same.status"
    same = same.exists() and same.read_text().split()[0] == "0"
    lines.append(f"{stage} on the GPU: the CPU's {file}, byte for byte" if same
                 else f"{stage} on the GPU: {file} differs from the CPU's (see {stage}-same.log)")

lines += ["", "## Prediction on the GPU against the CPU's (the demo's ensemble)", ""]
agree = re.findall(r"label\s+(\d+): Dice (\S+)", log("predict-agree"))
lines += [f"label {k}: Dice {d} between the two label maps" for k, d in agree] or ["no Dice (see predict-agree.log)"]
if not agree or any(d != "NaN" and float(d) < 0.99 for _, d in agree):
    failed.append("predict: GPU and CPU labels differ")

a, t = last_json("step-autoseg"), last_json("step-torch")
lines += ["", "## Training step of the Task04 plan (DynUNet, random batch)", ""]
if a and t:
    lines += ["| | autoseg | PyTorch |", "|---|---|---|",
              f"| step, s (median) | {a['step_seconds']:.4f} | {t['step_seconds']:.4f} |",
              f"| first step, s | {a['first_step_seconds']:.3f} | {t['first_step_seconds']:.3f} |",
              f"| precision | {a['mixed_precision']} | {t['mixed_precision']} |",
              f"| parameters | {a['parameters']} | {t['parameters']} |",
              f"| loss first -> last | {a['first_loss']:.4f} -> {a['last_loss']:.4f} | {t['first_loss']:.4f} -> {t['last_loss']:.4f} |",
              "", f"autoseg's step takes {ratio(a['step_seconds'], t['step_seconds'])} PyTorch's time "
              f"(patch {a['patch_size']}, batch {a['batch_size']}, {a['device']})."]
    if a["parameters"] != t["parameters"]:
        failed.append("step: parameter counts differ")

a, t = last_json("window-autoseg"), last_json("window-torch")
lines += ["", "## Sliding window (small U-Net, Gaussian blending, f32)", ""]
if a and t:
    lines += [f"autoseg {a['sliding_window_seconds']:.3f} s, PyTorch {t['window_seconds']:.3f} s over {t['size']}: "
              f"{ratio(a['sliding_window_seconds'], t['window_seconds'])} PyTorch's time ({a['device']})."]

lines += ["", "all checks passed" if not failed else "FAILED: " + ", ".join(failed)]
print("\n".join(lines))
