"""Time per generated token against context length: causal Fastformer (a fixed-size state per block) against the
same-size softmax Transformer decoder (a KV cache that grows with the context).

    python -m benchmarks.generation [--contexts 128 512 1024 2048 4096 8192] [--new_tokens 32] [--threads 2]

Both models have the paper's Amazon size (2 blocks, hidden 256, 16 heads) and random weights: speed does not
depend on what the weights hold. Per context length, each model reads a context of random ids (in chunks of
512 tokens, so that the Transformer's [chunk, context] score matrices fit in memory), then decodes
``--new_tokens`` tokens one at a time with its cache; the median time per token of ``--repeats`` such runs
is printed, the two models taking turns per length so that a drift of the machine's speed shows in both.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()  # before paddle is imported, as the tools do

PREFILL_CHUNK = 512


def build(attention_type: str, max_positions: int):
    import paddle

    from paddlenlp_fastformer import FastformerConfig, FastformerForCausalLM

    paddle.seed(0)
    config = FastformerConfig(vocab_size=30000, hidden_dropout_prob=0.0, max_position_embeddings=max_positions, attention_type=attention_type)
    model = FastformerForCausalLM(config)
    model.eval()
    return model


def seconds_per_token(model, context: int, new_tokens: int) -> float:
    """Read ``context`` random tokens, then time ``new_tokens`` decoding steps of one token each."""
    import paddle

    ids = paddle.randint(5, 30000, [1, context])
    cache = None
    with paddle.no_grad():
        for start in range(0, context, PREFILL_CHUNK):
            logits, cache = model(ids[:, start : start + PREFILL_CHUNK], cache=cache, use_cache=True)
        token = logits[:, -1:].argmax(axis=-1)
        started = time.perf_counter()
        for _ in range(new_tokens):
            logits, cache = model(token, cache=cache, use_cache=True)
            token = logits[:, -1:].argmax(axis=-1)
        float(token.sum())  # wait for the last step
    return (time.perf_counter() - started) / new_tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--new_tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import paddle

    paddle.base.core.set_num_threads(args.threads)
    max_positions = max(args.contexts) + args.new_tokens
    models = {"Fastformer": build("additive", max_positions), "Transformer (KV cache)": build("softmax", max_positions)}
    for model in models.values():  # warm-up: first calls build kernels and caches
        seconds_per_token(model, 64, 4)
    print(f"ms per generated token, batch 1, {args.threads} thread(s), median of {args.repeats} runs of {args.new_tokens} tokens")
    print("| Context (tokens) | " + " | ".join(models) + " | Transformer / Fastformer |")
    print("|---:|" + "---:|" * (len(models) + 1))
    for context in args.contexts:
        times = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(seconds_per_token(model, context, args.new_tokens))
        medians = [1000 * statistics.median(values) for values in times.values()]
        print(f"| {context} | " + " | ".join(f"{value:.2f}" for value in medians) + f" | {medians[1] / medians[0]:.2f}x |")


if __name__ == "__main__":
    main()
