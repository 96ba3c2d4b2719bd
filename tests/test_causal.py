"""Causal Fastformer: causality, equality with a per-prefix loop written from the definition, decoding with the
fixed-size state, numerical stability, generation through PaddleNLP's generate(), and each position's attention
weights."""
import numpy as np
import paddle
import pytest

from paddlenlp_fastformer import FastformerConfig, FastformerForCausalLM
from paddlenlp_fastformer.layers import split_heads
from paddlenlp_fastformer.pooling import causal_additive_pool

SMALL = dict(vocab_size=60, hidden_size=32, num_attention_heads=4, intermediate_size=48, hidden_dropout_prob=0.0,
             max_position_embeddings=160, bos_token_id=2, eos_token_id=3)  # fmt: skip
VARIANTS = {
    "official": {},
    "lucidrains": {"formulation": "lucidrains", "layer_norm_eps": 1e-5},
    "lucidrains-rotary": {"formulation": "lucidrains", "position_embedding_type": "rotary", "attention_head_size": 8},
    "softmax": {"attention_type": "softmax"},
}


def causal_lm(variant: str, seed: int = 0, **changes) -> FastformerForCausalLM:
    paddle.seed(seed)
    model = FastformerForCausalLM(FastformerConfig(**{**SMALL, **VARIANTS[variant], **changes}))
    model.eval()
    return model


def batch(length: int = 70, seed: int = 1):
    """Two rows: one full, one left-padded by 5 (as generate() batches prompts of different lengths)."""
    paddle.seed(seed)
    ids = paddle.randint(5, SMALL["vocab_size"], [2, length])
    mask = paddle.ones([2, length], dtype="int64")
    mask[1, :5] = 0
    return ids, mask


# ------------------------------------------------------------------------------------------ causality
@pytest.mark.parametrize("variant", VARIANTS)
def test_no_position_depends_on_a_later_one(variant):
    model = causal_lm(variant)
    ids, mask = batch()
    changed = ids.clone()
    changed[:, 40:] = (changed[:, 40:] + 7) % SMALL["vocab_size"]
    before, after = model(ids, attention_mask=mask), model(changed, attention_mask=mask)
    assert np.array_equal(before[:, :40].numpy(), after[:, :40].numpy())  # bit-identical, padding positions too
    assert not np.allclose(before[:, 40:].numpy(), after[:, 40:].numpy())


# ------------------------------------------------------------------------------------------ the definition
def prefix_pools(scores, mask, values):
    """Written from the definition, in float64: at each t, softmax over the real i <= t of scores[i] weighs values[i]."""
    length, heads = scores.shape
    pooled = np.zeros(values.shape)
    for t in range(length):
        real = [i for i in range(t + 1) if mask[i]]
        for head in range(heads):
            if real:
                weights = np.exp(scores[real, head] - scores[real, head].max())
                pooled[t, head] = (weights / weights.sum()) @ values[real, head]
    return pooled


def as_numpy(tensor):
    return tensor.numpy()[0].astype(np.float64)


def official_reference(attention, x, mask):
    """q_g(t) pools the queries up to t; p_i = q_g(i) * k_i; k_g(t) pools p up to t; u_t = k_g(t) * q_t."""
    heads, scale = attention.num_heads, attention.pool.scale
    query, key = attention.query(x), attention.key(x)
    global_query = prefix_pools(as_numpy(attention.query_att(query)) * scale, mask, as_numpy(split_heads(query, heads)))
    mixed = as_numpy(key) * global_query.reshape(len(mask), -1)
    mixed_tensor = paddle.to_tensor(mixed[None], dtype="float32")
    global_key = prefix_pools(as_numpy(attention.key_att(mixed_tensor)) * scale, mask, mixed.reshape(len(mask), heads, -1))
    weighted = paddle.to_tensor((as_numpy(query) * global_key.reshape(len(mask), -1))[None], dtype="float32")
    return as_numpy(attention.output(attention.transform(weighted, residual=query)))


def lucidrains_reference(attention, x, mask):
    """q_g(t) pools the queries up to t; k'_i = k_i * q_g(i) scores the raw keys up to t into k_g(t); u_t = v_t * k_g(t)."""
    heads, scale = attention.num_heads, attention.pool.scale
    query, key, value = split_heads(attention.to_qkv(x), 3 * heads).chunk(3, axis=2)
    query_scores = as_numpy(attention.to_q_attn_logits(query).squeeze(-1)) * scale
    global_query = prefix_pools(query_scores, mask, as_numpy(query))
    biased_key = paddle.to_tensor((as_numpy(key) * global_query)[None], dtype="float32")
    global_key = prefix_pools(as_numpy(attention.to_k_attn_logits(biased_key).squeeze(-1)) * scale, mask, as_numpy(key))
    weighted = paddle.to_tensor((as_numpy(value) * global_key)[None], dtype="float32")
    return as_numpy(attention.to_out(attention.to_r(weighted, residual=query).reshape([1, len(mask), -1])))


