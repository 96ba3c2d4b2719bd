#!/usr/bin/env python
"""Prepare a text corpus for masked-LM pretraining (tools/pretrain.py): train.jsonl, dev.jsonl, stats.json.

The distinct texts of the inputs (JSON lines with a text, reviewText or review_body field, whatever
their labels; or .txt files, one text a line; gzip or plain), without any text of the --exclude files,
shuffled with --seed; --dev-size of them score the masked-LM loss after each epoch. A file inside
--output-dir (this tool's own output, replaced as a whole) is refused as an --input or --exclude file.

    # In-domain Electronics text, keeping out the natural-skew dev and test splits used later.
    python tools/prepare_corpus.py --output-dir data/pretrain_reviews --dev-size 1000 \\
        --input data/electronics_natural/train.jsonl data/marc_en/train.jsonl \\
            ../shared/data/electronics_extra/electronics5_texts_3class.json.gz \\
            ../shared/data/electronics_extra/mdsd_electronics_balanced.json.gz \\
        --exclude data/electronics_natural/dev.jsonl data/electronics_natural/test.jsonl \\
            data/marc_en/dev.jsonl data/marc_en/test.jsonl

Bad input exits with code 2 and a one-line message on stderr.
"""
import json
import sys

import program
from prepare_data import positive_int, seed


def build_parser():
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH", help="text or review files")
    parser.add_argument("--output-dir", required=True, help="where train.jsonl, dev.jsonl and stats.json are written")
    parser.add_argument("--dev-size", type=positive_int, default=1000, help="texts held out for the dev loss (default: 1000)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PATH",
                        help="files whose texts must not be pretrained on: the dev and test splits of later fine-tunes")
    parser.add_argument("--seed", type=seed, default=42, help="shuffling seed (default: 42)")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in --output-dir")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with program.user_errors_exit():
        from fastformer_zoo.data.corpus import prepare_corpus

        stats = prepare_corpus(args.input, args.output_dir, args.dev_size, args.seed, args.exclude, args.overwrite)
    for report in stats["inputs"]:
        print(f"{report['path']}: {report['texts']} texts, {report['kept']} kept, {report['duplicates']} duplicates, "
              f"{report['excluded']} in the excluded files")
    print(json.dumps(stats["splits"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
