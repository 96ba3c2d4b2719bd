"""Time per generated token against context length: causal Fastformer (a fixed-size state per block) against the
same-size softmax Transformer decoder (a KV cache that grows with the context); and, for the encoder-decoder,
against source length: softmax cross-attention against additive cross-attention.

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
WARM_UP_CONTEXT, WARM_UP_TOKENS = 64, 4  # first calls build kernels and caches; not timed


def build(model_class: str, max_positions: int, **config):
    import paddle

    import paddlenlp_fastformer

    paddle.seed(0)
    model = getattr(paddlenlp_fastformer, model_class)(paddlenlp_fastformer.FastformerConfig(
        vocab_size=30000, hidden_dropout_prob=0.0, max_position_embeddings=max_positions, bos_token_id=2,
        decoder_start_token_id=2, **config,
    ))  # fmt: skip
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


def seq2seq_seconds_per_token(model, source_length: int, new_tokens: int) -> float:
    """Encode a source of ``source_length`` random tokens, then time ``new_tokens`` decoding steps."""
    import paddle

    source = paddle.randint(5, 30000, [1, source_length])
    mask = paddle.ones([1, source_length], dtype="int64")
    token, cache = paddle.full([1, 1], 2, dtype="int64"), None
    with paddle.no_grad():
        encoded = model.get_encoder()(source, mask)
        logits, cache = model(attention_mask=mask, encoder_output=encoded, decoder_input_ids=token, cache=cache, use_cache=True)
        token = logits[:, -1:].argmax(axis=-1)
        started = time.perf_counter()
        for _ in range(new_tokens):
            logits, cache = model(attention_mask=mask, encoder_output=encoded, decoder_input_ids=token, cache=cache, use_cache=True)
            token = logits[:, -1:].argmax(axis=-1)
        float(token.sum())
    return (time.perf_counter() - started) / new_tokens


def table(title: str, models: dict, lengths, measure, repeats: int) -> None:
    """One Markdown table: per length, the median ms per token of each model (taking turns), and their ratio."""
    print(title)
    print("| Length (tokens) | " + " | ".join(models) + " | second / first |")
    print("|---:|" + "---:|" * (len(models) + 1))
    for length in lengths:
        times = {name: [] for name in models}
        for _ in range(repeats):
            for name, model in models.items():
                times[name].append(measure(model, length))
        medians = [1000 * statistics.median(values) for values in times.values()]
        print(f"| {length} | " + " | ".join(f"{value:.2f}" for value in medians) + f" | {medians[1] / medians[0]:.2f}x |")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--new_tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import paddle

    paddle.base.core.set_num_threads(args.threads)
    max_positions = max(max(args.contexts) + args.new_tokens, WARM_UP_CONTEXT + WARM_UP_TOKENS) + 1
    decoders = {
        "Fastformer": build("FastformerForCausalLM", max_positions),
        "Transformer (KV cache)": build("FastformerForCausalLM", max_positions, attention_type="softmax"),
    }
    encoder_decoders = {
        f"{kind} cross-attention": build("FastformerForConditionalGeneration", max_positions, cross_attention_type=kind)
        for kind in ("additive", "softmax")
    }
    for model in decoders.values():
        seconds_per_token(model, WARM_UP_CONTEXT, WARM_UP_TOKENS)
    for model in encoder_decoders.values():
        seq2seq_seconds_per_token(model, WARM_UP_CONTEXT, WARM_UP_TOKENS)
    runs = f"batch 1, {args.threads} thread(s), median of {args.repeats} runs of {args.new_tokens} tokens"
    table(f"Decoder-only, ms per generated token against the context read so far ({runs}):", decoders, args.contexts,
          lambda model, length: seconds_per_token(model, length, args.new_tokens), args.repeats)  # fmt: skip
    table(f"Encoder-decoder (Fastformer decoder), ms per generated token against the source length ({runs}):",
          encoder_decoders, args.contexts, lambda model, length: seq2seq_seconds_per_token(model, length, args.new_tokens), args.repeats)  # fmt: skip


if __name__ == "__main__":
    main()
