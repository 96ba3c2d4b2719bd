"""Checkpoints, training, evaluation and multi-seed experiments (scores: :mod:`fastformer_zoo.scoring`)."""