@pytest.mark.parametrize("variant, reference", [("official", official_reference), ("lucidrains", lucidrains_reference)])
def test_whole_sequence_equals_the_per_prefix_definition(variant, reference):
    model = causal_lm(variant)
    attention = model.fastformer.layers[0].attention
    paddle.seed(3)
    x = paddle.randn([1, 150, SMALL["hidden_size"]])  # over two chunks of the O(N) computation
    mask = np.ones(150, dtype=bool)
    mask[[0, 1, 77]] = False
    attended = attention(x, paddle.to_tensor(mask).reshape([1, -1, 1]))[0]
    np.testing.assert_allclose(as_numpy(attended)[mask], reference(attention, x, mask)[mask], atol=1e-5)


# ------------------------------------------------------------------------------------------ decoding with the state
@pytest.mark.parametrize("variant", VARIANTS)
def test_token_by_token_decoding_equals_the_whole_sequence(variant):
    model = causal_lm(variant)
    ids, mask = batch()
    whole = model(ids, attention_mask=mask).numpy()
    cache, steps = None, []
    for t in range(ids.shape[1]):
        logits, cache = model(ids[:, t : t + 1], attention_mask=mask[:, : t + 1], cache=cache, use_cache=True)
        steps.append(logits.numpy())
    real = mask.numpy().astype(bool)
    np.testing.assert_allclose(np.concatenate(steps, axis=1)[real], whole[real], atol=1e-5)
    prefix, cache = model(ids[:, :33], attention_mask=mask[:, :33], use_cache=True)  # a prompt, then the rest at once
    rest = model(ids[:, 33:], attention_mask=mask, cache=cache)
    np.testing.assert_allclose(np.concatenate([prefix.numpy(), rest.numpy()], axis=1)[real], whole[real], atol=1e-5)


def test_the_additive_state_has_a_fixed_size():
    model = causal_lm("official")
    ids, mask = batch()
    sizes = []
    for length in (10, 70):
        _, cache = model(ids[:, :length], attention_mask=mask[:, :length], use_cache=True)
        sizes.append([tuple(t.shape) for layer in cache.layers for pool in layer for t in pool])
    assert sizes[0] == sizes[1]


def online_pools(scores, values):
    """Float64 reference by a running maximum, one token at a time."""
    running_max = np.full(scores.shape[1], -np.inf)
    total, weighted = np.zeros(scores.shape[1]), np.zeros(values.shape[1:])
    pooled = np.empty(values.shape)
    for t in range(len(scores)):
        new_max = np.maximum(running_max, scores[t])
        rescale = np.exp(running_max - new_max)
        total = total * rescale + np.exp(scores[t] - new_max)
        weighted = weighted * rescale[:, None] + np.exp(scores[t] - new_max)[:, None] * values[t]
        running_max = new_max
        pooled[t] = weighted / total[:, None]
    return pooled


def test_pooling_is_stable_for_8192_tokens_and_scores_of_1e4():
    rng = np.random.default_rng(0)
    scores = rng.uniform(-1e4, 1e4, size=(8192, 2))
    scores[:100] = -1e4  # a long run of tiny weights, then much larger ones
    values = rng.normal(size=(8192, 2, 4))
    mask = paddle.ones([1, 8192, 1], dtype="bool")
    pooled, state = causal_additive_pool(
        paddle.to_tensor(scores[None], dtype="float32"), mask, paddle.to_tensor(values[None], dtype="float32")
    )
    assert np.isfinite(pooled.numpy()).all()
    np.testing.assert_allclose(pooled.numpy()[0], online_pools(scores.astype(np.float32).astype(np.float64), values), atol=1e-5)
    np.testing.assert_allclose(state.pooled.numpy()[0], pooled.numpy()[0, -1], atol=1e-6)


