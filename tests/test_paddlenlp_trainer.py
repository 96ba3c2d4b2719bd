"""PaddleNLP's own Trainer fine-tunes FastformerForSequenceClassification (the snippet of docs/training.md, a few CPU steps)."""
import numpy as np
from paddlenlp.data import DataCollatorWithPadding
from paddlenlp.trainer import Trainer, TrainingArguments

from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification, FastformerTokenizer

NAMES = ["negative", "positive"]
TEXTS = ["great sound", "broke in a day", "works fine and fast", "awful battery", "love it", "returned it at once"] * 6
LABELS = [1, 0, 1, 0, 1, 0] * 6


def compute_metrics(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def test_trainer_fine_tunes_and_evaluates(tmp_path):
    tokenizer = FastformerTokenizer.build_from_corpus(TEXTS, model_max_length=32)
    config = FastformerConfig(
        vocab_size=len(tokenizer), num_labels=len(NAMES), id2label=dict(enumerate(NAMES)),
        hidden_size=32, num_attention_heads=4, num_hidden_layers=1, intermediate_size=64, max_position_embeddings=32,
    )  # fmt: skip
    model = FastformerForSequenceClassification(config)
    dataset = [
        {**tokenizer(text, truncation=True, return_token_type_ids=False), "labels": label} for text, label in zip(TEXTS, LABELS)
    ]
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=4, learning_rate=1e-2, per_device_train_batch_size=6,
        evaluation_strategy="epoch", save_strategy="no", logging_steps=6, device="cpu", seed=1, report_to=[],
        disable_tqdm=True,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=arguments, train_dataset=dataset, eval_dataset=dataset,
        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics, tokenizer=tokenizer,
    )  # fmt: skip
    before = trainer.evaluate()
    result = trainer.train()
    after = trainer.evaluate()
    assert result.global_step == 24 and np.isfinite(result.training_loss)
    assert after["eval_loss"] < before["eval_loss"] and after["eval_accuracy"] == 1.0
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = FastformerForSequenceClassification.from_pretrained(str(tmp_path / "saved"))
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
