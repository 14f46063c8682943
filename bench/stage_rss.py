#!/usr/bin/env python3
"""Runs a command (`autoseg run ...`) and reports the peak resident memory and the seconds of
each of its stages: the stages are the `[name]` lines it prints ([analyze], [generate],
[train], ...), memory is its process tree's resident set, sampled every 0.2 s from /proc.

    bench/stage_rss.py LOG -- autoseg run -i task.yaml -w W --time-budget 3600

The command's output goes to LOG; the table goes to stdout. Linux only.
"""

import os
import re
import subprocess
import sys
import threading
import time

STAGE = re.compile(r"^\[(\w[\w-]*)\]")


def tree_rss_kb(root):
    """Resident kB of `root` and every descendant."""
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    log_path, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    started = time.monotonic()
    stages = [["(start)", started, 0]]  # name, start, peak kB
    lock = threading.Lock()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )

    def sample():
        while proc.poll() is None:
            rss = tree_rss_kb(proc.pid)
            with lock:
                stages[-1][2] = max(stages[-1][2], rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with open(log_path, "w") as log:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            match = STAGE.match(line)
            if match:
                with lock:
                    stages.append([match.group(1), time.monotonic(), 0])
    code = proc.wait()
    sampler.join()
    ended = time.monotonic()
    print(f"{'stage':<12} {'peak RSS (MB)':>14} {'seconds':>9}")
    for i, (name, start, peak) in enumerate(stages):
        end = stages[i + 1][1] if i + 1 < len(stages) else ended
        if name == "(start)" and end - start < 0.5:
            continue
        print(f"{name:<12} {peak / 1024:>14.0f} {end - start:>9.1f}")
    print(f"{'all':<12} {max(s[2] for s in stages) / 1024:>14.0f} {ended - started:>9.1f}")
    sys.exit(code)


if __name__ == "__main__":
    main()
