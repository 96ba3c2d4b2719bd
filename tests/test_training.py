"""Tests of fastformer_zoo.engine (trainer, evaluate, checkpoint) on a tiny synthetic dataset and model (see conftest.py).

Training runs in-process through ``train(config, on_step_end)``; only the data-parallel test starts
processes (``paddle.distributed.launch``). A tiny run is about a second of training.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from conftest import PROJECT_ROOT, write_tiny_config
from sklearn.metrics import f1_score

import paddlenlp_fastformer  # noqa: F401  (registers the Auto classes)
from fastformer_zoo.data.loader import make_collator
from fastformer_zoo.data.labels import STAR_LABELS as LABEL_NAMES
from fastformer_zoo.data.readers import read_prepared
from fastformer_zoo.engine import checkpoint, tasks, trainer
from fastformer_zoo.engine.tasks import ClassificationTask
from fastformer_zoo.engine.checkpoint import load_checkpoint
from fastformer_zoo.engine.evaluate import evaluate_checkpoint
from fastformer_zoo.engine.trainer import train
from fastformer_zoo.errors import UserError
from fastformer_zoo.settings import load_config
from paddlenlp_fastformer.modeling import FastformerForSequenceClassification
from paddlenlp_fastformer.serialization import load_weights
from paddlenlp_fastformer.tokenizer import FastformerTokenizer

# --------------------------------------------------------------------------- helpers


def run(config_path, overrides=(), on_step_end=None, fresh_names=True, task_class=ClassificationTask):
    """Train (a ``task_class`` of the config: classification unless told); return (progress dict, {step: loss}).

    ``fresh_names`` runs in a new paddle unique-name scope, so that parameters get the names they
    would get in a fresh process (see test_resume_in_the_same_process for why that matters).
    """
    losses = {}

    def record(step, loss):
        losses[step] = loss
        if on_step_end is not None:
            on_step_end(step, loss)

    config = load_config(config_path, list(overrides))
    if not fresh_names:
        return train(config, on_step_end=record, task=task_class(config)), losses
    with paddle.utils.unique_name.guard():
        result = train(config, on_step_end=record, task=task_class(config))
    return result, losses


def params(checkpoint_dir):
    """The checkpoint's parameters as numpy arrays."""
    return load_weights(checkpoint_dir)


def assert_same_params(a, b):
    first, second = params(a), params(b)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def trainer_progress(checkpoint_dir):
    return json.loads((Path(checkpoint_dir) / checkpoint.TRAINER_STATE).read_text())["progress"]


def hidden_entries(directory):
    """Leftover staging files or directories (their names start with a dot; the run's .lock is not one)."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith(".") and p.name != ".lock")


class Interrupt(KeyboardInterrupt):
    pass


# --------------------------------------------------------------------------- shared run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data_dir):
    """A 2-epoch tiny run, shared read-only by the tests that only inspect its outputs."""
    root = tmp_path_factory.mktemp("trained_run")
    config_path = write_tiny_config(root / "tiny.yaml", tiny_data_dir, root / "out", Global={"epochs": 2})
    result, losses = run(config_path)
    return {"config": config_path, "output_dir": root / "out", "result": result, "losses": losses}


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_losses_and_parameters(tmp_path, tiny_data_dir):
    # Dropout 0.2 (the tiny config's) makes the paddle RNG part of what must be reproduced.
    config_path = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "unused")
    runs = []
    for name in ("a", "b"):
        _, losses = run(config_path, [f"Global.output_dir={tmp_path / name}", "Global.max_steps=15"])
        runs.append(losses)
    assert list(runs[0]) == list(range(1, 16))
    assert runs[0] == runs[1]
    assert_same_params(tmp_path / "a" / "last", tmp_path / "b" / "last")

    _, other_seed = run(config_path, [f"Global.output_dir={tmp_path / 'c'}", "Global.max_steps=15", "Global.seed=7"])
    assert other_seed.keys() == runs[0].keys()
    assert other_seed != runs[0]
    assert not np.array_equal(params(tmp_path / "a" / "last")["classifier.weight"], params(tmp_path / "c" / "last")["classifier.weight"])


# --------------------------------------------------------------------------- resume


def without_seconds(result):
    """A run's progress without the seconds it took, which no two runs share."""
    history = [{key: value for key, value in record.items() if key != "train_seconds"} for record in result["history"]]
    return {**{key: value for key, value in result.items() if key != "train_seconds"}, "history": history}


