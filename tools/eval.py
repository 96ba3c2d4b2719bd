"""Evaluate a trained model: a metrics table, then one JSON line with every figure.

    python tools/eval.py -c configs/amazon.yaml -o Global.checkpoint=output/amazon/best [Data.eval_file=FILE]
    python tools/eval.py -c configs/marc_en_title.yaml -o Global.checkpoint=output/marc_en_title/best [--num_beams 4]

Texts are truncated where the checkpoint's training truncated them (Data.max_seq_len of that run). With
Global.task=seq2seq the model writes a summary of every text (greedy, or beam search with --num_beams) and
ROUGE-1/2/L score them against the references.
"""
import json

import program


def report(config, args):
    from fastformer_zoo.engine.evaluate import evaluate_checkpoint
    from fastformer_zoo.scoring import format_metrics_table

    if config.global_.task == "seq2seq":
        from fastformer_zoo.engine.summaries import evaluate_summaries

        print(json.dumps(evaluate_summaries(config, args.num_beams), ensure_ascii=False))
        return
    metrics = evaluate_checkpoint(config)
    print(format_metrics_table(metrics))
    print(json.dumps(metrics, ensure_ascii=False))


def main(argv=None):
    parser = program.config_parser(__doc__)
    parser.add_argument("--num_beams", type=int, choices=range(1, 33), default=1, metavar="N",
                        help="Global.task=seq2seq: beam search with N beams (default 1: greedy)")
    program.run_config_tool(__doc__, report, parser, argv=argv)


if __name__ == "__main__":
    main()
