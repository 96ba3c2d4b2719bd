"""Real PyTorch reference models, their weights randomised so that every mapping is exercised, and batches.

Used by the alignment and conversion tests: fast-transformer-pytorch 0.0.4 from PyPI, and the
package's PyTorch model of the official equations.
"""
from __future__ import annotations

import numpy as np
import torch
from fast_transformer_pytorch import FastTransformer

from benchmarks.torch_reference import OfficialFastformerClassifier


def randomise_(model: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """Perturb every parameter (LayerNorm and biases too) so a mis-mapped or untransposed one shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name == "word_embedding.weight":  # the official padding row stays zero, as trained ones do
                parameter[1:] += scale * torch.randn(parameter[1:].shape, generator=generator)
            else:
                parameter += scale * torch.randn(parameter.shape, generator=generator)
    return model


def lucidrains_model(vocab, dim, depth, heads, dim_head, max_seq_len, absolute, seed=0):
    torch.manual_seed(seed)
    model = FastTransformer(
        num_tokens=vocab,
        dim=dim,
        depth=depth,
        max_seq_len=max_seq_len,
        heads=heads,
        dim_head=dim_head,
        absolute_pos_emb=absolute,
    )
    return randomise_(model, seed + 1).eval()


def official_model(vocab, hidden, depth, heads, intermediate, max_positions, num_labels=5, seed=0):
    torch.manual_seed(seed)
    model = OfficialFastformerClassifier(
        vocab_size=vocab,
        num_labels=num_labels,
        hidden_size=hidden,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=0.0,
    )
    return randomise_(model, seed + 1).eval()


def padded_batch(vocab, lengths, seq_len, seed):
    """Token ids >= 1 for real tokens, 0 (padding) after each row's length, and the 0/1 mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(len(lengths), seq_len))
    mask = np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]
    return np.where(mask, ids, 0).astype("int64"), mask


def state_dict_numpy(model: torch.nn.Module):
    return {key: value.detach().numpy() for key, value in model.state_dict().items()}