def test_interrupted_run_resumes_exactly(tmp_path, tiny_data_dir):
    # 40 steps per epoch, so the step-10 checkpoint is in the middle of epoch 1.
    config_path = write_tiny_config(
        tmp_path / "c.yaml", tiny_data_dir, tmp_path / "unused", Global={"epochs": 2, "save_steps": 5}
    )
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full_result, full_losses = run(config_path, [f"Global.output_dir={full_dir}"])
    assert len(full_losses) == 80

    def interrupt_at_12(step, _loss):
        if step == 12:
            raise Interrupt()

    with pytest.raises(KeyboardInterrupt):
        run(config_path, [f"Global.output_dir={cut_dir}"], on_step_end=interrupt_at_12)
    progress = trainer_progress(cut_dir / "last")
    assert (progress["global_step"], progress["epoch"], progress["batches_done_in_epoch"]) == (10, 0, 10)
    assert not (cut_dir / "best").exists()

    resumed_result, resumed_losses = run(config_path, [f"Global.output_dir={cut_dir}"])
    assert list(resumed_losses) == list(range(11, 81))
    assert resumed_losses == {step: loss for step, loss in full_losses.items() if step > 10}
    assert without_seconds(resumed_result) == without_seconds(full_result)
    seconds = [record["train_seconds"] for record in resumed_result["history"]]
    assert 0 < seconds[0] < seconds[1] and resumed_result["train_seconds"] == pytest.approx(seconds[1], abs=0.05)
    assert_same_params(full_dir / "last", cut_dir / "last")
    assert_same_params(full_dir / "best", cut_dir / "best")
    full_best = json.loads((full_dir / "best" / "dev_metrics.json").read_text())
    assert json.loads((cut_dir / "best" / "dev_metrics.json").read_text()) == full_best
    assert hidden_entries(cut_dir) == []


@pytest.mark.parametrize(
    "override, key",
    [
        ("Model.hidden_dropout_prob=0.1", "Model.hidden_dropout_prob"),
        ("Model.intermediate_size=48", "Model.intermediate_size"),
        ("Data.max_seq_len=32", "Data.max_seq_len"),
        ("Data.batch_size=16", "Data.batch_size"),
        ("Optimizer.lr=0.01", "Optimizer.lr"),
    ],
)
def test_resume_with_changed_setting_is_refused(tmp_path, tiny_config_path, override, key):
    run(tiny_config_path, ["Global.max_steps=2"])
    before = params(tmp_path / "out" / "last")
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        run(tiny_config_path, [override])
    after = params(tmp_path / "out" / "last")
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_resume_ignores_free_settings(tmp_path, tiny_config_path):
    run(tiny_config_path, ["Global.max_steps=2"])
    _, losses = run(tiny_config_path, ["Global.max_steps=4", "Data.eval_batch_size=7"])
    assert list(losses) == [3, 4]


def test_a_run_saved_before_newer_keys_and_fingerprints_resumes(tmp_path, tiny_config_path):
    """A last/ written before Data.class_weights, Data.sampler, label.txt's fingerprint and best_score existed."""
    import yaml

    run(tiny_config_path, ["Global.max_steps=2"])
    last = tmp_path / "out" / "last"
    saved = yaml.safe_load((last / "train_config.yaml").read_text())
    for key in ("class_weights", "sampler"):
        del saved["Data"][key]
    (last / "train_config.yaml").write_text(yaml.safe_dump(saved))
    state = json.loads((last / "trainer_state.json").read_text())
    state["fingerprints"] = {name: digest for name, digest in state["fingerprints"].items() if not name.endswith("label.txt")}
    state["progress"]["best_macro_f1"] = state["progress"].pop("best_score") or -1.0  # its name before pretraining existed
    (last / "trainer_state.json").write_text(json.dumps(state))
    _, losses = run(tiny_config_path, ["Global.max_steps=4"])
    assert list(losses) == [3, 4]
    with pytest.raises(UserError, match=r"Data\.sampler"):  # a key it lacks still counts as its default
        run(tiny_config_path, ["Global.max_steps=6", "Data.sampler=class_balanced"])


def test_resume_false_starts_over(tmp_path, tiny_config_path):
    _, first = run(tiny_config_path, ["Global.max_steps=4"])
    # resume=True continues: nothing is left to do at the same max_steps, more steps continue from 4.
    _, continued = run(tiny_config_path, ["Global.max_steps=6"])
    assert list(continued) == [5, 6]
    _, again = run(tiny_config_path, ["Global.max_steps=4", "Global.resume=False"])
    assert again == first
    assert trainer_progress(tmp_path / "out" / "last")["global_step"] == 4


