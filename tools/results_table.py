"""Build the results table (Markdown), per-class F1 and the best run's confusion-matrix PNG from kept runs.

    python tools/results_table.py --results-dir results/marc_en --readme README.md \\
        --figure docs/marc_en_confusion.png \\
        --set-name data/marc_en/test.jsonl="MARC-en test" \\
        --set-name data/electronics_sample_eval/test.jsonl="Electronics sample"

Reads only RESULTS_DIR/*/metrics.json (written by tools/run_experiment.py). With --readme, the text
between the README's "<!-- results:begin -->" and "<!-- results:end -->" lines is replaced.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.cli import exit_on_user_errors  # noqa: E402
from paddlenlp_fastformer.experiments import (  # noqa: E402
    best_run,
    load_runs,
    plot_confusion_matrices,
    replace_readme_block,
    results_markdown,
)


def parse_set_name(text):
    path, separator, name = text.partition("=")
    if not separator or not path or not name:
        raise argparse.ArgumentTypeError(f"expected FILE=NAME, got {text!r}")
    return path, name


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--readme", help="replace the results block of this Markdown file")
    parser.add_argument("--figure", help="write the best run's confusion matrices to this PNG")
    parser.add_argument("--set-name", type=parse_set_name, action="append", default=[], metavar="FILE=NAME",
                        help="display name of an evaluation file; may repeat")
    args = parser.parse_args()
    with exit_on_user_errors():
        runs = load_runs(args.results_dir)
        names = dict(args.set_name)
        table = results_markdown(runs, names)
        print(table, end="")
        if args.figure:
            plot_confusion_matrices(best_run(runs), args.figure, names)
        if args.readme:
            replace_readme_block(args.readme, table)
            print(f"updated {args.readme}", file=sys.stderr)
