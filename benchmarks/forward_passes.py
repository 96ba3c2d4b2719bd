"""How the predictor's texts/s depends on how texts are grouped into forward passes.

    python -m benchmarks.forward_passes --model_dir <export> --texts data/marc_en/test.jsonl \
        [--backend onnxruntime] [--threads 2] [--batch_size 32] [--pass_costs 20 60 150 400 1e9] [--repeats 3]

Two ways of feeding the same texts to :class:`Predictor`:

- sorted: all texts in one call, as ``tools/infer.py`` does (sorted by length, then planned);
- arrival: ``--batch_size`` texts per call in the file's order, as a service's micro-batch sees them.

For the arrival order, each ``--pass_costs`` value (what one more forward pass is counted as, in padded
tokens; 1e9 gives full passes) is timed; the median of ``--repeats`` runs is printed, interleaved so that
drifts of the machine's speed hit every variant alike.
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()  # before paddle is imported, as the tools do


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="texts to time (from the start of --texts)")
    parser.add_argument("--pass_costs", type=float, nargs="+", default=[20, 60, 150, 400, 1e9])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from paddlenlp_fastformer.app.deploy.predictor import PASS_COST_TOKENS, Predictor, texts_per_second
    from paddlenlp_fastformer.app.serving.load_test import read_texts

    texts = read_texts(args.texts)[: args.requests]
    predictor = Predictor(args.model_dir, backend=args.backend, cpu_threads=args.threads, batch_size=args.batch_size)
    predictor.predict(texts[: args.batch_size])  # warm-up

    variants = [("sorted", PASS_COST_TOKENS, len(texts))] + [("arrival", cost, args.batch_size) for cost in args.pass_costs]
    runs = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for variant in variants:
            _, predictor.pass_cost_tokens, per_call = variant
            runs[variant].append(texts_per_second(predictor, texts, per_call))
    print(f"{args.backend}, {args.threads} threads, {len(texts)} texts, batches of at most {args.batch_size}; "
          f"median of {args.repeats} runs")  # fmt: skip
    print("| feeding | pass cost (tokens) | texts/s | vs sorted |")
    print("|---|---:|---:|---:|")
    reference = statistics.median(runs[variants[0]])
    for (feeding, cost, _), values in runs.items():
        median = statistics.median(values)
        print(f"| {feeding} | {cost:g} | {median:,.1f} | {median / reference:.2f}x |")


if __name__ == "__main__":
    main()
