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

from ..errors import UserError, one_line
from .export_format import INFERENCE_CONFIG_FILE, INPUT_NAMES

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
    after_step = flatten(stepped)
    changed = [index for index, i in enumerate(firsts) if after_step[i] is not parts[i]]

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
    source = [paddle.static.InputSpec([None, None], "int64", name) for name in INPUT_NAMES]
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


def beam_search(
    first_log_probs: np.ndarray, state: list, step, end_id: int, pad_id: int, max_new_tokens: int, num_beams: int,
    length_penalty: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """[B, T] ids: per row, the best of ``num_beams`` beams, as PaddleNLP 2.8.1's ``generate(decode_strategy=
    "beam_search")`` chooses it (so that an export writes what ``tools/eval.py`` writes from the checkpoint):

    * each step keeps the ``num_beams`` best continuations of all beams, by total log-probability;
    * a continuation that ends (the end token, among the best ``num_beams`` candidates) becomes a finished
      title scored ``total / ((length + 5) / 6) ** length_penalty``, its length counting the tokens before the
      end token; a row stops once it has ``num_beams`` of them and no live beam could score higher;
    * at ``max_new_tokens`` the live beams join the finished ones, and the best score wins.
    """
    rows, vocab = first_log_probs.shape
    beams = num_beams
    scores = np.full((rows, beams), -np.inf, dtype=np.float32)
    scores[:, 0] = 0  # every beam starts from the start token: only one of them may continue it
    sequences = np.zeros((rows, beams, 0), dtype=np.int64)
    finished = [_FinishedTitles(beams, length_penalty) for _ in range(rows)]
    done = np.zeros(rows, dtype=bool)
    state = [np.repeat(part, beams, axis=0) for part in state]  # rows b*k
    log_probs = np.repeat(first_log_probs, beams, axis=0)
    for generated in range(max_new_tokens):
        if generated:
            log_probs, state = step(sequences[:, :, -1].reshape(-1), state)
        candidates = (scores[:, :, None] + log_probs.reshape(rows, beams, vocab)).reshape(rows, -1)  # b k*v
        best = np.argsort(-candidates, axis=-1, kind="stable")[:, : 2 * beams]
        scores = np.zeros((rows, beams), dtype=np.float32)  # a finished row continues with padding, from beam 0
        tokens, parents = np.full((rows, beams), pad_id, dtype=np.int64), np.zeros((rows, beams), dtype=np.int64)
        for row in np.nonzero(~done)[0]:
            kept = 0
            for rank, index in enumerate(best[row]):
                parent, token = divmod(int(index), vocab)
                if token == end_id:
                    if rank < beams:
                        finished[row].add(sequences[row, parent], candidates[row, index])
                    continue
                scores[row, kept], tokens[row, kept], parents[row, kept] = candidates[row, index], token, parent
                kept += 1
                if kept == beams:
                    break
            done[row] = finished[row].settled(candidates[row, best[row, 0]], generated)
        sequences = np.concatenate([np.take_along_axis(sequences, parents[:, :, None], axis=1), tokens[:, :, None]], axis=2)
        state = [part[(parents + np.arange(rows)[:, None] * beams).reshape(-1)] for part in state]
        if done.all():
            break
    for row in np.nonzero(~done)[0]:
        for beam in range(beams):
            finished[row].add(sequences[row, beam], scores[row, beam])
    chosen = [titles.best() for titles in finished]
    width = max(len(title) for title in chosen) + 1
    return np.stack([np.pad(np.append(title, end_id), (0, width - len(title) - 1), constant_values=pad_id) for title in chosen])


class _FinishedTitles:
    """The ``size`` best finished titles of one row, each scored by its length-normalised total log-probability."""

    def __init__(self, size: int, length_penalty: float):
        self.size, self.length_penalty = size, length_penalty
        self.titles: list = []  # (score, tokens)

    def _normalised(self, total: float, length: int) -> float:
        return total / ((length + 5) / 6) ** self.length_penalty

    def add(self, tokens: np.ndarray, total: float) -> None:
        self.titles.append((self._normalised(float(total), len(tokens)), tokens))
        self.titles = sorted(self.titles, key=lambda title: title[0], reverse=True)[: self.size]

    def settled(self, best_live_total: float, generated: int) -> bool:
        """Whether no live beam, ``generated`` tokens long, can beat the worst kept title any more."""
        return len(self.titles) == self.size and self.titles[-1][0] >= self._normalised(float(best_live_total), generated)

    def best(self) -> np.ndarray:
        return max(self.titles, key=lambda title: title[0])[1]


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


WRITER_CONFIG_KEYS = ("max_seq_len", "max_target_len", "eos_token_id", "pad_token_id", "state_parts", "step_changes")


def _read_writer_config(model_dir: str) -> dict:
    """A text writer's ``inference_config.json``, after checking that its graphs and every key it needs are there."""
    path = os.path.join(model_dir, INFERENCE_CONFIG_FILE)
    for name in (INFERENCE_CONFIG_FILE, *GENERATION_FILES):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise UserError(f"{os.path.join(model_dir, name)}: missing; expected an export of a text writer (tools/export_model.py)")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: unreadable ({one_line(error)[:200]})") from None
    missing = [key for key in WRITER_CONFIG_KEYS if not isinstance(config, dict) or key not in config]
    if missing:
        raise UserError(f"{path}: lacks {', '.join(missing)}; expected the inference config of a text writer's export")
    return config


class GenerationPredictor:
    """Writes a summary (a review's title) of each text with a text writer's export, on Paddle Inference.

    Args:
        model_dir: a directory ``tools/export_model.py`` wrote for a ``Global.task=seq2seq`` model.
        cpu_threads: threads of the matrix products (default: every core).
        batch_size: texts per generation batch; texts are batched by length.
    """

    def __init__(self, model_dir: str, cpu_threads: Optional[int] = None, batch_size: int = 32):
        from paddlenlp_fastformer.tokenizer import FastformerTokenizer

        if type(batch_size) is not int or batch_size < 1:
            raise UserError(f"--batch_size {batch_size!r}: expected a positive integer")
        self.config = _read_writer_config(model_dir)
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
        max_new_tokens = self.config["max_target_len"] if max_new_tokens is None else max_new_tokens
        if type(max_new_tokens) is not int or not 1 <= max_new_tokens <= self.config["max_target_len"]:
            raise UserError(f"max_new_tokens {max_new_tokens!r}: expected 1 to {self.config['max_target_len']}, the export's Data.max_target_len")
        if type(num_beams) is not int or num_beams < 1:
            raise UserError(f"--num_beams {num_beams!r}: expected a positive integer")
        log_probs, *state = self.prefill(input_ids.astype("int64"), attention_mask.astype("int64"))
        end_id = self.config["eos_token_id"]
        if num_beams > 1:
            return beam_search(log_probs, state, self._step, end_id, self.config["pad_token_id"], max_new_tokens, num_beams)
        return greedy_search(log_probs, state, self._step, end_id, max_new_tokens)

    def generate(self, texts: Sequence[str], num_beams: int = 1, max_new_tokens: Optional[int] = None) -> List[str]:
        """One summary per text, in the texts' order."""
        from ..engine.summaries import summaries_in_batches

        def generate_ids(input_ids, attention_mask):
            return self.generate_ids(input_ids, attention_mask, num_beams, max_new_tokens)

        return summaries_in_batches(texts, self.tokenizer, self.max_seq_len, self.batch_size, generate_ids)
