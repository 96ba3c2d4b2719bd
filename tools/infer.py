"""Classify texts with an exported model (Paddle Inference or onnxruntime); TIPC inference flags. With a text
writer's export (Global.task=seq2seq) it writes each text's summary, e.g. a review's title.

    python tools/infer.py --model_dir output/amazon/inference --text "Great sound." --text "Died in a week."
    python tools/infer.py --model_dir output/marc_en_title/inference --data_dir data/marc_en_title/test.jsonl --num_beams 4
    python tools/infer.py --model_dir output/amazon/inference --data_dir data/amazon/test.jsonl \
        --batch_size 64 --cpu_threads 2 --enable_mkldnn True --benchmark True --save_log_path infer.log
"""
import argparse
import os

import program


def build_parser() -> argparse.ArgumentParser:
    """The TIPC inference flags (test_tipc/configs/*/train_infer_python.txt), plus text and backend choice."""
    from fastformer_zoo.deploy.predictor import BACKENDS, GRAPHS

    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a text to classify (or, with a text writer's export, to summarise); may repeat")
    source.add_argument("--data_dir", help="a data file (prepared split or raw labelled texts) or a prepared data directory")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--cpu_threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--enable_mkldnn", type=program.str2bool, default=None,
                        help="oneDNN kernels on or off (paddle backend); default: measured, as backend and graph")
    parser.add_argument("--use_gpu", type=program.str2bool, default=False)
    parser.add_argument("--use_tensorrt", type=program.str2bool, default=False)
    parser.add_argument("--precision", default="fp32", help="fp32 (default), int8 (an export with --quantize int8) or bf16 (a CPU with bfloat16 instructions)")
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                        help="auto (default): each forward pass on the engine measured fastest on this CPU (measured once per export, then kept)")
    parser.add_argument("--graph", choices=GRAPHS, default="auto", help="auto (default): measured, as the backend")
    parser.add_argument("--remeasure", type=program.str2bool, default=False, help="measure the engines again (after a change of machine load)")
    parser.add_argument("--num_beams", type=int, choices=range(1, 33), default=1, metavar="N",
                        help="a text writer's export: beam search with N beams (default 1: greedy)")
    parser.add_argument("--benchmark", type=program.str2bool, default=False, help="report time per stage and throughput")
    parser.add_argument("--save_log_path", help="also write the benchmark report here")
    return parser


def main(argv=None):
    program.start()
    from fastformer_zoo.deploy.infer import InferenceSettings, run_inference

    args = build_parser().parse_args(argv)
    settings = InferenceSettings(
        model_dir=args.model_dir,
        backend=args.backend,
        graph=args.graph,
        cpu_threads=args.cpu_threads,
        enable_mkldnn=args.enable_mkldnn,
        precision=args.precision,
        batch_size=args.batch_size,
        use_gpu=args.use_gpu,
        use_tensorrt=args.use_tensorrt,
        benchmark=args.benchmark,
        save_log_path=args.save_log_path,
        num_beams=args.num_beams,
        remeasure=args.remeasure,
    )
    with program.user_errors_exit():
        run_inference(settings, texts=args.text, data_path=args.data_dir)


if __name__ == "__main__":
    main()
