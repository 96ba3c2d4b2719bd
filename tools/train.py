"""Train a Fastformer text classifier (any label set of a prepared dataset) from a YAML config.

    python tools/train.py -c configs/amazon.yaml [-o Global.epochs=1 Data.batch_size=32 ...]
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c configs/amazon.yaml
    # on each node R of 2 (docs/training.md#training-across-machines):
    python -m paddle.distributed.launch --nnodes 2 --master HOST0:PORT --rank R --nproc_per_node 1 tools/train.py -c configs/amazon.yaml
"""
import program


def train(config, args):
    from fastformer_zoo.engine.trainer import train

    train(config)


def main(argv=None):
    program.run_config_tool(__doc__, train, argv=argv)


if __name__ == "__main__":
    main()
