"""PaddleNLP's own common tests, run against Fastformer (issue 28: the PaddleNLP contract).

PaddleNLP 2.8.1's mixins (``ModelTesterMixin``, ``GenerationTesterMixin``, ``ConfigTester``,
``TokenizerTesterMixin``) are not in its wheel, nor in its sdist (whose ``SOURCES.txt`` lists no ``tests/``), so
this module fetches them at test time from the release's commit, into a cache outside the repository, and
subclasses them with Fastformer's own testers: every common test they hold runs on our classes. A git commit
id names its content, so the pinned commit is the checksum; it is also the commit the installed wheel records
(``paddlenlp.version.commit``). Without network access the module skips, saying why.

``PADDLENLP_COMMON_TESTS_DIR`` points at another copy (a directory holding PaddleNLP's ``tests/``), used as it
is. Deliberate departures from the common tests are overridden or skipped below, each naming the design
choice of docs/model.md ("PaddleNLP's common tests") it comes from.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

import paddle
import pytest

PADDLENLP_COMMIT = "db99efd4dc99047922aae9842be66ab4538f93bf"  # tag v2.8.1
PADDLENLP_REPO = "https://github.com/PaddlePaddle/PaddleNLP.git"
COMMON_FILES = (
    "tests/__init__.py",
    "tests/testing_utils.py",
    "tests/transformers/__init__.py",
    "tests/transformers/test_modeling_common.py",
    "tests/transformers/test_generation_utils.py",
    "tests/transformers/test_configuration_common.py",
    "tests/transformers/test_tokenizer_common.py",
)
PACKAGE = "paddlenlp_common_tests"  # not "tests": that name is this repository's test directory

# The documented design choices (docs/model.md, "PaddleNLP's common tests") that the skips below cite.
STRICT_CONFIG = "design choice 'strict config validation': FastformerConfig refuses values no formulation defines"
NO_HOSTED_FILES = "design choice 'no hosted vocabularies': no pretrained_resource_files_map, no download URLs"


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "paddlenlp-fastformer" / "paddlenlp-tests-2.8.1"


def _git(*args, cwd: Path) -> str:
    # No prompt for credentials and a bounded wait: offline, the module should skip at once, not hang.
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise OSError((done.stderr.strip().splitlines() or [f"git {args[0]} failed"])[-1])
    return done.stdout.strip()


def _fetch(target: Path) -> None:
    """PaddleNLP's test files at the pinned commit into ``target``: fetched by that commit id (which git checks
    the content against), into a scratch directory renamed into place, so a concurrent run never sees half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".fetch-"))
    try:
        _git("init", "-q", cwd=scratch)
        _git("fetch", "-q", "--depth", "1", "--filter=blob:none", PADDLENLP_REPO, PADDLENLP_COMMIT, cwd=scratch)
        if _git("rev-parse", "FETCH_HEAD", cwd=scratch) != PADDLENLP_COMMIT:
            raise OSError(f"the fetched commit is not {PADDLENLP_COMMIT}")
        _git("checkout", "-q", "FETCH_HEAD", "--", *COMMON_FILES, cwd=scratch)
        shutil.rmtree(scratch / ".git")
        (scratch / "COMMIT").write_text(PADDLENLP_COMMIT + "\n", encoding="utf-8")
        os.replace(scratch, target)
    except OSError:
        if not target.is_dir():  # else another run renamed its copy into place first: that one serves
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _common_tests_root():
    """(directory holding PaddleNLP's ``tests/``, None) or (None, why the common tests cannot run)."""
    override = os.environ.get("PADDLENLP_COMMON_TESTS_DIR")
    if override:
        found = (Path(override) / "tests" / "transformers" / "test_modeling_common.py").is_file()
        why = f"PADDLENLP_COMMON_TESTS_DIR={override} holds no tests/transformers/test_modeling_common.py"
        return (Path(override), None) if found else (None, why)
    from paddlenlp.version import commit

    if commit != PADDLENLP_COMMIT:
        return None, f"the installed paddlenlp is commit {commit}, not 2.8.1 ({PADDLENLP_COMMIT}) whose tests are pinned"
    root = _cache_root()
    cached = (root / "COMMIT").read_text(encoding="utf-8").strip() if (root / "COMMIT").is_file() else None
    if cached is not None and cached != PADDLENLP_COMMIT:
        return None, f"{root} holds PaddleNLP commit {cached}, not {PADDLENLP_COMMIT}: delete it to fetch the pinned one"
    if cached is None:
        try:
            _fetch(root)
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"PaddleNLP 2.8.1's test files are not cached at {root} and could not be fetched ({error})"
    return root, None


