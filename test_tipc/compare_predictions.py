"""Compare the per-text predictions two `tools/infer.py` runs printed (TIPC backend consistency check).

    python test_tipc/compare_predictions.py REFERENCE_LOG CANDIDATE_LOG [--atol 1e-4]

Each log is the captured stdout of `tools/infer.py`, which prints one JSON object per text
({"text", "label", "score", "probabilities": {label: probability}}). The check passes when both logs hold the same texts in
the same order, every probability agrees within --atol, and the predicted labels agree wherever the
two best classes are more than --atol apart (a closer pair may flip on float noise). Exit code 0 on
agreement, 1 on a mismatch, 2 on an unreadable log.
"""
import argparse
import json
import sys


def read_predictions(path: str) -> list:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line.startswith('{"text"'):
                continue
            rows.append(json.loads(line))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        reference, candidate = read_predictions(args.reference), read_predictions(args.candidate)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not reference:
        print(f"error: no predictions in {args.reference}", file=sys.stderr)
        return 2
    if [row["text"] for row in reference] != [row["text"] for row in candidate]:
        print(f"mismatch: {len(reference)} vs {len(candidate)} predictions, or texts in another order")
        return 1
    worst, flipped = 0.0, 0
    for ref, cand in zip(reference, candidate):
        if ref["probabilities"].keys() != cand["probabilities"].keys():
            print(f"mismatch: labels {list(ref['probabilities'])} vs {list(cand['probabilities'])}")
            return 1
        diff = max(abs(p - cand["probabilities"][label]) for label, p in ref["probabilities"].items())
        worst = max(worst, diff)
        top_two = sorted(ref["probabilities"].values(), reverse=True)[:2]
        if ref["label"] != cand["label"] and top_two[0] - top_two[1] > args.atol:
            flipped += 1
    print(f"{len(reference)} texts: max |probability difference| {worst:.2e} (atol {args.atol:g}), {flipped} label(s) differ")
    return 0 if worst <= args.atol and flipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
