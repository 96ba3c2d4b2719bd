"""How the predictor's texts/s depends on the graph and on how texts are grouped into forward passes.

    python -m benchmarks.forward_passes --model_dir <export> --texts data/marc_en/test.jsonl \
        [--backend onnxruntime] [--graphs portable packed] [--threads 2] [--batch_size 32] \
        [--pass_costs 20 60 150 400 1e9] [--repeats 3]

Two ways of feeding the same texts to :class:`Predictor`:

- sorted: all texts in one call, as ``tools/infer.py`` does (on a padded graph: sorted by length, then planned);
- arrival: ``--batch_size`` texts per call in the file's order, as a service's micro-batch sees them.

Each of ``--graphs`` is timed both ways: a padded graph (portable, or fused on the paddle backend) with the
arrival order once per ``--pass_costs`` value (what one more forward pass is counted as, in padded tokens;
1e9 gives full passes), the packed graph (no padding: passes of ``--batch_size`` texts) once. The median of
``--repeats`` runs is printed, interleaved so that drifts of the machine's speed hit every variant alike;
the reference is the first graph, sorted.
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
    parser.add_argument("--graphs", nargs="+", default=["portable", "packed"], help="graphs to compare (default: portable packed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="texts to time (from the start of --texts)")
    parser.add_argument("--pass_costs", type=float, nargs="+", default=[20, 60, 150, 400, 1e9])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from fastformer_zoo.deploy.predictor import PASS_COST_TOKENS, Predictor, texts_per_second
    from fastformer_zoo.serving.load_test import read_texts

    texts = read_texts(args.texts)[: args.requests]
    predictors = {}
    for graph in args.graphs:
        predictors[graph] = Predictor(args.model_dir, backend=args.backend, cpu_threads=args.threads, batch_size=args.batch_size, graph=graph)
        predictors[graph].predict(texts[: args.batch_size])  # warm-up

    variants = []  # (graph, feeding, pass cost or None, texts per call)
    for graph in args.graphs:
        variants.append((graph, "sorted", None if graph == "packed" else PASS_COST_TOKENS, len(texts)))
        costs = [None] if graph == "packed" else args.pass_costs
        variants += [(graph, "arrival", cost, args.batch_size) for cost in costs]
    runs = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for variant in variants:
            graph, _, cost, per_call = variant
            predictors[graph].pass_cost_tokens = cost
            runs[variant].append(texts_per_second(predictors[graph], texts, per_call))
    print(f"{args.backend}, {args.threads} threads, {len(texts)} texts, batches of at most {args.batch_size}; "
          f"median of {args.repeats} runs")  # fmt: skip
    print(f"| graph | feeding | pass cost (tokens) | texts/s | vs {args.graphs[0]}, sorted |")
    print("|---|---|---:|---:|---:|")
    reference = statistics.median(runs[variants[0]])
    for (graph, feeding, cost, _), values in runs.items():
        median = statistics.median(values)
        print(f"| {graph} | {feeding} | {'—' if cost is None else f'{cost:g}'} | {median:,.1f} | {median / reference:.2f}x |")


if __name__ == "__main__":
    main()
