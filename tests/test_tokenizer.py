import json
import os

import hypothesis
import hypothesis.strategies as st
import numpy as np
import paddle
import pytest

from paddlenlp_fastformer.tokenizer import SPECIAL_TOKEN_IDS, FastformerTokenizer

SPECIALS = ["[PAD]", "[UNK]"]
# What every vocabulary of build_from_corpus starts with, at fixed ids (SPECIAL_TOKEN_IDS).
BUILT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "movie", "was", "good", "bad", ".", "!", "it", "'", "s"]


@pytest.fixture
def tokenizer():
    return FastformerTokenizer(vocab=SPECIALS + WORDS)


def write_vocab(path, tokens, newline="\n"):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(token + newline for token in tokens))
    return str(path)


# --- tokenization -----------------------------------------------------------


def test_tokenize_splits_words_and_punctuation_runs_and_lower_cases(tokenizer):
    text = "Don't STOP!!! It's 3.14, ok? snake_case\tNew\nline"
    assert tokenizer.tokenize(text) == [
        "don", "'", "t", "stop", "!!!", "it", "'", "s", "3", ".", "14", ",", "ok", "?", "snake_case", "new", "line",
    ]  # fmt: skip


def test_tokenize_unicode_lower_cases_the_whole_string(tokenizer):
    # Whole-string lower() turns a word-final capital sigma into "ς"; per-character lowering would give "σ".
    assert tokenizer.tokenize("Café NAÏVE — 東京 ΟΔΟΣ") == ["café", "naïve", "—", "東京", "οδος"]


def test_do_lower_case_false_keeps_case():
    tokenizer = FastformerTokenizer(vocab=SPECIALS + ["Good"], do_lower_case=False)
    assert tokenizer.tokenize("Good good!") == ["Good", "good", "!"]
    assert tokenizer("Good good")["input_ids"] == [2, 1]


def test_special_tokens_survive_lower_casing():
    tokenizer = FastformerTokenizer.build_from_corpus(["the movie is good"])
    assert tokenizer.tokenize("the [MASK] is GOOD") == ["the", "[MASK]", "is", "good"]
    assert tokenizer("the [MASK] is good")["input_ids"][1] == tokenizer.mask_token_id == SPECIAL_TOKEN_IDS["mask_token"]
    assert tokenizer.tokenize("[UNK] [PAD] [CLS] [SEP]") == ["[UNK]", "[PAD]", "[CLS]", "[SEP]"]
    # Only exact special-token strings: a lower-case look-alike is ordinary text.
    assert tokenizer.tokenize("[mask]") == ["[", "mask", "]"]


def test_added_upper_case_tokens_match(tmp_path):
    tokenizer = FastformerTokenizer.build_from_corpus(["the movie is good"])
    tokenizer.add_tokens(["USB-C"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["[SPOILER]"]})
    expected = ["the", "usb-c", "is", "[SPOILER]"]  # as PaddleNLP does, an added ordinary token is lower-cased
    assert tokenizer.tokenize("The USB-C is [SPOILER]") == expected
    ids = tokenizer("The USB-C is [SPOILER]")["input_ids"]
    assert ids[1] == tokenizer.convert_tokens_to_ids("usb-c") >= tokenizer.vocab_size and 1 not in ids
    tokenizer.save_pretrained(str(tmp_path))
    assert FastformerTokenizer.from_pretrained(str(tmp_path)).tokenize("The USB-C is [SPOILER]") == expected


def test_an_older_vocabulary_without_the_markers_leaves_them_unset():
    tokenizer = FastformerTokenizer(vocab=SPECIALS + ["good"])
    assert tokenizer.mask_token_id is None and tokenizer.cls_token_id is None
    assert tokenizer.tokenize("[MASK] good") == ["[", "mask", "]", "good"]


def test_new_and_reloaded_tokenizers_split_special_token_strings_alike(tmp_path):
    tokenizer = FastformerTokenizer(vocab=SPECIALS + ["x"], do_lower_case=False)
    tokenizer.save_pretrained(str(tmp_path))
    reloaded = FastformerTokenizer.from_pretrained(str(tmp_path))
    text = "x [PAD] x"
    assert tokenizer.tokenize(text) == ["x", "[PAD]", "x"]
    assert reloaded.tokenize(text) == tokenizer.tokenize(text)


