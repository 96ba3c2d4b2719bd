"""PaddleNLP's model contract, in the spirit of its common model and tokenizer test mixins: the tokenizer's
init kwargs and resource map, ``inputs_embeds``, attention weights, a resizable masked-LM head, and
``from_pretrained(..., convert_from_torch=True)``."""
import inspect
import json

import numpy as np
import paddle
import pytest

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
