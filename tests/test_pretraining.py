"""Masked-LM pretraining (tools/prepare_corpus.py, tools/pretrain.py) on a tiny corpus: masking statistics,
exact resume, the leak check, and pretraining outputs starting every head."""
import json
import sys

import numpy as np
import paddle
import pytest
from conftest import PROJECT_ROOT, assert_one_line_error, run_main, write_tiny_config
from test_training import Interrupt, assert_same_params, run, trainer_progress, without_seconds

from paddlenlp_fastformer import (
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
)
from fastformer_zoo.data.corpus import iter_texts, leak_key, prepare_corpus
from fastformer_zoo.data.loader import TextDataset, make_dataloader
from fastformer_zoo.data.masking import MaskingCollator
from fastformer_zoo.engine import trainer
from fastformer_zoo.engine.tasks import ClassificationTask, MaskedLMTask
from fastformer_zoo.errors import UserError
from fastformer_zoo.settings import load_config
from paddlenlp_fastformer.tokenizer import FastformerTokenizer

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import prepare_corpus as prepare_corpus_tool  # noqa: E402
import pretrain as pretrain_tool  # noqa: E402


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, tiny_data_dir):
    """The tiny dataset's training texts as a pretraining corpus (its dev and test texts kept out)."""
    root = tmp_path_factory.mktemp("corpus")
    prepare_corpus([tiny_data_dir / "train.jsonl"], root / "corpus", dev_size=40, seed=3,
                   exclude=[tiny_data_dir / "dev.jsonl", tiny_data_dir / "test.jsonl"])  # fmt: skip
    return root / "corpus"


def pretrain_config(tmp_path, corpus_dir, tiny_data_dir, output_dir, **global_):
    held_out = [str(tiny_data_dir / "dev.jsonl"), str(tiny_data_dir / "test.jsonl")]
    return write_tiny_config(tmp_path / "pretrain.yaml", corpus_dir, output_dir, Global=global_, Data={"held_out_files": held_out})


def pretrain(config_path, overrides=(), on_step_end=None):
    return run(config_path, overrides, on_step_end, task_class=MaskedLMTask)


def masked_batches(texts, epochs=3, mask_prob=0.15, seed=0):
    tokenizer = FastformerTokenizer.build_from_corpus(texts)
    collator = MaskingCollator(tokenizer, mask_prob, seed)
    loader = make_dataloader(TextDataset(texts, tokenizer, 64), 16, shuffle=True, seed=seed, collate_fn=collator)
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        collator.set_epoch(epoch)
        for batch in loader:  # the DataLoader hands out paddle tensors
            yield tokenizer, loader.dataset, {key: np.asarray(value) for key, value in batch.items()}


def test_masking_follows_bert_statistics(tiny_data_dir):
    texts = [text for _, text in iter_texts(tiny_data_dir / "train.jsonl")]
    real = chosen = masked = random = kept = 0
    for tokenizer, dataset, batch in masked_batches(texts, epochs=6):
        original = np.array([dataset.input_ids[i] + [0] * (batch["input_ids"].shape[1] - len(dataset.input_ids[i])) for i in batch["index"]])
        is_target = batch["labels"] != -100
        assert (batch["labels"][is_target] == original[is_target]).all()  # a target is the token that was there
        assert not is_target[batch["attention_mask"] == 0].any()  # padding is never a target
        assert (batch["input_ids"][~is_target] == original[~is_target]).all()  # only targets are changed
        special = np.isin(original, tokenizer.all_special_ids)
        assert not (is_target & special).any()
        replaced = batch["input_ids"][is_target]
        real += int((batch["attention_mask"] == 1).sum())
        chosen += int(is_target.sum())
        masked += int((replaced == tokenizer.mask_token_id).sum())
        kept += int((replaced == original[is_target]).sum())
        random_ids = replaced[(replaced != tokenizer.mask_token_id) & (replaced != original[is_target])]
        assert not np.isin(random_ids, tokenizer.all_special_ids).any()  # random words are words
        random += len(random_ids)
    assert chosen > 5000
    assert abs(chosen / real - 0.15) < 0.01
    assert abs(masked / chosen - 0.8) < 0.02
    # A random word can be the token itself (1 in the vocabulary's size): "kept" takes those.
    assert abs(random / chosen - 0.1) < 0.02 and abs(kept / chosen - 0.1) < 0.02


