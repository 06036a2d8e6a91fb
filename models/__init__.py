"""Anomaly scoring methods, one class per method behind a registry."""
