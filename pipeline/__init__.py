"""vad-pipeline: end-to-end video anomaly detection.

The import package ``vad_pipeline`` is assembled from the repository's top-level folders:
``pipeline/`` (this core: CLI, config, workspace and cache, stage runner, decoding), ``extractors/``,
``detectors/``, ``models/`` and ``postprocess/``.
"""

__version__ = "0.1.0"
