"""What a library user gets without calling ``tune_cpu()``: training steps of the paper's model in fresh processes
that import the package and train, with the model's first-forward tuning (the default), without any tuning
(``PADDLENLP_FASTFORMER_TUNE_CPU=0``, what such code got before), and with an explicit ``tune_cpu()`` first.

    python -m benchmarks.library_default [--steps 12] [--rounds 3] [--threads 2]

The paper's configuration (configs/amazon.yaml: hidden 256, 16 heads, 2 layers, intermediate 256, batch 64 x 256
tokens, 50k vocabulary), Adam, random token ids; each process times its steps after two warm-up steps; the three
kinds take turns for ``--rounds`` rounds and the median is printed.
"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEPS = """
import sys, time
if sys.argv[1] == "explicit":
    from paddlenlp_fastformer import tune_cpu
    tune_cpu()
import paddle
from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification
config = FastformerConfig(vocab_size=50000, hidden_size=256, num_attention_heads=16, num_hidden_layers=2, intermediate_size=256,
                          max_position_embeddings=256, hidden_dropout_prob=0.2)
model = FastformerForSequenceClassification(config)
optimizer = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
ids = paddle.randint(1, 50000, [64, 256], dtype="int64")
labels = paddle.randint(0, 5, [64], dtype="int64")
def step():
    loss = paddle.nn.functional.cross_entropy(model(ids), labels)
    loss.backward(); optimizer.step(); optimizer.clear_grad()
    return float(loss)
for _ in range(2):
    step()
started = time.perf_counter()
for _ in range(int(sys.argv[2])):
    step()
print(64 * 256 * int(sys.argv[2]) / (time.perf_counter() - started))
"""
KINDS = {"no tuning (before)": ("first-forward", "0"), "first-forward tuning (default)": ("first-forward", None),
         "explicit tune_cpu()": ("explicit", None)}  # fmt: skip


def _tokens_per_second(kind: str, steps: int, threads: int) -> float:
    mode, switch = KINDS[kind]
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "PADDLENLP_FASTFORMER_TUNE_CPU")}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    if switch is not None:
        env["PADDLENLP_FASTFORMER_TUNE_CPU"] = switch
    run = subprocess.run([sys.executable, "-c", STEPS, mode, str(steps)], env=env, capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name

    speeds = {kind: [] for kind in KINDS}
    for _ in range(args.rounds):
        for kind in KINDS:
            speeds[kind].append(_tokens_per_second(kind, args.steps, args.threads))
    medians = {kind: statistics.median(values) for kind, values in speeds.items()}
    print(f"{cpu_model_name()} ({' '.join(cpu_instruction_sets())}); {args.threads} threads; paper model, batch 64 x 256; "
          f"{args.steps} timed steps per process, median of {args.rounds} rounds")
    print("| training in a fresh process | tokens/s | of explicit tune_cpu() |\n|---|---:|---:|")
    for kind, value in medians.items():
        print(f"| {kind} | {value:,.0f} | {value / medians['explicit tune_cpu()']:.2f} |")
    return medians


if __name__ == "__main__":
    main()
