"""Tests of fastformer_zoo.settings: schema defaults, shipped configs, overrides and error messages."""
import inspect
import sys
from pathlib import Path

import pytest
import yaml

from paddlenlp_fastformer import FastformerConfig
from fastformer_zoo.errors import UserError
from fastformer_zoo.settings import MODEL_KEYS, Config, config_to_dict, load_config, save_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from program import config_parser  # noqa: E402  (tools/program.py: the options every tool shares)


@pytest.fixture
def minimal(tmp_path):
    """A config file that sets only the one required key."""
    path = tmp_path / "minimal.yaml"
    path.write_text("Data:\n  data_dir: data/x\n")
    return path


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, overrides=()):
    with pytest.raises(UserError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults(minimal):
    cfg = load_config(minimal)
    assert isinstance(cfg, Config)
    assert (cfg.global_.seed, cfg.global_.epochs, cfg.global_.max_steps) == (42, 3, -1)
    assert cfg.global_.output_dir == "output/fastformer"
    assert cfg.global_.checkpoint is None and cfg.global_.resume is True
    assert cfg.data.data_dir == "data/x"
    assert (cfg.data.batch_size, cfg.data.eval_batch_size, cfg.data.max_seq_len) == (64, 128, 512)
    assert cfg.data.max_vocab_size is None
    assert (cfg.model["attention_type"], cfg.model["formulation"], cfg.model["position_embedding_type"]) == (
        "additive",
        "official",
        "absolute",
    )
    assert cfg.model["layer_norm_eps"] == 1e-12
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.scheduler) == ("adam", 1e-3, "constant")


def test_empty_section_keeps_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "Model:\nData:\n  data_dir: d\n"))
    assert cfg.model["hidden_size"] == 256


@pytest.mark.parametrize("name, data_dir, output_dir", [
    ("amazon.yaml", "data/amazon", "output/amazon"),
    ("marc_en.yaml", "data/marc_en", "output/marc_en"),
])
def test_shipped_configs_have_table9_values(name, data_dir, output_dir):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.data.data_dir == data_dir
    assert cfg.global_.output_dir == output_dir
    assert (cfg.model["num_hidden_layers"], cfg.model["num_attention_heads"], cfg.model["hidden_size"]) == (2, 16, 256)
    assert cfg.data.max_seq_len == 512 and cfg.model["max_position_embeddings"] == 512
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.scheduler) == ("adam", 1e-3, "constant")
    assert (cfg.data.batch_size, cfg.global_.epochs, cfg.model["hidden_dropout_prob"]) == (64, 3, 0.2)
    assert "Table 9" in (REPO / "configs" / name).read_text()


def test_marc_en_config_documents_prepare_command():
    text = (REPO / "configs" / "marc_en.yaml").read_text()
    assert "tools/prepare_data.py" in text and "--splits 40000,5000,5000" in text and "data/marc_en" in text


def test_overrides_of_each_type(minimal):
    cfg = load_config(minimal, [
        "Global.epochs=5",                  # int
        "Optimizer.lr=5e-4",                # float without a dot, which plain YAML 1.1 reads as a string
        "Optimizer.grad_clip=1",            # int accepted for a float field
        "Global.resume=false",              # bool
        "Model.formulation=lucidrains",     # str with choices
        "Data.data_dir=other/dir",          # str, overriding the file
        "Data.max_vocab_size=30000",        # Optional[int]
        "Global.checkpoint=ckpt/best",      # Optional[str]
    ])
    assert cfg.global_.epochs == 5
    assert cfg.optimizer.lr == 5e-4 and isinstance(cfg.optimizer.lr, float)
    assert cfg.optimizer.grad_clip == 1.0 and isinstance(cfg.optimizer.grad_clip, float)
    assert cfg.global_.resume is False
    assert cfg.model["formulation"] == "lucidrains"
    assert cfg.data.data_dir == "other/dir"
    assert cfg.data.max_vocab_size == 30000
    assert cfg.global_.checkpoint == "ckpt/best"