def test_a_text_gets_the_same_mask_in_the_same_epoch_whatever_its_batch(tiny_data_dir):
    texts = [text for _, text in iter_texts(tiny_data_dir / "train.jsonl")][:64]
    tokenizer = FastformerTokenizer.build_from_corpus(texts)
    collator = MaskingCollator(tokenizer, 0.15, seed=0)
    items = [TextDataset(texts, tokenizer, 64)[i] for i in range(64)]
    alone = [collator([item])["input_ids"][0] for item in items]
    together = collator(items[::-1])["input_ids"][::-1]  # one batch, in another order, padded
    for row, ids in zip(together, alone):
        np.testing.assert_array_equal(row[: len(ids)], ids)
    collator.set_epoch(1)
    assert any(not np.array_equal(collator([item])["input_ids"][0], ids) for item, ids in zip(items, alone))


def test_pretraining_resumes_exactly(tmp_path, corpus_dir, tiny_data_dir):
    config_path = pretrain_config(tmp_path, corpus_dir, tiny_data_dir, tmp_path / "unused", epochs=2, save_steps=5)
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full_result, full_losses = pretrain(config_path, [f"Global.output_dir={full_dir}"])
    assert len(full_losses) == 70  # 280 texts / batch 8, 2 epochs

    def interrupt_at_12(step, _loss):
        if step == 12:
            raise Interrupt()

    with pytest.raises(KeyboardInterrupt):
        pretrain(config_path, [f"Global.output_dir={cut_dir}"], on_step_end=interrupt_at_12)
    assert trainer_progress(cut_dir / "last")["global_step"] == 10
    resumed_result, resumed_losses = pretrain(config_path, [f"Global.output_dir={cut_dir}"])
    assert resumed_losses == {step: loss for step, loss in full_losses.items() if step > 10}
    assert without_seconds(resumed_result) == without_seconds(full_result)
    assert_same_params(full_dir / "last", cut_dir / "last")
    assert_same_params(full_dir / "best", cut_dir / "best")
    history = full_result["history"]
    assert [record["step"] for record in history] == [35, 70] and history[1]["loss"] < history[0]["loss"]
    assert full_result["best_score"] == -min(record["loss"] for record in history)


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory, corpus_dir, tiny_data_dir):
    root = tmp_path_factory.mktemp("pretrained")
    pretrain(pretrain_config(root, corpus_dir, tiny_data_dir, root / "out", max_steps=6), ["Data.max_seq_len=48"])
    return root / "out" / "best"


