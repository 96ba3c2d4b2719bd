"""Writing text from an export: an encoder-decoder as two static graphs, and greedy or beam search over them.

A text writer's export (``tools/export_model.py`` with ``Global.task=seq2seq``) holds two graphs where a
classifier's holds one, both on standard operators (Paddle Inference runs them; no custom kernels):

* ``generation_prefill.*``: source ``input_ids`` and ``attention_mask`` [B, M] -> the log-probabilities of
  the first target token [B, V] and the decoder's state after its start token;
* ``generation_step.*``: the newest target token [B, 1] and the state -> the log-probabilities of the next
  token and the state after it.

The state is the model's :class:`~paddlenlp_fastformer.outputs.DecoderCache` flattened in a fixed order: per
block, its self-attention's cache (Fastformer: two pools of a fixed size; the softmax Transformer: every key
and value so far) and what its cross-attention computed once from the encoder; then the real tokens seen.
Every part has the batch first, so beam search reorders the state by taking rows. Boolean parts travel as
int32. The search itself runs here in numpy, because PaddleNLP's ``generate()`` drives a dygraph model, not
a Paddle Inference predictor.
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence

import numpy as np

__all__ = ["PREFILL_PREFIX", "STEP_PREFIX", "save_generation_graphs", "GenerationPredictor", "beam_search", "greedy_search"]

PREFILL_PREFIX, STEP_PREFIX = "generation_prefill", "generation_step"
GENERATION_FILES = tuple(f"{prefix}.{ext}" for prefix in (PREFILL_PREFIX, STEP_PREFIX) for ext in ("json", "pdiparams"))


# ----------------------------------------------------------------------------------------------
# export: two graphs around the dygraph model
# ----------------------------------------------------------------------------------------------
def _graph_layers(model):
    """The prefill and step layers of ``model`` (a FastformerForConditionalGeneration in eval mode), and the
    dtype and rank of each part of the state they pass on."""
    import paddle
    import paddle.nn.functional as F
    from paddle.utils import flatten, pack_sequence_as

    config = model.config
    start_id = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    with paddle.no_grad():  # a tiny prefill and step give the state's structure, and which parts a step changes
        ids = paddle.to_tensor([[start_id, start_id]], dtype="int64")
        _, example = model(ids, paddle.ones_like(ids), decoder_input_ids=ids[:, :1], use_cache=True)
        _, stepped = model(decoder_input_ids=ids[:, :1], cache=example, use_cache=True)
    parts = flatten(example)
    structure = pack_sequence_as(example, list(range(len(parts))))  # the nesting, without the tensors
    # A tensor several blocks share (the source's mask in each cross-attention cache) travels once: a graph
    # cannot return one value twice.
    unique_index: dict = {}
    source = [unique_index.setdefault(id(part), len(unique_index)) for part in parts]  # part -> travelling part
    firsts = [source.index(index) for index in range(len(unique_index))]
    is_bool = [parts[i].dtype == paddle.bool for i in firsts]
    # What cross-attention computed once from the source goes into a step and is not returned by it (a graph
    # cannot return its own input): the step returns the parts it changes, and the caller keeps the rest.
    changed = [index for index, i in enumerate(firsts) if flatten(stepped)[i] is not parts[i]]

    def outputs(logits, cache, kept=range(len(firsts))):
        flat = flatten(cache)
        # Booleans leave as int32 through a where: a plain cast of one (as of Paddle 3.3.1) left Paddle Inference
        # without that output ("fetch_name_N is not found in the scope").
        state = [paddle.where(flat[firsts[index]], 1, 0).astype("int32") if is_bool[index] else flat[firsts[index]] for index in kept]
        return [F.log_softmax(logits[:, -1].astype("float32"), axis=-1), *state]

    class Prefill(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            start = paddle.full_like(input_ids[:, :1], start_id).reshape([-1, 1])  # reshaped: a static length of 1
            return outputs(*self.model(input_ids, attention_mask, decoder_input_ids=start, use_cache=True))

    class Step(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, token, state):
            state = [part.astype("bool") if flag else part for part, flag in zip(state, is_bool)]
            cache = pack_sequence_as(structure, [state[index] for index in source])
            return outputs(*self.model(decoder_input_ids=token, cache=cache, use_cache=True), changed)

    layout = [(paddle.int32 if flag else parts[i].dtype, len(parts[i].shape)) for i, flag in zip(firsts, is_bool)]
    return Prefill(), Step(), layout, changed


def save_generation_graphs(model, directory: str) -> dict:
    """Write the prefill and step graphs of ``model`` into ``directory``; returns, for the export's inference
    config, how many parts the state has and which of them a step returns (in that order)."""
    import paddle

    prefill, step, layout, changed = _graph_layers(model)
    source = [paddle.static.InputSpec([None, None], "int64", name) for name in ("input_ids", "attention_mask")]
    paddle.jit.save(paddle.jit.to_static(prefill, input_spec=source, full_graph=True), os.path.join(directory, PREFILL_PREFIX))
    state = [paddle.static.InputSpec([None] * rank, dtype, f"state_{index}") for index, (dtype, rank) in enumerate(layout)]
    token = paddle.static.InputSpec([None, 1], "int64", "token")
    paddle.jit.save(paddle.jit.to_static(step, input_spec=[token, state], full_graph=True), os.path.join(directory, STEP_PREFIX))
    return {"state_parts": len(state), "step_changes": changed}


# ----------------------------------------------------------------------------------------------
# search: numpy over a step function (token ids [R] and state -> log-probabilities [R, V], state)
# ----------------------------------------------------------------------------------------------
def greedy_search(first_log_probs: np.ndarray, state: list, step, end_id: int, max_new_tokens: int) -> np.ndarray:
    """[B, T] ids, each row the most likely token at every step until its end token (then padding ``end_id``)."""
    rows = len(first_log_probs)
    tokens, done = [], np.zeros(rows, dtype=bool)
    log_probs = first_log_probs
    for _ in range(max_new_tokens):
        chosen = np.where(done, end_id, log_probs.argmax(axis=-1))
        tokens.append(chosen)
        done |= chosen == end_id
        if done.all() or len(tokens) == max_new_tokens:
            break
        log_probs, state = step(chosen, state)
    return np.stack(tokens, axis=1)


def beam_search(first_log_probs: np.ndarray, state: list, step, end_id: int, max_new_tokens: int, num_beams: int) -> np.ndarray:
    """[B, T] ids: per row, the finished sequence of highest total log-probability among ``num_beams`` beams
    (the best unfinished one where none finished within ``max_new_tokens``). A sequence's score is the sum of
    its tokens' log-probabilities, its end token included (PaddleNLP's beam search with length_penalty 0)."""
    rows, vocab = first_log_probs.shape
    beams = min(num_beams, vocab)
    first = np.argsort(-first_log_probs, axis=-1, kind="stable")[:, :beams]  # b k
    scores = np.take_along_axis(first_log_probs, first, axis=-1)  # b k
    sequences = first[:, :, None]  # b k t
    finished: List[list] = [[] for _ in range(rows)]  # per row: (score, sequence)
    state = [np.repeat(part, beams, axis=0) for part in state]  # rows b*k
    for length in range(1, max_new_tokens + 1):
        ended = sequences[:, :, -1] == end_id
        for row, beam in zip(*np.nonzero(ended & np.isfinite(scores))):
            finished[row].append((scores[row, beam], sequences[row, beam]))
        scores = np.where(ended, -np.inf, scores)
        if length == max_new_tokens or all(_settled(finished[row], scores[row], beams) for row in range(rows)):
            break
        log_probs, state = step(sequences[:, :, -1].reshape(-1), state)
        candidates = (scores[:, :, None] + log_probs.reshape(rows, beams, vocab)).reshape(rows, -1)  # b k*v
        best = np.argsort(-candidates, axis=-1, kind="stable")[:, :beams]
        parent, token = best // vocab, best % vocab
        scores = np.take_along_axis(candidates, best, axis=-1)
        sequences = np.concatenate([np.take_along_axis(sequences, parent[:, :, None], axis=1), token[:, :, None]], axis=2)
        taken = (parent + np.arange(rows)[:, None] * beams).reshape(-1)
        state = [part[taken] for part in state]
    return _best_sequences(finished, scores, sequences, end_id)


def _settled(finished: list, alive_scores: np.ndarray, beams: int) -> bool:
    """True once ``beams`` sequences finished and no live beam can beat the worst of them (log-probabilities
    only fall as a sequence grows)."""
    if len(finished) < beams:
        return not np.isfinite(alive_scores).any()
    kept = sorted(score for score, _ in finished)[-beams:]
    return not (alive_scores > kept[0]).any()


def _best_sequences(finished: list, scores: np.ndarray, sequences: np.ndarray, end_id: int) -> np.ndarray:
    chosen = []
    for row, done in enumerate(finished):
        chosen.append(max(done, key=lambda item: item[0])[1] if done else sequences[row, int(np.argmax(scores[row]))])
    width = max(len(sequence) for sequence in chosen)
    return np.stack([np.pad(sequence, (0, width - len(sequence)), constant_values=end_id) for sequence in chosen])


# ----------------------------------------------------------------------------------------------
# the predictor
# ----------------------------------------------------------------------------------------------
class _StaticGraph:
    """One exported graph on Paddle Inference (CPU): arrays in, arrays out, in the graph's own order."""

    def __init__(self, model_dir: str, prefix: str, cpu_threads: int):
        from paddle import inference

        config = inference.Config(os.path.join(model_dir, f"{prefix}.json"), os.path.join(model_dir, f"{prefix}.pdiparams"))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads)
        config.disable_mkldnn()
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(name) for name in self.predictor.get_input_names()]
        self.outputs = [self.predictor.get_output_handle(name) for name in self.predictor.get_output_names()]

    def __call__(self, *arrays: np.ndarray) -> list:
        for handle, array in zip(self.inputs, arrays):
            handle.reshape(array.shape)
            handle.copy_from_cpu(np.ascontiguousarray(array))
        self.predictor.run()
        return [handle.copy_to_cpu() for handle in self.outputs]