def test_exponent_float_in_file(tmp_path):
    cfg = load_config(write(tmp_path, "Data: {data_dir: d}\nOptimizer: {lr: 3e-4, epsilon: 1E-6}\n"))
    assert (cfg.optimizer.lr, cfg.optimizer.epsilon) == (3e-4, 1e-6)


def test_later_override_wins_and_null_resets_optional(tmp_path):
    path = write(tmp_path, "Data: {data_dir: d}\nGlobal: {checkpoint: some/dir}\n")
    cfg = load_config(path, ["Global.seed=1", "Global.seed=2", "Global.checkpoint=null"])
    assert cfg.global_.seed == 2
    assert cfg.global_.checkpoint is None


def test_unknown_key_in_override_lists_allowed_keys(minimal):
    message = error_of(minimal, ["Model.hiden_size=3"])
    assert "Model.hiden_size" in message
    assert "Model.hiden_size=3" in message  # names the override
    assert "hidden_size" in message.split("allowed keys")[1]
    assert "num_attention_heads" in message and "layer_norm_eps" in message


def test_unknown_key_in_file_names_file(tmp_path):
    path = write(tmp_path, "Data:\n  data_dir: d\n  batchsize: 3\n")
    message = error_of(path)
    assert "Data.batchsize" in message and str(path) in message and "batch_size" in message


def test_unknown_section(tmp_path):
    message = error_of(write(tmp_path, "Data: {data_dir: d}\nTrain: {epochs: 1}\n"))
    assert "'Train'" in message and "Global, Data, Model, Optimizer" in message
    assert "Global, Data" in error_of(write(tmp_path, "Data: {data_dir: d}\n"), ["Glob.seed=1"])


@pytest.mark.parametrize("override, expected_type", [
    ("Data.batch_size=abc", "int"),
    ("Data.batch_size=true", "int"),      # bool is an int subclass, but not an acceptable batch size
    ("Global.epochs=2.5", "int"),
    ("Optimizer.lr=fast", "float"),
    ("Global.resume=1", "bool"),
    ("Global.output_dir=[1,2]", "str"),
])
def test_wrong_type(minimal, override, expected_type):
    key, value = override.split("=")
    message = error_of(minimal, [override])
    assert key in message and f"expected {expected_type}" in message
    assert repr(yaml.safe_load(value)) in message


def test_null_rejected_for_non_optional(minimal):
    message = error_of(minimal, ["Model.hidden_size=null"])
    assert "Model.hidden_size" in message and "None" in message and "positive integer" in message
    message = error_of(minimal, ["Global.seed=null"])
    assert "Global.seed" in message and "null" in message and "int" in message
    assert load_config(minimal, ["Data.max_vocab_size=null"]).data.max_vocab_size is None


def test_bad_choice_lists_allowed_values(minimal):
    message = error_of(minimal, ["Model.formulation=google"])
    assert "'google'" in message and "official" in message and "lucidrains" in message
    assert "adam, adamw" in error_of(minimal, ["Optimizer.name=sgd"])


@pytest.mark.parametrize("override, expectation", [
    ("Data.batch_size=0", "> 0"),
    ("Global.epochs=-1", "> 0"),
    ("Data.max_seq_len=0", "> 0"),
    ("Global.max_steps=0", "-1 or > 0"),
    ("Model.hidden_dropout_prob=1.0", "[0, 1)"),
    ("Optimizer.warmup_steps=-5", ">= 0"),
    ("Data.max_vocab_size=0", "> 0"),
])
def test_out_of_range(minimal, override, expectation):
    message = error_of(minimal, [override])
    assert override.split("=")[0] in message and expectation in message


def test_max_steps_accepts_positive(minimal):
    assert load_config(minimal, ["Global.max_steps=10"]).global_.max_steps == 10


def test_seq_len_longer_than_positions(minimal):
    message = error_of(minimal, ["Data.max_seq_len=1024"])
    assert "Data.max_seq_len" in message and "Model.max_position_embeddings" in message


def test_eval_steps_without_a_dev_set_is_refused(minimal):
    message = error_of(minimal, ["Global.eval_steps=100", "Global.eval_every_epoch=false"])
    assert "'Global.eval_steps' (100)" in message and "eval_every_epoch" in message
    assert load_config(minimal, ["Global.eval_steps=100"]).global_.eval_steps == 100