def _full_route_ids(tokenizer, texts, max_length):
    return tokenizer(texts, max_length=max_length, truncation=True, padding=False,
                     return_attention_mask=False, return_token_type_ids=False)["input_ids"]  # fmt: skip


@pytest.mark.parametrize("do_lower_case", [True, False])
@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(texts=st.lists(st.text(alphabet=st.sampled_from(list("aBc É.!'-_σΣ [MASK]\t\n5")) | st.characters(), max_size=40), min_size=1, max_size=5),
                  max_length=st.none() | st.integers(1, 12))  # fmt: skip
def test_texts_to_ids_equals_the_full_route(do_lower_case, texts, max_length):
    tokenizer = FastformerTokenizer.build_from_corpus(["The movie was good . it's BAD ! σ Σ É é"], do_lower_case=do_lower_case)
    assert tokenizer.texts_to_ids(texts, max_length) == _full_route_ids(tokenizer, texts, max_length)


def test_texts_to_ids_finds_special_and_added_tokens_in_any_case(tmp_path):
    tokenizer = FastformerTokenizer.build_from_corpus(["new york is big"])
    tokenizer.add_tokens(["new york"])
    texts = ["NEW YORK is big", "a [MASK] b", "a [mask] b", "plain text", " ".join(["word"] * 600)]
    assert tokenizer.texts_to_ids(texts) == _full_route_ids(tokenizer, texts, None)
    assert len(tokenizer.texts_to_ids(texts)[-1]) == tokenizer.model_max_length  # cut where truncation cuts


def test_texts_to_ids_equals_the_full_route_on_real_reviews():
    from conftest import default_data_source
    from fastformer_zoo.data.readers import iter_reviews

    source = default_data_source()
    if source is None:
        pytest.skip("the real review sample (../shared/data) is absent")
    texts = [example["text"] for example in iter_reviews(str(source))][:2000]
    tokenizer = FastformerTokenizer.build_from_corpus(texts[::2], max_vocab_size=5000)
    for max_length in (None, 64):
        assert tokenizer.texts_to_ids(texts, max_length) == _full_route_ids(tokenizer, texts, max_length)


def test_unknown_words_map_to_unk_id(tokenizer):
    assert tokenizer.unk_token_id == 1
    assert tokenizer.pad_token_id == 0
    assert tokenizer("The zebra was GOOD")["input_ids"] == [2, 1, 4, 5]
    assert tokenizer.convert_tokens_to_ids(["movie", "zebra"]) == [3, 1]


def test_ids_to_tokens_and_decode(tokenizer):
    assert tokenizer.convert_ids_to_tokens([2, 3, 1]) == ["the", "movie", "[UNK]"]
    # Ids past the vocabulary (and negative ones, which must not wrap around) decode as unknown.
    assert tokenizer.convert_ids_to_tokens([len(SPECIALS + WORDS), -1]) == ["[UNK]", "[UNK]"]
    assert tokenizer.convert_tokens_to_string(["the", "movie", "."]) == "the movie ."
    assert tokenizer.decode([2, 3, 5]) == "the movie good"


def test_vocab_size_and_get_vocab(tokenizer):
    assert tokenizer.vocab_size == len(SPECIALS + WORDS)
    assert len(tokenizer) == len(SPECIALS + WORDS)
    assert tokenizer.get_vocab() == {token: i for i, token in enumerate(SPECIALS + WORDS)}


def test_no_special_tokens_are_added_and_pairs_are_concatenated(tokenizer):
    assert tokenizer("the movie")["input_ids"] == [2, 3]
    assert tokenizer("the movie", "was bad")["input_ids"] == [2, 3, 4, 6]
    assert tokenizer.build_inputs_with_special_tokens([5, 6], [7]) == [5, 6, 7]
    assert tokenizer.num_special_tokens_to_add(pair=True) == 0


# --- build_from_corpus ------------------------------------------------------

