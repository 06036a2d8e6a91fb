"""Accuracy on real data, in one command.

    .venv/bin/python benchmarks/accuracy.py --suite ped2|ped2-weak|fight|all [--data DIR] [--seeds 0,1,2]

- ``ped2``: the single-scene protocol for SSMTL (``ssmtl_ucsd_ped2.py``): train on the normal training clips,
  frame-level micro and macro AUC (mean ± std over ``--seeds``), RBDC / TBDC from the pixel masks, per-task rows
  (``--ablation``: each task also trained alone), the two trivial baselines (frame-difference energy, largest
  tracked-object speed) and the object coverage of the anomalous regions, in one table. ``--data`` takes the jpg
  layout of ``../shared/data/ucsd-ped2``, the original UCSD layout, Avenue or ShanghaiTech
  (``vad_pipeline.io.datasets``).
- ``ped2-weak``: the weakly supervised methods on UCSD Ped2's weakly supervised split (``weak_ped2.py``): the
  dataset root read with ``--split weak`` (ten-crop I3D features, padded tail), mil, align, ddl, xel over mil per
  seed, and two trivial baselines (feature norm, frame difference) on the same test clips.
- Both Ped2 suites run the code paths of ``vad-pipeline extract ROOT`` / ``score`` / ``report``: the frames are read
  where they are, the split, labels and ground truth come from the dataset record ``extract`` writes.
- ``fight``: weak supervision on real I3D features of composed surveillance videos (``fight_suite.py``): mil,
  align, ddl and its ablation, xel over mil, and a trivial feature-norm baseline; mean and spread over seeds.
  ``--data`` takes any folder with ``fight/`` + ``noFight/`` (or ``anomaly/`` + ``normal/``) clips.

Everything is cached under ``--workdir`` (default ``benchmarks/results/accuracy/``): a killed run resumes. Writes
``accuracy.json`` and ``accuracy.html`` (tables and a figure, self-contained) there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED = REPO.parent / "shared" / "data"


def machine() -> str:
    """The CPU (model, cores, vector and bf16 flags) and the GPU a figure was measured on."""
    import torch

    from vad_pipeline.core.devices import cpu_description

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu_description()}, {gpu}"


# The single-scene suite's settings (``--suite ped2``, and any other single-scene set with ``--data``): one set for
# every scene, nothing in it in pixels (objects and speeds are fractions of the frame; what is normal where is learnt
# from the training videos). The velocity attributes alone: no network, so nothing to train and the same scores on
# every seed. The rule that chose them (docs/results-single-scene.md): the tasks by the best mean of the four AUCs of
# both development scenes (UCSD Ped2, Avenue-8); then the object source (motion proposals, or the person detector's
# boxes with them), the smoothing sigma (3-16 frames) and the motion attribute's weight (0-0.3) by the best mean of
# the six AUCs of three development sets: Ped2, Ped2 shrunk to 238 x 158 (`benchmarks/resized_copy.py`, standing for
# lower-resolution scenes) and Avenue-8.
PED2_SETTINGS: dict[str, Any] = {"objects": "both", "crop_size": 32, "train_stride": 2, "sigma": 8.0,
                                 "tasks": ("vel", "speed", "motion"), "lr_schedule": "cosine", "mirror": True}
PED2_EPOCHS = 8  # only for network tasks (mi, mbp, aot, kd) when the settings name one


def run(suite: str, data: Path | None, workdir: Path, seeds: list[int], quick: bool, ablation: bool = False,
        device: str = "auto", precision: str = "auto", progress: bool = True) -> dict[str, Any]:
    from vad_pipeline.core.devices import resolve_device, resolve_precision

    started = time.perf_counter()
    # auto: bf16 only where this CPU (or GPU) computes it natively, else fp32; recorded with the CPU's flags
    precision = resolve_precision(precision, resolve_device(device))
    if suite == "ped2-weak":
        from weak_ped2 import print_table, run_weak

        record = run_weak(data or SHARED / "ucsd-ped2", workdir / "ped2-weak", seeds[:1] if quick else seeds,
                          precision=precision, epochs=3 if quick else None, progress=progress)
        print_table(record)
    elif suite == "ped2":
        from ssmtl_ucsd_ped2 import print_table, run_protocol

        record = run_protocol(data or SHARED / "ucsd-ped2", workdir / _ped2_folder(data), **PED2_SETTINGS,
                              epochs=1 if quick else PED2_EPOCHS, seeds=tuple(seeds[:1] if quick else seeds),
                              ablation=ablation, device=device, precision=precision, progress=progress)
        print_table(record)
    else:
        from fight_suite import print_table, run_suite

        record = run_suite(data or SHARED / "surveillance-fight",
                           workdir / ("fight" if precision == "fp32" else f"fight-{precision}"), seeds,
                           videos_per_class=8 if quick else 40, test_per_class=4 if quick else 20,
                           precision=precision, progress=progress)
        print_table(record)
    record["wall_s"] = time.perf_counter() - started
    record["precision"] = precision
    return record


def _ped2_folder(data: Path | None) -> str:
    """The ped2 suite's workspace: ``ped2`` for Ped2 itself, ``ped2-<name>`` for another scene given by ``--data``
    (so two scenes never share tracks or models)."""
    return "ped2" if data is None or Path(data).resolve() == (SHARED / "ucsd-ped2").resolve() else \
        f"ped2-{Path(data).resolve().name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("ped2", "ped2-weak", "fight", "all"), default="all")
    parser.add_argument("--data", type=Path, default=None, help="another copy of the suite's data (same layout)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "accuracy")
    parser.add_argument("--quick", action="store_true", help="fewer videos and epochs, one seed (a smoke run)")
    parser.add_argument("--ablation", action="store_true", help="ped2: also train each SSMTL task alone")
    parser.add_argument("--device", default="auto", help="ped2: where SSMTL trains (auto, cpu, cuda[:N])")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the models' precision: auto (bf16 where the CPU or GPU has it natively, else fp32); "
                             "fight: bf16 I3D results are kept as 'fight-bf16'")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.data and args.suite == "all":
        parser.error("--data points one suite at another copy of its data; choose --suite ped2 or fight")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    results_file = args.workdir / "accuracy.json"
    records = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for suite in (("ped2", "ped2-weak", "fight") if args.suite == "all" else (args.suite,)):
        record = run(suite, args.data, args.workdir, seeds, args.quick, args.ablation, args.device,
                     precision=args.precision, progress=not args.quiet)
        record.update(date=dt.datetime.now().strftime("%Y-%m-%d %H:%M"), machine=machine(),
                      command=" ".join([Path(sys.argv[0]).name] + sys.argv[1:]))
        name = (_ped2_folder(args.data) if suite == "ped2" else "ped2-weak" if suite == "ped2-weak"
                else suite if record["precision"] == "fp32" else f"{suite}-{record['precision']}")
        records[name] = record
        results_file.write_text(json.dumps(records, indent=2))
        print(f"{suite}: wall time {record['wall_s']:.0f} s")
    from vad_pipeline.postprocess.report import accuracy_page

    (args.workdir / "accuracy.html").write_text(accuracy_page(records), encoding="utf-8")
    print(f"results: {results_file}; page: {args.workdir / 'accuracy.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
