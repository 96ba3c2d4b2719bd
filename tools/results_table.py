"""Build the results table (Markdown), per-class F1 and the best run's confusion-matrix PNG from kept runs.

    python tools/results_table.py --results-dir results/marc_en --markdown docs/results.md \\
        --figure docs/marc_en_confusion.png \\
        --set-name data/marc_en/test.jsonl="MARC-en test" \\
        --set-name data/electronics_sample_eval/test.jsonl="Electronics sample"

    python tools/results_table.py --results-dir results/marc_en_title --markdown docs/results.md --block results-titles \\
        --row-name configs/marc_en_title.yaml=Fastformer --row-name configs/marc_en_title_transformer.yaml=Transformer

    # Fastformer against the Transformer on the same test texts: paired-bootstrap intervals over texts and seeds.
    python tools/results_table.py --results-dir results/imdb --compare configs/imdb_transformer.yaml configs/imdb.yaml

    # Equal compute: best dev accuracy within each training time, and its curve (IMDB, whole reviews).
    python tools/results_table.py --results-dir results/imdb --by-time --markdown docs/results.md \\
        --block results-imdb-time --figure docs/imdb_accuracy_by_time.png

Reads only RESULTS_DIR/*/metrics.json (written by tools/run_experiment.py); text writers' runs make a
ROUGE table. With --markdown, the text between the file's "<!-- BLOCK:begin -->" and "<!-- BLOCK:end -->" lines is replaced (--block,
default "results"; the category results use --block results-category, the natural-skew recipe
--block results-natural).
"""
import argparse
import sys

import program

def parse_set_name(text):
    """FILE=NAME (an evaluation file's or a config file's display name)."""
    path, separator, name = text.partition("=")
    if not separator or not path or not name:
        raise argparse.ArgumentTypeError(f"expected FILE=NAME, got {text!r}")
    return path, name


def main(argv=None):
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--markdown", help="replace the block of this Markdown file (docs/results.md)")
    parser.add_argument("--block", default="results", help="the name in the file's block markers (default: results)")
    parser.add_argument("--figure", help="write the best run's confusion matrices to this PNG")
    parser.add_argument("--set-name", type=parse_set_name, action="append", default=[], metavar="FILE=NAME",
                        help="display name of an evaluation file; may repeat")
    parser.add_argument("--row-name", type=parse_set_name, action="append", default=[], metavar="CONFIG=NAME",
                        help="one table row per config file, in the order given, with this label (default: a row "
                             "per config, labelled by its model); may repeat")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--by-time", action="store_true", help="the equal-compute view instead: best dev accuracy "
                        "within each training time, and (--figure) dev accuracy against minutes of training")
    view.add_argument("--compare", nargs=2, metavar=("CONFIG_A", "CONFIG_B"), help="B against A on the texts both "
                        "were scored on: mean scores over shared seeds and B - A with 95%% paired-bootstrap intervals")
    args = parser.parse_args(argv)
    with program.user_errors_exit():
        from fastformer_zoo.errors import UserError
        from fastformer_zoo.reporting import (
            best_run, comparison_markdown, load_runs, plot_confusion_matrices, plot_time_curves, replace_block, results_markdown,
            summary_results_markdown, time_markdown,
        )  # fmt: skip

        runs = load_runs(args.results_dir)
        names = dict(args.set_name)
        tasks = {run["task"] for run in runs}
        if len(tasks) > 1:
            raise UserError(f"{args.results_dir}: the kept runs mix classifiers and text writers; give a results folder of one kind")
        if (args.compare or args.by_time) and tasks == {"seq2seq"}:
            raise UserError(f"{args.results_dir}: --compare and --by-time score classifiers' accuracy; these runs are text "
                            "writers, whose table is the ROUGE one (leave both out)")  # fmt: skip
        rows, draw = dict(args.row_name), None  # draw(path): the --figure of the view asked for
        if args.compare:
            if args.figure:
                raise UserError("--figure has no picture for --compare, whose result is the table; leave --figure out")
            table = comparison_markdown(args.results_dir, runs, *args.compare, names, rows)
        elif args.by_time:
            table = time_markdown(runs, rows)
            draw = lambda path: plot_time_curves(runs, path, rows)  # noqa: E731
        elif tasks == {"seq2seq"}:  # text writers: ROUGE
            if args.figure:
                raise UserError("--figure draws a classifier's confusion matrices; text writers have none")
            table = summary_results_markdown(runs, rows)
        else:
            table = results_markdown(runs, names, rows)
            draw = lambda path: plot_confusion_matrices(best_run(runs), path, names)  # noqa: E731
        print(table, end="")
        if args.figure:
            draw(args.figure)
        if args.markdown:
            replace_block(args.markdown, table, args.block)
            print(f"updated {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
