"""The Paddle paper-reproduction guide's alignment steps, Paddle against PyTorch, as reprod_log files.

    python -m benchmarks.reprod [--output_dir docs/reprod_logs]

The model is the paper's official-formulation classifier at its size (hidden 256, 16 heads, 2 layers,
intermediate 256, 5 classes), in PyTorch the model of the official equations
(``benchmarks/torch_reference.py``) with random weights, in Paddle the same weights converted by
``paddlenlp_fastformer.conversion``. Every step writes ``<step>_paddle.npy`` and ``<step>_torch.npy``
(``reprod_log.ReprodLogger``) and ``<step>_diff.txt`` (``reprod_log.ReprodDiffHelper``, mean absolute
difference against the step's threshold):

1. ``data``: a Paddle DataLoader and a PyTorch DataLoader over the same reviews give the same batches.
2. ``forward``: eval-mode logits on a padded batch (threshold 1e-6, the guide's); ``forward_lucidrains``:
   the same for the other public formulation, fast-transformer-pytorch 0.0.4 (rotary positions, LM head)
   against its conversion, on the real tokens of the batch.
3. ``metric``: accuracy and macro-F1 of those logits, by this package's metric and by scikit-learn.
4. ``loss``: cross-entropy of those logits.
5. ``lr``: the learning rate over 20 steps, PaddleNLP's LinearDecayWithWarmup and PyTorch's LambdaLR.
6. ``backward``: 5 Adam steps on the same batches: losses, learning rates, and the gradients of the first
   step (same weights on both sides), every parameter flattened into one vector.
7. ``train``: 30 steps of training with warm-up and decay, then the dev batch's logits and accuracy.

Exits non-zero if any step exceeds its threshold. Prints one line per step.
"""
import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VOCAB, HIDDEN, HEADS, LAYERS, INTERMEDIATE, LABELS, SEQ_LEN = 1000, 256, 16, 2, 256, 5, 64
BACKWARD_STEPS, TRAIN_STEPS, LR, WARMUP = 5, 30, 1e-3, 3
# Mean absolute difference allowed per step (the guide's 1e-6 for outputs; training compounds float noise
# through Adam, whose steps divide by the gradients' own scale).
THRESHOLDS = {"data": 0.0, "forward": 1e-6, "forward_lucidrains": 1e-6, "metric": 1e-6, "loss": 1e-6, "lr": 1e-9, "backward": 1e-6, "train": 1e-5}


def batches(seed: int, count: int):
    """``count`` batches of 8 reviews of random lengths (one full-length), with labels: numpy arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(count):
        lengths = rng.integers(1, SEQ_LEN + 1, size=8)
        lengths[0] = SEQ_LEN
        mask = np.arange(SEQ_LEN)[None, :] < lengths[:, None]
        ids = np.where(mask, rng.integers(1, VOCAB, size=(8, SEQ_LEN)), 0).astype("int64")
        yield ids, rng.integers(0, LABELS, size=8).astype("int64")


def build_models():
    """The PyTorch reference with random weights and the Paddle model converted from them."""
    import torch

    from benchmarks.torch_reference import OfficialFastformerClassifier, official_config_json
    from paddlenlp_fastformer.modeling import FastformerPretrainedModel

    torch.manual_seed(0)
    reference = OfficialFastformerClassifier(
        vocab_size=VOCAB, num_labels=LABELS, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE, max_position_embeddings=SEQ_LEN, hidden_dropout_prob=0.0,
    )  # fmt: skip
    weights = {name: value.detach().numpy() for name, value in reference.state_dict().items()}
    authors_config = official_config_json(HIDDEN, LAYERS, HEADS, INTERMEDIATE, SEQ_LEN)
    return reference, FastformerPretrainedModel.from_torch_state_dict("official", weights, official_config_json=authors_config)


class Step:
    """One step's two loggers, written and compared by :meth:`finish`."""

    def __init__(self, name: str, output_dir: Path):
        from reprod_log import ReprodLogger

        self.name, self.output_dir = name, output_dir
        self.paddle, self.torch = ReprodLogger(), ReprodLogger()
        self.worst = 0.0

    def add(self, key: str, paddle_value, torch_value) -> None:
        import numpy as np

        paddle_value, torch_value = np.asarray(paddle_value, dtype="float64"), np.asarray(torch_value, dtype="float64")
        self.paddle.add(key, paddle_value)
        self.torch.add(key, torch_value)
        self.worst = max(self.worst, float(np.abs(paddle_value - torch_value).mean()))

    def finish(self) -> bool:
        """Save both logs, write the diff report; True if every entry is under the step's threshold."""
        from reprod_log import ReprodDiffHelper

        paths = [self.output_dir / f"{self.name}_{side}.npy" for side in ("paddle", "torch")]
        self.paddle.save(str(paths[0]))
        self.torch.save(str(paths[1]))
        helper = ReprodDiffHelper()
        helper.compare_info(helper.load_info(str(paths[0])), helper.load_info(str(paths[1])))
        threshold = THRESHOLDS[self.name]
        # reprod_log's report adds a console and a file handler to the root logger on every call and never
        # removes them: later reports would also be written into this one's file.
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            helper.report(diff_method="mean", diff_threshold=threshold, path=str(self.output_dir / f"{self.name}_diff.txt"))
        finally:
            for handler in set(root.handlers) - set(handlers):
                root.removeHandler(handler)
                handler.close()
            root.setLevel(level)
        passed = self.worst <= threshold
        print(f"{self.name:9s} worst mean |paddle - torch| {self.worst:.2e}  threshold {threshold:.0e}  {'passed' if passed else 'FAILED'}")
        return passed


