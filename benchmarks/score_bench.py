"""Training and scoring time of each weakly supervised method on a UCF-Crime-sized synthetic feature set.

Training: 1610 videos (810 anomalous + 800 normal, as UCF-Crime's training split), 32-segment bags, D = 2048,
each method's default schedule unless --epochs is given. Scoring: 290 test videos (UCF-Crime's test split) of
--test-length snippets each. Each method runs in its own subprocess; peak RSS is that process's maximum.
Prints a table and writes JSON to benchmarks/results/score_bench.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def run_method(method: str, epochs: int | None, dim: int, test_length: int, seed: int) -> dict:
    import numpy as np
    import torch

    from vad_pipeline.models.registry import get_method
    from vad_pipeline.models.trainer import seed_everything, train_method

    rng = np.random.default_rng(seed)
    n_anomalous, n_normal, segments = 810, 800, 32
    bags = rng.normal(size=(n_anomalous + n_normal, segments, dim)).astype(np.float32)
    direction = (rng.random(dim) < 0.25).astype(np.float32)
    for index in range(n_anomalous):  # a few shifted segments per anomalous bag
        start = int(rng.integers(0, segments - 4))
        bags[index, start : start + 4] += 0.5 * direction
    labels = torch.tensor([1] * n_anomalous + [0] * n_normal)
    method_cls = get_method(method)
    seed_everything(seed)
    model = method_cls(dim, method_cls.Options())
    schedule = model.default_schedule()
    if epochs is not None:
        schedule.epochs = epochs
    started = time.perf_counter()
    history = train_method(model, torch.from_numpy(bags), labels, schedule, seed=seed, progress=False)
    train_seconds = time.perf_counter() - started
    del bags
    test = torch.from_numpy(rng.normal(size=(290, test_length, dim)).astype(np.float32))
    started = time.perf_counter()
    with torch.no_grad():
        for video in test:
            model.outputs(video[None])
    score_seconds = time.perf_counter() - started
    return {
        "epochs": len(history.epochs), "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / len(history.epochs),
        "score_seconds": score_seconds, "snippets_per_second": 290 * test_length / score_seconds,
        "first_loss": history.epochs[0]["loss"], "last_loss": history.epochs[-1]["loss"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["mil", "align", "ddl", "xel"])
    parser.add_argument("--epochs", type=int, default=None, help="override every method's epochs")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--test-length", type=int, default=256, help="snippets per test video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/score_bench.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_method(args.one, args.epochs, args.dim, args.test_length, args.seed)))
        return
    rows = {}
    for method in args.methods:
        command = [sys.executable, __file__, "--one", method, "--dim", str(args.dim), "--test-length",
                   str(args.test_length), "--seed", str(args.seed)]
        if args.epochs is not None:
            command += ["--epochs", str(args.epochs)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{method} failed:\n{result.stderr[-2000:]}")
        rows[method] = json.loads(result.stdout.strip().splitlines()[-1])
        row = rows[method]
        print(f"{method:<6} epochs {row['epochs']:>4}  train {row['train_seconds']:8.1f} s "
              f"({row['seconds_per_epoch']:.2f} s/epoch)  score {row['snippets_per_second']:10.0f} snippets/s  "
              f"loss {row['first_loss']:.3f}->{row['last_loss']:.3f}  peak RSS {row['peak_rss_mb']:.0f} MB",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "dim": args.dim, "test_length": args.test_length}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
