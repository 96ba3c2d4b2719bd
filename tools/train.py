"""Train a Fastformer review-rating classifier from a YAML config.

    python tools/train.py -c configs/amazon.yaml [-o Global.epochs=1 Data.batch_size=32 ...]
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c configs/amazon.yaml
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.cli import run_tool  # noqa: E402
from paddlenlp_fastformer.training import train  # noqa: E402

if __name__ == "__main__":
    run_tool(__doc__, lambda config: train(config))
