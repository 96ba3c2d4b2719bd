"""PaddleNLP's model contract, in the spirit of its common model and tokenizer test mixins: the tokenizer's
init kwargs and resource map, ``inputs_embeds``, attention weights, a resizable masked-LM head,
``from_pretrained(..., convert_from_torch=True)``, and for the decoder heads ``inputs_embeds``, hidden states,
attention weights and the arguments of ``generate()``."""
import inspect
import json

import numpy as np
import paddle
import pytest
from paddlenlp.generation import GenerationConfig

from paddlenlp_fastformer import (
    FastformerConfig,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
    FastformerTokenizer,
)
from paddlenlp_fastformer.modeling import FastformerPretrainedModel

HEADS = [FastformerModel, FastformerForSequenceClassification, FastformerForTokenClassification, FastformerForMaskedLM]
FORMULATIONS = {
    "official": dict(),
    "lucidrains-rotary": dict(formulation="lucidrains", position_embedding_type="rotary", layer_norm_eps=1e-5),
    "lucidrains-absolute": dict(formulation="lucidrains", layer_norm_eps=1e-5),
    "softmax": dict(attention_type="softmax"),
}


def small_config(heads: int = 4, **overrides) -> FastformerConfig:
    settings = dict(vocab_size=40, hidden_size=32, num_attention_heads=heads, num_hidden_layers=2,
                    intermediate_size=48, max_position_embeddings=24, hidden_dropout_prob=0.0, num_labels=3)  # fmt: skip
    return FastformerConfig(**{**settings, **overrides})


def padded_ids(seed: int = 0):
    """Three rows of 9 tokens: full, 5 real, 1 real; padding id 0."""
    lengths = [9, 5, 1]
    rng = np.random.default_rng(seed)
    ids = np.zeros([3, 9], dtype="int64")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(5, 40, size=length)
    return paddle.to_tensor(ids), paddle.to_tensor((ids != 0).astype("int64"))


# ----------------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------------
def test_tokenizer_init_kwargs_hold_its_whole_signature_and_round_trip(tmp_path):
    tokenizer = FastformerTokenizer.build_from_corpus(["The movie was good."], do_lower_case=False, model_max_length=64)
    parameters = set(inspect.signature(FastformerTokenizer.__init__).parameters) - {"self", "kwargs", "vocab_file"}
    assert parameters <= set(tokenizer.init_kwargs)
    assert tokenizer.init_kwargs["vocab"] == tokenizer.ids_to_tokens
    tokenizer.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "vocab" not in saved and saved["do_lower_case"] is False and saved["mask_token"] == "[MASK]"
    reloaded = FastformerTokenizer.from_pretrained(str(tmp_path))
    for key in parameters - {"vocab"}:
        assert reloaded.init_kwargs[key] == tokenizer.init_kwargs[key], key
    assert reloaded.get_vocab() == tokenizer.get_vocab()


def test_tokenizer_and_model_declare_their_resources_alike():
    assert FastformerTokenizer.pretrained_resource_files_map == {"vocab_file": {}}
    assert FastformerPretrainedModel.pretrained_resource_files_map == {"model_state": {}}
    assert FastformerTokenizer.pretrained_init_configuration == FastformerPretrainedModel.pretrained_init_configuration == {}


# ----------------------------------------------------------------------------------------------
# inputs_embeds
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(FORMULATIONS))
@pytest.mark.parametrize("head", HEADS, ids=lambda cls: cls.__name__)
def test_inputs_embeds_equal_the_input_ids_path(case, head):
    paddle.seed(1)
    model = head(small_config(**FORMULATIONS[case]))
    model.eval()
    ids, mask = padded_ids()
    embeds = model.get_input_embeddings()(ids)
    by_ids = model(ids, attention_mask=mask, return_dict=True)
    by_embeds = model(inputs_embeds=embeds, attention_mask=mask, return_dict=True)
    first = "last_hidden_state" if head is FastformerModel else "logits"
    np.testing.assert_array_equal(by_ids[first].numpy(), by_embeds[first].numpy())
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(ids, inputs_embeds=embeds)


