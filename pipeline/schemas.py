"""Schema names of the files several parts of the package write and read (one place, so writers and readers
cannot drift apart)."""

SCORES_SCHEMA = "vad-pipeline/scores/1"  # scores/<method>-<hash>/<key>.json sidecars (weak methods, SSMTL, baselines)
