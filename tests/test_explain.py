"""tools/explain.py: the pooler's token weights of a trained classifier, as JSON lines and a figure."""
import json
import sys

import numpy as np

from conftest import PROJECT_ROOT, assert_one_line_error, run_main
from fastformer_zoo.engine.checkpoint import load_checkpoint
from fastformer_zoo.engine.explain import explain

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import explain as explain_tool  # noqa: E402

TEXTS = ["great sound and a solid build , five stars", "it broke after two days . do not buy"]


def test_weights_cover_each_token_and_sum_to_one(trained):
    model, tokenizer = load_checkpoint(str(trained[1] / "best"))
    for text, explanation in zip(TEXTS, explain(model, tokenizer, TEXTS)):
        assert explanation.tokens == tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
        weights = np.asarray(explanation.weights)
        assert weights.shape == (len(explanation.tokens),) and (weights > 0).all()
        np.testing.assert_allclose(weights.sum(), 1.0, atol=1e-5)
        assert explanation.label in model.config.id2label.values() and 0 < explanation.score <= 1


def test_tool_prints_heaviest_tokens_and_draws_them(trained, tmp_path, capsys):
    figure = tmp_path / "weights.png"
    argv = ["--model_dir", str(trained[1] / "best"), "--top_k", "3", "--figure", str(figure)]
    for text in TEXTS:
        argv += ["--text", text]
    explain_tool.main(argv)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == TEXTS
    for record in records:
        weights = [entry["weight"] for entry in record["top_tokens"]]
        assert len(weights) == 3 and weights == sorted(weights, reverse=True)
        assert all(entry["token"] in {*record["text"].split(), "[UNK]"} for entry in record["top_tokens"])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tool_errors_are_one_line(trained, tmp_path, capsys):
    best = str(trained[1] / "best")
    assert_one_line_error(run_main(explain_tool.main, ["--model_dir", best, "--text", "  "], capsys), "text 1 is empty")
    assert_one_line_error(run_main(explain_tool.main, ["--model_dir", str(tmp_path / "nothing"), "--text", "x"], capsys), "--model_dir")
    assert_one_line_error(run_main(explain_tool.main, ["--model_dir", best, "--text", "x", "--top_k", "0"], capsys), "--top_k")
