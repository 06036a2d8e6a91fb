"""SSMTL (Georgescu et al., CVPR 2021): object-centric self-supervised multi-task learning; see ``runner``."""

from .objects import ObjectConfig
from .runner import SSMTLConfig, SSMTLSummary, score_ssmtl, train_ssmtl
from .tasks import TASKS

__all__ = ["ObjectConfig", "SSMTLConfig", "SSMTLSummary", "score_ssmtl", "train_ssmtl", "TASKS"]
