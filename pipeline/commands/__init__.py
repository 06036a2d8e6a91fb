"""The ``vad-pipeline`` commands: the command line and what it runs beyond the stages (predict, watch, demo,
status)."""
