"""``python -m vad_pipeline`` is ``vad-pipeline``."""

import sys

from .commands.cli import main

sys.exit(main())
