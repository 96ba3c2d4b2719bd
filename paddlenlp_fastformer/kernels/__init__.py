"""Fused C++ CPU kernels for Fastformer, with the pure-Paddle reference beside each (:mod:`.fused_ops`).

``python -m paddlenlp_fastformer.kernels`` builds them ahead of time (:mod:`.library`).
"""
