"""Seeded generated videos with known anomalies (``videos``) and scenes of moving objects (``objects``), for the demo
and the tests."""