# --------------------------------------------------------------------------- outputs


def test_output_directories_are_complete_and_loadable(trained_run):
    from paddlenlp.transformers import AutoModelForSequenceClassification, AutoTokenizer

    output_dir = trained_run["output_dir"]
    assert {"best", "last"} <= {p.name for p in output_dir.iterdir()}
    assert hidden_entries(output_dir) == []
    dev = read_prepared(Path(load_config(trained_run["config"]).data.data_dir) / "dev.jsonl", 5)[:4]
    for name in ("best", "last"):
        directory = output_dir / name
        assert hidden_entries(directory) == []
        config = json.loads((directory / "config.json").read_text())
        assert {int(k): v for k, v in config["id2label"].items()} == dict(enumerate(LABEL_NAMES))
        model = FastformerForSequenceClassification.from_pretrained(str(directory))
        tokenizer = FastformerTokenizer.from_pretrained(str(directory))
        auto_model = AutoModelForSequenceClassification.from_pretrained(str(directory))
        auto_tokenizer = AutoTokenizer.from_pretrained(str(directory))
        assert type(auto_model) is FastformerForSequenceClassification
        assert type(auto_tokenizer) is FastformerTokenizer
        assert auto_tokenizer.get_vocab() == tokenizer.get_vocab()
        model.eval()
        auto_model.eval()
        batch = tokenizer([row["text"] for row in dev], padding=True, return_tensors="pd")
        with paddle.no_grad():
            logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
            auto_logits = auto_model(batch["input_ids"], attention_mask=batch["attention_mask"])
        assert logits.shape == [4, 5]
        np.testing.assert_allclose(logits.numpy(), auto_logits.numpy(), rtol=0, atol=0)
    # last/ is the end of training.
    assert trainer_progress(output_dir / "last")["global_step"] == 80


def test_best_is_the_dev_macro_f1_maximum(trained_run):
    history = trained_run["result"]["history"]
    assert [record["step"] for record in history] == [40, 80]
    best = json.loads((trained_run["output_dir"] / "best" / "dev_metrics.json").read_text())
    assert best["macro_f1"] == max(record["macro_f1"] for record in history)
    assert trained_run["result"]["best_score"] == best["macro_f1"]


def test_best_is_not_simply_the_last_epoch(tmp_path, tiny_data_dir, trained_run, monkeypatch):
    """With dev macro-F1 scripted to peak at epoch 2 of 3, best/ holds the epoch-2 weights."""
    scripted = iter([0.3, 0.6, 0.4])
    real_evaluate = tasks.evaluate

    def scripted_evaluate(model, loader, desc="eval"):
        result = real_evaluate(model, loader, desc=desc)
        result["metrics"]["macro_f1"] = next(scripted)
        return result

    monkeypatch.setattr(tasks, "evaluate", scripted_evaluate)
    config_path = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out", Global={"epochs": 3})
    result, _ = run(config_path)
    assert [record["macro_f1"] for record in result["history"]] == [0.3, 0.6, 0.4]
    assert result["best_score"] == 0.6
    assert json.loads((tmp_path / "out" / "best" / "dev_metrics.json").read_text())["macro_f1"] == 0.6
    # The constant schedule makes steps 1..80 of this 3-epoch run those of the shared 2-epoch run.
    assert_same_params(tmp_path / "out" / "best", trained_run["output_dir"] / "last")
    assert trainer_progress(tmp_path / "out" / "last")["global_step"] == 120


