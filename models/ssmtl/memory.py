"""SSMTL's object memories: how unlike every normal training object an object looks (task ``knn``, appearance) or
moves (task ``vel``, velocity).

The teacher's appearance features of all training objects form the memory; an object's score is the mean cosine
distance of its own teacher feature to its ``k`` nearest neighbours there. It is the non-parametric counterpart
of the distillation task (``kd``), which asks a student network to reproduce the teacher on normal objects and
reads its error as novelty: here the normal objects themselves are the model, so a class the scene never showed
in training (a cart, a bicycle, a skateboard) is far from all of them however its motion looks. Training objects
are scored against the other training videos only (their own video would hold themselves and their track
neighbours at distance ~0), which gives the scale the test scores are standardised with.

Two memories read each object's speed and place (:func:`vad_pipeline.detectors.flow.speed_and_place`: the 90th
percentile of the optical flow in its box, in frame heights per frame, and its box centre):

- ``vel``, the same density estimate with the Euclidean distance (each column standardised by the training
  objects' mean and spread): an object moving at a speed never seen at that place, or somewhere no training
  object ever was (someone on the lawn beside a walkway);
- ``speed``, the excess speed (``metric="excess"``): how many standard deviations faster the object moves than the
  ``k`` (64) training objects nearest to its place. One-sided, and local, so the perspective of a scene (far
  walkers are slower in pixels than near ones) is learnt rather than assumed: a cyclist, a skater, a runner or a
  car is fast *for where it is*.
"""

from __future__ import annotations

import numpy as np
import torch

KNN_K = 3  # neighbours averaged; 1, 3 and 10 rank Ped2's objects alike (0.911 / 0.911 / 0.908 micro AUC joint)


METRICS = ("cosine", "euclidean", "excess")
EXCESS_FLOOR = 1e-3  # frame heights per frame: the least spread of the neighbours' speeds (a still place's is ~0)


class ObjectMemory:
    """Features ``(N, F)`` of the training objects (the teacher's, L2-normalised, compared by cosine distance; or
    speed and place, ``detectors.flow.speed_and_place``, by Euclidean distance after standardising each column by
    the training objects' mean and standard deviation) and the video each comes from."""

    def __init__(self, bank: torch.Tensor, videos: torch.Tensor, device: torch.device, k: int = KNN_K,
                 metric: str = "cosine", center: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        """``bank`` ``(N, F)`` features (already standardised with ``center`` / ``scale`` ``(F,)`` when given) and
        ``videos`` ``(N,)`` the index of the video each comes from (as a model bundle stores them)."""
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: choose one of {METRICS}")
        self.bank, self.videos, self.k, self.metric = bank.float().to(device), videos.long().to(device), k, metric
        features = self.bank.shape[1]
        self.center = (center if center is not None else torch.zeros(features)).float().to(device)
        self.scale = (scale if scale is not None else torch.ones(features)).float().to(device)

    @classmethod
    def of_videos(cls, features: list[np.ndarray], device: torch.device, k: int = KNN_K,
                  metric: str = "cosine") -> "ObjectMemory":
        """The memory of training videos: one ``(n_v, F)`` feature array per video (Euclidean: standardised)."""
        bank = torch.from_numpy(np.concatenate(features).astype(np.float32))
        videos = torch.from_numpy(np.repeat(np.arange(len(features)), [len(f) for f in features]))
        center = scale = None
        if metric == "euclidean":  # the excess compares raw speeds among neighbours in place (frame heights)
            center, scale = bank.mean(0), bank.std(0).clamp_min(1e-6)
            bank = (bank - center) / scale
        return cls(bank, videos, device, k, metric, center, scale)

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        """What a model bundle keeps of the memory, under ``prefix`` (``from_state`` reads it back)."""
        return {f"{prefix}.{name}": getattr(self, name).cpu() for name in ("bank", "videos", "center", "scale")}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], prefix: str, device: torch.device, metric: str,
                   k: int = KNN_K) -> "ObjectMemory":
        return cls(state[f"{prefix}.bank"], state[f"{prefix}.videos"], device, k, metric,
                   state.get(f"{prefix}.center"), state.get(f"{prefix}.scale"))

    def __len__(self) -> int:
        return len(self.bank)

    @torch.inference_mode()
    def distances(self, features: torch.Tensor, exclude_videos: torch.Tensor | None = None) -> torch.Tensor:
        """``(B,)`` per feature ``(B, F)`` its mean distance to its ``k`` nearest training objects (``excess``: its
        speed's z-score among the ``k`` training objects nearest in place, columns 1:); with ``exclude_videos``
        ``(B,)`` the objects of that training video are left out for that row."""
        features = (features.float().to(self.bank.device) - self.center) / self.scale
        if self.metric == "cosine":
            distance = 1.0 - features @ self.bank.T
        else:
            columns = slice(1, None) if self.metric == "excess" else slice(None)
            distance = torch.cdist(features[:, columns], self.bank[:, columns],
                                   compute_mode="donot_use_mm_for_euclid_dist")
        if exclude_videos is not None:
            distance = distance.masked_fill(exclude_videos.view(-1, 1) == self.videos.view(1, -1), float("inf"))
        k = min(self.k, distance.shape[1])
        nearest = distance.topk(k, dim=1, largest=False)
        if self.metric != "excess":
            return nearest.values.mean(dim=1)
        speeds = self.bank[nearest.indices, 0]  # (B, k)
        valid = torch.isfinite(nearest.values).float()  # an excluded video's objects are never neighbours
        count = valid.sum(dim=1).clamp_min(1.0)
        mean = (speeds * valid).sum(dim=1) / count
        spread = (((speeds - mean[:, None]) ** 2 * valid).sum(dim=1) / count).sqrt()
        return (features[:, 0] - mean) / spread.clamp_min(EXCESS_FLOOR)
