"""Packed texts (``segment_ids``): several texts back to back in one row, no padding, each attended, positioned
and pooled on its own. The packed forward must equal the padded one text for text, for both formulations
(rotary positions included) and with the fused kernels on or off; it refuses what it does not offer."""
import numpy as np
import paddle
import pytest

from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification, FastformerModel
from paddlenlp_fastformer.pooling import AdditivePooling, PackedTexts

VOCAB, MAX_LEN = 61, 48
FORMS = {
    "official": {"formulation": "official"},
    "lucidrains-absolute": {"formulation": "lucidrains"},
    "lucidrains-rotary": {"formulation": "lucidrains", "position_embedding_type": "rotary"},
}


def _config(use_fused_ops=False, **options) -> FastformerConfig:
    return FastformerConfig(
        vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, num_labels=3,
        max_position_embeddings=MAX_LEN, hidden_dropout_prob=0.0, use_fused_ops=use_fused_ops, **options,
    )  # fmt: skip


def _texts(seed: int, lengths) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, VOCAB, length) for length in lengths]


def _padded(texts) -> tuple:
    ids = np.zeros((len(texts), max(map(len, texts))), dtype="int64")
    mask = np.zeros_like(ids)
    for row, text in enumerate(texts):
        ids[row, : len(text)], mask[row, : len(text)] = text, 1
    return paddle.to_tensor(ids), paddle.to_tensor(mask)


def _packed(texts) -> tuple:
    ids = np.concatenate(texts)[None]
    segments = np.concatenate([np.full(len(text), index) for index, text in enumerate(texts)])[None]
    return paddle.to_tensor(ids), paddle.to_tensor(segments)


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize("form", list(FORMS))
def test_packed_texts_equal_padded_rows(form, fused):
    paddle.seed(3)
    model = FastformerForSequenceClassification(_config(fused, **FORMS[form]))
    model.eval()
    # one-token texts, a text of the full length, and lengths that differ a lot, as a service's micro-batch has
    texts = _texts(0, [5, 1, MAX_LEN, 9, 1, 30, 2])
    ids, mask = _padded(texts)
    packed_ids, segments = _packed(texts)
    padded = model(ids, attention_mask=mask).numpy()
    packed = model(packed_ids, segment_ids=segments).numpy()
    assert padded.std(axis=0).max() > 1e-3  # the texts get different logits: a real comparison
    np.testing.assert_allclose(packed, padded, rtol=0, atol=1e-5)
    base = FastformerModel(_config(fused, **FORMS[form]))
    base.eval()
    sequence_padded, pooled_padded = (output.numpy() for output in base(ids, attention_mask=mask))
    sequence, pooled = base(packed_ids, segment_ids=segments)
    np.testing.assert_allclose(pooled.numpy(), pooled_padded, rtol=0, atol=1e-5)
    # each packed token's state is its own text's, at its own position
    unpadded = np.concatenate([sequence_padded[row, : len(text)] for row, text in enumerate(texts)])
    np.testing.assert_allclose(sequence.numpy()[0], unpadded, rtol=0, atol=1e-5)


def test_packed_texts_do_not_see_each_other():
    paddle.seed(4)
    model = FastformerForSequenceClassification(_config(**FORMS["official"]))
    model.eval()
    texts = _texts(1, [7, 12, 3])
    changed = [texts[0], _texts(2, [12])[0], texts[2]]  # only the middle text differs
    before = model(_packed(texts)[0], segment_ids=_packed(texts)[1]).numpy()
    after = model(_packed(changed)[0], segment_ids=_packed(changed)[1]).numpy()
    np.testing.assert_array_equal(before[[0, 2]], after[[0, 2]])
    assert np.abs(before[1] - after[1]).max() > 1e-4


def test_packed_pooling_is_stable_for_large_scores():
    """Scores of +-1e4 (far past exp's float32 range): each text's softmax is shifted by its own largest score."""
    config = _config()
    pooling = AdditivePooling(config)
    pooling.eval()
    rng = np.random.default_rng(5)
    lengths = [4, 1, 9]
    scores = rng.uniform(-1e4, 1e4, (1, sum(lengths), 4)).astype("float32")
    scores[0, 5:] -= 3e4  # the last text's scores all far below the others'
    values = rng.normal(size=(1, sum(lengths), 4, 8)).astype("float32")
    packed = PackedTexts.from_segment_ids(_packed([np.zeros(n) for n in lengths])[1])
    spread, _ = pooling(paddle.to_tensor(scores), packed, paddle.to_tensor(values))
    starts = np.cumsum([0] + lengths)
    for text, (start, end) in enumerate(zip(starts[:-1], starts[1:])):
        mask = paddle.ones([1, end - start, 1], dtype="bool")
        alone, _ = pooling(paddle.to_tensor(scores[:, start:end]), mask, paddle.to_tensor(values[:, start:end]))
        assert np.isfinite(spread.numpy()).all()
        np.testing.assert_allclose(spread.numpy()[0, start:end], np.repeat(alone.numpy(), end - start, axis=1)[0], rtol=1e-5, atol=1e-5)


