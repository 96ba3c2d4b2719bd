"""save_pretrained/from_pretrained round trips, heads <-> base checkpoints, and PaddleNLP's Auto classes.

Importing paddlenlp_fastformer registers model_type "fastformer" with AutoConfig, AutoTokenizer and the
AutoModel* classes; PaddleNLP logs while loading, which is fine.
"""
import json
import os

import numpy as np
import paddle
import pytest

import paddlenlp_fastformer  # noqa: F401  (registers the Auto classes)
from paddlenlp.transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from paddlenlp_fastformer import (
    FastformerConfig,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
    FastformerTokenizer,
)

VOCAB, SEQ_LEN = 53, 12
# (formulation, position_embedding_type, attention_type)
FORMS = {
    "official": ("official", "absolute", "additive"),
    "lucidrains-absolute": ("lucidrains", "absolute", "additive"),
    "lucidrains-rotary": ("lucidrains", "rotary", "additive"),
}
MODEL_CLASSES = [FastformerModel, FastformerForSequenceClassification, FastformerForTokenClassification, FastformerForMaskedLM]
CONFIG_FIELDS = [
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "initializer_range",
    "layer_norm_eps", "pad_token_id", "formulation", "position_embedding_type", "attention_head_size",
    "attention_type", "num_labels", "head_size",
]


def make_config(form="official", **overrides):
    formulation, position, attention = FORMS[form]
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=40,
        max_position_embeddings=SEQ_LEN,
        hidden_dropout_prob=0.1,
        num_labels=3,
        formulation=formulation,
        position_embedding_type=position,
        attention_type=attention,
    )
    kwargs.update(overrides)
    return FastformerConfig(**kwargs)


def randomise(model, seed, scale=0.2):
    """Perturb every parameter, biases and LayerNorms included, so a lost or mis-loaded weight shows."""
    rng = np.random.default_rng(seed)
    for parameter in model.parameters():
        parameter.set_value((parameter.numpy() + scale * rng.standard_normal(parameter.shape)).astype("float32"))
    return model.eval()


def new_model(cls, form="official", seed=0, **overrides):
    paddle.seed(seed)
    return randomise(cls(make_config(form, **overrides)), seed)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([SEQ_LEN, 7, 3, 1])
    ids = rng.integers(1, VOCAB, size=(len(lengths), SEQ_LEN))
    mask = (np.arange(SEQ_LEN)[None, :] < lengths[:, None]).astype("int64")
    return paddle.to_tensor(np.where(mask == 1, ids, 0)), paddle.to_tensor(mask)


def outputs(model, ids, mask):
    """All outputs as a list of numpy arrays, eval mode, no grad."""
    model.eval()
    with paddle.no_grad():
        out = model(ids, attention_mask=mask)
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out if o is not None]


def assert_outputs_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        assert np.array_equal(x, y), f"max abs diff {np.abs(x - y).max():.3e}"


def config_dict(config):
    """The config's fields, without what from_pretrained/save_pretrained record about the files."""
    return {k: v for k, v in config.to_dict().items() if k not in ("architectures", "_name_or_path")}


def state(model):
    return {key: value.numpy() for key, value in model.state_dict().items()}


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(formulation="lucidrains", position_embedding_type="rotary", attention_head_size=12, num_labels=7, layer_norm_eps=1e-5),
        dict(formulation="lucidrains", hidden_size=30, num_attention_heads=3, attention_head_size=16, hidden_dropout_prob=0.0),
        dict(attention_type="softmax", pad_token_id=4, initializer_range=0.05, hidden_act="relu", num_labels=2),
    ],
    ids=["defaults", "lucidrains-rotary", "lucidrains-head-size", "softmax"],
)
def test_config_round_trip(tmp_path, overrides):
    config = FastformerConfig(**overrides)
    config.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "fastformer"
    loaded = FastformerConfig.from_pretrained(str(tmp_path))
    assert type(loaded) is FastformerConfig
    for field in CONFIG_FIELDS:
        assert getattr(loaded, field) == getattr(config, field), field
    for field, value in overrides.items():
        assert getattr(loaded, field) == value, field
    assert loaded.to_dict() == config.to_dict()


