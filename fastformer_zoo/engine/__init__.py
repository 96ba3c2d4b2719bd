"""Checkpoints, training, evaluation, metrics and multi-seed experiments."""