def test_eval_steps_adds_dev_records_within_epochs_and_a_resumed_run_keeps_them(tmp_path, tiny_data_dir, trained_run):
    config_path = write_tiny_config(
        tmp_path / "c.yaml", tiny_data_dir, tmp_path / "unused", Global={"epochs": 2, "eval_steps": 15, "save_steps": 5}
    )
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full_result, full_losses = run(config_path, [f"Global.output_dir={full_dir}"])
    history = full_result["history"]
    assert [(record["epoch"], record["step"]) for record in history] == [
        (0.375, 15), (0.75, 30), (1, 40), (1.125, 45), (1.5, 60), (1.875, 75), (2, 80)
    ]  # fmt: skip
    # Evaluating changes nothing that is learnt: the steps are those of the run that evaluates at epoch ends only.
    assert full_losses == trained_run["losses"]
    assert_same_params(full_dir / "last", trained_run["output_dir"] / "last")
    best = json.loads((full_dir / "best" / "dev_metrics.json").read_text())
    assert best["macro_f1"] == max(record["macro_f1"] for record in history) == full_result["best_score"]

    def interrupt_at_23(step, _loss):
        if step == 23:
            raise Interrupt()

    with pytest.raises(KeyboardInterrupt):
        run(config_path, [f"Global.output_dir={cut_dir}"], on_step_end=interrupt_at_23)
    assert [record["step"] for record in trainer_progress(cut_dir / "last")["history"]] == [15]
    resumed_result, _ = run(config_path, [f"Global.output_dir={cut_dir}"])
    assert without_seconds(resumed_result) == without_seconds(full_result)
    assert_same_params(full_dir / "best", cut_dir / "best")


# --------------------------------------------------------------------------- tokenizer


def test_vocabulary_comes_from_the_training_split_only(tmp_path, tiny_data_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data_dir)
    for split, word in (("dev", "zqdevonlyword"), ("test", "zqtestonlyword")):
        with open(data_dir / f"{split}.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"label": 4, "text": f"The {word} works great."}) + "\n")
    config_path = write_tiny_config(tmp_path / "c.yaml", data_dir, tmp_path / "out", Global={"max_steps": 1})
    run(config_path)

    tokenizer = FastformerTokenizer.from_pretrained(str(tmp_path / "out" / "last"))
    train_texts = [row["text"] for row in read_prepared(data_dir / "train.jsonl", 5)]
    assert tokenizer.get_vocab() == FastformerTokenizer.build_from_corpus(train_texts).get_vocab()
    for word in ("zqdevonlyword", "zqtestonlyword"):
        assert word not in tokenizer.get_vocab()
        ids = tokenizer(f"The {word} works great.")["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids)[1] == tokenizer.unk_token
    assert tokenizer.convert_tokens_to_ids("works") != tokenizer.unk_token_id


# --------------------------------------------------------------------------- non-finite loss


def test_non_finite_loss_stops_with_training_error_and_keeps_last(tmp_path, tiny_config_path):
    run(tiny_config_path, ["Global.max_steps=3"])
    last = tmp_path / "out" / "last"
    snapshot = {p.name: p.read_bytes() for p in last.iterdir()}
    best_snapshot = {p.name: p.read_bytes() for p in (tmp_path / "out" / "best").iterdir()}

    with pytest.raises(UserError, match=r"loss is (nan|inf|-inf)"):
        run(tiny_config_path, ["Optimizer.lr=1e30", "Global.resume=False"])

    assert {p.name: p.read_bytes() for p in last.iterdir()} == snapshot
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "best").iterdir()} == best_snapshot
    assert hidden_entries(tmp_path / "out") == []
    load_checkpoint(str(last))
    assert trainer_progress(last)["global_step"] == 3


# --------------------------------------------------------------------------- data parallel


def _launch_train(config_path, overrides, log_dir=None):
    command = [sys.executable]
    if log_dir is not None:
        command += ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir)]
    command += ["tools/train.py", "-c", str(config_path), "-o", *overrides]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    logs = ""
    if log_dir is not None and Path(log_dir).is_dir():
        logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted(Path(log_dir).glob("workerlog.*")))
    assert completed.returncode == 0, completed.stderr[-3000:] + logs
    return completed


