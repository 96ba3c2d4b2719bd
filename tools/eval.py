"""Evaluate a trained model: a metrics table, then one JSON line with every figure.

    python tools/eval.py -c configs/amazon.yaml -o Global.checkpoint=output/amazon/best [Data.eval_file=FILE]

Texts are truncated where the checkpoint's training truncated them (Data.max_seq_len of that run).
"""
import json

import program

from paddlenlp_fastformer.app.engine.evaluate import evaluate_checkpoint
from paddlenlp_fastformer.app.engine.metrics import format_metrics_table


def report(config, args):
    metrics = evaluate_checkpoint(config)
    print(format_metrics_table(metrics))
    print(json.dumps(metrics, ensure_ascii=False))


def main(argv=None):
    program.run_config_tool(__doc__, report, argv=argv)


if __name__ == "__main__":
    main()