def test_inputs_embeds_carry_gradients_to_the_embedding_level():
    paddle.seed(2)
    model = FastformerForSequenceClassification(small_config())
    ids, mask = padded_ids()
    embeds = model.get_input_embeddings()(ids).detach()
    embeds.stop_gradient = False
    loss = model(inputs_embeds=embeds, attention_mask=mask, labels=paddle.to_tensor([0, 1, 2]))[0]
    loss.backward()
    assert embeds.grad is not None and float(embeds.grad.abs().sum()) > 0
    assert float(embeds.grad[2, 1:].abs().sum()) == 0, "padding positions must not influence the loss"


# ----------------------------------------------------------------------------------------------
# attention weights
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["official", "lucidrains-rotary", "lucidrains-absolute"])
@pytest.mark.parametrize("heads", [1, 2, 4, 8])
def test_additive_attention_weights_sum_to_one_over_real_tokens_and_are_zero_on_padding(case, heads):
    paddle.seed(3)
    config = small_config(heads=heads, **FORMULATIONS[case])
    model = FastformerForSequenceClassification(config)
    model.eval()
    ids, mask = padded_ids(heads)
    out = model(ids, attention_mask=mask, output_attentions=True, return_dict=True)
    real = mask.numpy().astype(bool)
    assert len(out.attentions) == config.num_hidden_layers
    for weights in out.attentions:
        weights = weights.numpy()
        assert weights.shape == (3, 2, heads, 9)  # global query and global key, per head, over tokens
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
        assert (weights[np.broadcast_to(~real[:, None, None, :], weights.shape)] == 0).all()
    pooler = out.pooler_attentions.numpy()
    assert pooler.shape == (3, 9) and (pooler[~real] == 0).all()
    np.testing.assert_allclose(pooler.sum(-1), 1.0, atol=1e-6)


def test_the_weights_are_those_the_model_pools_with():
    """Pooling the query by the returned global-query weights gives the layer's own global query."""
    paddle.seed(4)
    model = FastformerModel(small_config(), add_pooling_layer=True)
    model.eval()
    ids, mask = padded_ids()
    out = model(ids, attention_mask=mask, output_attentions=True, return_dict=True)
    attention = model.layers[0].attention
    query = attention.query(model.embeddings(ids)).reshape([3, 9, 4, 8])  # b n h d
    alpha = out.attentions[0][:, 0]  # b h n
    expected = paddle.einsum("bhn,bnhd->bhd", alpha, query).numpy()
    token_mask = mask.astype("bool").unsqueeze(-1)
    pooled, _ = attention.pool(attention.query_att(attention.query(model.embeddings(ids))), token_mask, query)
    np.testing.assert_allclose(pooled.squeeze(1).numpy(), expected, rtol=1e-5, atol=1e-6)
    # ... and the pooler's weights give its pooled vector.
    weights = out.pooler_attentions.unsqueeze(-1)
    np.testing.assert_allclose((weights * out.last_hidden_state).sum(1).numpy(), out.pooler_output.numpy(), atol=1e-6)


def test_softmax_baseline_returns_its_attention_maps():
    paddle.seed(5)
    model = FastformerForSequenceClassification(small_config(**FORMULATIONS["softmax"]))
    model.eval()
    ids, mask = padded_ids()
    out = model(ids, attention_mask=mask, output_attentions=True, return_dict=True)
    maps = out.attentions[0].numpy()
    real = mask.numpy().astype(bool)
    assert maps.shape == (3, 4, 9, 9)
    np.testing.assert_allclose(maps.sum(-1)[np.broadcast_to(real[:, None, :], (3, 4, 9))], 1.0, atol=1e-6)
    assert (maps[np.broadcast_to(~real[:, None, None, :], maps.shape)] == 0).all()


def test_tuple_outputs_follow_paddlenlp_order():
    paddle.seed(6)
    model = FastformerForTokenClassification(small_config())
    ids, mask = padded_ids()
    loss, logits, hidden_states, attentions = model(
        ids, attention_mask=mask, labels=paddle.zeros([3, 9], dtype="int64"), output_hidden_states=True,
        output_attentions=True,
    )  # fmt: skip
    assert logits.shape == [3, 9, 3] and len(hidden_states) == 3 and len(attentions) == 2 and loss.shape == []
    assert model(ids).shape == [3, 9, 3]


