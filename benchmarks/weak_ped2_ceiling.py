"""How far the weak methods on UCSD Ped2's weak split are from what their features allow (a diagnostic, not a result).

Run after ``accuracy.py --suite ped2-weak`` (it reads that workspace's ten-crop features and dataset record)::

    .venv/bin/python benchmarks/weak_ped2_ceiling.py --workdir benchmarks/results/accuracy/ped2-weak --methods mil,ddl,align

Two measurements, both reading the test clips' frame labels, so neither is a figure of record:

1. **Test-set checkpoint selection**, the protocol of the public RTFM / TEVAD code (it evaluates on the test set
   every few steps and keeps the checkpoint with the best test AUC): each method is trained as ``score`` trains it
   and its test frame AUC (16 T frames, crops' mean or maximum) is taken after every epoch; the final epoch's AUC
   (what this project reports) is printed beside the best epoch's.
2. **A supervised probe**: a logistic regression on the snippet features trained on the frame labels of every other
   clip (leave one clip out), per snippet (crops averaged) and per crop (a snippet scored by its most anomalous
   crop): how separable normal and anomalous snippets are in these features at all.
3. **Two learners from the video labels alone** (no frame labels in training): where a simple learner that sees
   what the weak methods see lands.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SNIPPET = 16


def _split(workdir: Path) -> tuple[dict[str, np.ndarray], dict[str, int], list[str], list[str], dict[str, np.ndarray]]:
    """The weak split's clips: their features ``(T, crops, D)`` (read once), video labels, the train / test names and
    each clip's frame labels ``(16 T,)`` (zeros for clips without ground truth: Ped2's normal training clips)."""
    from vad_pipeline.io.datasets import recorded_dataset
    from vad_pipeline.models.data import read_labels_csv, scan_workspace_features
    from vad_pipeline.io.ground_truth import load_many

    dataset = recorded_dataset(workdir)
    if dataset is None:
        raise SystemExit(f"{workdir}: no dataset record; run accuracy.py --suite ped2-weak first")
    truth = load_many([Path(p) for p in dataset["ground_truth"]])
    entries = read_labels_csv(Path(dataset["labels"]))
    labels = {name: entry.label for name, entry in entries.items()}
    split = {name: entry.split for name, entry in entries.items()}
    folders = sorted((workdir / "features").iterdir())
    videos = {v.name: v for v in scan_workspace_features(folders[0])}
    train = sorted(n for n in videos if split.get(n) == "train")
    test = sorted(n for n in videos if split.get(n) == "test")
    features = {name: video.load() for name, video in videos.items()}
    frames = {}
    for name, array in features.items():
        gt = truth.get(name)
        frames[name] = (gt.frame_labels(array.shape[0] * SNIPPET) if gt is not None
                        else np.zeros(array.shape[0] * SNIPPET, bool))
    return features, labels, train, test, frames


def checkpoint_curves(split: tuple, methods: list[str], seed: int) -> None:
    from vad_pipeline.models.apply import score_features
    from vad_pipeline.models.registry import get_method
    from vad_pipeline.models.data import segment_bag
    from vad_pipeline.models.score import TrainConfig, build_options
    from vad_pipeline.models.trainer import seed_everything, train_method

    features, labels, train, test, frames = split
    truth = np.concatenate([frames[n] for n in test])
    for name in methods:
        for pool in ("mean", "max"):
            cls = get_method(name)
            seed_everything(seed)
            method = cls(int(features[test[0]].shape[-1]), build_options(cls, TrainConfig(method=name, seed=seed)))
            schedule = method.default_schedule()
            # as `score` trains: every (training video, crop) one bag of `segments` mean-pooled segments
            bags = torch.from_numpy(np.stack([segment_bag(features[n][:, crop], schedule.segments)
                                              for n in train for crop in range(features[n].shape[1])]))
            bag_labels = torch.tensor([labels[n] for n in train for _ in range(features[n].shape[1])])
            curve: list[float] = []
            epoch_end = method.on_epoch_end

            def evaluate(epoch: int, normal: torch.Tensor, epoch_end=epoch_end, method=method, curve=curve) -> None:
                epoch_end(epoch, normal)
                method.eval()
                with torch.no_grad():
                    scores = np.concatenate([np.repeat(score_features(method, features[n], pool)[0], SNIPPET)
                                             for n in test])
                curve.append(float(roc_auc_score(truth, scores)))
                method.train()

            method.on_epoch_end = evaluate
            train_method(method, bags, bag_labels, dataclasses.replace(schedule), seed=seed, progress=False)
            best = int(np.argmax(curve))
            print(f"{name:6s} crops {pool:4s} seed {seed}: {len(curve)} epochs; final {curve[-1]:.3f}, "
                  f"best by the test labels {curve[best]:.3f} (epoch {best + 1}), median {np.median(curve):.3f}")


def _leave_one_clip_out(x: np.ndarray, y: np.ndarray, clip_of: np.ndarray) -> np.ndarray:
    """Decision values ``(N,)`` of samples ``x`` ``(N, D)``, each from a logistic regression fitted on the labels
    ``y`` ``(N,)`` of every other clip (``clip_of`` ``(N,)`` names each sample's clip)."""
    scores = np.zeros(len(y))
    for clip in np.unique(clip_of):
        held = clip_of == clip
        scores[held] = LogisticRegression(C=0.1, max_iter=3000).fit(x[~held], y[~held]).decision_function(x[held])
    return scores


def supervised_probe(split: tuple) -> None:
    features, _, _, test, frames = split
    clips = [n for n in features if frames[n].any() or n in test]
    crops = features[clips[0]].shape[1]
    targets = {n: frames[n].reshape(features[n].shape[0], SNIPPET).mean(axis=1) > 0.5 for n in clips}
    names = np.concatenate([np.full(len(targets[n]), n) for n in clips])
    y = np.concatenate([targets[n] for n in clips])
    is_test = np.isin(names, test)
    averaged = _leave_one_clip_out(np.concatenate([features[n].mean(axis=1) for n in clips]), y, names)
    print(f"probe, crops averaged: test snippet AUC {roc_auc_score(y[is_test], averaged[is_test]):.3f}")
    per_crop = _leave_one_clip_out(np.concatenate([features[n].reshape(-1, features[n].shape[-1]) for n in clips]),
                                   np.repeat(y, crops), np.repeat(names, crops))
    snippet_max = per_crop.reshape(-1, crops).max(axis=1)
    print(f"probe, per crop, a snippet scored by its most anomalous crop: test snippet AUC "
          f"{roc_auc_score(y[is_test], snippet_max[is_test]):.3f}")


def video_label_learners(split: tuple) -> None:
    """Two learners that, like the weak methods, see only the training clips' video labels, scored per crop with
    a snippet taken at its most anomalous crop: a logistic regression on every (snippet, crop) labelled with its
    clip's label, and each crop's cosine distance to the nearest snippet of the same crop in the normal training
    clips. If they land where the weak methods do, the limit is the weak labels, not the methods."""
    features, labels, train, test, frames = split
    truth = np.concatenate([frames[n] for n in test])
    dim = features[test[0]].shape[-1]
    x = np.concatenate([features[n].reshape(-1, dim) for n in train])
    y = np.concatenate([np.full(features[n].shape[0] * features[n].shape[1], labels[n]) for n in train])
    classifier = LogisticRegression(C=1.0, max_iter=3000).fit(x, y)
    propagated = np.concatenate([np.repeat(classifier.decision_function(features[n].reshape(-1, dim))
                                           .reshape(features[n].shape[:2]).max(axis=1), SNIPPET) for n in test])
    print(f"video labels given to every snippet, logistic regression: test frame AUC "
          f"{roc_auc_score(truth, propagated):.3f}")

    def unit(array: np.ndarray) -> np.ndarray:
        return array / np.linalg.norm(array, axis=-1, keepdims=True)

    normal = [n for n in train if labels[n] == 0]
    banks = [unit(np.concatenate([features[n][:, crop] for n in normal])) for crop in range(features[test[0]].shape[1])]
    distance = np.concatenate([np.repeat(np.max([1 - (unit(features[n][:, crop]) @ bank.T).max(axis=1)
                                                 for crop, bank in enumerate(banks)], axis=0), SNIPPET) for n in test])
    print(f"distance to the nearest normal training snippet: test frame AUC {roc_auc_score(truth, distance):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the ped2-weak suite's workspace")
    parser.add_argument("--methods", default="mil,ddl,align", help="comma-separated weak methods")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    split = _split(args.workdir)  # every clip's features read once, for every measurement
    checkpoint_curves(split, [m.strip() for m in args.methods.split(",") if m.strip()], args.seed)
    supervised_probe(split)
    video_label_learners(split)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
