"""Behaviour of the Paddle Fastformer models on their own (numeric alignment with PyTorch: test_alignment.py).

Padding isolation, all-padding rows, variable lengths, attention-mask dtypes, parameter dtypes, the task
heads' outputs and losses, input and config errors, weight initialisation, the tied lucidrains score
projections, and one optimiser step.
"""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from paddlenlp.transformers.model_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from paddlenlp_fastformer import (
    FastformerConfig,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
)

VOCAB, HIDDEN, MAX_LEN, NUM_LABELS, DEPTH = 61, 32, 32, 3, 2
# (formulation, position_embedding_type, attention_type): both Fastformer formulations and the
# official model with standard softmax self-attention (the quadratic baseline).
FORMS = [
    ("official", "absolute", "additive"),
    ("lucidrains", "absolute", "additive"),
    ("lucidrains", "rotary", "additive"),
    ("official", "absolute", "softmax"),
]
FORM_IDS = ["official", "lucidrains-absolute", "lucidrains-rotary", "official-softmax"]
HEADS = [1, 2, 4, 8]
HEAD_CLASSES = [FastformerModel, FastformerForSequenceClassification, FastformerForTokenClassification, FastformerForMaskedLM]


def make_config(formulation, position, heads=4, attention="additive", **overrides):
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=DEPTH,
        num_attention_heads=heads,
        intermediate_size=48,
        max_position_embeddings=MAX_LEN,
        hidden_dropout_prob=0.0,
        num_labels=NUM_LABELS,
        formulation=formulation,
        position_embedding_type=position,
        attention_type=attention,
        layer_norm_eps=1e-12 if formulation == "official" else 1e-5,
    )
    kwargs.update(overrides)
    return FastformerConfig(**kwargs)


def randomise(model, seed, scale=0.3):
    """Large random perturbations of every parameter, so that any leak shows far above float noise."""
    rng = np.random.default_rng(seed)
    for parameter in model.parameters():  # tied parameters are visited once
        value = parameter.numpy() + scale * rng.standard_normal(parameter.shape)
        parameter.set_value(value.astype(parameter.numpy().dtype))
    return model


def build(cls, form, heads=4, seed=0, **overrides):
    paddle.seed(seed)
    model = randomise(cls(make_config(*form[:2], heads, form[2], **overrides)), seed)
    model.eval()
    return model