def test_packed_texts_keep_their_own_positions_and_a_long_pack_is_allowed():
    paddle.seed(6)
    model = FastformerForSequenceClassification(_config(**FORMS["lucidrains-rotary"]))
    model.eval()
    texts = _texts(3, [MAX_LEN, MAX_LEN, MAX_LEN])  # 3 x the position table, packed in one row
    ids, segments = _packed(texts)
    packed = PackedTexts.from_segment_ids(segments)
    assert packed.positions.numpy().tolist() == [list(range(MAX_LEN)) * 3]
    padded_ids, mask = _padded(texts)
    np.testing.assert_allclose(model(ids, segment_ids=segments).numpy(), model(padded_ids, attention_mask=mask).numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "options, call, message",
    [
        ({"attention_type": "softmax"}, {}, "additive attention encoders"),
        ({}, {"attention_mask": True}, "drop attention_mask"),
        ({}, {"output_attentions": True}, "drop attention_mask and output_attentions"),
        ({}, {"two_rows": True}, r"segment_ids must be integers \[1, T\]"),
        ({}, {"too_long": True}, "more than max_position_embeddings"),
    ],
    ids=["softmax-attention", "attention-mask", "attention-weights", "two-rows", "text-too-long"],
)  # fmt: skip
def test_packed_texts_refuse_what_they_do_not_offer(options, call, message):
    model = FastformerModel(_config(**options))
    lengths = [MAX_LEN + 1] if call.get("too_long") else [3, 4]
    ids, segments = _packed(_texts(4, lengths))
    if call.get("two_rows"):
        ids, segments = paddle.concat([ids, ids]), paddle.concat([segments, segments])
    kwargs = {"segment_ids": segments, "output_attentions": bool(call.get("output_attentions"))}
    if call.get("attention_mask"):
        kwargs["attention_mask"] = paddle.ones_like(ids)
    with pytest.raises(ValueError, match=message):
        model(ids, **kwargs)


@pytest.mark.parametrize(
    "segment_ids", [[[1, 1, 2, 2]], [[0, 0, 2, 2]], [[0, 0, 1, 0]], [[-1, 0, 0, 0]], [[0.0, 0.0, 1.0, 1.0]]],
    ids=["not-from-0", "gap", "text-split", "negative", "float"],
)  # fmt: skip
def test_malformed_segment_ids_are_refused(segment_ids):
    model = FastformerModel(_config())
    with pytest.raises(ValueError, match="segment_ids must"):
        model(paddle.to_tensor([[5, 6, 7, 8]]), segment_ids=paddle.to_tensor(segment_ids))


def test_packed_texts_need_exactly_one_of_ids_and_embeddings():
    model = FastformerModel(_config())
    ids, segments = _packed(_texts(6, [2, 3]))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(ids, inputs_embeds=paddle.zeros([1, 5, 32]), segment_ids=segments)
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(None, segment_ids=segments)


def test_packed_texts_train_as_padded_rows():
    """The loss and every gradient of a packed batch equal the padded batch's (dropout off)."""
    texts = _texts(7, [6, 1, 20, 11])
    labels = paddle.to_tensor([0, 2, 1, 2])
    gradients = []
    for packed in (False, True):
        paddle.seed(8)
        model = FastformerForSequenceClassification(_config(**FORMS["lucidrains-rotary"]))
        ids, second = _packed(texts) if packed else _padded(texts)
        loss = model(ids, labels=labels, **({"segment_ids": second} if packed else {"attention_mask": second}))[0]
        loss.backward()
        gradients.append({name: parameter.grad.numpy() for name, parameter in model.named_parameters() if parameter.grad is not None})
    assert gradients[0].keys() == gradients[1].keys() and len(gradients[0]) > 10
    for name, padded in gradients[0].items():
        np.testing.assert_allclose(gradients[1][name], padded, rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_decoder_refuses_packed_texts():
    model = FastformerModel(_config(is_decoder=True))
    ids, segments = _packed(_texts(5, [3, 4]))
    with pytest.raises(ValueError, match="not decoders"):
        model(ids, segment_ids=segments)
