#!/usr/bin/env python
"""Prepare train/dev/test JSON lines and stats.json from raw Amazon review files.

Examples:
    # The paper's setting: 50k reviews sampled from the McAuley Electronics file.
    python tools/prepare_data.py --input reviews_Electronics_5.json.gz --output-dir data/electronics \\
        --num-samples 50000 --splits 40000,5000,5000 --seed 42

    # Official MARC splits, train sampled down to 40k, dev and test kept whole.
    python tools/prepare_data.py --keep-splits --input train.jsonl.gz dev.jsonl.gz test.jsonl.gz \\
        --output-dir data/marc_en --splits 40000,0,0

    # No real data at hand: synthetic reviews, read back like a McAuley file.
    python tools/prepare_data.py --synthetic 2000 --output-dir data/synthetic --splits 0.8,0.1,0.1

Bad input exits with code 2 and a one-line message on stderr.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import program

from paddlenlp_fastformer.app.data.prepare import format_summary, prepare_dataset
from paddlenlp_fastformer.app.data.readers import (
    RATING_COLUMN_CANDIDATES,
    TEXT_COLUMN_CANDIDATES,
    TITLE_COLUMN_CANDIDATES,
)
from paddlenlp_fastformer.app.data.synthetic import write_synthetic_reviews

SYNTHETIC_FILE_NAME = "synthetic_reviews.json"


MAX_ROWS = 10**9  # more than any review corpus; larger counts overflow numpy's sampling


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not 1 <= value <= MAX_ROWS:
        raise argparse.ArgumentTypeError(f"expected a positive integer up to {MAX_ROWS}, got {value}")
    return value


def seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {value}")
    return value


def parse_splits(text):
    """'40000,5000,5000' -> counts, '0.8,0.1,0.1' -> fractions."""
    parts = text.split(",")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        pass
    try:
        return tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts or fractions, got {text!r}") from None


def build_parser():
    parser = program.ArgumentParser(__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", nargs="+", metavar="PATH", help="raw review files (JSON lines, CSV, TSV; gzip or plain)"
    )
    source.add_argument(
        "--synthetic",
        type=positive_int,
        metavar="N",
        help=f"generate N synthetic reviews into OUTPUT_DIR/{SYNTHETIC_FILE_NAME} and use them as the input",
    )
    parser.add_argument("--output-dir", required=True, help="where train/dev/test.jsonl and stats.json are written")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --output-dir")
    parser.add_argument(
        "--num-samples",
        type=positive_int,
        default=None,
        help="rows to sample (pooled mode; default: the sum of --splits, or all rows for fractions)",
    )
    parser.add_argument(
        "--splits",
        type=parse_splits,
        default=(40000, 5000, 5000),
        help="train,dev,test counts or fractions (default: 40000,5000,5000)",
    )
    parser.add_argument("--seed", type=seed, default=42, help="sampling seed (default: 42)")
    parser.add_argument("--with-title", action="store_true", help='prepend the summary/title: "title. text"')
    parser.add_argument(
        "--keep-splits",
        action="store_true",
        help="the three inputs are the official train, dev, test splits; a split size of 0 keeps a split whole",
    )
    for role, candidates in (
        ("text", TEXT_COLUMN_CANDIDATES),
        ("rating", RATING_COLUMN_CANDIDATES),
        ("title", TITLE_COLUMN_CANDIDATES),
    ):
        default = ", ".join(candidates)
        parser.add_argument(f"--{role}-column", help=f"CSV/TSV {role} column (default: first of {default})")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with program.user_errors_exit(), tempfile.TemporaryDirectory(prefix="fastformer-prepare-") as scratch:
        inputs, extra_files = args.input, {}
        if args.synthetic is not None:
            inputs = [write_synthetic_reviews(Path(scratch, SYNTHETIC_FILE_NAME), args.synthetic, args.seed)]
            extra_files = {SYNTHETIC_FILE_NAME: inputs[0]}  # kept with the dataset, which names it as its input
            print(f"No real data given: generated {args.synthetic} synthetic reviews "
                  f"({Path(args.output_dir, SYNTHETIC_FILE_NAME)})")
        stats = prepare_dataset(
            inputs,
            args.output_dir,
            num_samples=args.num_samples,
            splits=args.splits,
            seed=args.seed,
            with_title=args.with_title,
            keep_splits=args.keep_splits,
            text_column=args.text_column,
            rating_column=args.rating_column,
            title_column=args.title_column,
            overwrite=args.overwrite,
            extra_files=extra_files,
        )
    print(format_summary(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
