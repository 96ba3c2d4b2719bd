"""Building each benchmarked model (or exported engine) and one training or inference step of it.

These run in the forked children of :mod:`benchmarks.harness` (and in :mod:`benchmarks.commits`'
processes), so the frameworks are imported inside the functions: both fork servers import this module,
and the torch server must never import paddle.
"""
from __future__ import annotations

import importlib.util
import os
import time
from typing import Callable, List, Optional, Tuple

from .models import DYGRAPH_MODEL, MODELS, ModelSpec, Sizes

__all__ = [
    "init_framework",
    "build_paddle",
    "build_torch",
    "write_random_classifier",
    "export_official",
    "make_step",
    "time_steps",
    "class_probabilities",
]

Step = Callable[[], object]  # runs one step and returns its output (None for a training step)


def init_framework(threads: int, framework: str) -> None:
    """Set the framework's threads and run one tiny product, so that set-up is not timed."""
    import numpy as np

    if framework == "paddle":
        import paddle

        paddle.base.core.set_num_threads(threads)
        paddle.set_device("cpu")
        float(paddle.matmul(paddle.ones([8, 8]), paddle.ones([8, 8])).sum())
    else:
        import torch

        torch.set_num_threads(threads)
        float((torch.ones(8, 8) @ torch.ones(8, 8)).sum())
    np.random.seed(0)


def build_paddle(model: str, sizes: Sizes):
    """The Paddle model of ``model`` with seed-0 weights (the same weights in every process)."""
    import paddle

    from paddlenlp_fastformer.configuration import FastformerConfig
    from paddlenlp_fastformer.modeling import FastformerForMaskedLM, FastformerForSequenceClassification

    spec = MODELS[model]
    paddle.seed(0)
    common = dict(
        vocab_size=sizes.vocab,
        hidden_size=sizes.hidden,
        num_hidden_layers=sizes.layers,
        num_attention_heads=sizes.heads,
        intermediate_size=sizes.intermediate,
        max_position_embeddings=sizes.max_length,
        num_labels=sizes.num_labels,
        attention_probs_dropout_prob=0.0,
    )
    if spec.formulation == "lucidrains":  # as fast-transformer-pytorch: no dropout, LayerNorm eps 1e-5
        config = FastformerConfig(
            formulation="lucidrains",
            position_embedding_type="rotary",
            hidden_dropout_prob=0.0,
            layer_norm_eps=1e-5,
            **common,
        )
        return FastformerForMaskedLM(config)
    config = FastformerConfig(attention_type=spec.attention, hidden_dropout_prob=sizes.dropout, **common)
    return FastformerForSequenceClassification(config)


def build_torch(model: str, sizes: Sizes):
    """The PyTorch twin of ``model``: fast-transformer-pytorch, or the model of the official equations."""
    import torch

    torch.manual_seed(0)
    if MODELS[model].formulation == "lucidrains":
        from fast_transformer_pytorch import FastTransformer

        if sizes.intermediate % sizes.hidden:
            raise ValueError(f"fast-transformer-pytorch needs intermediate ({sizes.intermediate}) = ff_mult x hidden")
        return FastTransformer(
            num_tokens=sizes.vocab,
            dim=sizes.hidden,
            depth=sizes.layers,
            max_seq_len=sizes.max_length,
            heads=sizes.heads,
            dim_head=sizes.head_size,
            ff_mult=sizes.intermediate // sizes.hidden,
            absolute_pos_emb=False,
        )
    from .torch_reference import OfficialFastformerClassifier

    return OfficialFastformerClassifier(
        vocab_size=sizes.vocab,
        num_labels=sizes.num_labels,
        hidden_size=sizes.hidden,
        num_hidden_layers=sizes.layers,
        num_attention_heads=sizes.heads,
        intermediate_size=sizes.intermediate,
        max_position_embeddings=sizes.max_length,
        hidden_dropout_prob=sizes.dropout,
    )


def write_random_classifier(directory: str, vocab_size: int, max_seq_len: int, model=None) -> None:
    """Save ``model`` (default: a paper-size classifier with random weights) and a matching tokenizer.

    The directory is what ``tools/export_model.py`` exports: a trained checkpoint's layout, without
    the training.
    """
    from paddlenlp_fastformer.configuration import FastformerConfig
    from paddlenlp_fastformer.modeling import FastformerForSequenceClassification
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    tokenizer = FastformerTokenizer(
        vocab=["[PAD]", "[UNK]"] + [f"w{index}" for index in range(2, vocab_size)], model_max_length=max_seq_len
    )
    if model is None:
        model = FastformerForSequenceClassification(
            FastformerConfig(vocab_size=vocab_size, max_position_embeddings=max_seq_len)
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def export_official(sizes: Sizes, directory: str, onnx: bool) -> Tuple[str, Optional[str]]:
    """Export :data:`DYGRAPH_MODEL` (its seed-0 weights) as ``tools/export_model.py`` does, under ``directory``.

    Returns the export directory, and why there is no ONNX model when ``onnx`` was asked for (None
    when there is one), so that a missing paddle2onnx or onnxruntime costs only the onnxruntime cases.
    """
    from fastformer_zoo.deploy.export import export_inference_model

    pretrained, exported = os.path.join(directory, "pretrained"), os.path.join(directory, "inference")
    write_random_classifier(pretrained, sizes.vocab, sizes.max_length, build_paddle(DYGRAPH_MODEL, sizes))
    missing = [name for name in ("paddle2onnx", "onnxruntime") if onnx and importlib.util.find_spec(name) is None]
    onnx_error = f"{' and '.join(missing)} not installed" if missing else None
    if onnx and not missing:
        try:
            export_inference_model(pretrained, exported, quantize="int8")  # the float ONNX graph and its int8 twin
            return exported, None
        except Exception as error:  # the conversion failed: the other engines need only the static graph
            onnx_error = f"ONNX export failed: {error}"
    export_inference_model(pretrained, exported, onnx=False)
    return exported, onnx_error


def _random_batch(spec: ModelSpec, sizes: Sizes, batch: int, length: int):
    """Token ids without padding and labels, the same for every model of a case (seed 0)."""
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1, sizes.vocab, size=(batch, length)).astype("int64")
    label_shape = (batch, length) if spec.head == "lm" else (batch,)
    labels = rng.integers(0, sizes.vocab if spec.head == "lm" else sizes.num_labels, size=label_shape)
    return ids, labels.astype("int64")


