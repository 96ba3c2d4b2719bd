"""Serve an exported model over HTTP: PaddleNLP SimpleServing's format, /predict, a demo page, micro-batching.

    python tools/serve.py --model_dir output/marc_en/inference [--host 127.0.0.1 --port 8189
        --backend auto|paddle|onnxruntime --graph auto|fused|portable|packed --cpu_threads N --inference_workers N --max_batch_size 32
        --max_wait_ms 5]

    curl -s localhost:8189/predict -H 'Content-Type: application/json' -d '{"texts": ["Great sound."]}'

The demo page is at http://HOST:PORT/, the OpenAPI docs at /docs. SIGTERM (or Ctrl-C) stops it
gracefully: requests in flight finish, new connections are refused.
"""
import os

import program


def build_parser():
    from fastformer_zoo.deploy.predictor import BACKENDS, GRAPHS

    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--model_dir", required=True, help="a directory written by tools/export_model.py")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8189)
    parser.add_argument("--backend", choices=("auto",) + BACKENDS, default="auto",
                        help="auto (default): onnxruntime where the export has its ONNX graph, else paddle")
    parser.add_argument("--graph", choices=GRAPHS, default="auto",
                        help="auto (default): each micro-batch on the backend's graph measured fastest at its shape on this CPU")
    parser.add_argument("--cpu_threads", type=int, default=os.cpu_count() or 1, help="threads of the inference engine(s), in all")
    parser.add_argument("--inference_workers", type=int, default=None,
                        help="inference threads, each running micro-batches on its own engine of cpu_threads / N threads "
                             "(default: one per CPU thread on onnxruntime, one on paddle)")
    parser.add_argument("--max_batch_size", type=int, default=32,
                        help="texts per micro-batch at most: one forward pass on the packed graph, passes by length on a padded one")
    parser.add_argument("--max_wait_ms", type=float, default=5.0, help="how long a request waits for others to join its batch")
    parser.add_argument("--max_queue", type=int, default=256, help="requests that may wait; one more is answered 503")
    parser.add_argument("--max_texts_per_request", type=int, default=256)
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20)
    return parser


def main(argv=None):
    program.start()
    from fastformer_zoo.deploy.predictor import MAX_THREADS

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("port", "cpu_threads", "inference_workers", "max_batch_size", "max_queue", "max_texts_per_request", "max_body_bytes"):
        if getattr(args, name) is not None and getattr(args, name) < 1 or (name == "port" and args.port > 65535):
            parser.error(f"--{name} must be a positive integer{' up to 65535' if name == 'port' else ''}, got {getattr(args, name)}")
    if args.cpu_threads > MAX_THREADS or (args.inference_workers or 1) > 64:
        parser.error(f"--cpu_threads must be at most {MAX_THREADS} and --inference_workers at most 64, got {args.cpu_threads} and {args.inference_workers}")
    if not 0 <= args.max_wait_ms <= 10_000:
        parser.error(f"--max_wait_ms must be between 0 and 10000, got {args.max_wait_ms}")
    with program.user_errors_exit():
        from fastformer_zoo.serving.service import ServiceSettings, serve

        settings = ServiceSettings(**{key: value for key, value in vars(args).items() if key not in ("host", "port")})
        serve(settings, args.host, args.port)


if __name__ == "__main__":
    main()