def test_pooling_gradients_equal_those_of_a_plain_masked_softmax():
    """The running maxima are left out of the gradient (they only shift every score alike): the gradients of
    scores and values must still equal those through a plain masked softmax over each prefix."""
    rng = np.random.default_rng(2)
    length, heads, features = 150, 3, 4  # over two chunks, and a padding position
    scores_np, values_np = rng.normal(size=(1, length, heads)) * 3, rng.normal(size=(1, length, heads, features))
    mask_np = np.ones((1, length, 1), dtype=bool)
    mask_np[0, [0, 90]] = False
    upstream = paddle.to_tensor(rng.normal(size=(1, length, heads, features)), dtype="float32")

    def gradients(pool):
        scores = paddle.to_tensor(scores_np, dtype="float32", stop_gradient=False)
        values = paddle.to_tensor(values_np, dtype="float32", stop_gradient=False)
        (pool(scores, paddle.to_tensor(mask_np), values) * upstream)[:, 1:].sum().backward()
        return scores.grad.numpy(), values.grad.numpy()

    def plain(scores, mask, values):  # b n h, b n 1, b n h d: t i masked softmax per head
        allowed = paddle.tril(paddle.ones([length, length], dtype="bool")).unsqueeze(-1) & mask[0].unsqueeze(0)
        grid = paddle.where(allowed, scores[0].unsqueeze(0).expand([length, length, heads]), paddle.full([length, length, heads], -1e30))
        weights = paddle.nn.functional.softmax(grid, axis=1)  # t i h
        return paddle.einsum("tih,ihd->thd", weights, values[0]).unsqueeze(0)

    for chunked, reference in zip(gradients(lambda *a: causal_additive_pool(*a)[0]), gradients(plain)):
        np.testing.assert_allclose(chunked, reference, atol=1e-5)


# ------------------------------------------------------------------------------------------ generation
@pytest.mark.parametrize("variant", ["official", "softmax"])
def test_greedy_generate_equals_a_hand_written_greedy_loop(variant):
    model = causal_lm(variant, eos_token_id=None)
    prompt = batch(12)[0]
    generated, _ = model.generate(prompt, decode_strategy="greedy_search", max_new_tokens=8)
    ids = prompt
    for _ in range(8):  # no cache: the whole sequence again at every step
        next_token = model(ids)[:, -1].argmax(axis=-1, keepdim=True)
        ids = paddle.concat([ids, next_token], axis=1)
    assert np.array_equal(generated.numpy(), ids[:, 12:].numpy())


def test_sampling_and_beam_search_return_valid_sequences():
    model = causal_lm("official")
    prompt = batch(12)[0]
    sampled, _ = model.generate(prompt, decode_strategy="sampling", top_k=5, max_new_tokens=6, seed=1)
    beams, scores = model.generate(prompt, decode_strategy="beam_search", num_beams=4, num_return_sequences=2, max_new_tokens=6)
    for ids in (sampled, beams):
        assert ids.shape[1] <= 6 and ((ids >= 0) & (ids < SMALL["vocab_size"])).all()
    assert beams.shape[0] == 4 and np.isfinite(scores.numpy()).all()
    for row in beams.numpy():  # after the end token, only padding
        ends = np.flatnonzero(row == SMALL["eos_token_id"])
        assert not len(ends) or (row[ends[0] + 1 :] == 0).all()


@pytest.mark.parametrize("variant", ["official", "lucidrains-rotary"])
def test_save_load_and_auto_round_trip(tmp_path, variant):
    from paddlenlp.transformers import AutoModelForCausalLM

    model = causal_lm(variant)
    model.save_pretrained(str(tmp_path))
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path))
    assert type(loaded) is FastformerForCausalLM and loaded.config.is_decoder
    loaded.eval()
    ids, mask = batch()
    np.testing.assert_array_equal(loaded(ids, attention_mask=mask).numpy(), model(ids, attention_mask=mask).numpy())


def test_causal_attention_refuses_dropout_on_its_pooling_weights():
    from paddlenlp_fastformer.configuration import FastformerConfigError

    with pytest.raises(FastformerConfigError, match="attention_probs_dropout_prob"):
        FastformerForCausalLM(FastformerConfig(**SMALL, attention_probs_dropout_prob=0.1))


def test_padding_is_never_a_target():
    model = causal_lm("official")
    ids, mask = batch()
    loss = float(model(ids, attention_mask=mask, labels=ids)[0])
    labels = ids.clone()
    labels[1, :5] = -100  # the padded positions, left out by hand
    assert loss == pytest.approx(float(model(ids, attention_mask=mask, labels=labels)[0]), rel=1e-6)