def align_data(step: Step) -> None:
    import numpy as np
    import paddle
    import torch

    rows = [(ids, label) for batch in batches(1, 2) for ids, label in zip(*batch)]

    def collate(items):
        return np.stack([ids for ids, _ in items]), np.array([label for _, label in items])

    paddle_batches = list(paddle.io.DataLoader(rows, batch_size=8, shuffle=False, collate_fn=collate))
    torch_batches = list(torch.utils.data.DataLoader(rows, batch_size=8, shuffle=False, collate_fn=collate))
    for index, (p, t) in enumerate(zip(paddle_batches, torch_batches)):
        step.add(f"batch{index}_input_ids", p[0], t[0])
        step.add(f"batch{index}_labels", p[1], t[1])


def align_forward_metric_loss(output_dir: Path, reference, model) -> list:
    import paddle
    import torch
    from sklearn.metrics import accuracy_score, f1_score

    from fastformer_zoo.scoring import classification_metrics

    ids, labels = next(batches(2, 1))
    reference.eval(), model.eval()
    with torch.no_grad():
        torch_logits = reference(torch.from_numpy(ids))
    paddle_logits = model(paddle.to_tensor(ids))
    forward, metric, loss = Step("forward", output_dir), Step("metric", output_dir), Step("loss", output_dir)
    forward.add("logits", paddle_logits.numpy(), torch_logits.numpy())
    ours = classification_metrics(labels.tolist(), paddle_logits.numpy().argmax(-1).tolist(), LABELS)
    predicted = torch_logits.numpy().argmax(-1)
    metric.add("accuracy", ours["accuracy"], accuracy_score(labels, predicted))
    metric.add("macro_f1", ours["macro_f1"], f1_score(labels, predicted, average="macro", labels=list(range(LABELS)), zero_division=0))
    paddle_loss = paddle.nn.functional.cross_entropy(paddle_logits, paddle.to_tensor(labels))
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(labels))
    loss.add("loss", float(paddle_loss), float(torch_loss))
    return [forward, metric, loss]


def align_lucidrains_forward(step: Step) -> None:
    import paddle
    import torch
    from fast_transformer_pytorch import FastTransformer

    from paddlenlp_fastformer.modeling import FastformerPretrainedModel

    torch.manual_seed(0)
    reference = FastTransformer(num_tokens=VOCAB, dim=HIDDEN, depth=LAYERS, max_seq_len=SEQ_LEN, heads=HEADS, dim_head=HIDDEN // HEADS).eval()
    weights = {name: value.detach().numpy() for name, value in reference.state_dict().items()}
    model = FastformerPretrainedModel.from_torch_state_dict("lucidrains", weights, max_seq_len=SEQ_LEN)
    model.eval()
    ids, _ = next(batches(5, 1))
    mask = ids != 0
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids), mask=torch.from_numpy(mask)).numpy()
    got = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask.astype("int64"))).numpy()
    step.add("lm_logits_of_real_tokens", got[mask], expected[mask])


def optimizers(reference, model, total_steps: int):
    """Adam with linear warm-up and decay on both sides: PaddleNLP's schedule and PyTorch's LambdaLR."""
    import paddle
    import torch
    from paddlenlp.transformers import LinearDecayWithWarmup

    schedule = LinearDecayWithWarmup(LR, total_steps, WARMUP)
    paddle_optimizer = paddle.optimizer.Adam(learning_rate=schedule, parameters=model.parameters())
    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=LR)

    def factor(step: int) -> float:  # the same rule, written from its definition
        return step / max(1, WARMUP) if step < WARMUP else max(0.0, (total_steps - step) / max(1, total_steps - WARMUP))

    return (paddle_optimizer, schedule), (torch_optimizer, torch.optim.lr_scheduler.LambdaLR(torch_optimizer, factor))


