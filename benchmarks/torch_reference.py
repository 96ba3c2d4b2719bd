"""A PyTorch model of the official Fastformer equations, for alignment tests and benchmarks.

Written from the equations of the paper and the parameter layout of the authors' classification
model (``word_embedding``, ``fastformer_model.*``, ``dense_linear``), so that its state_dict is what
``tools/convert_torch_checkpoint.py --source official`` reads. Imports only torch: the benchmark's
torch fork server loads it, and a process holding torch must not import paddle
(:mod:`benchmarks.harness`). Outside the product package; the tests import it as
``benchmarks.torch_reference``.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["OfficialFastformerClassifier", "official_config_json"]


class _AdditiveSelfAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_size = num_heads, hidden_size // num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.query_att = nn.Linear(hidden_size, num_heads)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.key_att = nn.Linear(hidden_size, num_heads)
        self.transform = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        scale = self.head_size**-0.5
        q, k = self.query(x), self.key(x)
        q_heads = q.view(batch, length, self.num_heads, self.head_size)
        alpha = torch.softmax(self.query_att(q) * scale + additive_mask, dim=1)  # b n h
        global_q = torch.einsum("bnh,bnhd->bhd", alpha, q_heads).reshape(batch, 1, hidden)
        p = k * global_q
        beta = torch.softmax(self.key_att(p) * scale + additive_mask, dim=1)
        global_k = torch.einsum("bnh,bnhd->bhd", beta, p.view(batch, length, self.num_heads, self.head_size))
        u = (global_k.unsqueeze(1) * q_heads).reshape(batch, length, hidden)
        return self.transform(u) + q


class _DenseResidualNorm(nn.Module):
    """BERT's output sub-block: dense -> dropout -> LayerNorm(x + residual)."""

    def __init__(self, in_size: int, hidden_size: int, eps: float, dropout: float):
        super().__init__()
        self.dense = nn.Linear(in_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden_size, num_heads, eps, dropout):
        super().__init__()
        self.self = _AdditiveSelfAttention(hidden_size, num_heads)
        self.output = _DenseResidualNorm(hidden_size, hidden_size, eps, dropout)

    def forward(self, x, additive_mask):
        return self.output(self.self(x, additive_mask), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, hidden_size, num_heads, intermediate_size, eps, dropout):
        super().__init__()
        self.attention = _Attention(hidden_size, num_heads, eps, dropout)
        self.intermediate = _Intermediate(hidden_size, intermediate_size)
        self.output = _DenseResidualNorm(intermediate_size, hidden_size, eps, dropout)

    def forward(self, x, additive_mask):
        attended = self.attention(x, additive_mask)
        return self.output(self.intermediate(attended), attended)


class _AttentionPooling(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.att_fc1 = nn.Linear(hidden_size, hidden_size)
        self.att_fc2 = nn.Linear(hidden_size, 1)

    def forward(self, x, mask):
        weights = torch.exp(self.att_fc2(torch.tanh(self.att_fc1(x)))) * mask.unsqueeze(2)
        weights = weights / (weights.sum(dim=1, keepdim=True) + 1e-8)
        return (weights * x).sum(dim=1)


class _Encoder(nn.Module):
    def __init__(self, hidden_size, num_layers, num_heads, intermediate_size, max_positions, eps, dropout):
        super().__init__()
        self.encoders = nn.ModuleList(
            [_Layer(hidden_size, num_heads, intermediate_size, eps, dropout) for _ in range(num_layers)]
        )
        self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.poolers = nn.ModuleList([_AttentionPooling(hidden_size)])

    def forward(self, embeddings, mask):
        additive_mask = ((1.0 - mask) * -10000.0).unsqueeze(-1)  # b n 1, as the authors' extended mask
        positions = torch.arange(embeddings.shape[1], device=embeddings.device)
        x = self.dropout(self.LayerNorm(embeddings + self.position_embeddings(positions).unsqueeze(0)))
        for layer in self.encoders:
            x = layer(x, additive_mask)
        return self.poolers[0](x, mask)


class OfficialFastformerClassifier(nn.Module):
    """Embedding (padding row 0) -> official Fastformer encoder -> attention pooling -> dense_linear."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int = 5,
        hidden_size: int = 256,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 16,
        intermediate_size: int = 256,
        max_position_embeddings: int = 512,
        layer_norm_eps: float = 1e-12,
        hidden_dropout_prob: float = 0.2,
        initializer_range: float = 0.02,
    ):
        super().__init__()
        self.word_embedding = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.fastformer_model = _Encoder(
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings,
            layer_norm_eps,
            hidden_dropout_prob,
        )
        self.dense_linear = nn.Linear(hidden_size, num_labels)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=initializer_range)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.word_embedding.weight[0].zero_()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids.bool().float()
        return self.dense_linear(self.fastformer_model(self.word_embedding(input_ids), mask))


def official_config_json(hidden, depth, heads, intermediate, max_positions):
    """What the authors' fastformer.json holds for such a model."""
    return {
        "hidden_size": hidden,
        "hidden_dropout_prob": 0.0,
        "num_hidden_layers": depth,
        "hidden_act": "gelu",
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "max_position_embeddings": max_positions,
        "type_vocab_size": 2,
        "vocab_size": 100000,
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "pooler_type": "weightpooler",
    }