def _load_common_tests(root: Path) -> dict:
    """Import PaddleNLP's common test modules from ``root`` under :data:`PACKAGE`, returning them by short name."""
    for name, path in ((PACKAGE, "tests"), (f"{PACKAGE}.transformers", "tests/transformers")):
        spec = importlib.util.spec_from_file_location(name, root / path / "__init__.py", submodule_search_locations=[str(root / path)])
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    # test_generation_utils imports `tests.testing_utils` absolutely, as PaddleNLP's own tree resolves it.
    sys.modules.setdefault("tests.testing_utils", importlib.import_module(f"{PACKAGE}.testing_utils"))
    # test_modeling_common imports paddle.fluid (gone in Paddle 3) for its distributed helpers alone. A stand-in
    # serves that import and is withdrawn after it: other code probes `import paddle.fluid` to tell Paddle versions.
    stand_in = not hasattr(paddle, "fluid") and "paddle.fluid" not in sys.modules
    if stand_in:
        sys.modules["paddle.fluid"] = types.SimpleNamespace(core=paddle.base.core)
    try:
        short = ("test_modeling_common", "test_generation_utils", "test_configuration_common", "test_tokenizer_common")
        return {name: importlib.import_module(f"{PACKAGE}.transformers.{name}") for name in short}
    finally:
        if stand_in:
            del sys.modules["paddle.fluid"]


_ROOT, _WHY_NOT = _common_tests_root()
if _ROOT is None:
    pytest.skip(f"PaddleNLP's common tests are unavailable: {_WHY_NOT}", allow_module_level=True)

_COMMON = _load_common_tests(_ROOT)
ModelTesterMixin = _COMMON["test_modeling_common"].ModelTesterMixin
ids_tensor = _COMMON["test_modeling_common"].ids_tensor
random_attention_mask = _COMMON["test_modeling_common"].random_attention_mask
GenerationTesterMixin = _COMMON["test_generation_utils"].GenerationTesterMixin
ConfigTester = _COMMON["test_configuration_common"].ConfigTester
TokenizerTesterMixin = _COMMON["test_tokenizer_common"].TokenizerTesterMixin

from paddlenlp_fastformer import (  # noqa: E402
    FastformerConfig,
    FastformerForCausalLM,
    FastformerForConditionalGeneration,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
    FastformerTokenizer,
)


# ----------------------------------------------------------------------------------------------
# our testers: small configurations and inputs for the common tests
# ----------------------------------------------------------------------------------------------
class FastformerModelTester:
    """A small Fastformer and random inputs, in the shape PaddleNLP's mixins ask of a model tester."""

    def __init__(self, parent, batch_size=4, seq_length=8, is_encoder_decoder=False, **formulation):
        self.parent, self.formulation = parent, formulation
        self.batch_size, self.seq_length = batch_size, seq_length
        self.is_training, self.is_encoder_decoder = False, is_encoder_decoder
        self.vocab_size, self.hidden_size, self.intermediate_size = 99, 32, 37
        self.num_hidden_layers, self.num_attention_heads = 2, 4
        self.max_position_embeddings, self.num_labels = 64, 3
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 2

    def get_config(self) -> FastformerConfig:
        return FastformerConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings, hidden_dropout_prob=0.1, num_labels=self.num_labels,
            pad_token_id=self.pad_token_id, bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id,
            decoder_start_token_id=self.bos_token_id, **self.formulation,
        )  # fmt: skip

    def prepare_config_and_inputs_for_common(self):
        shape = [self.batch_size, self.seq_length]
        inputs = {"input_ids": ids_tensor(shape, self.vocab_size, dtype="int64"), "attention_mask": random_attention_mask(shape)}
        if self.is_encoder_decoder:
            inputs["decoder_input_ids"] = ids_tensor(shape, self.vocab_size, dtype="int64")
        return self.get_config(), inputs