def align_lr(step: Step, reference, model) -> None:
    (paddle_optimizer, schedule), (torch_optimizer, torch_schedule) = optimizers(reference, model, 20)
    paddle_lrs, torch_lrs = [], []
    for _ in range(20):
        paddle_lrs.append(paddle_optimizer.get_lr())
        torch_lrs.append(torch_optimizer.param_groups[0]["lr"])
        schedule.step(), torch_schedule.step()
    step.add("lr", paddle_lrs, torch_lrs)


def gradient_vector(reference, model):
    """Both models' gradients, each parameter in PyTorch's layout, concatenated in PyTorch's order."""
    import numpy as np

    from paddlenlp_fastformer.conversion import _linear_weight_names, torch_to_paddle_name

    paddle_grads = {name: p.grad for name, p in model.named_parameters()}
    linear = _linear_weight_names(model)
    paddle_parts, torch_parts = [], []
    for torch_name, parameter in reference.named_parameters():
        target = torch_to_paddle_name("official", torch_name)
        grad = paddle_grads[target].numpy()
        paddle_parts.append((grad.T if target in linear else grad).ravel())
        torch_parts.append(parameter.grad.numpy().ravel())
    return np.concatenate(paddle_parts), np.concatenate(torch_parts)


def train_side_by_side(step: Step, reference, model, steps: int, record_gradients: bool) -> None:
    """``steps`` optimizer steps of both on the same batches; logs losses and learning rates."""
    import paddle
    import torch

    reference.train(), model.train()  # dropout is 0: train mode changes nothing but is what training runs
    (paddle_optimizer, schedule), (torch_optimizer, torch_schedule) = optimizers(reference, model, steps)
    paddle_losses, torch_losses, paddle_lrs, torch_lrs = [], [], [], []
    for index, (ids, labels) in enumerate(batches(3, steps)):
        paddle_loss = paddle.nn.functional.cross_entropy(model(paddle.to_tensor(ids)), paddle.to_tensor(labels))
        torch_loss = torch.nn.functional.cross_entropy(reference(torch.from_numpy(ids)), torch.from_numpy(labels))
        paddle_loss.backward(), torch_loss.backward()
        if record_gradients and index == 0:  # the same weights on both sides: the backward pass alone
            step.add("gradients_step0", *gradient_vector(reference, model))
        paddle_losses.append(float(paddle_loss)), torch_losses.append(float(torch_loss))
        paddle_lrs.append(paddle_optimizer.get_lr()), torch_lrs.append(torch_optimizer.param_groups[0]["lr"])
        paddle_optimizer.step(), torch_optimizer.step()
        schedule.step(), torch_schedule.step()
        paddle_optimizer.clear_grad(), torch_optimizer.zero_grad()
    step.add("losses", paddle_losses, torch_losses)
    step.add("learning_rates", paddle_lrs, torch_lrs)


def align_trained(step: Step, reference, model) -> None:
    import numpy as np
    import paddle
    import torch

    train_side_by_side(step, reference, model, TRAIN_STEPS, record_gradients=False)
    reference.eval(), model.eval()
    ids, labels = next(batches(4, 1))
    with torch.no_grad():
        torch_logits = reference(torch.from_numpy(ids)).numpy()
    paddle_logits = model(paddle.to_tensor(ids)).numpy()
    step.add("dev_logits", paddle_logits, torch_logits)
    step.add("dev_accuracy", np.mean(paddle_logits.argmax(-1) == labels), np.mean(torch_logits.argmax(-1) == labels))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=str(ROOT / "docs" / "reprod_logs"))
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    from paddlenlp_fastformer import tune_cpu

    tune_cpu()
    import paddle
    import torch

    paddle.seed(0)
    torch.set_num_threads(2)
    steps = [Step("data", output_dir)]
    align_data(steps[0])
    reference, model = build_models()
    steps += align_forward_metric_loss(output_dir, reference, model)
    steps.append(Step("forward_lucidrains", output_dir))
    align_lucidrains_forward(steps[-1])
    steps.append(Step("lr", output_dir))
    align_lr(steps[-1], reference, model)
    steps.append(Step("backward", output_dir))
    train_side_by_side(steps[-1], reference, model, BACKWARD_STEPS, record_gradients=True)
    reference, model = build_models()  # training starts again from the same weights
    steps.append(Step("train", output_dir))
    align_trained(steps[-1], reference, model)
    results = [step.finish() for step in steps]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