def test_config_from_pretrained_validates(tmp_path):
    FastformerConfig().save_pretrained(str(tmp_path))
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    saved["formulation"] = "foo"
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="formulation"):
        FastformerConfig.from_pretrained(str(tmp_path))


# ----------------------------------------------------------------------------------------------
# models: pdparams and safetensors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("safe", [False, True], ids=["pdparams", "safetensors"])
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_model_round_trip(tmp_path, cls, form, safe):
    model = new_model(cls, form, seed=1)
    ids, mask = inputs(seed=2)
    expected = outputs(model, ids, mask)
    model.save_pretrained(str(tmp_path), safe_serialization=safe)
    files = set(os.listdir(tmp_path))
    assert ("model.safetensors" if safe else "model_state.pdparams") in files and "config.json" in files
    assert ("model_state.pdparams" if safe else "model.safetensors") not in files

    loaded = cls.from_pretrained(str(tmp_path))
    assert type(loaded) is cls
    assert config_dict(loaded.config) == config_dict(model.config)
    got_state, expected_state = state(loaded), state(model)
    assert got_state.keys() == expected_state.keys()
    for key in expected_state:
        assert np.array_equal(got_state[key], expected_state[key]), key
    assert_outputs_equal(outputs(loaded, ids, mask), expected)
    if form.startswith("lucidrains"):
        base = loaded if cls is FastformerModel else loaded.fastformer
        assert all(layer.attention.to_q_attn_logits.weight is base.layers[0].attention.to_q_attn_logits.weight for layer in base.layers)


def test_softmax_baseline_round_trip(tmp_path):
    model = new_model(FastformerForSequenceClassification, "official", seed=3, attention_type="softmax")
    ids, mask = inputs(seed=4)
    expected = outputs(model, ids, mask)
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    loaded = FastformerForSequenceClassification.from_pretrained(str(tmp_path))
    assert loaded.config.attention_type == "softmax"
    assert_outputs_equal(outputs(loaded, ids, mask), expected)


def test_tokenizer_round_trip(tmp_path):
    corpus = ["A good movie, really good!", "A bad movie.", "Not good; not bad..."]
    tokenizer = FastformerTokenizer.build_from_corpus(corpus, model_max_length=SEQ_LEN)
    tokenizer.save_pretrained(str(tmp_path))
    loaded = FastformerTokenizer.from_pretrained(str(tmp_path))
    assert loaded.get_vocab() == tokenizer.get_vocab()
    texts = corpus + ["an unseen GOOD word"]
    assert loaded(texts, padding=True)["input_ids"] == tokenizer(texts, padding=True)["input_ids"]
    assert loaded.model_max_length == SEQ_LEN


# ----------------------------------------------------------------------------------------------
# heads load base checkpoints, and the reverse
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("head_cls", MODEL_CLASSES[1:], ids=lambda c: c.__name__)
def test_head_loads_a_base_checkpoint(tmp_path, form, head_cls):
    base = new_model(FastformerModel, form, seed=5, initializer_range=0.03)
    base.save_pretrained(str(tmp_path))
    head = head_cls.from_pretrained(str(tmp_path))
    base_state, encoder_state = state(base), state(head.fastformer)
    shared = set(encoder_state) & set(base_state)
    # the per-token heads build no pooler; everything they do build comes from the checkpoint
    assert set(encoder_state) - set(base_state) == set()
    assert shared == set(encoder_state) and len(shared) >= len(base_state) - 4
    for key in shared:
        assert np.array_equal(encoder_state[key], base_state[key]), key

    # the head's own layers are newly initialised: N(0, initializer_range) weights, zero biases
    new_layers = head.classifier if hasattr(head, "classifier") else head.lm_head.decoder
    weight = new_layers.weight.numpy()
    assert np.abs(weight).max() > 0 and np.abs(weight).max() < 6 * 0.03
    assert abs(weight.std() - 0.03) < 0.3 * 0.03
    assert not np.any(new_layers.bias.numpy())

    ids, mask = inputs(seed=6)
    head.eval()
    with paddle.no_grad():
        sequence, pooled = base(ids, attention_mask=mask)
        head_sequence = head.fastformer(ids, attention_mask=mask)[0]
    assert np.array_equal(head_sequence.numpy(), sequence.numpy())
    if head_cls is FastformerForSequenceClassification:
        with paddle.no_grad():
            logits = head(ids, attention_mask=mask)
        assert np.allclose(logits.numpy(), pooled.numpy() @ weight + head.classifier.bias.numpy(), atol=1e-6)