CORPUS = ["The movie was good.", "the MOVIE was bad!", "Good, good movie.", "zebra"]


def test_build_from_corpus_orders_by_count_then_alphabetically():
    tokenizer = FastformerTokenizer.build_from_corpus(CORPUS)
    # counts: movie 3, good 3, the 2, was 2, . 2, then 1 each: ! , bad zebra
    assert tokenizer.ids_to_tokens == BUILT_SPECIALS + [
        "good", "movie", ".", "the", "was", "!", ",", "bad", "zebra",
    ]  # fmt: skip


def test_build_from_corpus_is_independent_of_text_order():
    forward = FastformerTokenizer.build_from_corpus(CORPUS)
    backward = FastformerTokenizer.build_from_corpus(reversed(CORPUS))
    assert backward.get_vocab() == forward.get_vocab()


def test_build_from_corpus_min_freq():
    tokenizer = FastformerTokenizer.build_from_corpus(CORPUS, min_freq=2)
    assert tokenizer.ids_to_tokens == BUILT_SPECIALS + ["good", "movie", ".", "the", "was"]
    assert tokenizer("zebra")["input_ids"] == [1]


def test_build_from_corpus_max_vocab_size_counts_special_tokens():
    tokenizer = FastformerTokenizer.build_from_corpus(CORPUS, max_vocab_size=8)
    assert tokenizer.ids_to_tokens == BUILT_SPECIALS + ["good", "movie", "."]
    assert FastformerTokenizer.build_from_corpus(CORPUS, max_vocab_size=6).vocab_size == 6


def test_build_from_corpus_uses_init_kwargs_for_splitting():
    tokenizer = FastformerTokenizer.build_from_corpus(["A a A"], do_lower_case=False)
    assert tokenizer.ids_to_tokens == BUILT_SPECIALS + ["A", "a"]
    assert tokenizer.do_lower_case is False


def test_build_from_corpus_skips_special_tokens_found_in_text():
    tokenizer = FastformerTokenizer.build_from_corpus(["[PAD] [UNK] word [MASK] [PAD]"])
    assert tokenizer.ids_to_tokens == BUILT_SPECIALS + ["word"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_vocab_size": 5}, "max_vocab_size"),
        ({"max_vocab_size": 0}, "max_vocab_size"),
        ({"min_freq": 0}, "min_freq"),
    ],
)
def test_build_from_corpus_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FastformerTokenizer.build_from_corpus(CORPUS, **kwargs)


def test_build_from_corpus_rejects_a_single_string():
    with pytest.raises(TypeError, match="iterable of strings"):
        FastformerTokenizer.build_from_corpus("the movie")


# --- __call__ -----------------------------------------------------------------

BATCH = ["The movie was good.", "Bad!", "It's the movie"]


def test_batch_without_padding_keeps_lengths_and_has_no_token_type_ids(tokenizer):
    encoded = tokenizer(BATCH)
    assert set(encoded.keys()) == {"input_ids", "attention_mask"}
    assert encoded["input_ids"] == [[2, 3, 4, 5, 7], [6, 8], [9, 10, 11, 2, 3]]
    assert encoded["attention_mask"] == [[1] * 5, [1] * 2, [1] * 5]


@pytest.mark.parametrize("padding", [True, "longest"])
def test_padding_longest_pads_right_with_pad_id_and_masks_padding(tokenizer, padding):
    encoded = tokenizer(BATCH, padding=padding)
    assert encoded["input_ids"] == [[2, 3, 4, 5, 7], [6, 8, 0, 0, 0], [9, 10, 11, 2, 3]]
    assert encoded["attention_mask"] == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_padding_max_length_with_truncation(tokenizer):
    encoded = tokenizer(BATCH, padding="max_length", truncation=True, max_length=3)
    assert encoded["input_ids"] == [[2, 3, 4], [6, 8, 0], [9, 10, 11]]
    assert encoded["attention_mask"] == [[1, 1, 1], [1, 1, 0], [1, 1, 1]]


def test_truncation_without_max_length_uses_model_max_length(tokenizer):
    assert tokenizer.model_max_length == 512
    encoded = tokenizer("the " * 600, truncation=True)
    assert encoded["input_ids"] == [2] * 512