class GenerationPredictor:
    """Writes a summary (a review's title) of each text with a text writer's export, on Paddle Inference.

    Args:
        model_dir: a directory ``tools/export_model.py`` wrote for a ``Global.task=seq2seq`` model.
        cpu_threads: threads of the matrix products (default: every core).
        batch_size: texts per generation batch; texts are batched by length.
    """

    def __init__(self, model_dir: str, cpu_threads: Optional[int] = None, batch_size: int = 32):
        from ...tokenizer import FastformerTokenizer

        with open(os.path.join(model_dir, "inference_config.json"), encoding="utf-8") as handle:
            self.config = json.load(handle)
        threads = cpu_threads or os.cpu_count() or 1
        self.prefill = _StaticGraph(model_dir, PREFILL_PREFIX, threads)
        self.step_graph = _StaticGraph(model_dir, STEP_PREFIX, threads)
        self.tokenizer = FastformerTokenizer.from_pretrained(model_dir)
        self.batch_size = batch_size
        self.max_seq_len = self.config["max_seq_len"]

    def _step(self, tokens: np.ndarray, state: list):
        log_probs, *changed = self.step_graph(tokens.reshape(-1, 1).astype("int64"), *state)
        state = list(state)
        for index, part in zip(self.config["step_changes"], changed):
            state[index] = part
        return log_probs, state

    def generate_ids(self, input_ids: np.ndarray, attention_mask: np.ndarray, num_beams: int = 1, max_new_tokens: Optional[int] = None) -> np.ndarray:
        """[B, T] generated ids of one batch of source ids (padded with ``end`` after each row's end token)."""
        max_new_tokens = max_new_tokens or self.config["max_target_len"]
        log_probs, *state = self.prefill(input_ids.astype("int64"), attention_mask.astype("int64"))
        end_id = self.config["eos_token_id"]
        if num_beams > 1:
            return beam_search(log_probs, state, self._step, end_id, max_new_tokens, num_beams)
        return greedy_search(log_probs, state, self._step, end_id, max_new_tokens)

    def generate(self, texts: Sequence[str], num_beams: int = 1, max_new_tokens: Optional[int] = None) -> List[str]:
        """One summary per text, in the texts' order."""
        from ..engine.summaries import detokenize

        order = np.argsort([len(text.split()) for text in texts], kind="stable")
        summaries: List[str] = [""] * len(texts)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in rows], max_length=self.max_seq_len, truncation=True, padding=True,
                                   return_token_type_ids=False, return_tensors="np")  # fmt: skip
            ids = self.generate_ids(batch["input_ids"], batch["attention_mask"], num_beams, max_new_tokens)
            for row, generated in zip(rows, ids):
                summaries[row] = detokenize(self.tokenizer, generated)
        return summaries
