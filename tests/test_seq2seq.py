"""FastformerForConditionalGeneration: decoding with the cache equals teacher forcing, generate() against a
hand-written greedy loop, beam search, save/load through the Auto class, and a pretrained encoder."""
import numpy as np
import paddle
import pytest

from paddlenlp_fastformer import FastformerConfig, FastformerForConditionalGeneration, FastformerForMaskedLM

SMALL = dict(vocab_size=60, hidden_size=32, num_attention_heads=4, intermediate_size=48, hidden_dropout_prob=0.0,
             max_position_embeddings=96, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2)  # fmt: skip
CASES = {
    "additive, softmax cross": {},
    "additive, additive cross": {"cross_attention_type": "additive"},
    "lucidrains, softmax cross": {"formulation": "lucidrains"},
    "transformer": {"attention_type": "softmax"},
}


def seq2seq(case: str, **changes) -> FastformerForConditionalGeneration:
    paddle.seed(0)
    model = FastformerForConditionalGeneration(FastformerConfig(**{**SMALL, **CASES[case], **changes}))
    model.eval()
    return model


def source_and_target():
    paddle.seed(1)
    source = paddle.randint(5, SMALL["vocab_size"], [2, 30])
    source[1, 24:] = 0  # a shorter source, padded
    return source, paddle.randint(5, SMALL["vocab_size"], [2, 12])


@pytest.mark.parametrize("case", CASES)
def test_decoding_with_the_cache_equals_teacher_forcing(case):
    model = seq2seq(case)
    source, target = source_and_target()
    loss, logits = model(source, labels=target)
    assert np.isfinite(float(loss))
    decoder_input = model.shift_right(target)
    assert (decoder_input[:, 0] == SMALL["decoder_start_token_id"]).all() and (decoder_input[:, 1:] == target[:, :-1]).all()
    encoded, mask = model.get_encoder()(source, source != 0), source != 0
    cache, steps = None, []
    for t in range(target.shape[1]):
        step, cache = model(attention_mask=mask, encoder_output=encoded, decoder_input_ids=decoder_input[:, t : t + 1], cache=cache, use_cache=True)
        steps.append(step.numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), logits.numpy(), atol=1e-5)


@pytest.mark.parametrize("case", ["additive, additive cross", "transformer"])
def test_forward_returns_both_sides_states_and_weights_and_takes_embeddings(case):
    """Issue 28: the encoder-decoder's forward had no output_hidden_states, output_attentions or inputs_embeds."""
    model = seq2seq(case)
    source, target = source_and_target()
    out = model(source, labels=target, output_hidden_states=True, output_attentions=True, return_dict=True)
    encoder = model.fastformer(source, source != 0, output_hidden_states=True, output_attentions=True, return_dict=True)
    for ours, alone in zip(out.encoder_hidden_states + out.encoder_attentions, encoder.hidden_states + encoder.attentions):
        np.testing.assert_array_equal(ours.numpy(), alone.numpy())
    np.testing.assert_allclose(model.lm_head(out.decoder_hidden_states[-1]).numpy(), out.logits.numpy(), atol=1e-6)
    assert out.decoder_attentions[0].shape[-2:] == [12, 12] and out.cross_attentions is None
    given = model(attention_mask=source != 0, encoder_output=out.encoder_last_hidden_state, labels=target,
                  output_hidden_states=True, output_attentions=True, return_dict=True)  # fmt: skip
    assert given.encoder_hidden_states is None and given.encoder_attentions is None  # the encoder did not run here
    np.testing.assert_array_equal(given.decoder_attentions[1].numpy(), out.decoder_attentions[1].numpy())
    embedded = model(inputs_embeds=model.fastformer.get_input_embeddings()(source), attention_mask=source != 0,
                     decoder_inputs_embeds=model.decoder.get_input_embeddings()(model.shift_right(target)), labels=target)  # fmt: skip
    np.testing.assert_array_equal(embedded[0].numpy(), out.loss.numpy())


def test_the_source_padding_is_not_read():
    model = seq2seq("additive, softmax cross")
    source, target = source_and_target()
    changed = source.clone()
    changed[1, 24:] = 9  # the padding's ids, under a mask that still says padding
    mask = (source != 0).astype("int64")
    first = model(source, attention_mask=mask, labels=target)[1]
    second = model(changed, attention_mask=mask, labels=target)[1]
    np.testing.assert_allclose(first.numpy()[1], second.numpy()[1], atol=1e-6)