def test_return_tensors_np(tokenizer):
    encoded = tokenizer(BATCH, padding=True, return_tensors="np")
    assert isinstance(encoded["input_ids"], np.ndarray)
    assert encoded["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(encoded["input_ids"], [[2, 3, 4, 5, 7], [6, 8, 0, 0, 0], [9, 10, 11, 2, 3]])
    np.testing.assert_array_equal(encoded["attention_mask"], [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])


def test_return_tensors_pd(tokenizer):
    encoded = tokenizer(BATCH, padding="max_length", truncation=True, max_length=4, return_tensors="pd")
    assert isinstance(encoded["input_ids"], paddle.Tensor)
    assert encoded["input_ids"].dtype == paddle.int64
    assert encoded["input_ids"].shape == [3, 4]
    np.testing.assert_array_equal(encoded["input_ids"].numpy(), [[2, 3, 4, 5], [6, 8, 0, 0], [9, 10, 11, 2]])
    np.testing.assert_array_equal(encoded["attention_mask"].numpy(), [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]])


def test_single_text_with_return_tensors_gets_a_batch_axis(tokenizer):
    encoded = tokenizer("the movie", return_tensors="np")
    np.testing.assert_array_equal(encoded["input_ids"], [[2, 3]])


# --- empty input ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \t\n"])
def test_empty_text_gives_no_tokens(tokenizer, text):
    assert tokenizer.tokenize(text) == []
    assert tokenizer(text)["input_ids"] == []
    assert tokenizer(text)["attention_mask"] == []


def test_empty_text_is_padded_like_any_other(tokenizer):
    encoded = tokenizer(["", "the movie"], padding=True, return_tensors="np")
    np.testing.assert_array_equal(encoded["input_ids"], [[0, 0], [2, 3]])
    np.testing.assert_array_equal(encoded["attention_mask"], [[0, 0], [1, 1]])
    single = tokenizer("", padding="max_length", max_length=3)
    assert single["input_ids"] == [0, 0, 0]
    assert single["attention_mask"] == [0, 0, 0]
    as_tensor = tokenizer("", padding="max_length", max_length=2, return_tensors="pd")
    np.testing.assert_array_equal(as_tensor["input_ids"].numpy(), [[0, 0]])
    assert as_tensor["input_ids"].dtype == paddle.int64
    assert tokenizer.pad(tokenizer(""), padding="max_length", max_length=2)["attention_mask"] == [0, 0]


# --- offsets ---------------------------------------------------------------------

REVIEWS = [
    "Hello World!",
    "Great sound, but the battery died after 2 days. Would NOT buy again!",
    "The [MASK] is fine; shipping was FAST (3 days)...",
    "It's a 5-star product: works as advertised. 10/10",
    "Café au lait, naïve résumé — très BIEN!!",
    "Ο ΉΧΟΣ ΕΊΝΑΙ καλός. ΟΔΟΣ σοφίας",
    "東京 is big, [CLS]and[SEP] so is [UNK]",
    "  \tleading and trailing space\n ",
]


def _offsets_tokenizer(**kwargs):
    return FastformerTokenizer.build_from_corpus(REVIEWS[::2], **kwargs)


def test_offsets_map_each_token_back_to_its_characters():
    """Issue 28: PaddleNLP's get_offset_mapping gave "Hello World!" (0, 11), (8, 11), (11, 12) and raised on Greek."""
    tokenizer = _offsets_tokenizer()
    assert tokenizer("Hello World!", return_offsets_mapping=True)["offset_mapping"] == [(0, 5), (6, 11), (11, 12)]
    for text in REVIEWS:
        encoded = tokenizer(text, return_offsets_mapping=True)
        tokens = tokenizer.tokenize(text)
        assert len(encoded["offset_mapping"]) == len(encoded["input_ids"]) == len(tokens), text
        for token, (start, end) in zip(tokens, encoded["offset_mapping"]):
            read = text[start:end] if token in tokenizer.all_special_tokens else text[start:end].lower()
            assert read == token, (text, token, start, end)


