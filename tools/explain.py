"""Which words a trained classifier weighs most: the pooler's token weights, as JSON lines and a figure.

    python tools/explain.py --model_dir output/marc_en/best --text "Great sound, but it died in a week." \
        [--text ...] [--top_k 8] [--figure pooler_weights.png]

Each text gives one JSON line: the predicted label and score, and its heaviest tokens with their weight
(the pooler's additive-attention softmax over the text's tokens, summing to 1).
"""
import json

import program


def build_parser():
    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--model_dir", required=True, help="a trained model directory (best/ or last/ of a run)")
    parser.add_argument("--text", action="append", required=True, help="a text to explain; may repeat")
    parser.add_argument("--top_k", type=int, default=8, help="how many of the heaviest tokens to report per text")
    parser.add_argument("--figure", help="also draw the heaviest tokens of each text into this PNG")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}")
    with program.user_errors_exit():
        from fastformer_zoo.engine.checkpoint import load_checkpoint
        from fastformer_zoo.engine.explain import explain, plot_explanations

        model, tokenizer = load_checkpoint(args.model_dir, key="--model_dir")
        explanations = explain(model, tokenizer, args.text)
        for explanation in explanations:
            print(json.dumps(explanation.as_record(args.top_k), ensure_ascii=False))
        if args.figure:
            longest = max(len(explanation.tokens) for explanation in explanations)
            plot_explanations(explanations, args.figure, min(args.top_k, longest))


if __name__ == "__main__":
    main()