# ----------------------------------------------------------------------------------------------
# resizable masked-LM head
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("new_size", [48, 30])
def test_masked_lm_logits_follow_a_resize(tied, new_size, tmp_path):
    paddle.seed(7)
    model = FastformerForMaskedLM(small_config(tie_word_embeddings=tied))
    model.eval()
    ids, mask = padded_ids()
    ids = ids.clip(max=29)
    before = model(ids, attention_mask=mask).numpy()
    model.resize_token_embeddings(new_size)
    after = model(ids, attention_mask=mask).numpy()
    assert after.shape == (3, 9, new_size) and model.config.vocab_size == new_size
    kept = min(40, new_size)
    np.testing.assert_allclose(after[..., :kept], before[..., :kept], rtol=1e-5, atol=1e-6)
    decoder, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    assert (decoder.weight is embeddings.weight) is tied
    model.save_pretrained(str(tmp_path))
    reloaded = FastformerForMaskedLM.from_pretrained(str(tmp_path))
    reloaded.eval()
    np.testing.assert_allclose(reloaded(ids, attention_mask=mask).numpy(), after, rtol=1e-5, atol=1e-6)
    assert (reloaded.get_output_embeddings().weight is reloaded.get_input_embeddings().weight) is tied


# ----------------------------------------------------------------------------------------------
# from_pretrained(..., convert_from_torch=True)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["lucidrains-rotary", "official"])
def test_convert_from_torch_equals_the_converter(source, tmp_path):
    torch = pytest.importorskip("torch")
    from benchmarks.torch_reference import official_config_json
    from torch_models import lucidrains_model, official_model, state_dict_numpy

    from paddlenlp_fastformer.conversion import ConversionError
    from paddlenlp_fastformer.modeling import FastformerPretrainedModel

    if source == "official":
        reference_model = official_model(60, 32, 1, 4, 48, 16)
        converted = FastformerPretrainedModel.from_torch_state_dict("official", state_dict_numpy(reference_model), official_config_json(32, 1, 4, 48, 16))
        head = FastformerForSequenceClassification
    else:
        reference_model = lucidrains_model(50, 32, 2, 4, 8, 16, absolute=False)
        converted = FastformerPretrainedModel.from_torch_state_dict("lucidrains", state_dict_numpy(reference_model), max_seq_len=16)
        head = FastformerForMaskedLM
    torch.save(reference_model.state_dict(), tmp_path / "pytorch_model.bin")
    converted.config.save_pretrained(str(tmp_path))
    loaded = head.from_pretrained(str(tmp_path), convert_from_torch=True)
    assert loaded.state_dict().keys() == converted.state_dict().keys()
    for key, value in converted.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key].numpy(), value.numpy(), err_msg=key)
    # The converter's one-line errors, through from_pretrained too.
    state = reference_model.state_dict()
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ConversionError, match="missing key") as info:
        head.from_pretrained(str(tmp_path), convert_from_torch=True)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# the decoder heads: inputs_embeds, hidden states and attention weights, generate()'s arguments
# ----------------------------------------------------------------------------------------------
def decoder_head(head_name: str, case: str = "official"):
    from paddlenlp_fastformer import FastformerForCausalLM, FastformerForConditionalGeneration

    head = {"causal": FastformerForCausalLM, "seq2seq": FastformerForConditionalGeneration}[head_name]
    paddle.seed(8)
    model = head(small_config(bos_token_id=2, eos_token_id=3, decoder_start_token_id=2, **FORMULATIONS[case]))
    model.eval()
    return model


def decoder_call(model, ids, mask, **kwargs):
    """The head on padded rows: the causal LM reads them; the encoder-decoder encodes them and reads them as target too."""
    if model.config.is_encoder_decoder:
        return model(ids, attention_mask=mask, decoder_input_ids=ids[:, :6], decoder_attention_mask=mask[:, :6], **kwargs)
    return model(ids, attention_mask=mask, **kwargs)


