"""Pretrain a FastformerForMaskedLM on a text corpus (tools/prepare_corpus.py) from a YAML config.

    python tools/pretrain.py -c configs/pretrain_reviews.yaml [-o Global.epochs=1 Data.mask_prob=0.15 ...]

BERT-style masking (15% of tokens: 80% [MASK], 10% a random word, 10% kept); the vocabulary is built
from the pretraining text. best/ (lowest dev masked-LM loss) and last/ are from_pretrained directories
that start any head: tools/train.py -o Global.init_from=output/pretrain_reviews/best. The run refuses
pretraining text that holds a review of any Data.held_out_files (the dev and test splits used later).
"""
import program


def pretrain(config, args):
    from fastformer_zoo.engine.tasks import MaskedLMTask
    from fastformer_zoo.engine.trainer import train

    train(config, task=MaskedLMTask(config))


def main(argv=None):
    program.run_config_tool(__doc__, pretrain, argv=argv)


if __name__ == "__main__":
    main()