def test_fine_tuning_from_a_pretraining_run_loads_every_encoder_weight(tmp_path, tiny_data_dir, pretrained_dir):
    config = load_config(write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out"), [f"Global.init_from={pretrained_dir}"])
    with paddle.utils.unique_name.guard():
        started = trainer._start_run(config, ClassificationTask(config))
    pretrained = FastformerForMaskedLM.from_pretrained(str(pretrained_dir)).fastformer.state_dict()
    encoder = started.model.fastformer.state_dict()
    assert set(encoder) - set(pretrained) == {name for name in encoder if name.startswith("pooler.")}
    for name, weight in pretrained.items():
        np.testing.assert_array_equal(encoder[name].numpy(), weight.numpy(), err_msg=name)
    assert started.tokenizer.get_vocab() == FastformerTokenizer.from_pretrained(str(pretrained_dir)).get_vocab()
    # The pretraining truncated at 48 tokens; this run, and what it saves, truncate at its own 64.
    assert started.tokenizer.model_max_length == config.data.max_seq_len == 64


@pytest.mark.parametrize("head", [FastformerModel, FastformerForSequenceClassification, FastformerForTokenClassification, FastformerForMaskedLM])
def test_every_head_loads_a_pretraining_output(pretrained_dir, head):
    model = head.from_pretrained(str(pretrained_dir))
    base = model if head is FastformerModel else model.fastformer
    saved = FastformerForMaskedLM.from_pretrained(str(pretrained_dir)).fastformer.state_dict()
    for name, weight in saved.items():
        np.testing.assert_array_equal(base.state_dict()[name].numpy(), weight.numpy(), err_msg=name)


def test_pretraining_text_holding_a_test_review_is_refused(tmp_path, corpus_dir, tiny_data_dir, capsys):
    test_text = next(iter_texts(tiny_data_dir / "test.jsonl"))[1]
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    lines = (corpus_dir / "train.jsonl").read_text().splitlines()
    # Re-spaced and upper-cased, it is still the same review.
    lines.insert(5, json.dumps({"text": "  " + test_text.upper().replace(" ", "   ")}))
    (leaky / "train.jsonl").write_text("\n".join(lines) + "\n")
    (leaky / "dev.jsonl").write_text((corpus_dir / "dev.jsonl").read_text())
    config_path = pretrain_config(tmp_path, leaky, tiny_data_dir, tmp_path / "out")
    result = run_main(pretrain_tool.main, ["-c", str(config_path)], capsys)
    assert_one_line_error(result, str(leaky / "train.jsonl"), str(tiny_data_dir / "test.jsonl"), "held-out", alone=False)
    assert not (tmp_path / "out" / "last").exists()


def test_a_titled_held_out_split_still_catches_its_bare_body(tmp_path):
    from fastformer_zoo.data.corpus import check_no_leak

    held_out = tmp_path / "test.jsonl"
    held_out.write_text(json.dumps({"text": "Great value. The battery lasts for days and the screen is bright.", "label": 4}) + "\n")
    with pytest.raises(UserError, match="holds 1 review"):
        check_no_leak({"corpus.jsonl": ["the battery lasts for days and the screen is  bright."]}, [held_out])
    check_no_leak({"corpus.jsonl": ["Great value."]}, [held_out])  # a stock phrase alone is no leak


def test_pretraining_needs_its_held_out_list(tmp_path, corpus_dir, tiny_data_dir):
    config_path = write_tiny_config(tmp_path / "c.yaml", corpus_dir, tmp_path / "out")
    with pytest.raises(UserError, match="Data.held_out_files is not set"):
        pretrain(config_path)


def test_prepare_corpus_drops_held_out_texts_and_duplicates(tmp_path, tiny_data_dir, capsys):
    source = tmp_path / "texts.txt"
    test_texts = [text for _, text in iter_texts(tiny_data_dir / "test.jsonl")]
    source.write_text("\n".join(["one review", "One  review", test_texts[0], "another", "a third"]) + "\n")
    code = prepare_corpus_tool.main(["--input", str(source), "--output-dir", str(tmp_path / "c"), "--dev-size", "1",
                                     "--exclude", str(tiny_data_dir / "test.jsonl")])  # fmt: skip
    assert code == 0
    stats = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert stats["inputs"][0] | {"path": None} == {"path": None, "texts": 5, "kept": 3, "duplicates": 1, "excluded": 1}
    kept = [text for name in ("train", "dev") for _, text in iter_texts(tmp_path / "c" / f"{name}.jsonl")]
    assert sorted(kept) == ["a third", "another", "one review"]
    assert leak_key(test_texts[0]) not in {leak_key(text) for text in kept}
    result = run_main(prepare_corpus_tool.main, ["--input", str(source), "--output-dir", str(tmp_path / "d"), "--dev-size", "9"], capsys)
    assert_one_line_error(result, "--dev-size 9")
    with pytest.raises(UserError, match="held-out file not found"):
        prepare_corpus([source], tmp_path / "e", 1, exclude=[tmp_path / "missing.jsonl"])
