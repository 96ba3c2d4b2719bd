"""Train a Fastformer text classifier (any label set of a prepared dataset) from a YAML config.

    python tools/train.py -c configs/amazon.yaml [-o Global.epochs=1 Data.batch_size=32 ...]
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c configs/amazon.yaml
"""
import program

from paddlenlp_fastformer.app.engine.trainer import train


def main(argv=None):
    program.run_config_tool(__doc__, lambda config, args: train(config), argv=argv)


if __name__ == "__main__":
    main()
