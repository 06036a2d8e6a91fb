"""Top-5 Kinetics-400 classes per video from the converted I3D: a plausibility check of weights and preprocessing.

Logits are averaged over the video's 16-frame center-crop snippets (shorter side 256, center 224, RGB in [-1, 1]).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vad_pipeline.extractors.backbones import BACKBONES, load_backbone
from vad_pipeline.extractors.preprocess import resize_frames, snippet_crops
from vad_pipeline.extractors.weights import resolve_weights
from vad_pipeline.io.decode import open_video
from vad_pipeline.io.discovery import find_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--labels", type=Path, default=Path("../shared/data/kinetics400/label_map.txt"),
                        help="the 400 class names, one per line, in logit order")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    labels = args.labels.read_text().splitlines()
    model = load_backbone(BACKBONES["i3d"], resolve_weights("i3d", args.weights))
    for video in find_videos(args.videos):
        reader = open_video(video)
        logits = []
        for chunk in reader.iter_chunks(16):
            if len(chunk) < 16:
                break
            clip = snippet_crops(resize_frames(chunk, 256), 224, "center")[0]  # (16, 224, 224, 3)
            x = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 255.0 * 2 - 1
            with torch.inference_mode():
                logits.append(model(x)[0].numpy())
        mean = np.mean(logits, axis=0)
        probabilities = np.exp(mean - mean.max())
        probabilities /= probabilities.sum()
        top = np.argsort(-mean)[:5]
        print(f"{video.name}: " + ", ".join(f"{labels[i]} ({probabilities[i]:.3f})" for i in top))


if __name__ == "__main__":
    main()
