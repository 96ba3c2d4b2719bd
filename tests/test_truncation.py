"""The truncation length is decided once, at training (Data.max_seq_len), and evaluation, export and
prediction all truncate there, even when the model has positions for longer texts."""
import json

import numpy as np
import paddle
import pytest

from conftest import write_tiny_config
from fastformer_zoo.data.readers import read_prepared
from fastformer_zoo.deploy.export import export_inference_model
from fastformer_zoo.deploy.predictor import Predictor
from fastformer_zoo.engine.checkpoint import load_checkpoint
from fastformer_zoo.engine.evaluate import evaluate_checkpoint
from fastformer_zoo.engine.trainer import train
from fastformer_zoo.settings import load_config

TRAINED_LENGTH = 12  # below the tiny model's 64 positions, and below most synthetic reviews


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_data_dir):
    root = tmp_path_factory.mktemp("short")
    config_path = write_tiny_config(
        root / "tiny.yaml", tiny_data_dir, root / "out", Data={"max_seq_len": TRAINED_LENGTH}, Global={"max_steps": 5}
    )
    train(load_config(config_path))
    return config_path, root


@paddle.no_grad()
def probabilities_at(model, tokenizer, texts, length):
    batch = tokenizer(texts, max_length=length, truncation=True, padding=True, return_tensors="pd")
    logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
    return paddle.nn.functional.softmax(logits, axis=-1).numpy()


def test_evaluation_export_and_prediction_truncate_where_training_did(short_run, tiny_data_dir):
    config_path, root = short_run
    model, tokenizer = load_checkpoint(str(root / "out" / "best"))
    assert model.config.max_position_embeddings == 64 and tokenizer.model_max_length == TRAINED_LENGTH
    texts = [example["text"] for example in read_prepared(tiny_data_dir / "test.jsonl", 5)]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    assert sum(length > TRAINED_LENGTH for length in lengths) > len(texts) // 2, "the check needs long texts"
    expected = probabilities_at(model, tokenizer, texts, TRAINED_LENGTH)
    untruncated = probabilities_at(model, tokenizer, texts, 64)
    assert np.abs(expected - untruncated).max() > 1e-4, "truncation must change some prediction for this check"

    predictions_file = root / "predictions.jsonl"
    overrides = [f"Global.checkpoint={root / 'out' / 'best'}", f"Global.predictions_file={predictions_file}"]
    # Evaluation reads the length from the checkpoint, whatever Data.max_seq_len says now.
    evaluate_checkpoint(load_config(config_path, overrides + ["Data.max_seq_len=64"]))
    evaluated = np.array([list(row["probabilities"].values()) for row in map(json.loads, predictions_file.read_text().splitlines())])
    np.testing.assert_allclose(evaluated, expected, atol=2e-6)

    export_dir = root / "inference"
    export_inference_model(str(root / "out" / "best"), str(export_dir))
    assert json.loads((export_dir / "inference_config.json").read_text())["max_seq_len"] == TRAINED_LENGTH
    predicted = np.array([list(row["probabilities"].values()) for row in Predictor(str(export_dir), cpu_threads=1).predict(texts)])
    np.testing.assert_allclose(predicted, expected, atol=1e-5)
