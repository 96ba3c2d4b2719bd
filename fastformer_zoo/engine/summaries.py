"""Evaluation of a text -> summary model (a review's title): it writes a summary of every text of a pairs split
with ``generate()``, and ROUGE-1/2/L (the ``rouge-score`` package, Porter stemming, F-measure) scores them
against the references."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import numpy as np
import paddle
from tqdm import tqdm

from paddlenlp_fastformer.file_utils import write_text_atomically
from paddlenlp_fastformer.modeling import FastformerForConditionalGeneration

from ..data.pairs import read_pairs
from ..data.readers import check_texts
from ..scoring import rouge_scores
from ..settings import Config
from .checkpoint import load_checkpoint, truncation_length
from .runtime import set_cpu_threads

__all__ = ["detokenize", "summaries_in_batches", "write_summaries", "evaluate_summaries"]

def detokenize(tokenizer, ids: Sequence[int]) -> str:
    """Words up to the end token (the tokenizer splits on words, so they are joined by spaces)."""
    words = []
    for token_id in ids:
        if token_id in (tokenizer.sep_token_id, tokenizer.pad_token_id):
            break
        words.append(tokenizer.convert_ids_to_tokens(int(token_id)))
    return " ".join(words)


def summaries_in_batches(texts: Sequence[str], tokenizer, max_length: int, batch_size: int, generate_ids) -> List[str]:
    """A summary of each text, in the texts' order: texts go in batches of similar length to ``generate_ids(input_ids,
    attention_mask)`` (numpy in, generated ids [B, T] out), by the checkpoint's generate() or an export's graphs."""
    check_texts(texts)  # an empty one would reach generate() as a prompt of no token
    order = np.argsort([len(text.split()) for text in texts], kind="stable")
    summaries: List[str] = [""] * len(texts)
    for start in tqdm(range(0, len(texts), batch_size), desc="summaries", leave=False, mininterval=5):
        rows = order[start : start + batch_size]
        batch = tokenizer([texts[i] for i in rows], max_length=max_length, truncation=True, padding=True,
                          return_tensors="np", return_token_type_ids=False)  # fmt: skip
        for row, generated in zip(rows, generate_ids(batch["input_ids"], batch["attention_mask"])):
            summaries[row] = detokenize(tokenizer, generated)
    return summaries


@paddle.no_grad()
def write_summaries(model, tokenizer, texts: Sequence[str], batch_size: int, max_new_tokens: int, num_beams: int = 1) -> List[str]:
    """A summary of each text by the model's ``generate()``: greedy, or beam search of ``num_beams``."""
    model.eval()
    strategy = {"decode_strategy": "beam_search", "num_beams": num_beams} if num_beams > 1 else {"decode_strategy": "greedy_search"}

    def generate_ids(input_ids, attention_mask):
        ids, _ = model.generate(paddle.to_tensor(input_ids), attention_mask=paddle.to_tensor(attention_mask),
                                max_new_tokens=max_new_tokens, **strategy)  # fmt: skip
        return ids.numpy()

    return summaries_in_batches(texts, tokenizer, truncation_length(model, tokenizer), batch_size, generate_ids)


def evaluate_summaries(config: Config, num_beams: int = 1) -> dict:
    """ROUGE of ``Global.checkpoint``'s summaries of ``Data.eval_file`` (or the test split); with
    ``Global.predictions_file``, every text's summary and reference are written there (JSON lines)."""
    model, tokenizer = load_checkpoint(config.global_.checkpoint, "Global.checkpoint", FastformerForConditionalGeneration)
    set_cpu_threads(config.global_.num_threads)
    eval_path = config.data.eval_file or str(Path(config.data.data_dir) / config.data.test_file)
    pairs = read_pairs(eval_path, "evaluation file")
    texts, references = [pair["text"] for pair in pairs], [pair["summary"] for pair in pairs]
    predictions = write_summaries(model, tokenizer, texts, config.data.eval_batch_size, config.data.max_target_len, num_beams)
    if config.global_.predictions_file:
        lines = "".join(json.dumps({"summary": p, "reference": r}, ensure_ascii=False) + "\n" for p, r in zip(predictions, references))
        write_text_atomically(config.global_.predictions_file, lines)
    return {"file": eval_path, "num_examples": len(pairs), "num_beams": num_beams, **rouge_scores(predictions, references)}