def test_offsets_of_pairs_and_batches_count_from_each_text_start():
    tokenizer = _offsets_tokenizer()
    encoded = tokenizer(["Hello World!", "ΟΔΟΣ."], ["Wow!!", "A [MASK]"], return_offsets_mapping=True)
    assert encoded["offset_mapping"] == [[(0, 5), (6, 11), (11, 12), (0, 3), (3, 5)], [(0, 4), (4, 5), (0, 1), (2, 8)]]


def test_offsets_equal_bert_tokenizers_where_both_split_alike(tmp_path):
    from paddlenlp.transformers import BertTokenizer

    tokenizer = FastformerTokenizer.build_from_corpus(REVIEWS)  # every word known: no [UNK] for BERT's word pieces
    tokenizer.save_pretrained(str(tmp_path))
    bert = BertTokenizer(str(tmp_path / "vocab.txt"), do_lower_case=True)
    compared = 0
    for text in REVIEWS:  # BERT splits every punctuation mark alone, strips accents and cuts CJK per character
        if tokenizer.tokenize(text) != bert.tokenize(text):
            continue
        expected = bert(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
        assert tokenizer(text, return_offsets_mapping=True)["offset_mapping"] == expected, text
        compared += 1
    assert compared >= 3


def test_offsets_map_real_reviews_back_to_their_words():
    from conftest import default_data_source
    from fastformer_zoo.data.readers import iter_reviews

    source = default_data_source()
    if source is None:
        pytest.skip("the real review sample (../shared/data) is absent")
    texts = [example["text"] for example in iter_reviews(str(source))][:500]
    tokenizer = FastformerTokenizer.build_from_corpus(texts[::2], max_vocab_size=3000)
    for text, offsets in zip(texts, tokenizer(texts, return_offsets_mapping=True)["offset_mapping"]):
        assert [text[start:end].lower() for start, end in offsets] == tokenizer.tokenize(text), text


@pytest.mark.parametrize("do_lower_case", [True, False])
@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(text=st.text(alphabet=st.sampled_from(list("aBc É.!'-_σΣİ [MASK]\t\n5")) | st.characters(), max_size=40))
def test_offsets_hold_for_any_text(do_lower_case, text):
    tokenizer = FastformerTokenizer.build_from_corpus(["The movie was good . it's BAD ! σ Σ É é"], do_lower_case=do_lower_case)
    tokenizer.add_tokens(["USB-C"])
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    tokens = tokenizer.tokenize(text)
    assert len(offsets) == len(tokens)
    previous = 0
    for token, (start, end) in zip(tokens, offsets):
        assert previous <= start < end <= len(text)
        previous = start  # "İ" lower-cases to two characters, so two tokens can share it
        read = text[start:end].lower() if do_lower_case and token not in tokenizer.all_special_tokens else text[start:end]
        # Whole-text lower-casing picks the final sigma by context; a slice of it may read the other form.
        assert token.replace("ς", "σ") in read.replace("ς", "σ"), (token, read)


# --- save_pretrained / from_pretrained ---------------------------------------------

SAMPLES = ["The movie was GOOD!", "It's a zebra.", "", "ΟΔΟΣ"]


def assert_same_tokenizer(reloaded, original):
    assert isinstance(reloaded, FastformerTokenizer)
    assert reloaded.get_vocab() == original.get_vocab()
    assert reloaded.do_lower_case == original.do_lower_case
    assert reloaded.model_max_length == original.model_max_length
    assert reloaded(SAMPLES)["input_ids"] == original(SAMPLES)["input_ids"]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_round_trip_from_in_memory_vocab(tmp_path, do_lower_case):
    original = FastformerTokenizer.build_from_corpus(CORPUS + SAMPLES, do_lower_case=do_lower_case)
    original.save_pretrained(str(tmp_path))

    with open(tmp_path / "vocab.txt", encoding="utf-8") as f:
        assert f.read() == "".join(token + "\n" for token in original.ids_to_tokens)
    with open(tmp_path / "tokenizer_config.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["tokenizer_class"] == "FastformerTokenizer"
    assert config["do_lower_case"] is do_lower_case
    assert "vocab" not in config
    assert "vocab_file" not in config
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]

    assert_same_tokenizer(FastformerTokenizer.from_pretrained(str(tmp_path)), original)


def test_round_trip_from_vocab_file(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    # CRLF line endings must not leak "\r" into the tokens.
    vocab_file = write_vocab(source / "words.txt", SPECIALS + WORDS, newline="\r\n")
    original = FastformerTokenizer(vocab_file=vocab_file, model_max_length=128)
    assert original.ids_to_tokens == SPECIALS + WORDS

    saved = tmp_path / "saved"
    original.save_pretrained(str(saved))
    reloaded = FastformerTokenizer.from_pretrained(str(saved))
    assert_same_tokenizer(reloaded, original)
    assert reloaded.model_max_length == 128

    # Saving again over the files it was loaded from must keep them intact.
    reloaded.save_pretrained(str(saved))
    assert_same_tokenizer(FastformerTokenizer.from_pretrained(str(saved)), original)


def test_failed_save_leaves_previous_vocab_and_no_temp_file(tmp_path, tokenizer, monkeypatch):
    tokenizer.save_pretrained(str(tmp_path))
    before = (tmp_path / "vocab.txt").read_bytes()
    bigger = FastformerTokenizer(vocab=SPECIALS + WORDS + ["extra"])

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        bigger.save_resources(str(tmp_path))
    assert (tmp_path / "vocab.txt").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["special_tokens_map.json", "tokenizer_config.json", "vocab.txt"]


# --- errors -------------------------------------------------------------------------


def test_missing_vocab_file_names_the_path(tmp_path):
    path = str(tmp_path / "nowhere" / "vocab.txt")
    with pytest.raises(FileNotFoundError) as excinfo:
        FastformerTokenizer(vocab_file=path)
    assert path in str(excinfo.value)


@pytest.mark.parametrize("tokens", [["[UNK]", "[PAD]", "a"], ["a", "[PAD]", "[UNK]"], ["[PAD]"], []])
def test_vocab_file_without_leading_special_tokens_is_rejected(tmp_path, tokens):
    path = write_vocab(tmp_path / "vocab.txt", tokens)
    with pytest.raises(ValueError) as excinfo:
        FastformerTokenizer(vocab_file=path)
    message = str(excinfo.value)
    assert path in message
    assert "'[PAD]' (id 0)" in message
    assert "'[UNK]' (id 1)" in message


def test_custom_special_tokens_are_expected_at_the_start(tmp_path):
    path = write_vocab(tmp_path / "vocab.txt", SPECIALS + ["a"])
    with pytest.raises(ValueError, match="'<pad>' \\(id 0\\)"):
        FastformerTokenizer(vocab_file=path, pad_token="<pad>")
    tokenizer = FastformerTokenizer(vocab=["<pad>", "<unk>", "a"], pad_token="<pad>", unk_token="<unk>")
    assert tokenizer("a b", padding="max_length", max_length=3)["input_ids"] == [2, 1, 0]


def test_duplicate_token_in_vocab_file_names_file_and_token(tmp_path):
    path = write_vocab(tmp_path / "vocab.txt", SPECIALS + ["movie", "good", "movie"])
    with pytest.raises(ValueError) as excinfo:
        FastformerTokenizer(vocab_file=path)
    assert path in str(excinfo.value)
    assert "'movie'" in str(excinfo.value)


def test_in_memory_vocab_is_validated():
    with pytest.raises(ValueError, match="'good' more than once"):
        FastformerTokenizer(vocab=SPECIALS + ["good", "good"])
    with pytest.raises(ValueError, match="line breaks"):
        FastformerTokenizer(vocab=SPECIALS + ["two\nlines"])
    with pytest.raises(ValueError, match="must start with"):
        FastformerTokenizer(vocab=["good"] + SPECIALS)


@pytest.mark.parametrize("kwargs", [{}, {"vocab_file": "vocab.txt", "vocab": SPECIALS}])
def test_exactly_one_vocabulary_source_is_required(kwargs):
    with pytest.raises(ValueError, match="Exactly one of `vocab_file` and `vocab`"):
        FastformerTokenizer(**kwargs)
