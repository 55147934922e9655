"""Collapse Lab's trainer: datasets, models, objectives, remedies, metrics and the loop.

Pure PyTorch; never imports the server. Nothing happens on import.
"""

__version__ = "0.1.0"