class _FastformerCommonChecks:
    """What our model test classes share: the overrides of the documented design choices."""

    use_test_inputs_embeds = True  # every head takes inputs_embeds: let the common test check it

    def test_attention_outputs(self):
        """Overridden for design choice 'attention output shape': the common test wants [H, N, N] maps; an encoder
        block returns [B, 2, H, N] and a decoder block [B, 2, H, N, N] (row t for position t), which this checks, with
        the rest of the common test: one entry per block, and the hidden states added ahead of the attentions."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = self._make_model_instance(config, model_class)
            model.eval()
            with paddle.no_grad():
                outputs = model(**inputs, output_attentions=True, return_dict=True)
                with_states = model(**inputs, output_attentions=True, output_hidden_states=True, return_dict=True)
            self._check_attention_shapes(model_class, outputs)
            self.assertEqual(len(with_states), len(outputs) + (2 if self.is_encoder_decoder else 1))

    def _check_attention_shapes(self, model_class, outputs):
        tester = self.model_tester
        encoder_shape = [tester.batch_size, 2, tester.num_attention_heads, tester.seq_length]
        decoder_shape = encoder_shape + [tester.seq_length]
        if self.is_encoder_decoder:
            found = {"encoder": outputs.encoder_attentions, "decoder": outputs.decoder_attentions}
            expected = {"encoder": encoder_shape, "decoder": decoder_shape}
        else:
            found = {"attentions": outputs.attentions}
            expected = {"attentions": decoder_shape if model_class is FastformerForCausalLM else encoder_shape}
        for name, weights in found.items():
            self.assertListEqual([list(w.shape) for w in weights], [expected[name]] * tester.num_hidden_layers, name)

    @unittest.skip(NO_HOSTED_FILES)
    def test_model_name_list(self):
        pass


class FastformerModelTest(_FastformerCommonChecks, ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    """The base model and every encoder head, and the causal LM, through ModelTesterMixin; the causal LM's
    generate() through GenerationTesterMixin."""

    base_model_class = FastformerModel
    all_model_classes = (
        FastformerModel,
        FastformerForSequenceClassification,
        FastformerForTokenClassification,
        FastformerForMaskedLM,
        FastformerForCausalLM,
    )
    all_generative_model_classes = {FastformerForCausalLM: (FastformerModel, "fastformer")}

    def setUp(self):
        self.model_tester = FastformerModelTester(self)


class FastformerLucidrainsModelTest(FastformerModelTest):
    """The same, in the other formulation (fast-transformer-pytorch's), with rotary positions."""

    def setUp(self):
        self.model_tester = FastformerModelTester(self, formulation="lucidrains", position_embedding_type="rotary")


class FastformerEncoderDecoderTest(_FastformerCommonChecks, ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    """FastformerForConditionalGeneration, whose encoder states the common tests read as ``encoder_*``."""

    is_encoder_decoder = True
    base_model_class = FastformerModel
    all_model_classes = (FastformerForConditionalGeneration,)
    all_generative_model_classes = {FastformerForConditionalGeneration: (FastformerModel, "fastformer")}

    def setUp(self):
        self.model_tester = FastformerModelTester(self, is_encoder_decoder=True)

    @pytest.mark.xfail(strict=True, reason=(
        "NOT a documented exception, awaiting a decision: the common test embeds source and target with "
        "get_input_embeddings() (one table shared by encoder and decoder, as in BART and T5); Fastformer's "
        "encoder-decoder has a word-embedding table per side"))  # fmt: skip
    def test_inputs_embeds(self):
        super().test_inputs_embeds()


class FastformerConfigTest(unittest.TestCase):
    """ConfigTester's checks, one test each so that a failure names its check."""

    def setUp(self):
        self.config_tester = ConfigTester(self, config_class=FastformerConfig, vocab_size=99, hidden_size=32,
                                          num_attention_heads=4, num_hidden_layers=2)  # fmt: skip

    @unittest.skip(STRICT_CONFIG + ": this check builds FastformerConfig(hidden_size=0), a model of no width")
    def test_config_common_properties(self):
        self.config_tester.create_and_test_config_common_properties()

    def test_config_to_json_string(self):
        self.config_tester.create_and_test_config_to_json_string()

    def test_config_to_json_file(self):
        self.config_tester.create_and_test_config_to_json_file()

    def test_config_from_and_save_pretrained(self):
        self.config_tester.create_and_test_config_from_and_save_pretrained()

    def test_config_with_num_classes(self):
        self.config_tester.create_and_test_config_with_num_classes()

    def test_config_with_num_labels(self):
        self.config_tester.create_and_test_config_with_num_labels()

    def test_config_can_be_init_without_params(self):
        self.config_tester.check_config_can_be_init_without_params()

    def test_config_arguments_init(self):
        self.config_tester.check_config_arguments_init()


# Words the common tokenizer tests encode, cased as they write them and lower-cased, after the special tokens
# every vocabulary of build_from_corpus starts with.
_TOKENIZER_WORDS = (
    "this is a test sequence testing batch encode plus with different lengths correctly pads the prepare_for_model "
    "method he very happy unwanted running one too please these inputs wonderful no inspiration example subtoken "
    "along an awesome pair another sentence to be encoded low l text for"
).split()
_TOKENIZER_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + _TOKENIZER_WORDS + [
    "This", "Testing", "Sequence", "Test", "With", "Encode", "He", "Wonderful", "Along", "UNwanted", ".", ",", "!", "?"
]


class FastformerTokenizerTest(TokenizerTesterMixin, unittest.TestCase):
    """TokenizerTesterMixin on a tokenizer saved to a temporary directory, which also stands in for the hosted
    vocabulary names (none: NO_HOSTED_FILES) the mixin's from_pretrained tests would load."""

    tokenizer_class = FastformerTokenizer

    def setUp(self):
        self.tmpdirname = tempfile.mkdtemp()
        FastformerTokenizer(vocab=_TOKENIZER_VOCAB).save_pretrained(self.tmpdirname)
        self.tokenizers_list = [(self.tokenizer_class, self.tmpdirname, {})]
        self._data = "This is a test sequence.\nHe is very happy, UNwanted, running."

    @unittest.skip(NO_HOSTED_FILES)
    def test_pretrained_model_lists(self):
        pass
