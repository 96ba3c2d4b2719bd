"""Evaluate a checkpoint: a metrics table, then one JSON line with every figure.

    python tools/eval.py -c configs/amazon.yaml -o Global.checkpoint=output/amazon/best [Data.eval_file=FILE]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.cli import run_tool  # noqa: E402
from paddlenlp_fastformer.metrics import format_metrics_table  # noqa: E402
from paddlenlp_fastformer.training import evaluate_checkpoint  # noqa: E402


def report(config):
    metrics = evaluate_checkpoint(config)
    print(format_metrics_table(metrics))
    print(json.dumps(metrics, ensure_ascii=False))


if __name__ == "__main__":
    run_tool(__doc__, report)