def make_step(
    model: str, sizes: Sizes, batch: int, length: int, mode: str, threads: int = 1, export_dir: Optional[str] = None
) -> Step:
    """Build the model, its optimizer (training) and a fixed batch; return a function running one step.

    An engine (``MODELS[model].exported``) loads the export in ``export_dir`` and only infers.
    """
    spec = MODELS[model]
    ids, labels = _random_batch(spec, sizes, batch, length)
    if spec.exported:
        if mode != "infer" or export_dir is None:
            raise ValueError(f"{model} runs an exported graph: inference only, with an export directory")
        return _engine_step(spec, export_dir, threads, ids)
    if spec.framework == "paddle":
        return _paddle_step(build_paddle(model, sizes), ids, labels, mode)
    return _torch_step(spec, build_torch(model, sizes), ids, labels, mode)


def time_steps(step: Step, count: int, clock: Callable[[], float] = time.perf_counter, least_seconds: float = 0.0) -> Tuple[List[float], object]:
    """Seconds of each step by ``clock`` (``count`` steps, more if they took less than ``least_seconds`` in all), and the
    last step's output."""
    seconds, output = [], None
    while len(seconds) < count or sum(seconds) < least_seconds:
        output = None  # the previous output goes before the next step allocates its own
        tick = clock()
        output = step()
        seconds.append(clock() - tick)
    return seconds, output


def _inference_step(model, no_grad, forward: Callable) -> Step:
    model.eval()

    def step():
        with no_grad():
            output = forward()
        float(output.reshape([-1])[0])  # read a value, so the step ends when the result exists
        return output

    return step


def _training_step(model, loss_of: Callable, optimizer_step: Callable, clear_grad: Callable) -> Step:
    model.train()

    def step():
        loss = loss_of()
        loss.backward()
        optimizer_step()
        clear_grad()
        float(loss)

    return step


def _paddle_step(model, ids, labels, mode: str) -> Step:
    import paddle

    input_ids, label_tensor = paddle.to_tensor(ids), paddle.to_tensor(labels)
    if mode == "infer":
        return _inference_step(model, paddle.no_grad, lambda: model(input_ids))
    optimizer = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    return _training_step(model, lambda: model(input_ids, labels=label_tensor)[0], optimizer.step, optimizer.clear_grad)


def _torch_step(spec: ModelSpec, model, ids, labels, mode: str) -> Step:
    import torch
    import torch.nn.functional as F

    input_ids, label_tensor = torch.from_numpy(ids), torch.from_numpy(labels)
    if spec.head == "lm":
        mask = torch.ones(*ids.shape, dtype=torch.bool)

        def forward():
            return model(input_ids, mask=mask)

        def loss_of():
            logits = forward()
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), label_tensor.reshape(-1))

    else:

        def forward():
            return model(input_ids)

        def loss_of():
            return F.cross_entropy(forward(), label_tensor)

    if mode == "infer":
        return _inference_step(model, torch.no_grad, forward)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _training_step(model, loss_of, optimizer.step, lambda: optimizer.zero_grad(set_to_none=True))


def _engine_step(spec: ModelSpec, export_dir: str, threads: int, ids) -> Step:
    import numpy as np

    from fastformer_zoo.deploy.runners import create_runner, packed_inputs

    if spec.engine == "auto":
        engine, runner = _measured_engine(export_dir, threads, ids.shape)
        inputs = packed_inputs(list(ids)) if engine.graph == "packed" else (ids, np.ones_like(ids))
    else:
        backend = "onnxruntime" if spec.engine.startswith("onnxruntime") else "paddle"
        precision = "int8" if spec.engine.endswith("-int8") else "fp32"
        graph = "fused" if spec.engine.startswith("inference-fused") else "packed" if "-packed" in spec.engine else "portable"
        runner = create_runner(export_dir, backend, threads, enable_mkldnn=spec.engine.endswith("-onednn"), precision=precision, graph=graph)
        inputs = packed_inputs(list(ids)) if graph == "packed" else (ids, np.ones_like(ids))

    def step():
        probabilities = runner(*inputs)
        float(probabilities.reshape(-1)[0])
        return probabilities

    return step


def _measured_engine(export_dir: str, threads: int, shape: tuple):
    """What ``Predictor``'s default (``auto``) runs at ``shape``, from the measurement the run made after exporting."""
    from fastformer_zoo.deploy.predictor import Predictor

    return Predictor(export_dir, cpu_threads=threads).runner_for(*shape)


def class_probabilities(model: str, output):
    """The class probabilities (numpy) of an inference step's ``output``; None for a training step or an LM head."""
    spec = MODELS[model]
    if output is None or spec.head != "classifier":
        return None
    if spec.exported:  # the exported graph ends in the softmax
        return output
    if spec.framework == "paddle":
        import paddle

        return paddle.nn.functional.softmax(output, axis=-1).numpy()
    import torch

    return torch.softmax(output, dim=-1).numpy()