def test_missing_required_data_dir(tmp_path):
    path = write(tmp_path, "Global: {seed: 1}\n")
    assert "Data.data_dir" in error_of(path)
    assert load_config(path, ["Data.data_dir=d"]).data.data_dir == "d"


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    message = error_of(path)
    assert "not found" in message and str(path) in message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "Data:\n  data_dir: d\n  batch_size: [64\nModel:\n  hidden_size: 8\n")
    message = error_of(path)
    assert str(path) in message and "line 4" in message and "invalid YAML" in message


def test_top_level_must_be_mapping(tmp_path):
    assert "mapping" in error_of(write(tmp_path, "- Data\n"))


@pytest.mark.parametrize("override, fragment", [
    ("Global.seed", "no '='"),
    ("seed=1", "Section.key"),
    ("Global.=1", "Section.key"),
])
def test_malformed_override(minimal, override, fragment):
    message = error_of(minimal, [override])
    assert repr(override) in message and fragment in message


def test_model_errors_name_the_file_that_set_the_key(tmp_path):
    path = write(tmp_path, "Data: {data_dir: d}\nModel:\n  num_attention_heads: 7\n")
    message = error_of(path)
    assert f"'Model.num_attention_heads' in {path}" in message and "256 is not a multiple of num_attention_heads=7" in message
    message = error_of(path, ["Model.hidden_act=swishy"])
    assert "'Model.hidden_act' in override 'Model.hidden_act=swishy'" in message and "gelu" in message


def test_keys_the_data_decides_are_refused(minimal):
    message = error_of(minimal, ["Model.vocab_size=100"])
    assert "Model.vocab_size" in message and "set from the data" in message


def test_config_to_dict_round_trip(tmp_path, minimal):
    cfg = load_config(minimal, ["Optimizer.lr=2e-5", "Global.checkpoint=c", "Model.layer_norm_eps=1e-5"])
    as_dict = config_to_dict(cfg)
    assert list(as_dict) == ["Global", "Data", "Model", "Optimizer"]
    assert as_dict["Optimizer"]["lr"] == 2e-5 and as_dict["Global"]["checkpoint"] == "c"
    saved = tmp_path / "saved.yaml"
    save_config(cfg, saved)
    assert yaml.safe_load(saved.read_text()) == as_dict
    assert load_config(saved) == cfg
    written_by_hand = write(tmp_path, yaml.safe_dump(as_dict), name="dumped.yaml")
    assert load_config(written_by_hand) == cfg


def test_model_section_is_fastformer_config_arguments(minimal):
    model = load_config(minimal, ["Model.hidden_size=128"]).model
    arguments = set(inspect.signature(FastformerConfig.__init__).parameters) - {"self", "kwargs"}
    assert set(model) == set(MODEL_KEYS) == arguments - {"vocab_size", "pad_token_id"}
    assert model["hidden_size"] == 128
    defaults = FastformerConfig()
    assert all(model[key] == getattr(defaults, key) for key in model if key != "hidden_size")


def test_arg_parser_repeats_and_extends_overrides():
    parser = config_parser("test tool")
    args = parser.parse_args(["-c", "a.yaml", "-o", "Global.seed=1", "Data.batch_size=2", "--override", "Optimizer.lr=3"])
    assert args.config == "a.yaml"
    assert args.overrides == ["Global.seed=1", "Data.batch_size=2", "Optimizer.lr=3"]
    assert parser.parse_args(["--config", "b.yaml"]).overrides == []


def test_arg_parser_requires_config(capsys):
    with pytest.raises(SystemExit) as info:
        config_parser("test tool").parse_args([])
    assert info.value.code == 2
    assert "-c/--config" in capsys.readouterr().err


