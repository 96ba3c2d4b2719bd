"""Load-test a running service (tools/serve.py) on this machine: throughput and latency per concurrency.

    python tools/load_test.py --url http://127.0.0.1:8189 --texts data/marc_en/test.jsonl --concurrency 1 8 32 \\
        --requests 2000 [--model_dir output/marc_en/inference] [--soak 10000 --bad_fraction 0.1] [--csv load_test.csv]

Each request carries one text (cycled from --texts: a prepared split, a raw labelled file, or a .txt file with
one text per line). Per concurrency level: texts/s, p50/p95/p99 latency, failed requests, and the service's
memory before and after, and where the CPU went per request (the service's event loop, inference threads
and engine workers, and this load generator, against what the cores offered). With --model_dir (the export
the service runs) the offline predictor's texts/s on the same texts, measured in this process before the
load on the service's graph and on the portable one, the faster of the two, is the reference (and, for
comparison, the predictor given them a micro-batch at a time in arrival order). --soak then sends that
many requests with --bad_fraction of them malformed, and reports the service's memory before and after.
Only loopback URLs are accepted. Prints a Markdown table and writes the rows as CSV.
"""
import csv
import io
import time

import program

from paddlenlp_fastformer.app.serving.load_test import cpu_ms_per_request, get_json, read_texts, run_level, soak
from paddlenlp_fastformer.file_utils import write_text_atomically


def build_parser():
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8189")
    parser.add_argument("--texts", required=True, help="texts to send, one per request")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level (default: 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model_dir", help="the export the service runs: measure the offline predictor on the same texts")
    parser.add_argument("--soak", type=int, default=0, help="then send this many requests, bad ones mixed in")
    parser.add_argument("--bad_fraction", type=float, default=0.1)
    parser.add_argument("--csv", default="load_test.csv", help="where the rows go as CSV (default: load_test.csv)")
    return parser


def offline_texts_per_second(model_dir: str, texts: list, batch_size: int, threads: int, backend: str, graph: str) -> tuple:
    """The predictor alone, in this process, on the same texts, on the service's backend, graph and threads; the
    median of three runs of each way of batching:

    - as ``tools/infer.py`` does (the reference): all texts in one call, in passes of at most the service's
      micro-batch size (on a padded graph, sorted by length first);
    - in arrival order, ``batch_size`` texts at a time: the best a micro-batch of that many requests
      can do, which shows how much of the service's gap is batching and how much is HTTP.
    """
    import statistics

    from paddlenlp_fastformer.app.deploy.predictor import Predictor, texts_per_second

    predictor = Predictor(model_dir, backend=backend, cpu_threads=threads, batch_size=batch_size, graph=graph)
    predictor.predict(texts[:batch_size])  # warm-up
    sorted_runs, arrival_runs = [], []
    for _ in range(3):
        sorted_runs.append(texts_per_second(predictor, texts))
        arrival_runs.append(texts_per_second(predictor, texts, per_call=batch_size))
    return statistics.median(sorted_runs), statistics.median(arrival_runs)


def print_cpu_table(rows: list) -> None:
    roles = [key for key in rows[0] if key.startswith("cpu_ms_")]
    print("\nCPU ms per request (service threads from its /metrics; available = cores x wall time):")
    print("| concurrency | " + " | ".join(role.removeprefix("cpu_ms_").replace("_", " ") for role in roles) + " |")
    print("|---:|" + "---:|" * len(roles))
    for row in rows:
        print(f"| {row['concurrency']} | " + " | ".join(f"{row[role]:.3f}" for role in roles) + " |")


def measure(args, texts: list) -> list:
    metadata = get_json(args.url, "/metadata")
    offline = None
    if args.model_dir:
        limits = metadata["limits"]
        batch = limits["max_batch_size"]
        # The service's graph, and the portable one: a graph that suits micro-batches may run a whole file slower,
        # and the reference is the fastest way the offline predictor has.
        references = []
        for graph in dict.fromkeys([metadata["graph"], "portable"]):
            whole, arrival = offline_texts_per_second(args.model_dir, texts, batch, metadata["cpu_threads"], metadata["backend"], graph)
            references.append(whole)
            print(f"offline predictor ({metadata['backend']}, {graph} graph, {metadata['cpu_threads']} threads): {whole:,.1f} "
                  f"texts/s on the same {len(texts)} texts in one call, passes of at most {batch}; {arrival:,.1f} texts/s when given "
                  f"them {batch} at a time in arrival order, as a micro-batch is (median of 3 runs each)")  # fmt: skip
        offline = max(references)
        print(f"reference (vs offline): {offline:,.1f} texts/s, the faster in one call")
    run_level(args.url, texts[:64], max(args.concurrency))  # warm-up of the service
    rows = []
    for concurrency in args.concurrency:
        before = get_json(args.url, "/metrics")
        generator_cpu = time.process_time()
        level = run_level(args.url, texts, concurrency)
        generator_cpu = time.process_time() - generator_cpu
        after = get_json(args.url, "/metrics")
        rows.append({
            "concurrency": concurrency, "requests": level.requests, "failed": level.failed,
            "texts_per_s": round(level.texts_per_second, 1),
            "vs_offline": round(level.texts_per_second / offline, 3) if offline else None,
            "p50_ms": round(level.p50_ms, 1), "p95_ms": round(level.p95_ms, 1), "p99_ms": round(level.p99_ms, 1),
            "memory_before_mb": before["resident_memory_mb"], "memory_after_mb": after["resident_memory_mb"],
            "mean_batch_size": after["mean_batch_size"],
            **cpu_ms_per_request(before["cpu_seconds"], after["cpu_seconds"], generator_cpu, level),
        })  # fmt: skip
    return rows


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.requests < 1 or min(args.concurrency) < 1 or not 0 <= args.bad_fraction <= 1:
        parser.error("--requests and --concurrency must be positive, --bad_fraction between 0 and 1")
    with program.user_errors_exit():
        available = read_texts(args.texts)
        texts = [available[index % len(available)] for index in range(args.requests)]
        rows = measure(args, texts)
        print("| concurrency | requests | failed | texts/s | vs offline | p50 ms | p95 ms | p99 ms | memory MB before -> after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for row in rows:
            ratio = f"{row['vs_offline']:.2f}x" if row["vs_offline"] else "—"
            print(f"| {row['concurrency']} | {row['requests']} | {row['failed']} | {row['texts_per_s']:,.1f} | {ratio} | "
                  f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['memory_before_mb']} -> {row['memory_after_mb']} |")  # fmt: skip
        print_cpu_table(rows)
        if args.soak:
            result = soak(args.url, available, args.soak, args.bad_fraction)
            print("soak: " + ", ".join(f"{key} {value}" for key, value in result.items()))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(args.csv, buffer.getvalue())


if __name__ == "__main__":
    main()
