"""What ``tools/infer.py`` gets with no engine flags, against every engine flag set, on a real review file.

    python -m benchmarks.engines --model_dir output/marc_en/inference --data data/marc_en/test.jsonl \
        [--texts 512] [--batch_size 16] [--threads 2] [--rounds 3] [--precision fp32]

The default (``auto``) measures the export's engines afresh first (as a new machine would), then every predictor
classifies the same texts in one call each, as ``tools/infer.py`` does with a file; the predictors take turns for
``--rounds`` rounds, so that a drift of the machine's speed hits them all, and the median round is reported.
Run it on a quiet machine: the header names the CPU and its instruction sets.
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="an export of tools/export_model.py")
    parser.add_argument("--data", required=True, help="a labelled data file tools/infer.py reads (e.g. a prepared test.jsonl)")
    parser.add_argument("--texts", type=int, default=512, help="how many of its texts (the first ones)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args(argv)

    from fastformer_zoo.deploy.engines import candidate_engines
    from fastformer_zoo.deploy.infer import read_labelled_texts
    from fastformer_zoo.deploy.predictor import Predictor, texts_per_second
    from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name

    default = Predictor(args.model_dir, cpu_threads=args.threads, precision=args.precision, batch_size=args.batch_size, remeasure=True)
    texts = read_labelled_texts(args.data, default.label_names)[0][: args.texts]
    predictors = {"default (no engine flags)": default}
    for engine in candidate_engines(args.model_dir, args.precision):
        fixed = {"backend": engine.backend, "graph": engine.graph, "enable_mkldnn": engine.onednn}
        flags = " ".join(f"--{name} {value}" for name, value in fixed.items())
        predictors[flags + ("" if engine.precision == "fp32" else f" --precision {engine.precision}")] = Predictor(
            args.model_dir, cpu_threads=args.threads, precision=engine.precision, batch_size=args.batch_size, **fixed
        )
    speeds = {name: [] for name in predictors}
    for _ in range(args.rounds):
        for name, predictor in predictors.items():
            speeds[name].append(texts_per_second(predictor, texts))
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    fastest = max((name for name in medians if name != "default (no engine flags)"), key=medians.get)
    print(f"{cpu_model_name()} ({' '.join(cpu_instruction_sets()) or 'no AVX2'}); {args.threads} thread(s); {len(texts)} texts of "
          f"{args.data}, batch size {args.batch_size}, precision {args.precision}; median of {args.rounds} interleaved rounds")
    print(f"default: {default.engine_choice.describe()}")
    print("| engine flags | texts/s | of the fastest flags |\n|---|---:|---:|")
    for name, value in sorted(medians.items(), key=lambda item: -item[1]):
        print(f"| {name} | {value:,.0f} | {value / medians[fastest]:.2f} |")
    print(f"default / fastest flags ({fastest}): {medians['default (no engine flags)'] / medians[fastest]:.3f}")
    return medians


if __name__ == "__main__":
    main()
