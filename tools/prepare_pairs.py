#!/usr/bin/env python
"""Prepare text -> summary pairs (a review and its title) for sequence-to-sequence training: train.jsonl,
dev.jsonl, test.jsonl of {"text", "summary"} and stats.json.

The inputs are the official train, dev and test files (JSON lines; the text is the first of text,
reviewText, review_body a row has, the summary the first of summary, review_title, title), each sampled
down to its size in --splits with --seed (0 keeps a split whole). A dev or test pair whose text an earlier
file holds is dropped, with a warning naming both files, unless --keep-duplicates; stats.json counts them.

    # MARC-en review -> title: 40,000 training pairs, the official dev and test splits whole.
    python tools/prepare_pairs.py --input ../shared/data/marc_en/train.jsonl.gz ../shared/data/marc_en/dev.jsonl.gz \\
        ../shared/data/marc_en/test.jsonl.gz --splits 40000,0,0 --output-dir data/marc_en_title

Bad input exits with code 2 and a one-line message on stderr.
"""
import json
import sys

import program
from prepare_data import parse_splits, seed


def main(argv=None):
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--input", nargs=3, required=True, metavar=("TRAIN", "DEV", "TEST"), help="the official splits")
    parser.add_argument("--output-dir", required=True, help="where train/dev/test.jsonl and stats.json are written")
    parser.add_argument("--splits", type=parse_splits, default=(0, 0, 0), help="pairs kept per split, 0 = all (default: 0,0,0)")
    parser.add_argument("--seed", type=seed, default=42, help="sampling seed (default: 42)")
    parser.add_argument("--overwrite", action="store_true", help="replace the pairs already in --output-dir")
    parser.add_argument("--keep-duplicates", action="store_true",
                        help="keep dev and test pairs whose text an earlier file holds (still warned about)")
    args = parser.parse_args(argv)
    with program.user_errors_exit():
        from fastformer_zoo.data.pairs import prepare_pairs

        if any(not isinstance(size, int) or size < 0 for size in args.splits):
            parser.error(f"--splits {','.join(map(str, args.splits))}: expected three counts >= 0")
        stats = prepare_pairs(args.input, args.output_dir, args.splits, args.seed, args.overwrite, args.keep_duplicates)
    print(json.dumps(stats["splits"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
