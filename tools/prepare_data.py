#!/usr/bin/env python
"""Prepare train/dev/test JSON lines, label.txt and stats.json from raw labelled text files.

Any single-label text classification data: JSON lines, CSV or TSV (gzip or plain) with a text field
and a label field (label names or integers), optionally a title prepended to the text. Star ratings
(McAuley ``overall``, MARC ``stars``, a ``rating`` column) are a preset: labels "1 star" .. "5 stars".

Examples:
    # The paper's setting: 50k reviews sampled from the McAuley Electronics file.
    python tools/prepare_data.py --input reviews_Electronics_5.json.gz --output-dir data/electronics \\
        --num-samples 50000 --splits 40000,5000,5000 --seed 42

    # Official MARC splits, train sampled down to 40k, dev and test kept whole.
    python tools/prepare_data.py --keep-splits --input train.jsonl.gz dev.jsonl.gz test.jsonl.gz \\
        --output-dir data/marc_en --splits 40000,0,0

    # MARC-en product categories (31 classes) instead of the stars.
    python tools/prepare_data.py --keep-splits --input train.jsonl.gz dev.jsonl.gz test.jsonl.gz \\
        --label-column product_category --output-dir data/marc_en_category --splits 40000,0,0

    # IMDB binary sentiment: the official train and test files, 2,000 dev reviews drawn out of train.
    python tools/prepare_data.py --keep-splits --input imdb/train.jsonl.gz imdb/test.jsonl.gz \\
        --label-column label --output-dir data/imdb --splits 0,2000,0

    # An AG News CSV without a header row: class index (1..4), title, description.
    python tools/prepare_data.py --input train.csv --columns label,title,text --with-title \\
        --output-dir data/ag_news --splits 0.9,0.05,0.05

    # The user's own splits as they are, even where dev or test repeat training texts (only warned about).
    python tools/prepare_data.py --keep-splits --keep-duplicates --input train.csv dev.csv test.csv \\
        --output-dir data/mine --splits 8000,0,0

    # No real data at hand: synthetic reviews, read back like a McAuley file.
    python tools/prepare_data.py --synthetic 2000 --output-dir data/synthetic --splits 0.8,0.1,0.1

    # Or made-up news stories as an AG News-style CSV (4 topics), title prepended.
    python tools/prepare_data.py --synthetic-news 2000 --with-title --output-dir data/news --splits 0.8,0.1,0.1

No text lands in two splits unless --keep-duplicates: pooled inputs keep all copies of a text (the same
characters, outer whitespace aside) in one split; with --keep-splits, dev and test rows whose text an earlier
file holds are dropped, with a warning naming both files. stats.json counts them under "duplicates".

Bad input exits with code 2 and a one-line message on stderr.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import program

# What each --synthetic option generates: file name, writer (in fastformer_zoo.data.synthetic), and what the rows are.
SYNTHETIC = {
    "synthetic": ("synthetic_reviews.json", "write_synthetic_reviews", "synthetic reviews"),
    "synthetic_news": ("synthetic_news.csv", "write_synthetic_news", "synthetic news stories (4 topics)"),
}


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
    from fastformer_zoo.data.readers import (
        LABEL_COLUMN_CANDIDATES, RATING_COLUMN_CANDIDATES, TEXT_COLUMN_CANDIDATES, TITLE_COLUMN_CANDIDATES,
    )  # fmt: skip

    parser = program.ArgumentParser(__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", nargs="+", metavar="PATH", help="raw review files (JSON lines, CSV, TSV; gzip or plain)"
    )
    source.add_argument(
        "--synthetic",
        type=positive_int,
        metavar="N",
        help=f"generate N synthetic reviews into OUTPUT_DIR/{SYNTHETIC['synthetic'][0]} and use them as the input",
    )
    source.add_argument(
        "--synthetic-news",
        type=positive_int,
        metavar="N",
        help=f"generate N AG News-style stories into OUTPUT_DIR/{SYNTHETIC['synthetic_news'][0]} and use them as the input",
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
        help="the inputs are the official train, dev, test splits, or train and test (dev is then drawn out of "
        "train, e.g. --splits 0,2000,0); a split size of 0 keeps a split whole",
    )
    parser.add_argument("--keep-duplicates", action="store_true", help="let a text be in two splits: pooled, rows are "
                        "drawn alone; with --keep-splits, dev and test keep rows whose text an earlier file holds (warned)")
    fields = parser.add_argument_group(
        "fields", "names of the text, label and title fields (JSON keys or CSV/TSV columns) where the defaults miss them"
    )
    fields.add_argument("--text-column", help=f"text field (default: first of {', '.join(TEXT_COLUMN_CANDIDATES)})")
    label = fields.add_mutually_exclusive_group()
    label.add_argument(
        "--label-column",
        help=f"label field holding names or integers (default: a rating field, else {', '.join(LABEL_COLUMN_CANDIDATES)})",
    )
    label.add_argument(
        "--rating-column", help=f"label field holding 1..5 stars (default: first of {', '.join(RATING_COLUMN_CANDIDATES)})"
    )
    fields.add_argument("--title-column", help=f"title field, with --with-title (default: first of {', '.join(TITLE_COLUMN_CANDIDATES)})")
    fields.add_argument(
        "--columns", type=column_names, help="the column names of CSV/TSV files without a header row, e.g. label,title,text"
    )
    parser.add_argument(
        "--label-file",
        help="a label.txt (one name per line) that fixes the label names and their ids; default: the labels found",
    )
    return parser


def column_names(text):
    names = tuple(name.strip() for name in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated column names, got {text!r}")
    return names


def main(argv=None):
    program.start()
    from fastformer_zoo.data.readers import FieldChoice

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.title_column and not args.with_title:
        parser.error("--title-column is used only with --with-title")
    with program.user_errors_exit(), tempfile.TemporaryDirectory(prefix="fastformer-prepare-") as scratch:
        from fastformer_zoo.data import synthetic
        from fastformer_zoo.data.prepare import format_summary, prepare_dataset

        inputs, extra_files = args.input, {}
        for option, (file_name, writer, what) in SYNTHETIC.items():
            count = getattr(args, option)
            if count is None:
                continue
            inputs = [getattr(synthetic, writer)(Path(scratch, file_name), count, args.seed)]
            extra_files = {file_name: inputs[0]}  # kept with the dataset, which names it as its input
            print(f"No real data given: generated {count} {what} ({Path(args.output_dir, file_name)})")
        stats = prepare_dataset(
            inputs,
            args.output_dir,
            num_samples=args.num_samples,
            splits=args.splits,
            seed=args.seed,
            with_title=args.with_title,
            keep_splits=args.keep_splits,
            fields=FieldChoice(args.text_column, args.label_column, args.rating_column, args.title_column, args.columns),
            label_file=args.label_file,
            overwrite=args.overwrite,
            extra_files=extra_files,
            keep_duplicates=args.keep_duplicates,
        )
    print(format_summary(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