@pytest.mark.parametrize("case", ["additive, softmax cross", "additive, additive cross"])
def test_greedy_generate_equals_a_hand_written_greedy_loop(case):
    model = seq2seq(case, eos_token_id=None)
    source, _ = source_and_target()
    generated, _ = model.generate(source, decode_strategy="greedy_search", max_new_tokens=7)
    target = paddle.full([2, 1], SMALL["decoder_start_token_id"], dtype="int64")
    for _ in range(7):  # no cache: the source and the whole target again at every step
        logits = model(source, decoder_input_ids=target)
        target = paddle.concat([target, logits[:, -1].argmax(axis=-1, keepdim=True)], axis=1)
    assert np.array_equal(generated.numpy(), target[:, 1:].numpy())


def test_beam_search_returns_valid_sequences():
    model = seq2seq("additive, softmax cross")
    source, _ = source_and_target()
    ids, scores = model.generate(source, decode_strategy="beam_search", num_beams=4, num_return_sequences=2, max_new_tokens=8)
    assert ids.shape[0] == 4 and ids.shape[1] <= 8 and np.isfinite(scores.numpy()).all()
    assert ((ids >= 0) & (ids < SMALL["vocab_size"])).all()


def test_save_load_and_auto_round_trip(tmp_path):
    from paddlenlp.transformers import AutoModelForConditionalGeneration

    model = seq2seq("additive, additive cross")
    model.save_pretrained(str(tmp_path))
    loaded = AutoModelForConditionalGeneration.from_pretrained(str(tmp_path))
    assert type(loaded) is FastformerForConditionalGeneration and loaded.config.cross_attention_type == "additive"
    loaded.eval()
    source, target = source_and_target()
    np.testing.assert_array_equal(loaded(source, labels=target)[1].numpy(), model(source, labels=target)[1].numpy())


def test_a_pretrained_masked_lm_starts_the_encoder(tmp_path):
    paddle.seed(5)
    pretrained = FastformerForMaskedLM(FastformerConfig(**SMALL))
    pretrained.save_pretrained(str(tmp_path))
    model = FastformerForConditionalGeneration.from_pretrained(str(tmp_path))
    for name, weight in pretrained.fastformer.state_dict().items():
        np.testing.assert_array_equal(model.fastformer.state_dict()[name].numpy(), weight.numpy(), err_msg=name)
    assert not model.fastformer.causal and model.decoder.causal


