"""Which words a trained classifier weighs most: the pooler's additive-attention weights over tokens.

Fastformer's classifier does not read a [CLS] token: it pools the last block's states with one more
additive attention, a softmax over the text's tokens. Those weights (``pooler_attentions``) say
how much each token contributes to the vector the classifier sees, which makes them a direct,
cheap view of what the model reads, with the usual caveat of attention weights: they show where
the pooler looks, not why the layers below made those states.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import paddle

from ..errors import UserError
from .checkpoint import truncation_length
from .plots import pyplot, save_png

__all__ = ["Explanation", "explain", "plot_explanations"]


@dataclass
class Explanation:
    """One text: its prediction, its tokens (after truncation) and the pooler's weight of each."""

    text: str
    label: str
    score: float
    tokens: list[str]
    weights: list[float]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` heaviest tokens, heaviest first (a word seen twice counts at each place)."""
        ranked = sorted(zip(self.tokens, self.weights), key=lambda pair: pair[1], reverse=True)
        return ranked[:k]

    def as_record(self, k: int) -> dict:
        return {
            "text": self.text,
            "label": self.label,
            "score": round(self.score, 4),
            "top_tokens": [{"token": token, "weight": round(weight, 4)} for token, weight in self.top(k)],
        }


@paddle.no_grad()
def explain(model, tokenizer, texts: Sequence[str]) -> list[Explanation]:
    """Predict ``texts`` one by one with ``model`` (eval mode) and return each with its pooler weights.

    One text per forward pass: a text's weights then cover exactly its own tokens, with no padding.
    """
    texts = list(texts)
    blank = [index for index, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if blank:
        raise UserError(f"text {blank[0] + 1} is empty; expected some words to explain")
    max_length = truncation_length(model, tokenizer)
    labels = model.config.id2label
    explanations = []
    for text in texts:
        ids = tokenizer(text, max_length=max_length, truncation=True, return_token_type_ids=False)["input_ids"]
        output = model(paddle.to_tensor([ids]), output_attentions=True, return_dict=True)
        probabilities = paddle.nn.functional.softmax(output.logits, axis=-1)[0].numpy()
        best = int(probabilities.argmax())
        explanations.append(
            Explanation(
                text=text,
                label=labels.get(best, labels.get(str(best), str(best))),
                score=float(probabilities[best]),
                tokens=tokenizer.convert_ids_to_tokens(ids),
                weights=[float(weight) for weight in output.pooler_attentions[0].numpy()],
            )
        )
    return explanations


def plot_explanations(explanations: Sequence[Explanation], output_path: str, top_k: int = 8) -> None:
    """One horizontal bar chart per text: its ``top_k`` heaviest tokens and their weights, as a PNG."""
    figure, axes = pyplot().subplots(len(explanations), 1, figsize=(7.5, 1.2 + 0.32 * top_k * len(explanations)), squeeze=False)
    for axis, explanation in zip(axes[:, 0], explanations):
        tokens, weights = zip(*explanation.top(top_k))
        positions = range(len(tokens))
        axis.barh(positions, weights, color="#3b75af")
        axis.set_yticks(positions, tokens, fontsize=9)
        axis.invert_yaxis()
        axis.set_xlim(0, max(weights) * 1.15)
        axis.tick_params(axis="x", labelsize=8)
        shown = explanation.text if len(explanation.text) <= 90 else explanation.text[:87] + "..."
        axis.set_title(f"\u201c{shown}\u201d\npredicted {explanation.label} ({explanation.score:.0%})", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("pooler weight (sums to 1 over the text's tokens)", fontsize=9)
    figure.tight_layout()
    save_png(figure, output_path)