def official_from_weights(attention, x, weights, mask):
    """The official causal attention rebuilt from its returned weights 'b 2 h t i': q_g(t) = sum_i alpha[t, i] q_i,
    p_i = q_g(i) * k_i, k_g(t) = sum_i beta[t, i] p_i, u_t = k_g(t) * q_t."""
    heads = attention.num_heads
    query, key = attention.query(x), attention.key(x)
    global_query = paddle.einsum("bhti,bihd->bthd", weights[:, 0], split_heads(query, heads))
    mixed = split_heads(key, heads) * global_query
    global_key = paddle.einsum("bhti,bihd->bthd", weights[:, 1], mixed)
    return attention.output(attention.transform(query * global_key.reshape(query.shape), residual=query))


def prefix_softmax(scores, mask):
    """'b n h' -> 'b h t i', in float64: at each t, the softmax of scores over the real i <= t, 0 elsewhere."""
    length = scores.shape[1]
    allowed = (np.tril(np.ones([length, length], dtype=bool))[None] & mask[:, None, :])[:, None]  # b 1 t i
    grid = np.where(allowed, scores.astype(np.float64).transpose(0, 2, 1)[:, :, None, :], -np.inf)
    with np.errstate(invalid="ignore"):  # rows without a real token: NaN, never compared
        weights = np.exp(grid - grid.max(-1, keepdims=True))
        return weights / weights.sum(-1, keepdims=True)


def lucidrains_from_weights(attention, x, weights, mask):
    """fast-transformer-pytorch's causal attention (no rotary) from its weights: q_g(t) = sum_i alpha[t, i] q_i;
    beta scores k'_i = k_i * q_g(i) (checked here against the definition); k_g(t) = sum_i beta[t, i] k_i; u_t = v_t * k_g(t)."""
    query, key, value = split_heads(attention.to_qkv(x), 3 * attention.num_heads).chunk(3, axis=2)
    global_query = paddle.einsum("bhti,bihd->bthd", weights[:, 0], query)
    key_scores = attention.to_k_attn_logits(key * global_query).squeeze(-1) * attention.pool.scale
    real_rows = np.broadcast_to(mask[:, None, :, None], weights[:, 1].shape)
    np.testing.assert_allclose(weights[:, 1].numpy()[real_rows], prefix_softmax(key_scores.numpy(), mask)[real_rows], atol=1e-5)
    global_key = paddle.einsum("bhti,bihd->bthd", weights[:, 1], key)
    return attention.to_out(attention.to_r(value * global_key, residual=query).reshape([x.shape[0], x.shape[1], -1]))


@pytest.mark.parametrize("variant, rebuild", [("official", official_from_weights), ("lucidrains", lucidrains_from_weights)])
def test_causal_attention_weights_are_those_it_pools_with(variant, rebuild):
    """Issue 28: output_attentions raised in causal mode. Each position's weights over the tokens up to it, [B, 2, H, N, N],
    rebuild the attention's own output, over two chunks of the O(N) pooling and with padding."""
    attention = causal_lm(variant).fastformer.layers[0].attention
    paddle.seed(3)
    x = paddle.randn([2, 80, SMALL["hidden_size"]])
    mask = np.ones([2, 80], dtype=bool)
    mask[1, :5] = mask[0, 70] = False
    attended, weights, _ = attention(x, paddle.to_tensor(mask).unsqueeze(-1), output_attentions=True)
    assert weights.shape == [2, 2, 4, 80, 80]
    assert float(weights[:, :, :, :, 70][0].abs().sum()) == 0 and float(paddle.triu(weights, 1).abs().sum()) == 0
    np.testing.assert_allclose(rebuild(attention, x, weights, mask).numpy()[mask], attended.numpy()[mask], atol=1e-5)


def test_causal_lm_returns_each_blocks_weights_and_states():
    model = causal_lm("official")
    ids, mask = batch(20)
    logits, hidden_states, attentions = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    np.testing.assert_array_equal(logits.numpy(), model(ids, attention_mask=mask).numpy())
    assert len(hidden_states) == model.config.num_hidden_layers + 1 and len(attentions) == model.config.num_hidden_layers
    alpha = attentions[0][:, 0, :, -1].numpy()  # b h i: the last position's, over the whole sequence
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
    assert (alpha[1][:, :5] == 0).all()
    with pytest.raises(ValueError, match="output_attentions takes the whole sequence in one call, without a cache"):
        model(ids[:, -1:], cache=model(ids, attention_mask=mask, use_cache=True)[1], output_attentions=True)