# ------------------------------------------------------------------------------------------ training from YAML
@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Synthetic reviews and their titles as a pairs folder (train 240, dev 40, test 40)."""
    from fastformer_zoo.data.pairs import prepare_pairs
    from fastformer_zoo.data.synthetic import write_synthetic_reviews

    root = tmp_path_factory.mktemp("pairs")
    splits = [write_synthetic_reviews(root / f"{name}.json", size, seed) for name, size, seed in (("a", 240, 1), ("b", 40, 2), ("c", 40, 3))]
    prepare_pairs(splits, root / "pairs", (0, 0, 0))
    return root / "pairs"


def test_tools_train_learns_titles_and_its_best_model_writes_them(tmp_path, pairs_dir, capsys):
    from conftest import write_tiny_config
    from test_training import run

    from fastformer_zoo.engine.tasks import Seq2SeqTask
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    config = write_tiny_config(tmp_path / "c.yaml", pairs_dir, tmp_path / "out", Global={"task": "seq2seq", "epochs": 2},
                               Data={"max_target_len": 12})  # fmt: skip
    result, losses = run(config, task_class=Seq2SeqTask)
    assert len(losses) == 60 and losses[60] < losses[1]
    assert [record["step"] for record in result["history"]] == [30, 60] and result["history"][1]["loss"] < result["history"][0]["loss"]
    model = FastformerForConditionalGeneration.from_pretrained(str(tmp_path / "out" / "best"))
    tokenizer = FastformerTokenizer.from_pretrained(str(tmp_path / "out" / "best"))
    model.eval()
    source = tokenizer(["The sound is great and the battery lasts."], return_tensors="pd", return_token_type_ids=False)
    ids, _ = model.generate(source["input_ids"], attention_mask=source["attention_mask"], max_new_tokens=8)
    assert ids.shape[0] == 1 and (model.config.decoder_start_token_id, model.config.eos_token_id) == (tokenizer.cls_token_id, tokenizer.sep_token_id)

    # tools/eval.py writes a title for every test text and scores them; its ROUGE is that of the written titles.
    import json
    import sys

    from conftest import PROJECT_ROOT

    from fastformer_zoo.scoring import rouge_scores

    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    import eval as eval_tool

    predictions = tmp_path / "titles.jsonl"
    eval_tool.main(["-c", str(config), "-o", f"Global.checkpoint={tmp_path / 'out' / 'best'}", f"Global.predictions_file={predictions}", "--num_beams", "2"])
    reported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == reported["num_examples"] == 40 and reported["num_beams"] == 2
    recomputed = rouge_scores([row["summary"] for row in rows], [row["reference"] for row in rows])
    assert {name: reported[name] for name in recomputed} == recomputed and 0 <= recomputed["rougeL"] <= 1
    perfect = rouge_scores([row["reference"] for row in rows], [row["reference"] for row in rows])
    assert perfect["rouge1"] == perfect["rougeL"] == 1.0


def test_pairs_without_a_title_are_a_one_line_error(tmp_path, capsys):
    import sys

    from conftest import PROJECT_ROOT, assert_one_line_error, run_main

    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    import prepare_pairs as prepare_pairs_tool

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"review_body": "a text without a title"}\n')
    result = run_main(prepare_pairs_tool.main, ["--input", str(rows), str(rows), str(rows), "--output-dir", str(tmp_path / "p")], capsys)
    assert_one_line_error(result, str(rows), "summary")


def test_construction_leaves_the_config_alone_and_refuses_a_padding_start_token():
    from paddlenlp_fastformer import FastformerForCausalLM
    from paddlenlp_fastformer.configuration import FastformerConfigError

    config = FastformerConfig(**SMALL)
    FastformerForConditionalGeneration(config)
    FastformerForCausalLM(config)
    assert not config.is_decoder and not config.is_encoder_decoder
    with pytest.raises(FastformerConfigError, match="decoder_start_token_id"):
        FastformerForConditionalGeneration(FastformerConfig(**{**SMALL, "decoder_start_token_id": 0}))
    with pytest.raises(ValueError, match="decoder_input_ids, or labels"):
        seq2seq("additive, softmax cross")(source_and_target()[0])


def test_resizing_the_vocabulary_resizes_every_table_of_both_decoder_heads():
    from paddlenlp_fastformer import FastformerForCausalLM

    model = seq2seq("additive, softmax cross")
    model.resize_token_embeddings(70)
    shapes = [model.fastformer.get_input_embeddings().weight.shape[0], model.decoder.get_input_embeddings().weight.shape[0]]
    assert shapes + [model.lm_head.decoder.weight.shape[0], model.config.vocab_size] == [70, 70, 70, 70]
    assert model(paddle.to_tensor([[65, 6]]), labels=paddle.to_tensor([[69, 3]]))[1].shape == [1, 2, 70]
    lm = FastformerForCausalLM(FastformerConfig(**SMALL))
    lm.resize_token_embeddings(70)
    assert lm(paddle.to_tensor([[65, 69]])).shape == [1, 2, 70]


def test_summaries_refuse_an_empty_text_before_generating():
    """The batching loop that the checkpoint's generate() and the export's graphs share: an empty text is one line,
    never a prompt of no token."""
    from fastformer_zoo.engine.summaries import summaries_in_batches
    from fastformer_zoo.errors import UserError
    from paddlenlp_fastformer import FastformerTokenizer

    tokenizer = FastformerTokenizer.build_from_corpus(["a fine review", "another one"])

    def generate_ids(input_ids, attention_mask):
        raise AssertionError("generate() was reached")

    for empty in ("", "  \n"):
        with pytest.raises(UserError, match="text 2 is empty; expected a text"):
            summaries_in_batches(["a fine review", empty], tokenizer, 8, 2, generate_ids)