def _dev_logits(checkpoint_dir, examples):
    model, tokenizer = load_checkpoint(str(checkpoint_dir))
    batch = make_collator(tokenizer)(
        [{"input_ids": tokenizer(e["text"])["input_ids"], "label": e["label"]} for e in examples]
    )
    with paddle.no_grad():
        return model(paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"])).numpy()


# Parameters whose true gradient is ~0 by construction: each is a constant added to all logits of a
# softmax over tokens (the pooler's att_fc2 score; each head's query_att/key_att score), which
# cancels in the softmax. Their gradients are float noise, which Adam normalises into full-size
# steps of arbitrary sign, so the two runs legitimately disagree on them.
SOFTMAX_SHIFT_SUFFIXES = ("att_fc2.bias", "query_att.bias", "key_att.bias")


@pytest.mark.slow
def test_data_parallel_matches_single_process(tmp_path, tiny_data_dir):
    config_path = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "unused")
    common = ["Global.max_steps=3", "Model.hidden_dropout_prob=0.0"]
    parallel_dir, single_dir, log_dir = tmp_path / "A", tmp_path / "B", tmp_path / "logs"
    _launch_train(config_path, ["Data.batch_size=4", *common, f"Global.output_dir={parallel_dir}"], log_dir)
    _launch_train(config_path, ["Data.batch_size=8", *common, f"Global.output_dir={single_dir}"])

    parallel, single = params(parallel_dir / "last"), params(single_dir / "last")
    assert parallel.keys() == single.keys()
    checked = 0
    for name in parallel:
        if name.endswith(SOFTMAX_SHIFT_SUFFIXES):
            continue
        np.testing.assert_allclose(parallel[name], single[name], rtol=0, atol=1e-5, err_msg=name)
        checked += 1
    assert checked > 10
    assert trainer_progress(parallel_dir / "last")["global_step"] == 3

    dev = read_prepared(tiny_data_dir / "dev.jsonl", 5)[:16]
    np.testing.assert_allclose(
        _dev_logits(parallel_dir / "last", dev), _dev_logits(single_dir / "last", dev), rtol=0, atol=1e-5
    )

    # Only rank 0 writes: one last/, one best/, no staging leftovers, and rank 1 logs no save.
    assert sorted(p.name for p in parallel_dir.iterdir()) == [".lock", "best", "last", "train.log", "training_curve.png"]
    worker0 = (log_dir / "workerlog.0").read_text(errors="replace")
    worker1 = (log_dir / "workerlog.1").read_text(errors="replace")
    assert "2 process(es)" in worker0 and "2 process(es)" in worker1
    assert "saved" in worker0
    assert "saved" not in worker1
    assert "dev after step" not in worker1


# --------------------------------------------------------------------------- evaluate_checkpoint