def batch(lengths, seq_len, seed, pad_id=0):
    """Ids >= 1 (never pad_id) on real tokens, pad_id after each row's length; mask as int64 0/1."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(len(lengths), seq_len))
    ids = np.where(ids == pad_id, pad_id + 1, ids)
    mask = np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]
    return np.where(mask, ids, pad_id).astype("int64"), mask.astype("int64")


def run(model, ids, mask=None, **kwargs):
    """Every output of `model` as numpy: {'seq', 'pooled'} for the base model, {'logits'} for heads."""
    with paddle.no_grad():
        out = model(
            paddle.to_tensor(ids),
            attention_mask=None if mask is None else paddle.to_tensor(mask),
            **kwargs,
        )
    if isinstance(model, FastformerModel):
        return {"seq": out[0].numpy(), "pooled": out[1].numpy()}
    return {"logits": out.numpy()}


def real_token_outputs(outputs, mask):
    """Outputs restricted to real tokens: per-token outputs at mask==1, per-row outputs whole."""
    per_token = {"seq", "logits"}
    result = {}
    for name, value in outputs.items():
        if name in per_token and value.ndim == 3:
            result[name] = [value[row, : int(mask[row].sum())] for row in range(len(mask))]
        else:
            result[name] = [value[row] for row in range(len(mask))]
    return result


def assert_same(a, b, rtol, what=""):
    """Equal within ``rtol`` times the largest magnitude of that output (float noise only)."""
    assert a.keys() == b.keys()
    for name in a:
        scale = max(1.0, max(np.abs(x).max() for x in a[name] if x.size))
        for row, (x, y) in enumerate(zip(a[name], b[name])):
            assert x.shape == y.shape, f"{what} {name} row {row}: {x.shape} vs {y.shape}"
            diff = np.abs(x - y).max() if x.size else 0.0
            assert diff <= rtol * scale, f"{what} {name} row {row}: max abs diff {diff:.3e} > {rtol} * {scale:.1f}"


# ----------------------------------------------------------------------------------------------
# padding never leaks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_padding_ids_and_padding_length_do_not_change_real_outputs(form, heads):
    lengths, seq_len = [10, 7, 3, 1], 10
    ids, mask = batch(lengths, seq_len, seed=heads)
    rng = np.random.default_rng(100 + heads)
    # Padding positions filled with arbitrary non-pad ids, and 6 more padding positions appended.
    garbage = rng.integers(1, VOCAB, size=(len(lengths), seq_len + 6))
    longer_mask = np.concatenate([mask, np.zeros((len(lengths), 6), "int64")], axis=1)
    longer_ids = np.where(longer_mask == 1, np.pad(ids, ((0, 0), (0, 6))), garbage)
    # A control: changing one real token of row 1 must change that row (the test has power).
    control_ids = ids.copy()
    control_ids[1, 0] = 1 + (ids[1, 0] % (VOCAB - 1))

    for cls in HEAD_CLASSES:
        model = build(cls, form, heads, seed=heads)
        reference = real_token_outputs(run(model, ids, mask), mask)
        changed = real_token_outputs(run(model, longer_ids, longer_mask), longer_mask)
        # float32: equal up to the summation order of longer reductions
        assert_same(reference, changed, rtol=1e-6, what=f"{cls.__name__} float32")

        control = real_token_outputs(run(model, control_ids, mask), mask)
        for name in reference:
            # real tokens other than the edited one still see it through the global query/key
            assert np.abs(reference[name][1] - control[name][1]).max() > 1e-4, f"{cls.__name__} {name} insensitive"

        # float64: no noise left, so padding must leave the real outputs bit-identical
        model.to(dtype="float64")
        reference = real_token_outputs(run(model, ids, mask), mask)
        changed = real_token_outputs(run(model, longer_ids, longer_mask), longer_mask)
        assert_same(reference, changed, rtol=1e-13, what=f"{cls.__name__} float64")


# ----------------------------------------------------------------------------------------------
# rows without any real token
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_all_padding_row_is_finite_zero_pooled_and_isolated(form, heads):
    ids, mask = batch([8, 5, 2], 8, seed=heads + 7)
    with_empty_ids = np.concatenate([ids[:1], np.full((1, 8), 0, "int64"), ids[1:]], axis=0)
    with_empty_mask = np.concatenate([mask[:1], np.zeros((1, 8), "int64"), mask[1:]], axis=0)
    # the empty row also with non-pad ids under a zero mask
    garbage_ids = with_empty_ids.copy()
    garbage_ids[1] = np.arange(1, 9)
    keep = [0, 2, 3]

    for cls in HEAD_CLASSES:
        model = build(cls, form, heads, seed=heads + 1)
        alone = run(model, ids, mask)
        for batch_ids in (with_empty_ids, garbage_ids):
            together = run(model, batch_ids, with_empty_mask)
            for name, value in together.items():
                assert np.isfinite(value).all(), f"{cls.__name__} {name} has NaN/inf"
                others = value[keep]
                if value.ndim == 3:  # per-token outputs: compare real tokens only
                    others = others * mask[..., None]
                    expected = alone[name] * mask[..., None]
                else:
                    expected = alone[name]
                diff, scale = np.abs(others - expected).max(), max(1.0, np.abs(expected).max())
                assert diff <= 1e-6 * scale, f"{cls.__name__} {name}: other rows changed by {diff:.3e}"
            if cls is FastformerModel:
                assert np.array_equal(together["pooled"][1], np.zeros(HIDDEN, "float32"))
        with paddle.no_grad():
            only_empty = model(paddle.to_tensor(with_empty_ids[1:2]), attention_mask=paddle.to_tensor(with_empty_mask[1:2]))
        first = only_empty[0] if isinstance(only_empty, tuple) else only_empty
        assert np.isfinite(first.numpy()).all()
        if cls is FastformerModel:
            assert not np.any(only_empty[1].numpy()), "a batch of one empty row must pool to zero"


# ----------------------------------------------------------------------------------------------
# a padded batch equals its rows run alone, unpadded
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_variable_lengths_match_unpadded_single_rows(form, heads):
    lengths = [12, 9, 4, 1, 12, 6]
    ids, mask = batch(lengths, 12, seed=3 * heads)
    for cls in HEAD_CLASSES:
        model = build(cls, form, heads, seed=heads + 2)
        together = real_token_outputs(run(model, ids, mask), mask)
        for row, length in enumerate(lengths):
            single_ids = ids[row : row + 1, :length]
            alone = run(model, single_ids, np.ones_like(single_ids))
            for name, values in together.items():
                expected = alone[name][0]
                diff, scale = np.abs(values[row] - expected).max(), max(1.0, np.abs(expected).max())
                assert diff <= 1e-5 * scale, f"{cls.__name__} {name} row {row} (length {length}): {diff:.3e}"


# ----------------------------------------------------------------------------------------------
# attention_mask dtypes and the derived mask
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_attention_mask_dtypes_give_identical_results(form):
    ids, mask = batch([9, 4, 1, 6], 9, seed=11)
    model = build(FastformerModel, form, seed=5)
    expected = run(model, ids, mask.astype("int64"))
    for dtype in ("int32", "float32", "bool"):
        got = run(model, ids, mask.astype(dtype))
        for name in expected:
            assert np.array_equal(got[name], expected[name]), f"attention_mask {dtype}: {name} differs"
    # a mask that really masks something (the comparison above is meaningful)
    unmasked = run(model, ids, np.ones_like(mask))
    assert np.abs(unmasked["pooled"] - expected["pooled"]).max() > 1e-4


@pytest.mark.parametrize("pad_token_id", [0, 5])
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_attention_mask_none_is_derived_from_pad_token_id(form, pad_token_id):
    ids, mask = batch([9, 4, 1, 6], 9, seed=12, pad_id=pad_token_id)
    model = build(FastformerForTokenClassification, form, seed=6, pad_token_id=pad_token_id)
    base = build(FastformerModel, form, seed=6, pad_token_id=pad_token_id)
    assert np.array_equal(run(model, ids)["logits"], run(model, ids, mask)["logits"])
    derived, explicit = run(base, ids), run(base, ids, mask)
    for name in explicit:
        assert np.array_equal(derived[name], explicit[name])


# ----------------------------------------------------------------------------------------------
# parameter dtypes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_outputs_follow_parameter_dtype(form):
    ids, mask = batch([7, 3], 7, seed=13)
    model = build(FastformerModel, form, seed=7)
    float32 = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))
    assert float32[0].dtype == paddle.float32 and float32[1].dtype == paddle.float32
    model.to(dtype="float64")
    assert all(p.dtype == paddle.float64 for p in model.parameters())
    float64 = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))
    assert float64[0].dtype == paddle.float64 and float64[1].dtype == paddle.float64
    real = mask.astype(bool)
    assert np.abs(float64[0].numpy()[real] - float32[0].numpy()[real]).max() < 1e-4
    assert np.abs(float64[1].numpy() - float32[1].numpy()).max() < 1e-4

    head = build(FastformerForSequenceClassification, form, seed=7)
    head.to(dtype="float64")
    loss, logits = head(paddle.to_tensor(ids), labels=paddle.to_tensor([0, 2]))
    assert logits.dtype == paddle.float64 and loss.dtype == paddle.float64


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_bfloat16_forward_is_finite(form):
    ids, mask = batch([7, 3, 0], 7, seed=14)
    model = build(FastformerForSequenceClassification, form, seed=8)
    reference = run(model, ids, mask)["logits"]
    model.to(dtype="bfloat16")
    try:
        with paddle.no_grad():
            logits = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))
    except RuntimeError as error:
        if "not registered" in str(error) and "bfloat16" in str(error):
            pytest.skip(f"Paddle CPU has no bfloat16 kernel for an op of the model: {str(error).splitlines()[0][:160]}")
        raise
    assert logits.dtype == paddle.bfloat16
    values = logits.astype("float32").numpy()
    assert np.isfinite(values).all()
    assert np.abs(values - reference).max() < 0.1 * max(1.0, np.abs(reference).max())


# ----------------------------------------------------------------------------------------------
# task heads
# ----------------------------------------------------------------------------------------------
def numpy_cross_entropy(logits, labels):
    """Per-example cross entropy, float64."""
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_sequence_classification_outputs_and_loss(form):
    ids, mask = batch([8, 5, 2], 8, seed=15)
    labels = np.array([2, 0, 1], "int64")
    model = build(FastformerForSequenceClassification, form, seed=9)
    x, m = paddle.to_tensor(ids), paddle.to_tensor(mask)
    logits = model(x, attention_mask=m)
    assert isinstance(logits, paddle.Tensor) and logits.shape == [3, NUM_LABELS]

    loss, logits_with_loss = model(x, attention_mask=m, labels=paddle.to_tensor(labels))
    assert np.array_equal(logits_with_loss.numpy(), logits.numpy())
    assert loss.size == 1
    expected = F.cross_entropy(logits, paddle.to_tensor(labels))
    assert abs(loss.item() - expected.item()) < 1e-6
    assert abs(loss.item() - numpy_cross_entropy(logits.numpy(), labels).mean()) < 1e-5
    # labels given as [B, 1] are accepted too
    loss_column = model(x, attention_mask=m, labels=paddle.to_tensor(labels[:, None]))[0]
    assert abs(loss_column.item() - loss.item()) < 1e-7

    output = model(x, attention_mask=m, labels=paddle.to_tensor(labels), return_dict=True)
    assert isinstance(output, SequenceClassifierOutput)
    assert np.array_equal(output.logits.numpy(), logits.numpy())
    assert abs(output.loss.item() - loss.item()) < 1e-7
    no_labels = model(x, attention_mask=m, return_dict=True)
    assert isinstance(no_labels, SequenceClassifierOutput) and no_labels.loss is None

    with_hidden = model(x, attention_mask=m, output_hidden_states=True, return_dict=True)
    assert len(with_hidden.hidden_states) == DEPTH + 1
    assert all(h.shape == [3, 8, HIDDEN] for h in with_hidden.hidden_states)


@pytest.mark.parametrize("cls, output_cls", [(FastformerForTokenClassification, TokenClassifierOutput), (FastformerForMaskedLM, MaskedLMOutput)])
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_token_loss_is_mean_over_labelled_tokens_only(form, cls, output_cls):
    ids, mask = batch([8, 5, 2, 6], 8, seed=16)
    num_classes = NUM_LABELS if cls is FastformerForTokenClassification else VOCAB
    rng = np.random.default_rng(17)
    labels = rng.integers(0, num_classes, size=ids.shape)
    labels = np.where(mask == 1, labels, -100)
    labels[0, 3] = labels[2, 0] = -100  # some real tokens unlabelled too
    model = build(cls, form, seed=10)
    x, m = paddle.to_tensor(ids), paddle.to_tensor(mask)

    logits = model(x, attention_mask=m)
    assert logits.shape == [4, 8, num_classes]
    loss, logits_with_loss = model(x, attention_mask=m, labels=paddle.to_tensor(labels))
    assert np.array_equal(logits_with_loss.numpy(), logits.numpy())

    labelled = labels != -100
    expected = numpy_cross_entropy(logits.numpy()[labelled], labels[labelled]).mean()
    assert labelled.sum() < labels.size  # a mean over all tokens would differ
    assert abs(loss.item() - expected) < 1e-5 * max(1.0, expected), (loss.item(), expected)

    output = model(x, attention_mask=m, labels=paddle.to_tensor(labels), return_dict=True, output_hidden_states=True)
    assert isinstance(output, output_cls)
    assert abs(output.loss.item() - loss.item()) < 1e-7
    assert len(output.hidden_states) == DEPTH + 1

    # the loss is differentiable and reaches the encoder
    model.train()
    loss = model(x, attention_mask=m, labels=paddle.to_tensor(labels))[0]
    loss.backward()
    assert model.fastformer.layers[0].ffn_in.weight.grad is not None
    assert np.abs(model.fastformer.layers[0].ffn_in.weight.grad.numpy()).max() > 0


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_base_model_outputs_and_hidden_states(form):
    ids, mask = batch([6, 4], 6, seed=18)
    model = build(FastformerModel, form, seed=11)
    x, m = paddle.to_tensor(ids), paddle.to_tensor(mask)
    sequence, pooled, hidden_states = model(x, attention_mask=m, output_hidden_states=True)
    assert sequence.shape == [2, 6, HIDDEN] and pooled.shape == [2, HIDDEN]
    assert len(hidden_states) == DEPTH + 1
    assert np.array_equal(hidden_states[-1].numpy(), sequence.numpy())
    assert not np.array_equal(hidden_states[0].numpy(), hidden_states[1].numpy())
    output = model(x, attention_mask=m, return_dict=True)
    assert isinstance(output, BaseModelOutputWithPooling)
    assert np.array_equal(output.last_hidden_state.numpy(), sequence.numpy())
    assert np.array_equal(output.pooler_output.numpy(), pooled.numpy())
    assert output.hidden_states is None

    for cls in (FastformerForTokenClassification, FastformerForMaskedLM):
        head = build(cls, form, seed=11)
        _, head_hidden = head(x, attention_mask=m, output_hidden_states=True)
        assert len(head_hidden) == DEPTH + 1
        assert head.fastformer.pooler is None  # per-token heads build no pooler


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_input_longer_than_max_position_embeddings_is_rejected(form):
    model = build(FastformerForMaskedLM, form, seed=12)
    ok = np.ones((1, MAX_LEN), "int64")
    assert model(paddle.to_tensor(ok)).shape == [1, MAX_LEN, VOCAB]
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(paddle.to_tensor(np.ones((2, MAX_LEN + 1), "int64")))


def test_one_dimensional_input_ids_are_rejected():
    model = build(FastformerModel, FORMS[0], seed=13)
    with pytest.raises(ValueError, match="input_ids"):
        model(paddle.to_tensor(np.ones(5, "int64")))
    with pytest.raises(ValueError, match="attention_mask"):
        model(paddle.to_tensor(np.ones((1, 5), "int64")), attention_mask=paddle.to_tensor(np.ones(5, "int64")))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(formulation="foo"), "formulation"),
        (dict(position_embedding_type="sinusoidal"), "position_embedding_type"),
        (dict(formulation="official", position_embedding_type="rotary"), "position_embedding_type"),
        (dict(formulation="official", hidden_size=30, num_attention_heads=4), "num_attention_heads"),
        (dict(formulation="official", hidden_size=32, num_attention_heads=4, attention_head_size=16), "attention_head_size"),
        (dict(formulation="lucidrains", position_embedding_type="rotary", hidden_size=24, num_attention_heads=4), "attention_head_size"),
        (dict(formulation="lucidrains", position_embedding_type="rotary", attention_head_size=6), "attention_head_size"),
        (dict(attention_type="linear"), "attention_type"),
        (dict(formulation="lucidrains", attention_type="softmax"), "attention_type"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
        (dict(hidden_dropout_prob=-0.1), "hidden_dropout_prob"),
        (dict(attention_probs_dropout_prob=1.0), "attention_probs_dropout_prob"),
        (dict(num_hidden_layers=0), "num_hidden_layers"),
        (dict(vocab_size=-3), "vocab_size"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FastformerConfig(**kwargs)


def test_config_accepts_the_valid_extremes():
    FastformerConfig(formulation="lucidrains", hidden_size=30, num_attention_heads=4, attention_head_size=8)
    FastformerConfig(formulation="lucidrains", position_embedding_type="rotary", hidden_size=30, num_attention_heads=3, attention_head_size=4)
    FastformerConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    assert FastformerConfig().head_size == 16 and FastformerConfig(formulation="lucidrains", attention_head_size=64).head_size == 64


def test_config_aliases_num_classes():
    assert FastformerConfig(num_classes=3).num_labels == 3


def test_config_alias_dropout_sets_hidden_dropout_prob():
    assert FastformerConfig(dropout=0.05).hidden_dropout_prob == 0.05


# ----------------------------------------------------------------------------------------------
# initialisation
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_initialisation(form):
    paddle.seed(21)
    config = make_config(
        *form[:2], heads=4, attention=form[2], hidden_size=64, intermediate_size=128, vocab_size=300, initializer_range=0.05, pad_token_id=3
    )
    for cls in HEAD_CLASSES:
        model = cls(config)
        checked = 0
        for name, layer in model.named_sublayers():
            if isinstance(layer, (nn.Linear, nn.Embedding)):
                weight = layer.weight.numpy()
                if weight.size >= 1000:
                    assert abs(weight.std() - 0.05) < 0.1 * 0.05, f"{name}.weight std {weight.std():.4f}"
                    assert abs(weight.mean()) < 0.01, f"{name}.weight mean {weight.mean():.4f}"
                    checked += 1
                else:
                    assert np.abs(weight).max() < 0.05 * 6, f"{name}.weight not N(0, 0.05)"
            if isinstance(layer, nn.Linear) and layer.bias is not None:
                assert not np.any(layer.bias.numpy()), f"{name}.bias not zero"
            if isinstance(layer, nn.LayerNorm):
                assert np.all(layer.weight.numpy() == 1.0) and not np.any(layer.bias.numpy()), name
        assert checked >= 2 * DEPTH
        word = model.fastformer.embeddings.word_embeddings.weight.numpy() if cls is not FastformerModel else model.embeddings.word_embeddings.weight.numpy()
        if form[0] == "official":
            assert not np.any(word[3]), "official embedding padding row must be zero"
            assert np.abs(word[0]).max() > 0
        else:
            assert np.abs(word[3]).max() > 0, "fast-transformer-pytorch has no padding row"


# ----------------------------------------------------------------------------------------------
# lucidrains: score projections tied across layers
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", ["absolute", "rotary"])
def test_lucidrains_score_projections_are_tied(position):
    paddle.seed(0)
    model = FastformerForMaskedLM(make_config("lucidrains", position, heads=4, num_hidden_layers=3))
    layers = model.fastformer.layers
    for name in ("to_q_attn_logits", "to_k_attn_logits"):
        first = getattr(layers[0].attention, name).weight
        for layer in layers[1:]:
            assert getattr(layer.attention, name).weight is first, f"{name} not shared"
        assert sum(p is first for p in model.parameters()) == 1, f"{name} counted more than once"
        state = model.state_dict()
        keys = [f"fastformer.layers.{i}.attention.{name}.weight" for i in range(3)]
        assert all(k in state for k in keys), f"{name} missing under some layer in state_dict"
        assert all(np.array_equal(state[k].numpy(), first.numpy()) for k in keys)
    named = [n for n, _ in model.named_parameters()]
    assert len(named) == len({id(p) for p in model.parameters()})
    assert len(model.state_dict()) == len(named) + 2 * (3 - 1)

    # one update moves the shared parameter once, seen by every layer
    ids, mask = batch([6, 4], 6, seed=1)
    loss = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask), labels=paddle.to_tensor(ids))[0]
    loss.backward()
    paddle.optimizer.SGD(learning_rate=0.1, parameters=model.parameters()).step()
    assert layers[2].attention.to_q_attn_logits.weight is layers[0].attention.to_q_attn_logits.weight


def test_official_layers_do_not_share_parameters():
    model = FastformerModel(make_config("official", "absolute", heads=4))
    a, b = model.layers[0].attention, model.layers[1].attention
    assert a.query_att.weight is not b.query_att.weight
    assert len(model.state_dict()) == len(list(model.parameters()))


# ----------------------------------------------------------------------------------------------
# one optimiser step
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [FastformerForSequenceClassification, FastformerForMaskedLM])
@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_one_adam_step_reduces_the_loss(form, cls):
    paddle.seed(31)
    model = cls(make_config(*form[:2], heads=4, attention=form[2], hidden_dropout_prob=0.1))
    ids, mask = batch([8, 6, 3, 8], 8, seed=32)
    if cls is FastformerForSequenceClassification:
        labels = np.array([0, 1, 2, 1], "int64")
    else:
        labels = np.where(mask == 1, ids, -100)
    x, m, y = paddle.to_tensor(ids), paddle.to_tensor(mask), paddle.to_tensor(labels)

    def eval_loss():
        model.eval()
        with paddle.no_grad():
            return model(x, attention_mask=m, labels=y)[0].item()

    before = eval_loss()
    model.train()
    optimizer = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    loss = model(x, attention_mask=m, labels=y)[0]
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    after = eval_loss()
    assert after < before, (before, after)
    if form[0] == "official":  # the padding row gets no gradient, so it stays zero
        assert not np.any(model.fastformer.embeddings.word_embeddings.weight.numpy()[0])
