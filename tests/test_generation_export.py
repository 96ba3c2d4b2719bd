"""A text writer's export: its prefill and step graphs on Paddle Inference against the dygraph model (first
log-probabilities at 1e-5, greedy and beam-search titles equal to PaddleNLP's generate()), and
tools/export_model.py + tools/infer.py against tools/eval.py on a trained model."""
import json

import numpy as np
import paddle
import pytest
from test_seq2seq import CASES, SMALL, seq2seq, source_and_target

from fastformer_zoo.deploy import generation
from fastformer_zoo.deploy.generation import beam_search, greedy_search


def exported_search(model, directory, source, mask, num_beams=1, max_new_tokens=10):
    """Generated ids and first log-probabilities of ``model``'s export (the predictor's own loop)."""
    layout = generation.save_generation_graphs(model, str(directory))
    prefill = generation._StaticGraph(str(directory), generation.PREFILL_PREFIX, 1)
    step_graph = generation._StaticGraph(str(directory), generation.STEP_PREFIX, 1)

    def step(tokens, state):
        log_probs, *changed = step_graph(tokens.reshape(-1, 1).astype("int64"), *state)
        state = list(state)
        for index, part in zip(layout["step_changes"], changed):
            state[index] = part
        return log_probs, state

    first, *state = prefill(source, mask)
    end, pad = model.config.eos_token_id, model.config.pad_token_id
    if num_beams > 1:
        return beam_search(first, state, step, end, pad, max_new_tokens, num_beams), first
    return greedy_search(first, state, step, end, max_new_tokens), first


def titles(ids, end):
    """Each row's tokens before its end token."""
    return [[int(token) for token in row][: list(row).index(end) if end in list(row) else len(row)] for row in ids]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_export_writes_what_the_dygraph_model_writes(case, tmp_path):
    """First log-probabilities at 1e-5; greedy and beam search (4 beams: the state's rows reordered each step)
    give PaddleNLP generate()'s titles. The end token is made likely so that titles end at different steps."""
    model = seq2seq(case)
    bias = model.lm_head.decoder.bias
    bias.set_value(bias + 3.0 * (paddle.arange(SMALL["vocab_size"]) == SMALL["eos_token_id"]).astype(bias.dtype))
    source, _ = source_and_target()
    mask = (source != 0).astype("int64")
    ids, first = exported_search(model, tmp_path, source.numpy(), mask.numpy())
    start = paddle.full([2, 1], SMALL["decoder_start_token_id"], dtype="int64")
    logits = model(source, mask, decoder_input_ids=start)
    np.testing.assert_allclose(first, paddle.nn.functional.log_softmax(logits[:, -1], axis=-1).numpy(), atol=1e-5)
    end = SMALL["eos_token_id"]
    for beams, found in ((1, ids), (4, exported_search(model, tmp_path / "beams", source.numpy(), mask.numpy(), num_beams=4)[0])):
        strategy = {"decode_strategy": "beam_search", "num_beams": beams} if beams > 1 else {"decode_strategy": "greedy_search"}
        expected, _ = model.generate(source, attention_mask=mask, max_new_tokens=10, **strategy)
        assert titles(found, end) == titles(expected.numpy(), end), f"{beams} beam(s)"


def markov_step(table):
    """A step function whose next-token log-probabilities depend on the last token only (state: unused)."""

    def step(tokens, state):
        return table[tokens], [part for part in state]

    return step


def test_beam_search_keeps_rows_and_beams_apart():
    rng = np.random.default_rng(1)
    table = np.log(rng.dirichlet(np.ones(7), size=7))
    first = np.log(rng.dirichlet(np.ones(7), size=3))
    alone = [beam_search(first[row : row + 1], [np.zeros((1, 2))], markov_step(table), 6, 0, 5, 3)[0] for row in range(3)]
    together = beam_search(first, [np.zeros((3, 2))], markov_step(table), 6, 0, 5, 3)
    assert titles(together, 6) == titles(alone, 6)


@pytest.mark.slow
def test_tools_export_and_infer_write_the_titles_tools_eval_writes(tmp_path, capsys):
    """A trained title writer: tools/infer.py on its export writes, text for text, the greedy titles that
    tools/eval.py writes from its checkpoint, and scores them alike."""
    import sys

    from conftest import PROJECT_ROOT, write_tiny_config
    from test_training import run

    from fastformer_zoo.data.pairs import prepare_pairs
    from fastformer_zoo.data.synthetic import write_synthetic_reviews
    from fastformer_zoo.engine.tasks import Seq2SeqTask

    splits = [write_synthetic_reviews(tmp_path / f"{name}.json", size, seed) for name, size, seed in (("a", 160, 1), ("b", 20, 2), ("c", 30, 3))]
    prepare_pairs(splits, tmp_path / "pairs", (0, 0, 0))
    config = write_tiny_config(tmp_path / "c.yaml", tmp_path / "pairs", tmp_path / "out", Global={"task": "seq2seq", "epochs": 1},
                               Data={"max_target_len": 8})  # fmt: skip
    run(config, task_class=Seq2SeqTask)
    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    import eval as eval_tool
    import export_model
    import infer

    best, export = tmp_path / "out" / "best", tmp_path / "export"
    export_model.main(["-c", str(config), "-o", f"Global.pretrained_model={best}", f"Global.save_inference_dir={export}"])
    settings = json.loads((export / "inference_config.json").read_text())
    assert settings["task"] == "seq2seq" and settings["max_target_len"] == 8
    titles = tmp_path / "titles.jsonl"
    capsys.readouterr()
    eval_tool.main(["-c", str(config), "-o", f"Global.checkpoint={best}", f"Global.predictions_file={titles}"])
    reported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    infer.main(["--model_dir", str(export), "--data_dir", str(tmp_path / "pairs" / "test.jsonl"), "--cpu_threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    written = [json.loads(line)["summary"] for line in lines[:-1]]
    assert written == [json.loads(line)["summary"] for line in titles.read_text().splitlines()]
    assert lines[-1].startswith(f"rouge1: {reported['rouge1']:.4f} rouge2: {reported['rouge2']:.4f} rougeL: {reported['rougeL']:.4f}")
    # Flags a writer's export does not offer, a damaged export and a bad batch size: one line each, no traceback.
    from conftest import assert_one_line_error, run_main

    test_file = str(tmp_path / "pairs" / "test.jsonl")
    for flags, fragment in ((["--benchmark", "True"], "--benchmark True: not offered"), (["--batch_size", "0"], "--batch_size 0"),
                            (["--enable_mkldnn", "True"], "--enable_mkldnn True")):  # fmt: skip
        assert_one_line_error(run_main(infer.main, ["--model_dir", str(export), "--data_dir", test_file, *flags], capsys), fragment, alone=False)
    for empty in ("", "   "):  # a prompt of no token would fail inside Paddle Inference
        assert_one_line_error(run_main(infer.main, ["--model_dir", str(export), "--text", "Fine.", "--text", empty], capsys),
                              "text 2 is empty", alone=False)  # fmt: skip
    (export / "generation_step.pdiparams").unlink()
    assert_one_line_error(run_main(infer.main, ["--model_dir", str(export), "--text", "Fine."], capsys), "generation_step.pdiparams: missing", alone=False)
