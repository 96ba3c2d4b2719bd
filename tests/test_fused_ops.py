"""The fused C++ CPU kernels against the pure-Paddle reference ops they replace, forward and backward.

Every comparison runs the same computation twice, with ``PADDLENLP_FASTFORMER_FUSED_OPS`` set to 0
(reference) and 1 (fused), and checks outputs and every gradient. Then the switch:
``FastformerConfig.use_fused_ops``, which the environment variable overrides when set; and the build
cache, shared by checkouts of the package and kept apart for Paddle installations.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import seed_kernel_cache
from paddlenlp_fastformer import FastformerConfig, FastformerForMaskedLM, FastformerForSequenceClassification
from paddlenlp_fastformer import layers
from paddlenlp_fastformer.kernels import fused_ops, library

pytestmark = pytest.mark.skipif(library.load() is None, reason="the fused kernels could not be built here")


def run_both(monkeypatch, compute, inputs):
    """``compute(*tensors)`` under each path; returns {path: (output, [gradient of each trainable input])}."""
    results = {}
    for path in ("reference", "fused"):
        monkeypatch.setenv(fused_ops.SWITCH, "1" if path == "fused" else "0")
        assert fused_ops.available(paddle.ones([1]), use_fused_ops=True) is (path == "fused")
        tensors = []
        for array, trainable in inputs:
            tensor = paddle.to_tensor(array)
            tensor.stop_gradient = not trainable
            tensors.append(tensor)
        out = compute(*tensors)
        upstream = paddle.to_tensor(np.random.default_rng(5).standard_normal(out.shape).astype("float32"))
        (out * upstream).sum().backward()
        results[path] = (out.numpy(), [t.grad.numpy() if not t.stop_gradient else None for t in tensors])
    return results


def assert_paths_agree(results, tolerance=1e-5):
    (ref_out, ref_grads), (fused_out, fused_grads) = results["reference"], results["fused"]
    assert np.abs(fused_out - ref_out).max() <= tolerance * max(np.abs(ref_out).max(), 1e-30)
    for ref, fused in zip(ref_grads, fused_grads):
        if ref is None:
            continue
        assert np.linalg.norm(fused - ref) <= tolerance * max(np.linalg.norm(ref), 1e-30)


def random(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype("float32")


@pytest.mark.parametrize("activation", [None, "gelu"])
@pytest.mark.parametrize("rows, inputs, outputs", [(1, 3, 5), (37, 64, 96), (300, 33, 257)])
def test_linear_with_bias_and_activation(monkeypatch, activation, rows, inputs, outputs):
    layer = fused_ops.FlatLinear(inputs, outputs, use_fused_ops=True)
    layer.bias.set_value(paddle.to_tensor(random(outputs, seed=1)))

    def compute(x):
        layer.clear_gradients()
        return layer(x.reshape([rows, 1, inputs]), activation=activation)

    results = run_both(monkeypatch, compute, [(random(rows, inputs), True)])
    assert_paths_agree(results)


def test_linear_with_residual(monkeypatch):
    layer = fused_ops.FlatLinear(48, 32, use_fused_ops=True)
    layer.bias.set_value(paddle.to_tensor(random(32, seed=2)))
    results = run_both(
        monkeypatch, lambda x, r: layer(x, residual=r), [(random(3, 7, 48), True), (random(3, 7, 32), True)]
    )
    assert_paths_agree(results)


@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 8), (4, 33, 256), (1, 300, 31)])
def test_layer_norm(monkeypatch, with_residual, shape):
    norm = paddle.nn.LayerNorm(shape[-1], epsilon=1e-12)
    norm.weight.set_value(paddle.to_tensor(random(shape[-1], seed=3) + 1))
    norm.bias.set_value(paddle.to_tensor(random(shape[-1], seed=4)))
    inputs = [(random(*shape), True)] + ([(random(*shape, seed=9), True)] if with_residual else [])
    results = run_both(monkeypatch, lambda x, *residual: fused_ops.layer_norm(norm, x, True, *residual), inputs)
    assert_paths_agree(results)


def padded_mask(batch, tokens):
    """Real-token mask [B, N, 1]: full, partly padded, a single token, and (last row) no real token at all."""
    lengths = [tokens, max(1, tokens // 2), 1, 0][:batch]
    mask = np.zeros([batch, tokens, 1], dtype=bool)
    for row, length in enumerate(lengths):
        mask[row, :length] = True
    return mask


@pytest.mark.parametrize("batch, tokens, heads, head_size", [(4, 9, 2, 3), (4, 64, 16, 16), (1, 700, 4, 8)])
def test_additive_pool(monkeypatch, batch, tokens, heads, head_size):
    mask = paddle.to_tensor(padded_mask(batch, tokens))
    dropout = paddle.nn.Dropout(0.0)
    results = run_both(
        monkeypatch,
        lambda logits, values: fused_ops.additive_pool(logits, 0.25, mask, values, dropout, True),
        [(random(batch, tokens, heads) * 4, True), (random(batch, tokens, heads, head_size), True)],
    )
    assert_paths_agree(results)
    fused_out, (logit_grads, _) = results["fused"]
    assert np.all(logit_grads[~padded_mask(batch, tokens)[..., 0]] == 0), "padding logits must get no gradient"


def test_additive_pool_padding_values_do_not_leak(monkeypatch):
    monkeypatch.setenv(fused_ops.SWITCH, "1")
    mask = paddle.to_tensor(padded_mask(2, 6))
    logits, values = random(2, 6, 2), random(2, 6, 2, 4)
    dropout = paddle.nn.Dropout(0.0)
    before = fused_ops.additive_pool(paddle.to_tensor(logits), 1.0, mask, paddle.to_tensor(values), dropout, True).numpy()
    values[1, 3:] = 1e6
    logits[1, 3:] = 1e6
    after = fused_ops.additive_pool(paddle.to_tensor(logits), 1.0, mask, paddle.to_tensor(values), dropout, True).numpy()
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("shape", [(2, 5, 6), (3, 40, 4, 16), (1, 500, 256)])
def test_scale_tokens(monkeypatch, shape):
    row_shape = (shape[0], 1) + shape[2:]
    results = run_both(monkeypatch, lambda x, g: fused_ops.scale_tokens(x, g, True), [(random(*shape), True), (random(*row_shape, seed=5), True)])
    assert_paths_agree(results)


@pytest.mark.parametrize("head_size, rotary_size, shape", [(8, 4, (2, 5, 3)), (16, 16, (1, 300, 6)), (2, 2, (3, 4, 1))])
def test_rotary(monkeypatch, head_size, rotary_size, shape):
    rotary = layers.RotaryEmbedding(head_size, rotary_size, use_fused_ops=True)
    assert_paths_agree(run_both(monkeypatch, rotary, [(random(*shape, head_size), True)]))


def test_strided_views_are_read_correctly(monkeypatch):
    """split() may return strided views; the kernels must see the values, not the raw memory behind them."""
    qkv = random(2, 7, 6, 4)

    def compute(x):
        first, second, third = x.chunk(3, axis=2)
        return fused_ops.scale_tokens(second, third[:, :1], True)

    assert_paths_agree(run_both(monkeypatch, compute, [(qkv, True)]))


MODEL_CASES = {
    "official": dict(),
    "softmax": dict(attention_type="softmax"),
    "lucidrains-rotary": dict(formulation="lucidrains", position_embedding_type="rotary", layer_norm_eps=1e-5),
    "lucidrains-absolute": dict(formulation="lucidrains", layer_norm_eps=1e-5),
}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_whole_models_agree(monkeypatch, case, mode):
    config = FastformerConfig(
        vocab_size=50, hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=96,
        max_position_embeddings=40, hidden_dropout_prob=0.0, num_labels=5, **MODEL_CASES[case],
    )
    paddle.seed(3)
    model_class = FastformerForMaskedLM if case.startswith("lucidrains") else FastformerForSequenceClassification
    model = model_class(config)
    model.train() if mode == "train" else model.eval()
    mask = padded_mask(4, 33)[..., 0]
    ids = np.where(mask, np.random.default_rng(0).integers(2, 50, size=mask.shape), 0)
    outputs = {}
    for path in ("reference", "fused"):
        monkeypatch.setenv(fused_ops.SWITCH, "1" if path == "fused" else "0")
        model.clear_gradients()
        logits = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask.astype("int64")))
        (logits * paddle.to_tensor(random(*logits.shape, seed=8))).sum().backward()
        grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters() if p.grad is not None}
        outputs[path] = (logits.numpy(), grads)
    (ref_logits, ref_grads), (fused_logits, fused_grads) = outputs["reference"], outputs["fused"]
    assert np.abs(fused_logits - ref_logits).max() <= 1e-5 * np.abs(ref_logits).max()
    assert set(fused_grads) == set(ref_grads)
    largest = max(np.abs(g).max() for g in ref_grads.values())
    for name, ref in ref_grads.items():
        # Relative per parameter, with an absolute floor at 1e-6 of the largest gradient for the
        # parameters whose true gradient is ~0 (see tests/test_alignment.py, SHIFT_INVARIANT_BIAS).
        error = np.linalg.norm(fused_grads[name] - ref)
        assert error <= max(1e-5 * np.linalg.norm(ref), 1e-6 * largest * np.sqrt(ref.size)), name


def test_attention_dropout_uses_the_reference_path(monkeypatch):
    monkeypatch.setenv(fused_ops.SWITCH, "1")
    calls = []
    monkeypatch.setattr(library, "load", lambda: calls.append("fused kernels asked for"))
    dropout = paddle.nn.Dropout(0.5)
    dropout.train()
    mask = paddle.to_tensor(padded_mask(2, 4))
    out = fused_ops.additive_pool(paddle.ones([2, 4, 2]), 1.0, mask, paddle.ones([2, 4, 2, 3]), dropout, True)
    assert out.shape == [2, 1, 2, 3] and not calls


def test_float64_and_static_graphs_use_the_reference_path(monkeypatch):
    monkeypatch.setenv(fused_ops.SWITCH, "1")
    assert fused_ops.available(paddle.ones([2], dtype="float32"), True)
    assert not fused_ops.available(paddle.ones([2], dtype="float64"), True)
    paddle.enable_static()
    try:
        assert not fused_ops.available(paddle.static.data("x", [2], "float32"), True)
    finally:
        paddle.disable_static()


def test_config_field_decides_and_the_environment_overrides(monkeypatch):
    x = paddle.ones([2], dtype="float32")
    monkeypatch.delenv(fused_ops.SWITCH, raising=False)
    assert fused_ops.available(x, use_fused_ops=True) and not fused_ops.available(x, use_fused_ops=False)
    monkeypatch.setenv(fused_ops.SWITCH, "0")
    assert not fused_ops.available(x, use_fused_ops=True)
    monkeypatch.setenv(fused_ops.SWITCH, "1")
    assert fused_ops.available(x, use_fused_ops=False)


def test_a_model_built_with_the_switch_off_never_asks_for_the_kernels(monkeypatch):
    monkeypatch.delenv(fused_ops.SWITCH, raising=False)
    calls = []
    monkeypatch.setattr(library, "load", lambda: calls.append("fused kernels asked for"))
    config = FastformerConfig(vocab_size=30, hidden_size=16, num_attention_heads=2, intermediate_size=8, use_fused_ops=False)
    FastformerForSequenceClassification(config)(paddle.to_tensor([[3, 4, 5, 0]]))
    assert calls == []
    assert FastformerConfig.from_dict(config.to_dict()).use_fused_ops is False


# ----------------------------------------------------------------------------------------------
# the build cache
# ----------------------------------------------------------------------------------------------
USE_KERNELS = (
    "from paddlenlp_fastformer.kernels import library\n"
    "assert library.load() is not None, 'kernels not built'\n"
    "print(library.SOURCE)\n"
    "print(library.build_directory())\n"
)


def kernels_of(checkout: Path, cache: Path, *before: Path) -> Path:
    """The build directory a process loads the kernels from, running the package of ``checkout`` (and the Paddle
    of ``before``, where given) with the kernel cache ``cache``."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": os.pathsep.join(map(str, (*before, checkout)))}
    done = subprocess.run([sys.executable, "-c", USE_KERNELS], cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    source, directory = done.stdout.split()[-2:]
    assert source.startswith(str(checkout)), source  # that checkout's package ran
    return Path(directory)


def library_file(directory: Path) -> Path:
    return directory / library.LIBRARY_NAME / f"{library.LIBRARY_NAME}.so"


def stamp(directory: Path) -> tuple:
    """The built library's inode and modification time: a rebuild changes them."""
    status = library_file(directory).stat()
    return status.st_ino, status.st_mtime_ns


@pytest.mark.slow
def test_checkouts_share_one_build_and_another_paddle_installation_builds_its_own(tmp_path):
    package = Path(library.__file__).parents[1]
    first, second = tmp_path / "first", tmp_path / "second"
    for checkout in (first, second):
        shutil.copytree(package, checkout / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    # The library this process built, copied into the fresh cache: each checkout must load it as it is.
    seeded = seed_kernel_cache(cache)
    before = stamp(seeded)
    built = kernels_of(first, cache)
    assert built == seeded and stamp(built) == before  # loaded as built, not compiled again
    assert kernels_of(second, cache) == built and stamp(built) == before
    # Paddle at other paths, as in a venv with its own installation (linked file by file, not copied).
    other = tmp_path / "other-site-packages"
    shutil.copytree(Path(paddle.__file__).parent, other / "paddle", copy_function=os.symlink)
    own = kernels_of(second, cache, other)
    assert own != built and str(other / "paddle" / "libs").encode() in library_file(own).read_bytes()  # its run path
    own_stamp = stamp(own)
    # Switching back and forth compiles nothing more.
    assert kernels_of(first, cache) == built and stamp(built) == before
    assert kernels_of(first, cache, other) == own and stamp(own) == own_stamp
