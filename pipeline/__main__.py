"""``python -m vad_pipeline`` is ``vad-pipeline``."""

import sys

from .cli import main

sys.exit(main())
