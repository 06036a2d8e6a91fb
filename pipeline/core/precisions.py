"""The names ``--precision`` takes, torch-free so that the command line and the config dataclasses can state them
(``devices`` turns them into autocast settings)."""

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = ("auto",) + PRECISIONS  # what every --precision option takes; auto is the default everywhere
