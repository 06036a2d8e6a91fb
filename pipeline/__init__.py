"""vad-pipeline: end-to-end video anomaly detection.

The import package ``vad_pipeline`` is assembled from the repository's top-level folders: ``pipeline/`` (this
package: ``io`` decoding and inputs, ``core`` workspace and stages, ``commands`` the CLI, ``synthetic`` generated
data; docs/workspace.md "Code layout"), ``extractors/``, ``detectors/``, ``models/`` and ``postprocess/``.
"""

__version__ = "0.1.0"