@pytest.mark.parametrize("head_name", ["causal", "seq2seq"])
def test_decoder_heads_take_inputs_embeds(head_name):
    model = decoder_head(head_name)
    ids, mask = padded_ids()
    by_ids = decoder_call(model, ids, mask)
    if model.config.is_encoder_decoder:
        embeds = dict(inputs_embeds=model.fastformer.get_input_embeddings()(ids), decoder_inputs_embeds=model.decoder.get_input_embeddings()(ids[:, :6]))
        by_embeds = model(attention_mask=mask, decoder_attention_mask=mask[:, :6], **embeds)
    else:
        by_embeds = model(inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask)
    np.testing.assert_array_equal(by_ids.numpy(), by_embeds.numpy())


def along_last_axis(real: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The real-token mask [B, N] broadcast to ``like`` [B, ..., N]."""
    return np.broadcast_to(real.reshape([len(real)] + [1] * (like.ndim - 2) + [real.shape[1]]), like.shape)


def assert_causal_weights(weights: np.ndarray, real: np.ndarray):
    """[B, ..., N, N] weights of a decoder: 0 on padding and later tokens; each real position's row sums to 1."""
    length = real.shape[1]
    later = np.triu(np.ones([length, length], dtype=bool), 1)
    assert (weights[..., later] == 0).all() and (weights[~along_last_axis(real, weights)] == 0).all()
    sums = weights.sum(-1)  # B, ..., N
    np.testing.assert_allclose(sums[along_last_axis(real, sums)], 1.0, atol=1e-5)


@pytest.mark.parametrize("case", ["official", "lucidrains-rotary", "softmax"])
@pytest.mark.parametrize("head_name", ["causal", "seq2seq"])
def test_decoder_heads_return_hidden_states_and_attention_weights(head_name, case):
    model = decoder_head(head_name, case)
    ids, mask = padded_ids()
    plain = decoder_call(model, ids, mask)
    out = decoder_call(model, ids, mask, output_hidden_states=True, output_attentions=True, return_dict=True)
    np.testing.assert_array_equal(out.logits.numpy(), plain.numpy())  # asking for them changes nothing
    layers, heads, real = model.config.num_hidden_layers, model.config.num_attention_heads, mask.numpy().astype(bool)
    per_block = (3, 2, heads) if case != "softmax" else (3, heads)  # global query and global key, or one softmax map
    decoder_states, decoder_attentions, target_real = (
        (out.decoder_hidden_states, out.decoder_attentions, real[:, :6]) if model.config.is_encoder_decoder
        else (out.hidden_states, out.attentions, real)
    )  # fmt: skip
    length = target_real.shape[1]
    assert len(decoder_states) == layers + 1 and decoder_states[-1].shape == [3, length, 32]
    assert len(decoder_attentions) == layers
    for weights in decoder_attentions:
        assert weights.shape == list(per_block) + [length, length]
        assert_causal_weights(weights.numpy(), target_real)
    if model.config.is_encoder_decoder:
        np.testing.assert_array_equal(out.encoder_hidden_states[-1].numpy(), out.encoder_last_hidden_state.numpy())
        for weights in out.encoder_attentions:  # the encoder's own: over all the source's real tokens
            assert weights.shape == list(per_block) + ([9] if case != "softmax" else [9, 9])
            weights = weights.numpy()
            assert (weights[~along_last_axis(real, weights)] == 0).all()
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    outputs = decoder_call(model, ids, mask, output_hidden_states=True, output_attentions=True)
    expected = 5 if model.config.is_encoder_decoder else 3  # logits, decoder states, decoder weights[, encoder states, weights]
    assert len(outputs) == expected and outputs[1][0].shape == decoder_states[0].shape


@pytest.mark.parametrize("head_name", ["causal", "seq2seq"])
def test_decoder_attention_weights_need_the_whole_sequence(head_name):
    model = decoder_head(head_name)
    ids, mask = padded_ids()
    _, cache = decoder_call(model, ids, mask, use_cache=True)
    step = dict(cache=cache, output_attentions=True)
    with pytest.raises(ValueError, match="output_attentions .* without a cache"):
        if model.config.is_encoder_decoder:
            model(attention_mask=mask, decoder_input_ids=ids[:, 6:7], **step)
        else:
            model(ids[:, :1], **step)


BAD_GENERATE_ARGUMENTS = {
    "max_new_tokens=0": (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1.*got 0"),
    "max_new_tokens<0": (dict(max_new_tokens=-3), "max_new_tokens must be an integer >= 1.*got -3"),
    "max_new_tokens=2.5": (dict(max_new_tokens=2.5), "max_new_tokens must be an integer >= 1.*got 2.5"),
    "max_length=0": (dict(max_length=0), "max_length must be an integer >= 1.*got 0"),
    "max_length<0": (dict(max_length=-5), "max_length must be an integer >= 1.*got -5"),
    "min>max": (dict(max_new_tokens=3, min_new_tokens=4), "min_new_tokens .* from 0 to max_new_tokens=3, got 4"),
    "temperature=0": (dict(decode_strategy="sampling", temperature=0), "temperature must be a number > 0.*got 0"),
    "top_k<0": (dict(decode_strategy="sampling", top_k=-1), "top_k must be an integer >= 0.*got -1"),
    "top_p=0": (dict(decode_strategy="sampling", top_p=0.0), r"top_p must be a number in \(0, 1\].*got 0.0"),
    "top_p>1": (dict(decode_strategy="sampling", top_p=1.5), r"top_p must be a number in \(0, 1\].*got 1.5"),
    "num_return_sequences=0": (dict(decode_strategy="sampling", num_return_sequences=0), "num_return_sequences must be an integer >= 1, got 0"),
    "num_beams=0": (dict(decode_strategy="beam_search", num_beams=0), "num_beams must be an integer >= 1, got 0"),
    "decode_strategy": (dict(decode_strategy="beams"), "decode_strategy must be one of greedy_search, sampling, beam_search, got 'beams'"),
    "empty prompt": (dict(input_ids=paddle.zeros([2, 0], dtype="int64")), r"input_ids must hold at least one token.*\[2, 0\]"),
    "1-D prompt": (dict(input_ids=paddle.to_tensor([5, 6, 7])), r"input_ids must be an int32/int64 paddle.Tensor \[batch, seq_len\]"),
    "float prompt": (dict(input_ids=paddle.to_tensor([[5.0, 6.0]])), "input_ids must be an int32/int64.*float32"),
    "mask shape": (dict(attention_mask=paddle.ones([2, 3], dtype="int64")), r"attention_mask must have input_ids' shape \[2, 4\], got \[2, 3\]"),
}


@pytest.mark.parametrize("kwargs, message", BAD_GENERATE_ARGUMENTS.values(), ids=BAD_GENERATE_ARGUMENTS.keys())
@pytest.mark.parametrize("head_name", ["causal", "seq2seq"])
def test_generate_refuses_bad_arguments_naming_them(head_name, kwargs, message):
    """Issue 28: max_new_tokens=0 wrote a token, max_length=0 wrote 20, an empty prompt and temperature=0 failed in Paddle."""
    model = decoder_head(head_name)
    kwargs = {"input_ids": paddle.to_tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        model.generate(**kwargs)
    assert "\n" not in str(info.value) and str(info.value).startswith("generate(): ")


@pytest.mark.parametrize("head_name", ["causal", "seq2seq"])
def test_generate_takes_the_edges_of_what_it_refuses(head_name):
    model = decoder_head(head_name)
    prompt = paddle.to_tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    assert model.generate(prompt, max_new_tokens=1)[0].shape == [2, 1]
    assert model.generate(prompt, max_length=2, eos_token_id=None)[0].shape == [2, 2]  # PaddleNLP counts new tokens
    sampled, _ = model.generate(prompt, decode_strategy="sampling", temperature=0.5, top_k=0, top_p=1.0, max_new_tokens=3, seed=1)
    assert sampled.shape[0] == 2 and sampled.shape[1] <= 3
    settings = GenerationConfig(max_new_tokens=np.int64(2), eos_token_id=None)  # numpy integers, as read from arrays
    assert model.generate(prompt, generation_config=settings)[0].shape == [2, 2]
