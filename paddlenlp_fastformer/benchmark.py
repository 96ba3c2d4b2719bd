"""What users get: training and inference throughput, peak memory and achieved FLOP/s on this CPU.

Measures, side by side in one run and at one token budget per step, for every sequence length:

* ``paddle-official``: Fastformer, official formulation (``FastformerForSequenceClassification``);
* ``paddle-lucidrains``: Fastformer, fast-transformer-pytorch formulation with rotary positions
  (``FastformerForMaskedLM``, the same computation as that package's ``FastTransformer``);
* ``paddle-softmax``: the softmax-attention Transformer of the same width, heads and depth
  (``attention_type="softmax"``: same embeddings, blocks, pooler and classifier);
* ``paddle-inference`` and ``paddle-inference-onednn``: ``paddle-official`` exported by
  ``tools/export_model.py`` and run by Paddle Inference, oneDNN off and on (inference only);
* ``torch-official``: the PyTorch model of the official equations (``torch_reference.py``);
* ``torch-lucidrains``: fast-transformer-pytorch 0.0.4 ``FastTransformer`` (rotary, ``ff_mult = I / D``).

The torch models are the twins of the first two Paddle models (the same layers, sizes and heads), so
"Paddle vs torch" compares two implementations of one computation. The lucidrains twins end in the
package's per-token vocabulary head (LayerNorm + Linear(D, V)); the others in the additive-attention
pooler and a classifier. Their FLOP counts include these heads, which is why ``--vocab-size`` is small
by default (1000: the LM head is 2*D*V = 0.5 MFLOP/token against ~3.2 MFLOP/token for the encoder).

Method
------
* Every measurement (one model, mode, length and round) runs in a fresh process forked from a fork
  server: one per framework, a process that imported that framework (and only that one) once, so a
  measurement starts in tens of milliseconds instead of seconds. Only one: with paddle imported, torch
  binds to paddle's OpenMP runtimes instead of its own libgomp and ran several times slower here. The
  child sets the framework's thread count (``paddle.base.core.set_num_threads`` or
  ``torch.set_num_threads``, the same number for both), runs one tiny operation to initialise the
  framework, records its RSS (the baseline), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
  builds the model and the data, runs ``warmup`` untimed steps and one timed step, and reports
  ``ru_maxrss - baseline``: the peak memory of that model, its optimizer state and its activations,
  isolated from every other measurement.
* OMP_WAIT_POLICY (``--omp-wait-policy``, see :func:`_wait_policy_for`): by default passive for torch
  and unchanged for paddle, each framework's better setting on a CPU shared with other jobs.
* A training step is forward + loss + backward + Adam step (lr 1e-3); an inference step is a forward in
  eval mode without gradients.
* Batch = max(1, tokens_per_step // length), so every length does about the same work per step (lengths
  above the budget run one sequence).
* Rounds: the whole grid (length -> mode -> model; the model order reversed every other round) is run
  ``repeats`` times, so slow spells of a shared machine spread over all models; a case's time is the
  median of its rounds.
* The softmax Transformer's N^2 attention matrices are estimated before each case (see
  :func:`attention_matrix_mib`); a case whose estimate exceeds ``max_memory_mib``, whose predicted time
  (1.5 x the previous length's time scaled by the FLOP ratio) exceeds ``max_seconds_per_case``, or that follows
  a skipped length of the same model and mode is marked skipped instead of run. A running case is killed
  at ``max_seconds_per_case`` (in later rounds, at twice its first round's time if that is longer).
* Matmul throughput: the median of several fp32 ``size^3`` products per framework, in fresh processes,
  once per round; the best round is the "matmul peak" each model's achieved FLOP/s is divided by.

FLOP counting (:func:`flops_per_token`): analytic, per token, from the layer sizes. Notation: D hidden,
H heads, d features per head, I intermediate, L layers, N length, V vocabulary, C labels.

* A dense layer in -> out costs 2*in*out FLOPs per token (one multiply and one add per weight).
* A weighted sum over tokens costs 2 FLOPs per summed feature and token; an element-wise product 1 FLOP
  per feature.
* Official additive attention: query, key, transform, output (4 x 2D^2), query_att and key_att
  (2 x 2DH), global query and global key sums (2 x 2D), p = q_g*k and u = k_g*q (2 x D):
  ``8D^2 + 4DH + 6D``.
* Softmax attention: q, k, v, output projections (8D^2), scores QK^T (2ND) and weights x V (2ND):
  ``8D^2 + 4ND``.
* lucidrains additive attention (inner width Hd, r = d/2 with rotary, d without): to_qkv (6DHd),
  to_out (2HdD), q and k score vectors (2Hd + 2Hr), global q and k sums (2 x 2Hd), k*q_g and v*k_g
  (2 x Hd), to_r (2Hrd): ``8DHd + 8Hd + 2Hr + 2Hrd``.
* Feed-forward: ``4DI``. Pooler + classifier: ``2D^2 + 4D + 2DC/N``. LM head: ``2DV``.
* Not counted: embeddings (lookups), LayerNorm, softmax, GELU, tanh, exp, rotary rotations, bias and
  residual additions, pair reductions: O(D) each, a few percent at most.
* Training = 3 x forward (the backward pass computes, for every product, the gradients with respect to
  both of its operands, each as costly as the forward product); the Adam update is not counted.

Achieved FLOP/s = flops_per_token x tokens/s; "of matmul peak" divides it by the same framework's fp32
matmul throughput measured in this run.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

__all__ = [
    "MODELS",
    "Sizes",
    "flops_per_token",
    "attention_matrix_mib",
    "batch_for_length",
    "run_benchmark",
    "format_table",
    "write_csv",
    "plot_results",
    "build_parser",
    "main",
]


# ----------------------------------------------------------------------------------------------
# models and sizes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    framework: str  # "paddle" | "torch"
    formulation: str  # "official" | "lucidrains"
    attention: str  # "additive" | "softmax"
    head: str  # "classifier" (pooler + Linear(D, C)) | "lm" (LayerNorm + Linear(D, V) per token)
    description: str
    engine: str = "eager"  # "eager" (dygraph / torch eager) | "inference" | "inference-onednn" (exported; infer only)


MODELS: Dict[str, ModelSpec] = {
    "paddle-official": ModelSpec("paddle", "official", "additive", "classifier", "Fastformer, official formulation"),
    "paddle-lucidrains": ModelSpec(
        "paddle", "lucidrains", "additive", "lm", "Fastformer, lucidrains formulation, rotary, LM head"
    ),
    "paddle-softmax": ModelSpec("paddle", "official", "softmax", "classifier", "softmax-attention Transformer"),
    "paddle-inference": ModelSpec(
        "paddle", "official", "additive", "classifier", "Fastformer, official, exported, Paddle Inference", "inference"
    ),
    "paddle-inference-onednn": ModelSpec(
        "paddle", "official", "additive", "classifier", "the same, Paddle Inference with oneDNN", "inference-onednn"
    ),
    "torch-official": ModelSpec(
        "torch", "official", "additive", "classifier", "PyTorch model of the official equations"
    ),
    "torch-lucidrains": ModelSpec("torch", "lucidrains", "additive", "lm", "fast-transformer-pytorch 0.0.4, rotary"),
}
BASELINE_MODEL = "paddle-softmax"
TORCH_TWIN = {
    "paddle-official": "torch-official",
    "paddle-lucidrains": "torch-lucidrains",
    "paddle-inference": "torch-official",
    "paddle-inference-onednn": "torch-official",
}
MODES = ("train", "infer")


@dataclass(frozen=True)
class Sizes:
    hidden: int = 256
    heads: int = 16
    layers: int = 2
    intermediate: int = 1024
    vocab: int = 1000
    num_labels: int = 5
    max_length: int = 8192
    dropout: float = 0.0

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads


def batch_for_length(length: int, tokens_per_step: int) -> int:
    """Sequences per step: the token budget divided by the length, at least one."""
    return max(1, tokens_per_step // length)


def flops_per_token(model: str, sizes: Sizes, length: int, mode: str) -> float:
    """Analytic FLOPs per token of one step (see the module docstring for every term)."""
    spec = MODELS[model]
    D, H, L, I, N = sizes.hidden, sizes.heads, sizes.layers, sizes.intermediate, length
    d = sizes.head_size
    if spec.formulation == "official" and spec.attention == "additive":
        attention = 8 * D * D + 4 * D * H + 6 * D
    elif spec.attention == "softmax":
        attention = 8 * D * D + 4 * N * D
    else:  # lucidrains, rotary positions: the key scores and to_r read d/2 summed feature pairs
        r = d // 2
        attention = 8 * D * H * d + 8 * H * d + 2 * H * r + 2 * H * r * d
    feed_forward = 4 * D * I
    if spec.head == "classifier":
        head = 2 * D * D + 4 * D + 2 * D * sizes.num_labels / N
    else:
        head = 2 * D * sizes.vocab
    forward = L * (attention + feed_forward) + head
    return 3.0 * forward if mode == "train" else float(forward)


def attention_matrix_mib(model: str, sizes: Sizes, batch: int, length: int, mode: str) -> float:
    """Estimated memory of the N x N attention matrices (0 for linear-attention models).

    One [B, H, N, N] fp32 tensor is S = 4*B*H*N^2 bytes. Inference holds about two at once (scores and
    weights); training keeps about two per layer for the backward pass plus one temporary: (2L + 1) S.
    Calibrated on this machine: at N = 2048, B = 2 (S = 512 MiB) the Paddle softmax Transformer peaked at
    2.3 GiB in training (estimate 2.5) and 1.1 GiB in inference (estimate 1.0).
    """
    if MODELS[model].attention != "softmax":
        return 0.0
    one = 4.0 * batch * sizes.heads * length * length / 2**20
    return 2 * one if mode == "infer" else (2 * sizes.layers + 1) * one


# ----------------------------------------------------------------------------------------------
# child processes (forked from the fork server)
# ----------------------------------------------------------------------------------------------
def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS mark (ru_maxrss, VmHWM) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _init_frameworks(threads: int, framework: str) -> None:
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


def _build_paddle(model: str, sizes: Sizes):
    import paddle

    from paddlenlp_fastformer.configuration import FastformerConfig  # absolute: this file may run standalone
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


def _build_torch(model: str, sizes: Sizes):
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
    return _load_torch_reference().OfficialFastformerClassifier(
        vocab_size=sizes.vocab,
        num_labels=sizes.num_labels,
        hidden_size=sizes.hidden,
        num_hidden_layers=sizes.layers,
        num_attention_heads=sizes.heads,
        intermediate_size=sizes.intermediate,
        max_position_embeddings=sizes.max_length,
        hidden_dropout_prob=sizes.dropout,
    )


def _exported_runner(model, sizes: Sizes, threads: int, onednn: bool):
    """Export ``model`` as tools/export_model.py does and load it in Paddle Inference."""
    import tempfile

    from paddlenlp_fastformer.export import export_inference_model
    from paddlenlp_fastformer.inference import create_runner, write_random_classifier

    with tempfile.TemporaryDirectory(prefix="fastformer-benchmark-") as work_dir:
        pretrained, exported = os.path.join(work_dir, "pretrained"), os.path.join(work_dir, "inference")
        write_random_classifier(pretrained, sizes.vocab, sizes.max_length, model=model)
        export_inference_model(pretrained, exported)
        return create_runner(exported, "paddle", threads, enable_mkldnn=onednn)


def _make_step(model_name: str, sizes: Sizes, batch: int, length: int, mode: str, threads: int = 1):
    """Build the model, its optimizer and a fixed batch; return a function running one step."""
    import numpy as np

    spec = MODELS[model_name]
    rng = np.random.default_rng(0)
    ids = rng.integers(1, sizes.vocab, size=(batch, length)).astype("int64")  # no padding
    if spec.head == "lm":
        labels = rng.integers(0, sizes.vocab, size=(batch, length)).astype("int64")
    else:
        labels = rng.integers(0, sizes.num_labels, size=(batch,)).astype("int64")

    if spec.framework == "paddle":
        import paddle

        model = _build_paddle(model_name, sizes)
        if spec.engine != "eager":
            runner, mask = _exported_runner(model, sizes, threads, spec.engine == "inference-onednn"), np.ones_like(ids)

            def step():
                float(runner(ids, mask).reshape(-1)[0])

            return step
        input_ids, label_tensor = paddle.to_tensor(ids), paddle.to_tensor(labels)
        if mode == "infer":
            model.eval()

            def step():
                with paddle.no_grad():
                    logits = model(input_ids)
                float(logits.reshape([-1])[0])

            return step
        model.train()
        optimizer = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())

        def step():
            loss = model(input_ids, labels=label_tensor)[0]
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            float(loss)

        return step

    import torch
    import torch.nn.functional as F

    model = _build_torch(model_name, sizes)
    input_ids, label_tensor = torch.from_numpy(ids), torch.from_numpy(labels)
    mask = torch.ones(batch, length, dtype=torch.bool)

    def forward():
        if spec.head == "lm":
            return model(input_ids, mask=mask)
        return model(input_ids)

    def loss_of(logits):
        if spec.head == "lm":
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), label_tensor.reshape(-1))
        return F.cross_entropy(logits, label_tensor)

    if mode == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                logits = forward()
            float(logits.reshape(-1)[0])

        return step
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = loss_of(forward())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    return step


def _case_child(case: dict) -> dict:
    """One measurement in a fresh process: baseline RSS, build, warm up, time, peak RSS."""
    import gc
    import resource

    started = time.perf_counter()
    spec = MODELS[case["model"]]
    _init_frameworks(case["threads"], spec.framework)
    gc.collect()
    baseline_kib = _rss_kib()
    if not _reset_peak_rss():  # then the peak cannot be below the fork server's own peak
        baseline_kib = max(baseline_kib, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sizes = Sizes(**case["sizes"])
    step = _make_step(case["model"], sizes, case["batch"], case["length"], case["mode"], case["threads"])
    for _ in range(case["warmup"]):
        step()
    seconds = []
    for _ in range(case["steps"]):
        tick = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - tick)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "ok": True,
        "seconds": seconds,
        "peak_mib": (peak_kib - baseline_kib) / 1024.0,
        "baseline_mib": baseline_kib / 1024.0,
        "wall": time.perf_counter() - started,
    }


def _matmul_child(framework: str, size: int, threads: int, repeats: int) -> dict:
    """fp32 size^3 matmul GFLOP/s: the median of ``repeats`` products after one warm-up product."""
    _init_frameworks(threads, framework)
    flops = 2.0 * size**3
    if framework == "paddle":
        import paddle

        a, b = paddle.randn([size, size]), paddle.randn([size, size])

        def product():
            float(paddle.matmul(a, b)[0, 0])

    else:
        import torch

        a, b = torch.randn(size, size), torch.randn(size, size)

        def product():
            float(torch.matmul(a, b)[0, 0])

    product()
    rates = []
    for _ in range(repeats):
        tick = time.perf_counter()
        product()
        rates.append(flops / (time.perf_counter() - tick) / 1e9)
    return {"ok": True, "gflops": statistics.median(rates)}


# What each fork server imports once. The torch server must not import paddle: paddle loads its own
# OpenMP runtimes (libiomp5, the system libgomp) and torch then binds to them instead of its bundled
# libgomp, which made torch several times slower here. So the servers load this file by path (not
# through the package, whose __init__ imports paddle), and torch_reference.py likewise.
_PRELOAD = {
    "paddle": ["numpy", "paddle", "paddlenlp_fastformer", "paddlenlp_fastformer.modeling"],
    "torch": ["numpy", "torch", "fast_transformer_pytorch", "rotary_embedding_torch", "<torch_reference>"],
}


def _load_torch_reference():
    """paddlenlp_fastformer/torch_reference.py as a standalone module (it imports only torch)."""
    import importlib.util

    name = "_fastformer_benchmark_torch_reference"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _probe_child(framework: str) -> dict:
    """Whether the server's framework imported, and the versions."""
    from importlib import metadata

    info = {"framework": framework, "errors": _PRELOAD_ERRORS}
    try:
        if framework == "paddle":
            import paddle

            info["paddle"] = paddle.__version__
            info["paddlenlp"] = metadata.version("paddlenlp")
        else:
            import torch

            info["torch"] = torch.__version__
            info["fast_transformer_pytorch"] = metadata.version("fast-transformer-pytorch")
            info["rotary_embedding_torch"] = metadata.version("rotary-embedding-torch")
        info["ok"] = not _PRELOAD_ERRORS
    except BaseException as error:
        info.update(ok=False, error=f"{type(error).__name__}: {error}")
    if not info["ok"] and "error" not in info:
        info["error"] = "; ".join(_PRELOAD_ERRORS)
    info["imports_torch"] = "torch" in sys.modules
    info["imports_paddle"] = "paddle" in sys.modules
    return info