def test_transformer_baseline_differs_from_its_base_only_in_attention_and_paths():
    base = config_to_dict(load_config(REPO / "configs" / "marc_en.yaml"))
    variant = config_to_dict(load_config(REPO / "configs" / "marc_en_transformer.yaml"))
    assert (variant["Model"]["attention_type"], base["Model"]["attention_type"]) == ("softmax", "additive")
    variant["Model"]["attention_type"] = base["Model"]["attention_type"]
    for key in ("output_dir", "save_inference_dir"):
        assert variant["Global"][key] != base["Global"][key]
        variant["Global"][key] = base["Global"][key]
    assert variant == base


def test_base_chain_later_file_and_overrides_win(tmp_path):
    write(tmp_path, "Data:\n  data_dir: data/a\n  batch_size: 8\nGlobal:\n  seed: 1\n", "a.yaml")
    (tmp_path / "sub").mkdir()
    write(tmp_path, "_BASE_: ../a.yaml\nData:\n  batch_size: 16\n", "sub/b.yaml")
    write(tmp_path, "_BASE_: b.yaml\nGlobal:\n  seed: 2\n", "sub/c.yaml")
    cfg = load_config(tmp_path / "sub" / "c.yaml", ["Data.batch_size=32"])
    assert (cfg.data.data_dir, cfg.data.batch_size, cfg.global_.seed) == ("data/a", 32, 2)
    assert load_config(tmp_path / "sub" / "c.yaml").data.batch_size == 16


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("_BASE_: 3\n", "'_BASE_' in {path} has value 3; expected the path of a base config file"),
        ("_BASE_: missing.yaml\n", "names {dir}/missing.yaml, which is not a file"),
        ("_BASE_: cfg.yaml\n", "which includes {path} itself"),
    ],
)
def test_bad_base(tmp_path, text, fragment):
    path = write(tmp_path, text)
    assert fragment.format(path=path, dir=tmp_path) in error_of(path)


def test_base_errors_name_the_file_that_holds_the_bad_key(tmp_path):
    write(tmp_path, "Data:\n  data_dir: d\n  batch_size: many\n", "a.yaml")
    path = write(tmp_path, "_BASE_: a.yaml\n")
    assert f"'Data.batch_size' in {tmp_path / 'a.yaml'} has value 'many'" in error_of(path)


# ----------------------------------------------------------------------------------------------
# FastformerConfig's upper bounds on sizes (MAX_SIZES, MAX_WEIGHT_ELEMENTS), as Model keys report them
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, fragment", [
    ("Model.hidden_size=2147483648", "got 2147483648; expected a positive integer up to 65,536"),
    ("Model.num_hidden_layers=100000", "got 100000; expected a positive integer up to 1,024"),
    ("Model.max_position_embeddings=16777217", "expected a positive integer up to 16,777,216"),
    ("Model.attention_head_size=70000", "expected a positive integer up to 65,536 or None"),
])  # fmt: skip
def test_sizes_past_their_bound_are_refused(minimal, override, fragment):
    message = error_of(minimal, [override])
    assert f"'{override.split('=')[0]}' in override '{override}'" in message and fragment in message


def test_sizes_that_multiply_past_one_weights_bound_name_the_field_set(minimal):
    message = error_of(minimal, ["Model.max_position_embeddings=16777216"])
    assert "'Model.max_position_embeddings'" in message
    assert "max_position_embeddings=16,777,216 x hidden_size=256 makes the position table 4,294,967,296 values" in message
    assert "expected fewer than 2,147,483,648 (8 GiB of float32) in any one weight" in message
    message = error_of(minimal, ["Model.hidden_size=49152"])  # official: each projection is hidden x hidden
    assert "'Model.hidden_size'" in message and "hidden_size=49,152 x hidden_size=49,152 makes each attention" in message


def test_the_largest_sizes_within_bounds_are_accepted():
    from paddlenlp_fastformer.configuration import MAX_SIZES, MAX_WEIGHT_ELEMENTS

    config = FastformerConfig(vocab_size=MAX_SIZES["vocab_size"], hidden_size=64, num_attention_heads=4,
                              intermediate_size=MAX_SIZES["intermediate_size"], max_position_embeddings=2**20)  # fmt: skip
    assert config.vocab_size * config.hidden_size < MAX_WEIGHT_ELEMENTS
