"""Print one training run's dev evaluations as a Markdown table: step, epoch, minutes of training and the
task's dev scores (a pretraining's masked-LM loss and perplexity, a classifier's accuracy and macro-F1).

    python tools/dev_history.py results/pretrain_all_reviews/trainer_state.json \\
        --markdown docs/pretraining.md --block pretrain-all-reviews

Reads the progress kept in a run's trainer_state.json (OUTPUT_DIR/last/trainer_state.json, or a copy kept
under results/); Global.eval_steps gives a run dev records within its epochs. With --markdown, the text
between the file's "<!-- BLOCK:begin -->" and "<!-- BLOCK:end -->" lines is replaced.
"""
import sys

import program


def main(argv=None):
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("trainer_state", help="a run's trainer_state.json")
    parser.add_argument("--markdown", help="replace the block of this Markdown file")
    parser.add_argument("--block", default="dev-history", help="the name in the file's block markers (default: dev-history)")
    args = parser.parse_args(argv)
    with program.user_errors_exit():
        from fastformer_zoo.reporting import dev_history_markdown, replace_block

        table = dev_history_markdown(args.trainer_state)
        print(table, end="")
        if args.markdown:
            replace_block(args.markdown, table, args.block)
            print(f"updated {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