_PRELOAD_ERRORS: List[str] = []


def _die_with_parent(signal_number: int) -> None:
    """Linux: have the kernel send ``signal_number`` to this process when its parent exits (best effort)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal_number)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _run_forked(function, kwargs: dict, timeout: float) -> dict:
    """Run ``function(**kwargs)`` in a child forked from this process; kill it after ``timeout`` s."""
    import pickle
    import select
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the pickled result, leave without running any exit handler
        code = 0
        try:
            _die_with_parent(signal.SIGKILL)
            os.close(read_end)
            try:
                result = function(**kwargs)
            except BaseException as error:
                result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            data = pickle.dumps(result)
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_end], [], [], remaining)
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"ok": False, "timeout": True, "error": f"over time (> {timeout:g} s)"}
    if chunks:
        try:
            return pickle.loads(b"".join(chunks))
        except Exception as error:  # a child killed while writing
            return {"ok": False, "error": f"unreadable result ({error})"}
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return {"ok": False, "error": f"child killed by signal {number}{hint}"}
    return {"ok": False, "error": f"child exited with code {os.WEXITSTATUS(status)} and no result"}


def _serve(framework: str, fd: int) -> None:
    """Fork-server loop: import ``framework`` once, then run each request in a freshly forked child."""
    import importlib
    import warnings
    from multiprocessing.connection import Connection

    warnings.filterwarnings("ignore")
    _die_with_parent(15)  # SIGTERM: an interrupted benchmark leaves no server behind
    connection = Connection(fd)
    for name in _PRELOAD[framework]:
        try:
            if name == "<torch_reference>":
                _load_torch_reference()
            else:
                importlib.import_module(name)
        except BaseException as error:
            _PRELOAD_ERRORS.append(f"import {name}: {type(error).__name__}: {error}")
    functions = {"case": _case_child, "matmul": _matmul_child, "probe": _probe_child}
    while True:
        try:
            request = connection.recv()
        except EOFError:
            break
        if request is None:
            break
        name, kwargs, timeout = request
        connection.send(_run_forked(functions[name], kwargs, timeout))
    connection.close()


def _wait_policy_for(framework: str, omp_wait_policy: Optional[str]) -> Optional[str]:
    """OMP_WAIT_POLICY for a framework's processes; None leaves the environment as it is.

    "auto": passive for torch, unchanged for paddle. Measured on this shared 2-core CPU: torch's libgomp
    threads spin between parallel regions, and when another job holds a core every region waits for a
    scheduler slice (a tiny model's training step: 3 ms on 1 thread, 500-650 ms on 2; passive: 4-6 ms).
    Paddle's oneDNN/MKL runtime (libiomp5) did not suffer from the default, and passive made its
    softmax Transformer ~3x slower (inference, N = 2048: 4.7 s -> 13.5 s a step).
    """
    if omp_wait_policy in (None, "default"):
        return None
    if omp_wait_policy == "auto":
        return "passive" if framework == "torch" else None
    return omp_wait_policy


class _ForkServer:
    """A process that imports one framework (only that one) once and forks a fresh child per request.

    A child starts in tens of milliseconds with the framework already imported, so every measurement
    runs in its own process without paying the imports each time.
    """

    def __init__(self, framework: str, omp_wait_policy: Optional[str] = None):
        import subprocess

        self.framework = framework
        environment = dict(os.environ)
        policy = _wait_policy_for(framework, omp_wait_policy)
        if policy:
            environment["OMP_WAIT_POLICY"] = policy.upper()
        parent_end, child_end = mp.Pipe(duplex=True)
        bootstrap = (
            "import importlib.util, sys; sys.path[:0] = {paths!r}; "
            "spec = importlib.util.spec_from_file_location('_fastformer_benchmark_server', {file!r}); "
            "module = importlib.util.module_from_spec(spec); sys.modules[spec.name] = module; "
            "spec.loader.exec_module(module); module._serve({framework!r}, {fd})"
        ).format(
            paths=[path for path in sys.path if path],
            file=os.path.abspath(__file__),
            framework=framework,
            fd=child_end.fileno(),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", bootstrap],
            pass_fds=(child_end.fileno(),),
            stdout=sys.stderr.fileno(),
            env=environment,
        )
        child_end.close()
        self.connection = parent_end

    def run(self, name: str, kwargs: dict, timeout: float) -> dict:
        try:
            self.connection.send((name, kwargs, timeout))
            if not self.connection.poll(timeout + 600):
                raise RuntimeError("no answer")
            return self.connection.recv()
        except (EOFError, OSError, RuntimeError) as error:
            return {"ok": False, "error": f"{self.framework} fork server failed: {type(error).__name__} {error}"}

    def close(self) -> None:
        try:
            self.connection.send(None)
            self.connection.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()
            self.process.wait()


# ----------------------------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------------------------
def _status_is_ok(status: str) -> bool:
    return status == "ok"


def run_benchmark(
    models: Sequence[str],
    lengths: Sequence[int],
    modes: Sequence[str] = MODES,
    sizes: Sizes = Sizes(),
    tokens_per_step: int = 2048,
    threads: Optional[int] = None,
    repeats: int = 2,
    warmup: int = 3,
    max_seconds_per_case: float = 30.0,
    max_memory_mib: float = 6144.0,
    matmul_size: int = 2048,
    omp_wait_policy: Optional[str] = "auto",
    log=print,
) -> dict:
    """Measure every (model, mode, length) in rounds; return rows, matmul throughput and environment."""
    started = time.perf_counter()
    threads = threads or len(os.sched_getaffinity(0))
    lengths = sorted(set(int(length) for length in lengths))
    sizes = Sizes(**{**asdict(sizes), "max_length": max(max(lengths), 1)})
    servers: Dict[str, _ForkServer] = {}
    try:
        env: Dict[str, object] = {}
        for framework in ("paddle", "torch"):
            wanted = [m for m in models if MODELS[m].framework == framework]
            if not wanted:
                continue
            server = _ForkServer(framework, omp_wait_policy)
            info = server.run("probe", {"framework": framework}, timeout=600)
            if info.get("ok"):
                servers[framework] = server
                env.update({k: v for k, v in info.items() if k in ("paddle", "paddlenlp", "torch")})
                env.update({k: v for k, v in info.items() if k.endswith(("_pytorch", "_torch")) and "imports" not in k})
                env[f"{framework}_process_imports"] = sorted(
                    name for name in ("paddle", "torch") if info.get(f"imports_{name}")
                )
                continue
            server.close()
            if framework == "paddle":
                raise RuntimeError(f"paddle does not import: {info.get('error')}")
            log(f"torch models left out ({', '.join(wanted)}): {info.get('error')}")
            models = [m for m in models if MODELS[m].framework != framework]
        result = _run_rounds(
            servers,
            env,
            models,
            lengths,
            modes,
            sizes,
            tokens_per_step,
            threads,
            repeats,
            warmup,
            max_seconds_per_case,
            max_memory_mib,
            matmul_size,
            log,
            started,
        )
        result["environment"]["omp_wait_policy"] = {
            framework: _wait_policy_for(framework, omp_wait_policy) or os.environ.get("OMP_WAIT_POLICY", "unset")
            for framework in servers
        }
        return result
    finally:
        for server in servers.values():
            server.close()


def _run_rounds(
    servers,
    env,
    models,
    lengths,
    modes,
    sizes,
    tokens_per_step,
    threads,
    repeats,
    warmup,
    max_seconds_per_case,
    max_memory_mib,
    matmul_size,
    log,
    started,
) -> dict:
    from paddlenlp_fastformer.cpu import cpu_model_name  # absolute: this file may run standalone

    frameworks = sorted({MODELS[m].framework for m in models}, key=("paddle", "torch").index)

    cases: Dict[tuple, dict] = {}
    for length in lengths:
        for mode in modes:
            for model in models:
                if mode == "train" and MODELS[model].engine != "eager":
                    continue  # an exported graph only infers
                batch = batch_for_length(length, tokens_per_step)
                cases[(model, mode, length)] = {
                    "model": model,
                    "mode": mode,
                    "length": length,
                    "batch": batch,
                    "status": "ok",
                    "seconds": [],
                    "peaks": [],
                    "walls": [],
                    "errors": [],
                }
    matmul_samples: Dict[str, List[float]] = {framework: [] for framework in frameworks}
    last_measured: Dict[tuple, dict] = {}  # (model, mode) -> the last measured case (for predictions)

    def skip_reason(case: dict) -> Optional[str]:
        model, mode, length, batch = case["model"], case["mode"], case["length"], case["batch"]
        estimate = attention_matrix_mib(model, sizes, batch, length, mode)
        if estimate > max_memory_mib:
            return f"skipped: over memory budget (N^2 attention ~{estimate:,.0f} MiB > {max_memory_mib:g})"
        previous = last_measured.get((model, mode))
        if previous is not None:
            if not _status_is_ok(previous["status"]):
                return f"skipped: already over budget/time at length {previous['length']}"
            work = flops_per_token(model, sizes, length, mode) * batch * length
            previous_work = (
                flops_per_token(model, sizes, previous["length"], mode) * previous["batch"] * previous["length"]
            )
            # x1.5: the softmax Transformer's FLOP/s fall as N grows (memory-bound N^2 matrices)
            predicted = 1.5 * statistics.median(previous["walls"]) * work / previous_work
            if predicted > max_seconds_per_case:
                return f"skipped: over time (predicted ~{predicted:.0f} s > {max_seconds_per_case:g} s)"
        return None

    for round_index in range(repeats):
        log(f"round {round_index + 1}/{repeats}")
        for framework in frameworks:
            result = servers[framework].run(
                "matmul", {"framework": framework, "size": matmul_size, "threads": threads, "repeats": 3}, timeout=600
            )
            if result["ok"]:
                matmul_samples[framework].append(result["gflops"])
        order = list(models) if round_index % 2 == 0 else list(reversed(models))
        for length in lengths:
            for mode in modes:
                for model in order:
                    if (model, mode, length) not in cases:
                        continue
                    case = cases[(model, mode, length)]
                    if round_index == 0:
                        reason = skip_reason(case)
                        if reason:
                            case["status"] = reason
                            last_measured[(model, mode)] = case
                            log(f"  {model:18s} {mode:5s} N={length:<6d} {reason}")
                            continue
                    elif not _status_is_ok(case["status"]) and not case["seconds"]:
                        continue
                    payload = {
                        "model": model,
                        "mode": mode,
                        "length": length,
                        "batch": case["batch"],
                        "threads": threads,
                        "warmup": warmup,
                        "steps": 1,
                        "sizes": asdict(sizes),
                    }
                    framework = MODELS[model].framework
                    # Later rounds repeat a case that already ran within the limit: allow twice its first time,
                    # so that a slow spell of the shared machine costs a sample less often than a killed run.
                    timeout = max_seconds_per_case
                    if case["walls"]:
                        timeout = max(timeout, 2 * case["walls"][0])
                    result = servers[framework].run("case", {"case": payload}, timeout=timeout)
                    if result["ok"]:
                        case["seconds"].extend(result["seconds"])
                        case["peaks"].append(result["peak_mib"])
                        case["walls"].append(result["wall"])
                        case["baseline_mib"] = result["baseline_mib"]
                        tokens_per_s = case["batch"] * length / statistics.median(result["seconds"])
                        log(
                            f"  {model:18s} {mode:5s} N={length:<6d} B={case['batch']:<4d} "
                            f"{tokens_per_s:10,.0f} tokens/s  peak {result['peak_mib']:8,.0f} MiB"
                        )
                    else:
                        case["errors"].append(result["error"])
                        if not case["seconds"]:
                            prefix = "skipped: " if result.get("timeout") else "failed: "
                            case["status"] = prefix + result["error"]
                        log(f"  {model:18s} {mode:5s} N={length:<6d} {result['error']}")
                    if round_index == 0:
                        last_measured[(model, mode)] = case

    matmul = {framework: max(samples) if samples else None for framework, samples in matmul_samples.items()}
    rows = _summarise(cases, models, modes, lengths, sizes, tokens_per_step, threads, matmul)
    return {
        "rows": rows,
        "matmul_gflops": matmul,
        "matmul_samples": matmul_samples,
        "matmul_size": matmul_size,
        "environment": {
            **env,
            "threads": threads,
            "cpu_count": os.cpu_count(),
            "cpu": cpu_model_name(),
            "load_average_end": os.getloadavg(),
        },
        "sizes": asdict(sizes),
        "tokens_per_step": tokens_per_step,
        "repeats": repeats,
        "warmup": warmup,
        "wall_seconds": time.perf_counter() - started,
    }


CSV_COLUMNS = [
    "model",
    "framework",
    "description",
    "mode",
    "length",
    "batch",
    "status",
    "tokens_per_s",
    "seconds_per_step",
    "timed_steps",
    "ratio_vs_softmax",
    "ratio_paddle_vs_torch",
    "peak_mib",
    "flops_per_token",
    "model_gflops",
    "matmul_gflops",
    "fraction_of_matmul_peak",
    "hidden",
    "heads",
    "layers",
    "intermediate",
    "vocab",
    "threads",
    "tokens_per_step",
]


def _summarise(cases, models, modes, lengths, sizes, tokens_per_step, threads, matmul) -> List[dict]:
    speed = {}
    for key, case in cases.items():
        if case["seconds"]:
            speed[key] = case["batch"] * case["length"] / statistics.median(case["seconds"])
    rows = []
    for mode in modes:
        for length in lengths:
            for model in models:
                if (model, mode, length) not in cases:
                    continue
                case = cases[(model, mode, length)]
                spec = MODELS[model]
                tokens_per_s = speed.get((model, mode, length))
                flops = flops_per_token(model, sizes, length, mode)
                row = {
                    "model": model,
                    "framework": spec.framework,
                    "description": spec.description,
                    "mode": mode,
                    "length": length,
                    "batch": case["batch"],
                    "status": "ok" if tokens_per_s is not None else case["status"],
                    "tokens_per_s": tokens_per_s,
                    "seconds_per_step": statistics.median(case["seconds"]) if case["seconds"] else None,
                    "timed_steps": len(case["seconds"]),
                    "ratio_vs_softmax": None,
                    "ratio_paddle_vs_torch": None,
                    "peak_mib": max(case["peaks"]) if case["peaks"] else None,
                    "flops_per_token": flops,
                    "model_gflops": None,
                    "matmul_gflops": matmul.get(spec.framework),
                    "fraction_of_matmul_peak": None,
                    "hidden": sizes.hidden,
                    "heads": sizes.heads,
                    "layers": sizes.layers,
                    "intermediate": sizes.intermediate,
                    "vocab": sizes.vocab,
                    "threads": threads,
                    "tokens_per_step": tokens_per_step,
                }
                if tokens_per_s is not None:
                    baseline = speed.get((BASELINE_MODEL, mode, length))
                    if baseline:
                        row["ratio_vs_softmax"] = tokens_per_s / baseline
                    twin = speed.get((TORCH_TWIN.get(model), mode, length))
                    if twin:
                        row["ratio_paddle_vs_torch"] = tokens_per_s / twin
                    row["model_gflops"] = flops * tokens_per_s / 1e9
                    if row["matmul_gflops"]:
                        row["fraction_of_matmul_peak"] = row["model_gflops"] / row["matmul_gflops"]
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# output: table, CSV, plot
# ----------------------------------------------------------------------------------------------
def _number(value: Optional[float], fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def format_table(rows: Sequence[dict]) -> str:
    """The markdown table: one row per (model, mode, length)."""
    columns = ["model", "mode", "length", "batch", "tokens/s", "vs softmax", "Paddle / torch", "peak MiB"]
    columns += ["GFLOP/s", "of matmul peak"]
    lines = ["| " + " | ".join(columns) + " |", "|---|---|" + "---:|" * (len(columns) - 2)]
    for row in rows:
        cells = [
            row["model"],
            row["mode"],
            str(row["length"]),
            str(row["batch"]),
            _number(row["tokens_per_s"], ",.0f") if row["status"] == "ok" else row["status"],
            _number(row["ratio_vs_softmax"], ".2f"),
            _number(row["ratio_paddle_vs_torch"], ".2f"),
            _number(row["peak_mib"], ",.0f"),
            _number(row["model_gflops"], ".1f"),
            _number(row["fraction_of_matmul_peak"], ".0%"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ("" if row[key] is None else row[key]) for key in CSV_COLUMNS})


def plot_results(rows: Sequence[dict], path: str, title: str = "") -> None:
    """Tokens/s and peak memory against length, log-log, one line per model, one row of plots per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [mode for mode in MODES if any(row["mode"] == mode for row in rows)]
    models = list(dict.fromkeys(row["model"] for row in rows))
    figure, axes = plt.subplots(len(modes), 2, figsize=(12, 4.2 * len(modes)), squeeze=False)
    for row_index, mode in enumerate(modes):
        for column, (key, label) in enumerate((("tokens_per_s", "tokens/s"), ("peak_mib", "peak memory (MiB)"))):
            axis = axes[row_index][column]
            for model in models:
                points = [
                    (row["length"], row[key])
                    for row in rows
                    if row["model"] == model and row["mode"] == mode and row[key] is not None and row[key] > 0
                ]
                if points:
                    xs, ys = zip(*sorted(points))
                    spec = MODELS[model]
                    colour = {"official": "C0", "lucidrains": "C1"}[spec.formulation]
                    colour = "C2" if spec.attention == "softmax" else colour
                    colour = {"inference": "C3", "inference-onednn": "C4"}.get(spec.engine, colour)
                    style = "--" if spec.framework == "torch" else "-"  # a torch twin: its Paddle model's colour
                    axis.plot(xs, ys, style, color=colour, marker="o", label=model)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel("sequence length")
            axis.set_ylabel(label)
            axis.set_title(f"{mode}: {label}")
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
DEFAULTS = {
    "lengths": [128, 512, 1024, 2048, 4096, 8192],
    "tokens_per_step": 2048,
    "repeats": 2,
    "hidden": 256,
    "heads": 16,
    "layers": 2,
    "intermediate": 1024,
    "vocab_size": 1000,
    "max_seconds_per_case": 30.0,
}
QUICK = {
    "lengths": [32, 64],
    "tokens_per_step": 128,
    "repeats": 1,
    "hidden": 32,
    "heads": 4,
    "layers": 1,
    "intermediate": 128,
    "vocab_size": 100,
    "max_seconds_per_case": 120.0,
}
# The configurations issue-level speed targets name, each a short run of its own (--preset NAME):
# fast-transformer-pytorch's (hidden 256, 16 heads of 16, 2 layers, batch 16, length 512) and the
# paper's official one (configs/amazon.yaml: intermediate 256, batch 64, length 256), the latter also
# exported and run by Paddle Inference against PyTorch eager.
PRESETS = {
    "grid": DEFAULTS,
    "quick": QUICK,
    "lucidrains-b16": {
        **DEFAULTS,
        "lengths": [512],
        "tokens_per_step": 16 * 512,
        "repeats": 3,
        "models": ["paddle-lucidrains", "torch-lucidrains"],
    },
    "paper-b64": {
        **DEFAULTS,
        "lengths": [256],
        "tokens_per_step": 64 * 256,
        "intermediate": 256,
        "repeats": 3,
        "models": ["paddle-official", "paddle-inference", "paddle-inference-onednn", "torch-official"],
    },
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(
            "Training and inference tokens/s, peak memory and achieved FLOP/s of Fastformer (official and "
            "lucidrains formulations) and the same-size softmax Transformer, in Paddle and (optionally) "
            "PyTorch, on this CPU. Defaults: hidden 256, 16 heads, 2 layers, intermediate 1024, vocabulary "
            "1000, lengths 128..8192, 2048 tokens per step, 2 rounds."
        )
    )
    parser.add_argument("--lengths", type=int, nargs="+", help=f"default {DEFAULTS['lengths']}")
    parser.add_argument("--tokens-per-step", type=int, help="batch = max(1, tokens_per_step // length); default 2048")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of both frameworks; 0 = all cores")
    parser.add_argument("--repeats", type=int, help="rounds over all cases; a case's time is their median; default 2")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help=(
            "untimed steps before the timed one (default 3: with 1, Paddle's second training step still "
            "grew its heap and read 1.6x slower than its steady state, B64 x N256, 2 threads)"
        ),
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="default: every model of the preset")
    parser.add_argument(
        "--torch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the PyTorch twins (default: when torch and fast-transformer-pytorch import)",
    )
    parser.add_argument("--hidden", type=int, help="hidden size (default 256)")
    parser.add_argument("--heads", type=int, help="attention heads (default 16)")
    parser.add_argument("--layers", type=int, help="blocks (default 2)")
    parser.add_argument("--intermediate", type=int, help="feed-forward width (default 1024)")
    parser.add_argument("--vocab-size", type=int, help="vocabulary; sizes the lucidrains LM head (default 1000)")
    parser.add_argument("--dropout", type=float, default=0.0, help="hidden dropout of the official models (default 0)")
    parser.add_argument("--max-seconds-per-case", type=float, help="kill or skip a case beyond this (default 30)")
    parser.add_argument(
        "--max-memory-mib",
        type=float,
        default=6144.0,
        help="skip a softmax case whose estimated N^2 attention memory exceeds this (default 6144)",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=["auto", "passive", "active", "default"],
        default="auto",
        help=(
            "OMP_WAIT_POLICY of the frameworks' processes. 'auto' (default): passive for torch (on a CPU shared "
            "with other jobs its spinning OpenMP threads made 2-thread steps up to ~100x slower here), unchanged "
            "for paddle (passive made it slower); 'passive'/'active': both; 'default': leave the environment"
        ),
    )
    parser.add_argument(
        "--matmul-size", type=int, default=2048, help="size of the fp32 matmul peak test (default 2048)"
    )
    parser.add_argument(
        "--output-dir", help="CSV, PNG and JSON go here (default output/benchmark, or output/benchmark/PRESET)"
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="grid",
        help=(
            "grid (default): lengths 128..8192; lucidrains-b16 / paper-b64: the target configurations "
            "(see PRESETS); quick: a smoke test. Options given explicitly override the preset"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="the same as --preset quick")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.preset = "quick"
    for key, value in {"models": list(MODELS), **PRESETS[args.preset]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.output_dir is None:
        args.output_dir = os.path.join("output", "benchmark", *([args.preset] if args.preset != "grid" else []))
    if args.quick and args.matmul_size == 2048:
        args.matmul_size = 256
    models = list(dict.fromkeys(args.models))
    if args.torch is False:
        models = [m for m in models if MODELS[m].framework != "torch"]
    if args.tokens_per_step < 1 or args.repeats < 1 or min(args.lengths) < 1:
        parser.error("--tokens-per-step, --repeats and --lengths must be positive")
    sizes = Sizes(
        hidden=args.hidden,
        heads=args.heads,
        layers=args.layers,
        intermediate=args.intermediate,
        vocab=args.vocab_size,
        dropout=args.dropout,
    )
    if sizes.hidden % sizes.heads or sizes.head_size % 4:
        parser.error("hidden must be a multiple of heads, with a head size that is a multiple of 4 (rotary)")

    command = " ".join(
        shlex.quote(part) for part in [os.path.basename(sys.argv[0]) or "benchmark"] + list(argv or sys.argv[1:])
    )
    print(
        f"benchmark: {len(models)} models x {len(args.modes)} modes x {len(args.lengths)} lengths, "
        f"{args.repeats} round(s); hidden {sizes.hidden}, {sizes.heads} heads, {sizes.layers} layers, "
        f"intermediate {sizes.intermediate}, vocabulary {sizes.vocab}, {args.tokens_per_step} tokens/step",
        flush=True,
    )
    result = run_benchmark(
        models,
        args.lengths,
        modes=args.modes,
        sizes=sizes,
        tokens_per_step=args.tokens_per_step,
        threads=args.threads or None,
        repeats=args.repeats,
        warmup=args.warmup,
        max_seconds_per_case=args.max_seconds_per_case,
        max_memory_mib=args.max_memory_mib,
        matmul_size=args.matmul_size,
        omp_wait_policy=args.omp_wait_policy,
        log=lambda message: print(message, flush=True),
    )
    rows = result["rows"]
    env = result["environment"]
    matmul = result["matmul_gflops"]
    os.makedirs(args.output_dir, exist_ok=True)
    csv_path = os.path.join(args.output_dir, "benchmark.csv")
    png_path = os.path.join(args.output_dir, "benchmark.png")
    json_path = os.path.join(args.output_dir, "benchmark.json")
    write_csv(rows, csv_path)
    title = (
        f"D={sizes.hidden} H={sizes.heads} L={sizes.layers} I={sizes.intermediate}; batch = max(1, "
        f"{args.tokens_per_step} // length), so longer sequences run more tokens per step; "
        f"{env['threads']} threads, {env['cpu']}; dashed: PyTorch"
    )
    plot_results(rows, png_path, title)
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump({"command": command, **result}, handle, indent=1, default=str)

    matmul_text = ", ".join(
        f"{framework} {value:.1f}" if value else f"{framework} n/a" for framework, value in matmul.items()
    )
    print()
    print(
        f"paddle {env.get('paddle')}, torch {env.get('torch') or 'n/a'}, {env['threads']} thread(s) of "
        f"{env['cpu_count']} ({env['cpu']}); fp32 {result['matmul_size']}^3 matmul GFLOP/s (best round): {matmul_text}"
    )
    print(
        f"hidden {sizes.hidden}, {sizes.heads} heads, {sizes.layers} layers, intermediate {sizes.intermediate}, "
        f"vocabulary {sizes.vocab}; batch = max(1, {args.tokens_per_step} // length); median of {args.repeats} "
        f"round(s), {args.warmup} warm-up step(s) each; OMP_WAIT_POLICY {env.get('omp_wait_policy')}"
    )
    print()
    print(format_table(rows))
    print()
    print(f"wrote {csv_path}, {png_path}, {json_path}")
    print(
        f"wall time {result['wall_seconds']:.0f} s; load average at the end "
        f"{tuple(round(x, 1) for x in env['load_average_end'])}"
    )
    return result


if __name__ == "__main__":  # pragma: no cover - use tools/benchmark.py
    from paddlenlp_fastformer.benchmark import main as _main

    _main()
