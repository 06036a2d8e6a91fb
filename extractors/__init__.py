"""Snippet feature extractors: I3D backbones, their weights, preprocessing and the ``features`` stage."""
