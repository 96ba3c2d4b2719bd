"""Evaluate a trained model: a metrics table, then every figure as one JSON line (or in --metrics_file).

    python tools/eval.py -c configs/amazon.yaml -o Global.checkpoint=output/amazon/best [Data.eval_file=FILE]
    python tools/eval.py -c configs/marc_en_title.yaml -o Global.checkpoint=output/marc_en_title/best [--num_beams 4]

Texts are truncated where the checkpoint's training truncated them (Data.max_seq_len of that run). With
Global.task=seq2seq the model writes a summary of every text (greedy, or beam search with --num_beams) and
ROUGE-1/2/L score them against the references. With --metrics_file the JSON goes to that file instead
and the last line says where.
Neither output may be a file the evaluation reads (the config, the checkpoint's files, the data splits).
"""
import json

import program


def report(config, args):
    from fastformer_zoo.engine.evaluate import check_outputs, evaluate_checkpoint
    from fastformer_zoo.scoring import format_metrics_table
    from paddlenlp_fastformer.file_utils import write_text_atomically

    check_outputs(config, {"--metrics_file": args.metrics_file}, [("-c", args.config)])  # either task, before any work
    if config.global_.task == "seq2seq":
        from fastformer_zoo.engine.summaries import evaluate_summaries

        metrics = evaluate_summaries(config, args.num_beams)
    else:
        metrics = evaluate_checkpoint(config)
        print(format_metrics_table(metrics))
    if args.metrics_file:
        write_text_atomically(args.metrics_file, json.dumps(metrics, ensure_ascii=False, indent=1) + "\n")
        print(f"metrics: {args.metrics_file}")
    else:
        print(json.dumps(metrics, ensure_ascii=False))


def main(argv=None):
    parser = program.config_parser(__doc__)
    parser.add_argument("--num_beams", type=int, choices=range(1, 33), default=1, metavar="N",
                        help="Global.task=seq2seq: beam search with N beams (default 1: greedy)")
    parser.add_argument("--metrics_file", help="write the metrics JSON here instead of printing it")
    program.run_config_tool(__doc__, report, parser, argv=argv)


if __name__ == "__main__":
    main()
