"""SSMTL throughput: training and inference objects/s of each network variant and crop size on random object
windows (the model's cost alone, no decoding), with the peak RSS of each measurement's own process.

    .venv/bin/python benchmarks/ssmtl_bench.py [--variants shallow-narrow,deep-wide] [--sizes 64,32]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def phase(variant: str, size: int, batch: int, steps: int, device: str = "cpu") -> dict:
    import torch

    from vad_pipeline.models.ssmtl.network import SSMTLNet
    from vad_pipeline.models.ssmtl.tasks import TASKS, task_scores, training_loss

    torch.manual_seed(0)
    where = torch.device(device)
    net = SSMTLNet(variant, 3, teacher_classes=2, teacher_features=512).to(where)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    windows = torch.rand(batch, 3, 13, size, size, device=where)
    probs = torch.rand(batch, 2, device=where)
    teacher = torch.nn.functional.normalize(torch.rand(batch, 512, device=where), dim=1)
    generator = torch.Generator().manual_seed(0)

    def synchronised() -> float:
        if where.type == "cuda":
            torch.cuda.synchronize(where)
        return time.perf_counter()

    def train_step() -> None:
        loss, _ = training_loss(net, windows, probs, teacher, TASKS, 3, 2, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_step()  # warm-up
    started = synchronised()
    for _ in range(steps):
        train_step()
    train_rate = batch * steps / (synchronised() - started)
    net.eval()
    task_scores(net, windows, probs, teacher, TASKS, 3)
    started = synchronised()
    for _ in range(steps):
        task_scores(net, windows, probs, teacher, TASKS, 3)
    infer_rate = batch * steps / (synchronised() - started)
    return {"variant": variant, "crop": size, "batch": batch, "device": device, "train_objects_per_s": train_rate,
            "infer_objects_per_s": infer_rate, "threads": torch.get_num_threads(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="shallow-narrow,shallow-wide,deep-narrow,deep-wide")
    parser.add_argument("--sizes", default="64,32")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ssmtl_bench.json")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        variant, size = args.phase.split(":")
        print(json.dumps(phase(variant, int(size), args.batch, args.steps)))
        return
    rows = []
    for variant in args.variants.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            done = subprocess.run([sys.executable, __file__, "--phase", f"{variant}:{size}", "--batch",
                                   str(args.batch), "--steps", str(args.steps)], capture_output=True, text=True,
                                  check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row = rows[-1]
            print(f"{variant:<15} {size:>3}px  train {row['train_objects_per_s']:7.1f} obj/s  "
                  f"infer {row['infer_objects_per_s']:7.1f} obj/s  peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