def test_evaluate_checkpoint_metrics_and_predictions(tmp_path, trained_run):
    predictions_file = tmp_path / "predictions.jsonl"
    config = load_config(
        trained_run["config"],
        [f"Global.checkpoint={trained_run['output_dir'] / 'best'}", f"Global.predictions_file={predictions_file}"],
    )
    metrics = evaluate_checkpoint(config)

    test_path = Path(config.data.data_dir) / "test.jsonl"
    examples = read_prepared(test_path, 5)
    assert metrics["file"] == str(test_path)
    assert metrics["num_examples"] == len(examples) == 40
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (5, 5)
    assert matrix.sum() == metrics["num_examples"]
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert list(metrics["per_class_f1"]) == list(LABEL_NAMES)
    # The baseline: always the training split's most frequent class, scored on the same test labels.
    train_labels = [example["label"] for example in read_prepared(Path(config.data.data_dir) / "train.jsonl", 5)]
    majority = np.bincount(train_labels, minlength=5).argmax()
    share = np.mean([example["label"] == majority for example in examples])
    assert metrics["majority_baseline"]["label"] == LABEL_NAMES[majority]
    assert metrics["majority_baseline"]["accuracy"] == pytest.approx(share)
    assert metrics["majority_baseline"]["macro_f1"] == pytest.approx(2 * share / (1 + share) / 5)
    for index, name in enumerate(LABEL_NAMES):
        true_positive, predicted, actual = matrix[index, index], matrix[:, index].sum(), matrix[index].sum()
        expected = 2 * true_positive / (predicted + actual) if predicted + actual else 0.0
        assert metrics["per_class_f1"][name] == pytest.approx(expected)
    assert metrics["macro_f1"] == pytest.approx(np.mean(list(metrics["per_class_f1"].values())))

    rows = [json.loads(line) for line in predictions_file.read_text(encoding="utf-8").splitlines()]
    assert [(row["text"], row["label"]) for row in rows] == [(e["text"], LABEL_NAMES[e["label"]]) for e in examples]
    for row in rows:
        assert set(row) == {"text", "label", "prediction", "probabilities"}
        assert list(row["probabilities"]) == list(LABEL_NAMES)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(row["probabilities"], key=row["probabilities"].get)
    labels = [LABEL_NAMES.index(row["label"]) for row in rows]
    predictions = [LABEL_NAMES.index(row["prediction"]) for row in rows]
    # Every class counts in the macro average (metrics.py), also one absent from this small split.
    expected_macro = f1_score(labels, predictions, labels=list(range(5)), average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(expected_macro)
    assert metrics["confusion_matrix"] == [
        [sum(1 for l, p in zip(labels, predictions) if (l, p) == (i, j)) for j in range(5)] for i in range(5)
    ]
    assert hidden_entries(tmp_path) == []


def test_resume_in_the_same_process(tmp_path, tiny_config_path):
    run(tiny_config_path, ["Global.max_steps=2"], fresh_names=False)
    _, losses = run(tiny_config_path, ["Global.max_steps=4"], fresh_names=False)
    assert list(losses) == [3, 4]


def test_runs_made_one_after_another_log_to_their_own_files(tmp_path, tiny_data_dir, caplog):
    caplog.set_level("INFO", logger="fastformer_zoo")  # as the tools set it
    for name in ("first", "second"):
        config = write_tiny_config(tmp_path / f"{name}.yaml", tiny_data_dir, tmp_path / name, Global={"max_steps": 2})
        train(load_config(str(config)))
    first, second = ((tmp_path / name / "train.log").read_text() for name in ("first", "second"))
    assert "training a 5-class classifier on" in first and "training a 5-class classifier on" in second
    assert str(tmp_path / "second") not in first  # the second run wrote nothing into the first one's log


# --------------------------------------------------------------------------- starting from a pretrained encoder


def _pretrained_masked_lm(directory, tiny_data_dir, **changes):
    """A FastformerForMaskedLM saved as a pretraining run would be: its config, weights and vocabulary."""
    from conftest import TINY_MODEL

    from paddlenlp_fastformer import FastformerConfig, FastformerForMaskedLM

    texts = [example["text"] for example in read_prepared(str(tiny_data_dir / "train.jsonl"), 5)]
    tokenizer = FastformerTokenizer.build_from_corpus(texts)
    paddle.seed(7)
    model = FastformerForMaskedLM(FastformerConfig(vocab_size=len(tokenizer), **{**TINY_MODEL, **changes}))
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return model


def test_init_from_a_pretraining_directory_loads_every_encoder_weight(tmp_path, tiny_data_dir):
    pretrained = _pretrained_masked_lm(tmp_path / "pretrained", tiny_data_dir)
    config = load_config(write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out"),
                         [f"Global.init_from={tmp_path / 'pretrained'}"])  # fmt: skip
    with paddle.utils.unique_name.guard():
        started = trainer._start_run(config, ClassificationTask(config))
    expected = pretrained.fastformer.state_dict()  # embeddings and encoder: a masked LM has no pooler
    encoder = started.model.fastformer.state_dict()
    assert set(encoder) - set(expected) == {name for name in encoder if name.startswith("pooler.")} and len(expected) > 10
    for name, weight in expected.items():  # every encoder weight is the pretrained one, none newly initialised
        np.testing.assert_array_equal(encoder[name].numpy(), weight.numpy(), err_msg=name)
    assert started.tokenizer.get_vocab() == FastformerTokenizer.from_pretrained(str(tmp_path / "pretrained")).get_vocab()
    assert started.model.classifier.weight.shape[-1] == len(LABEL_NAMES)  # the head is the task's, fresh


def test_init_from_then_training_runs_and_transfers_between_tasks(tmp_path, tiny_data_dir, trained_run):
    """Transfer in stages: a trained classifier's encoder starts another run (its head is replaced)."""
    best = trained_run["output_dir"] / "best"
    result, losses = run(write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out"), [f"Global.init_from={best}"])
    assert losses and result["history"]
    assert FastformerTokenizer.from_pretrained(str(tmp_path / "out" / "best")).get_vocab() == FastformerTokenizer.from_pretrained(str(best)).get_vocab()


@pytest.mark.parametrize("changes, named", [({"hidden_size": 64, "intermediate_size": 64}, "hidden_size"), ({"formulation": "lucidrains"}, "formulation")])
def test_init_from_another_architecture_is_one_line(tmp_path, tiny_data_dir, changes, named):
    _pretrained_masked_lm(tmp_path / "pretrained", tiny_data_dir, **changes)
    config = load_config(write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out"),
                         [f"Global.init_from={tmp_path / 'pretrained'}"])  # fmt: skip
    with pytest.raises(UserError, match=f"Global.init_from=.*{named}"):
        trainer._start_run(config, ClassificationTask(config))
    with pytest.raises(UserError, match="Global.init_from=.*not a directory"):
        other = load_config(write_tiny_config(tmp_path / "d.yaml", tiny_data_dir, tmp_path / "out2"), [f"Global.init_from={tmp_path / 'none'}"])
        trainer._start_run(other, ClassificationTask(other))
