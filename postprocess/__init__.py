"""Snippet-to-frame expansion, temporal proposals, metrics and reports."""