@pytest.mark.parametrize("form", list(FORMS))
def test_base_loads_a_head_checkpoint(tmp_path, form):
    head = new_model(FastformerForSequenceClassification, form, seed=7)
    head.save_pretrained(str(tmp_path))
    base = FastformerModel.from_pretrained(str(tmp_path))
    base.eval()  # hidden_dropout_prob is 0.1
    ids, mask = inputs(seed=8)
    with paddle.no_grad():
        expected = head.fastformer(ids, attention_mask=mask)
        got = base(ids, attention_mask=mask)
    assert np.array_equal(got[0].numpy(), expected[0].numpy())
    assert np.array_equal(got[1].numpy(), expected[1].numpy())
    assert set(state(base)) == set(state(head.fastformer))


# ----------------------------------------------------------------------------------------------
# Auto classes
# ----------------------------------------------------------------------------------------------
AUTO_CASES = [
    (AutoModel, FastformerModel),
    (AutoModelForSequenceClassification, FastformerForSequenceClassification),
    (AutoModelForTokenClassification, FastformerForTokenClassification),
    (AutoModelForMaskedLM, FastformerForMaskedLM),
]


@pytest.mark.parametrize("safe", [False, True], ids=["pdparams", "safetensors"])
@pytest.mark.parametrize("form", ["official", "lucidrains-rotary"])
@pytest.mark.parametrize("auto_cls, cls", AUTO_CASES, ids=lambda c: c.__name__)
def test_auto_model_loads_the_saved_class(tmp_path, auto_cls, cls, form, safe):
    model = new_model(cls, form, seed=9)
    model.save_pretrained(str(tmp_path), safe_serialization=safe)
    loaded = auto_cls.from_pretrained(str(tmp_path))
    assert type(loaded) is cls
    ids, mask = inputs(seed=10)
    assert_outputs_equal(outputs(loaded, ids, mask), outputs(model, ids, mask))


def test_auto_config_and_tokenizer(tmp_path):
    tokenizer = FastformerTokenizer.build_from_corpus(["the good movie", "the bad movie", "good good"])
    model = new_model(FastformerForSequenceClassification, "lucidrains-absolute", seed=11, vocab_size=tokenizer.vocab_size)
    model.save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))

    config = AutoConfig.from_pretrained(str(tmp_path))
    assert type(config) is FastformerConfig
    for field in CONFIG_FIELDS:
        assert getattr(config, field) == getattr(model.config, field), field

    auto_tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(auto_tokenizer) is FastformerTokenizer
    assert auto_tokenizer.get_vocab() == tokenizer.get_vocab()

    # the whole pipeline from the directory, through the Auto classes
    encoded = auto_tokenizer(["the good movie", "bad"], padding=True, return_tensors="pd")
    auto_model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path))
    auto_model.eval()
    with paddle.no_grad():
        got = auto_model(encoded["input_ids"], attention_mask=encoded["attention_mask"])
        expected = model(encoded["input_ids"], attention_mask=encoded["attention_mask"])
    assert np.array_equal(got.numpy(), expected.numpy())
