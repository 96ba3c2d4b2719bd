"""Export a trained classifier for deployment: a static graph with dynamic batch and length, the tokenizer
and the label names, so that the output directory alone is enough to predict. With Global.task=seq2seq, a text
writer: its prefill and step graphs, which tools/infer.py writes titles with.

    python tools/export_model.py -c configs/amazon.yaml -o Global.pretrained_model=output/amazon/best \
        Global.save_inference_dir=output/amazon/inference [--onnx] [--quantize int8] [--measure_engines]

--measure_engines times every engine of the export on this machine now, at --cpu_threads threads (otherwise the first
prediction does, once), so that tools/infer.py and the predictor at those threads start with the choice made (the
service, whose engines run cpu_threads / inference_workers threads each, measures its own at its start).
"""
import logging

import program


def export(config, args):
    from fastformer_zoo.deploy.export import export_from_config

    files = export_from_config(config, onnx=args.onnx, quantize=args.quantize)
    logging.getLogger("fastformer_zoo").info("exported %s: %s", config.global_.save_inference_dir, ", ".join(files))
    if args.measure_engines:
        from fastformer_zoo.deploy.predictor import measure_export

        measure_export(config.global_.save_inference_dir, args.cpu_threads)


def main(argv=None):
    program.start()
    from fastformer_zoo.deploy.export import QUANTIZATIONS
    from fastformer_zoo.deploy.export_format import ONNX_FILE, ONNX_INT8_FILE

    parser = program.config_parser(__doc__)
    parser.add_argument("--onnx", action="store_true", help=f"also write {ONNX_FILE} with paddle2onnx")
    parser.add_argument(
        "--quantize", choices=QUANTIZATIONS,
        help=f"also write {ONNX_INT8_FILE}, int8 weight matmuls for onnxruntime (implies --onnx); "
        "predict with --backend onnxruntime --precision int8",
    )  # fmt: skip
    parser.add_argument("--measure_engines", action="store_true",
                        help="time the export's engines on this machine now and keep the choice (else the first prediction does)")
    parser.add_argument("--cpu_threads", type=int, default=None, help="with --measure_engines: the threads predictions will use (default: every core)")
    args = parser.parse_args(argv)
    if args.cpu_threads is not None and not 1 <= args.cpu_threads <= 1024:
        parser.error(f"--cpu_threads must be between 1 and 1024, got {args.cpu_threads}")
    program.run_config_tool(__doc__, export, parser, argv)


if __name__ == "__main__":
    main()
