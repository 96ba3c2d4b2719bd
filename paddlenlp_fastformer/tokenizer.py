"""Word-level tokenizer reproducing the text preprocessing of the official Fastformer code."""

import os
import re
from collections import Counter
from collections.abc import Mapping

from paddlenlp.transformers import PretrainedTokenizer
from paddlenlp.transformers.tokenizer_utils_base import BatchEncoding

from .file_utils import write_text_atomically
from .serialization import CheckpointError, _read_json

__all__ = ["FastformerTokenizer", "SPECIAL_TOKEN_IDS"]

# The pattern of nltk's `wordpunct_tokenize`, which the official Fastformer code
# applies to lower-cased text; kept here so nltk is not a dependency.
_WORDPUNCT_RE = re.compile(r"\w+|[^\w\s]+")

_PAD_TOKEN = "[PAD]"
_UNK_TOKEN = "[UNK]"
_UNK_ID = 1
# The special tokens every vocabulary of build_from_corpus starts with, at these ids: padding and unknown
# words (the only two the classifier needs), then the sequence markers and the mask of masked-LM training.
SPECIAL_TOKEN_IDS = {"pad_token": 0, "unk_token": 1, "cls_token": 2, "sep_token": 3, "mask_token": 4}
_DEFAULT_SPECIALS = {"pad_token": _PAD_TOKEN, "unk_token": _UNK_TOKEN, "cls_token": "[CLS]", "sep_token": "[SEP]",
                     "mask_token": "[MASK]"}  # fmt: skip


_TOKENIZER_CONFIG = "tokenizer_config.json"
_TOKEN_FIELDS = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token")


def _is_token(value) -> bool:
    """A special token as PaddleNLP writes one: a string, null (unset), or an AddedToken object with its text."""
    return value is None or isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("content"), str))


def _field_problem(field, value):
    """What is wrong with one field of tokenizer_config.json, or None; PaddleNLP would pass any of them on as it is."""
    if field == "do_lower_case" and type(value) is not bool:
        return "expected true or false"
    if field == "model_max_length" and (type(value) is not int or value < 1):
        return "expected a positive integer"
    if field in _TOKEN_FIELDS and not _is_token(value):
        return "expected a token (a string) or null"
    if field == "additional_special_tokens" and not (isinstance(value, list) and all(map(_is_token, value))):
        return "expected a list of tokens (strings)"
    if field in ("padding_side", "truncation_side") and value not in ("right", "left"):
        return "expected 'right' or 'left'"
    if field == "tokenizer_class" and not isinstance(value, str):
        return "expected the name of a tokenizer class"
    return None


def check_tokenizer_config(path, given=()) -> None:
    """Refuse a tokenizer_config.json that is not a JSON object or holds a field of the wrong type, in one line
    naming the file and the field; fields in ``given`` (from_pretrained's keyword arguments) replace the file's."""
    for field, value in _read_json(str(path), required=True).items():
        problem = None if field in given else _field_problem(field, value)
        if problem:
            raise CheckpointError(f"{path}: {field!r} is {_short(value)}; {problem}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_vocab_file(vocab_file):
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"Can't find a vocabulary file at path '{vocab_file}'.")
    with open(vocab_file, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _check_tokens(tokens, pad_token, unk_token, source):
    if tokens[:2] != [pad_token, unk_token]:
        raise ValueError(
            f"{source} must start with {pad_token!r} (id 0) and {unk_token!r} (id 1), but starts with {tokens[:2]}."
        )
    seen = set()
    for token in tokens:
        # vocab.txt holds one token per line, so anything else could not be saved and reloaded.
        if not isinstance(token, str) or "\n" in token or "\r" in token:
            raise ValueError(f"{source} contains {token!r}; tokens must be strings without line breaks.")
        if token in seen:
            raise ValueError(f"{source} contains the token {token!r} more than once.")
        seen.add(token)


class FastformerTokenizer(PretrainedTokenizer):
    """
    Constructs a Fastformer tokenizer. Special and added tokens are matched first,
    exactly as written (``"the [MASK] is good"`` keeps ``[MASK]``); the text
    between them is (optionally) lower-cased as a whole, as the official code
    does, and split into runs of word characters and runs of punctuation, like
    nltk's `wordpunct_tokenize`; each piece is then looked up in a word-level
    vocabulary. No special tokens are added around sequences.

    The vocabulary starts with `pad_token` (id 0) and `unk_token` (id 1); words
    missing from it map to `unk_token`. Vocabularies made by `build_from_corpus`
    also hold `cls_token` (id 2), `sep_token` (id 3) and `mask_token` (id 4); a
    vocabulary without them (e.g. of an earlier version) leaves them unset. A text
    without words (e.g. `""`) encodes to an empty id list, which padding fills
    like any other sequence.

    Args:
        vocab_file (str, optional):
            Path of a vocabulary file with one token per line, the line index
            being the token id. Exactly one of `vocab_file` and `vocab` is required.
        vocab (list[str], optional):
            The tokens in id order, used instead of `vocab_file`. It is saved to
            `vocab.txt` by `save_pretrained`.
        do_lower_case (bool, optional):
            Whether to lower-case the input before splitting it. Defaults to `True`.
        unk_token (str, optional):
            The token for out-of-vocabulary words. Defaults to `"[UNK]"`.
        pad_token (str, optional):
            The token used for padding. Defaults to `"[PAD]"`.
        cls_token, sep_token (str, optional):
            Sequence markers, for heads that need them. Default to `"[CLS]"`, `"[SEP]"`.
        mask_token (str, optional):
            The token masked-LM training puts in place of a hidden word. Defaults to `"[MASK]"`.
        model_max_length (int, optional):
            The maximum sequence length used when truncating or padding to
            `max_length` without an explicit length. Defaults to `512`.

    Examples:
        .. code-block::

            from paddlenlp_fastformer.tokenizer import FastformerTokenizer

            tokenizer = FastformerTokenizer.build_from_corpus(["A good movie.", "A bad movie!"])
            tokenizer.tokenize("A GOOD [MASK]...")
            # ['a', 'good', '[MASK]', '...']
            tokenizer("A GOOD film...")
            # {'input_ids': [5, 8, 1, 1], 'attention_mask': [1, 1, 1, 1]}
    """

    resource_files_names = {"vocab_file": "vocab.txt"}
    # Like the model's: no hosted vocabularies, every tokenizer comes from a local directory.
    pretrained_resource_files_map = {"vocab_file": {}}
    pretrained_init_configuration = {}
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "right"

    def __init__(
        self,
        vocab_file=None,
        vocab=None,
        do_lower_case=True,
        unk_token=_UNK_TOKEN,
        pad_token=_PAD_TOKEN,
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        **kwargs
    ):
        if (vocab_file is None) == (vocab is None):
            raise ValueError("Exactly one of `vocab_file` and `vocab` must be given.")
        if not isinstance(do_lower_case, bool):  # "false" read from a hand-edited config would mean True
            raise ValueError(f"`do_lower_case` must be true or false, got {do_lower_case!r}.")
        if vocab_file is not None:
            tokens = _read_vocab_file(vocab_file)
            source = f"Vocabulary file '{vocab_file}'"
        else:
            tokens = list(vocab)
            source = "`vocab`"
        _check_tokens(tokens, str(pad_token), str(unk_token), source)

        self.do_lower_case = do_lower_case
        self.vocab = {token: index for index, token in enumerate(tokens)}
        self.ids_to_tokens = tokens
        for name, token in (("cls_token", cls_token), ("sep_token", sep_token), ("mask_token", mask_token)):
            if token is not None and str(token) not in self.vocab:
                setattr(self, name, None)  # an older vocabulary: the token would silently be [UNK]
        # `from_pretrained` registers the special tokens as never split; doing it
        # here as well makes a new tokenizer split text exactly like a reloaded one.
        self.sanitize_special_tokens()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """PaddleNLP's ``from_pretrained``, after checking a local directory's tokenizer_config.json, whose wrong types
        PaddleNLP would pass on to fail later in its own code (or, as with ``"do_lower_case": "false"``, not at all).

        Raises:
            CheckpointError: tokenizer_config.json is not valid JSON, not an object, or holds a field of the wrong
                type; the message names the file and the field.
        """
        path = os.path.join(str(pretrained_model_name_or_path), _TOKENIZER_CONFIG)
        if os.path.isfile(path):
            check_tokenizer_config(path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def build_from_corpus(cls, texts, max_vocab_size=None, min_freq=1, **init_kwargs):
        """
        Builds a tokenizer whose vocabulary holds the words of `texts`.

        Words are ordered by descending count, ties broken alphabetically, so the
        same corpus always gives the same ids.

        Args:
            texts (Iterable[str]): The corpus, one text per item.
            max_vocab_size (int, optional):
                Maximum vocabulary size, the special tokens included. Must leave room for one word.
                Defaults to `None` (no limit).
            min_freq (int, optional):
                Minimum number of occurrences for a word to be kept. Defaults to `1`.
            **init_kwargs: Other arguments of `FastformerTokenizer`, e.g. `do_lower_case`.

        Returns:
            FastformerTokenizer: A tokenizer holding the vocabulary in memory.
        """
        if isinstance(texts, str):
            raise TypeError("`texts` must be an iterable of strings, not a single string.")
        if max_vocab_size is not None and max_vocab_size < len(_DEFAULT_SPECIALS) + 1:
            raise ValueError(
                f"`max_vocab_size` must be at least {len(_DEFAULT_SPECIALS) + 1} ({len(_DEFAULT_SPECIALS)} special "
                f"tokens and 1 word), got {max_vocab_size}."
            )
        if min_freq < 1:
            raise ValueError(f"`min_freq` must be at least 1, got {min_freq}.")

        specials = [str(init_kwargs.get(name, default)) for name, default in _DEFAULT_SPECIALS.items()]
        # Counting with a tokenizer of the same settings guarantees that the corpus
        # is split exactly like the texts encoded later.
        splitter = cls(vocab=specials, **init_kwargs)
        counts = Counter()
        for text in texts:
            counts.update(splitter.tokenize(text))
        for special in specials:
            counts.pop(special, None)

        words = sorted((word for word, count in counts.items() if count >= min_freq), key=lambda w: (-counts[w], w))
        if max_vocab_size is not None:
            words = words[: max_vocab_size - len(specials)]
        return cls(vocab=specials + words, **init_kwargs)

    @property
    def vocab_size(self):
        """
        Return the size of vocabulary.

        Returns:
            int: The size of vocabulary, without tokens added by `add_tokens`.
        """
        return len(self.ids_to_tokens)

    def get_vocab(self):
        return dict(self.vocab, **self.added_tokens_encoder)

    def _cased_pieces(self, text):
        """``text`` cut at special and added tokens, each piece with the text ``tokenize`` reads of it."""
        # Special and added tokens are kept as written (PaddleNLP's convention); the text
        # between them is lower-cased as a whole, as the official code lower-cases its
        # input. The base class would lower-case character by character, which is wrong
        # for context-dependent cases such as the Greek final sigma; after this, its own
        # pass has nothing left to change.
        keep = set(self.unique_no_split_tokens)
        for piece in self.tokens_trie.split(text):
            yield piece, piece.lower() if self.do_lower_case and piece not in keep else piece

    def prepare_for_tokenization(self, text, is_split_into_words=False, **kwargs):
        if self.do_lower_case:
            text = "".join(cased for _, cased in self._cased_pieces(text))
        return text, kwargs

    def _cased_text_with_origin(self, text):
        """The text ``tokenize`` splits, and for each of its characters the index in ``text`` of the one it came from."""
        cased_text, origin, start = [], [], 0
        for piece, cased in self._cased_pieces(text):
            cased_text.append(cased)
            if len(cased) == len(piece):
                origin.extend(range(start, start + len(piece)))
            else:  # a character whose lower case is longer ("İ" -> "i" + combining dot): all of it maps back to it
                origin.extend(start + index for index, char in enumerate(piece) for _ in char.lower())
            start += len(piece)
        return "".join(cased_text), origin

    def _tokens_with_spans(self, text):
        """``(token, start, end)`` for each token of ``tokenize(text)``: ``text[start:end]`` is what it was read from.

        The same steps as PaddleNLP's ``tokenize`` with ``prepare_for_tokenization``: case the text, cut it at
        special and added tokens (again: lower-casing can make an added token appear), split the rest with
        ``_tokenize``'s pattern; whitespace, which the base class strips around special tokens, is never a token.
        """
        cased_text, origin = self._cased_text_with_origin(text)
        no_split = set(self.unique_no_split_tokens)
        tokens, position = [], 0
        for piece in self.tokens_trie.split(cased_text):
            if piece in no_split:
                matches = [(piece, 0, len(piece))]
            else:
                matches = [(match.group(), match.start(), match.end()) for match in _WORDPUNCT_RE.finditer(piece)]
            for token, start, end in matches:
                tokens.append((token, origin[position + start], origin[position + end - 1] + 1))
            position += len(piece)
        return tokens

    def get_offset_mapping(self, text, split_tokens=None):
        """
        The span of `text` each token comes from, what `return_offsets_mapping=True` returns.

        PaddleNLP's version searches each token's text (rebuilt by `convert_tokens_to_string`) in an
        NFKC-normalised copy of `text`, which this tokenizer never reads; the spans here come from
        the splitting itself, so they hold for any text: accents, Greek, special and added tokens.

        Args:
            text (str): The text, as given to the tokenizer.
            split_tokens (list[str], optional): Unused (PaddleNLP's signature); the text is split again.

        Returns:
            list[tuple[int, int]]: `(start, end)` per token, `text[start:end]` being the characters
            it was read from (lower-cased, if `do_lower_case`); `None` for `text=None`.
        """
        if text is None:
            return None
        return [(start, end) for _, start, end in self._tokens_with_spans(text)]

    def _tokenize(self, text):
        """
        Splits text into runs of word characters and runs of other non-space characters.

        Args:
            text (str): The text to be tokenized, already lower-cased if `do_lower_case`.

        Returns:
            list: A list of string representing converted tokens.
        """
        return _WORDPUNCT_RE.findall(text)

    def texts_to_ids(self, texts, max_length=None):
        """
        Token ids of each text, the ``input_ids`` that ``tokenizer(texts, max_length=max_length,
        truncation=True, padding=False)`` returns, at a tenth of the cost: the splitting and lookup
        are a regular expression and a dict, and PaddleNLP's per-call machinery (batch encoding,
        truncation strategies, special-token templates) costs ten times as much. A text holding a
        special or added token (in any case, where the tokenizer lower-cases) takes the full route,
        which matches those first.

        Args:
            texts (list[str]): The texts.
            max_length (int, optional): Keep at most this many tokens of each text; by default
                ``model_max_length``, where truncation cuts without one.

        Returns:
            list[list[int]]: The ids of each text's tokens.
        """
        if max_length is None:
            max_length = self.model_max_length
        kept = self.unique_no_split_tokens
        if self.do_lower_case:
            kept = sorted(set(kept) | {token.lower() for token in kept})
        ids = []
        for text in texts:
            lowered = text.lower() if self.do_lower_case else text
            if any(token in text or token in lowered for token in kept):
                ids.append(self(text, max_length=max_length, truncation=True, padding=False,
                                return_attention_mask=False, return_token_type_ids=False)["input_ids"])  # fmt: skip
                continue
            ids.append([self._convert_token_to_id(word) for word in self._tokenize(lowered)[:max_length]])
        return ids

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, _UNK_ID)

    def _convert_id_to_token(self, index):
        # Ids past the vocabulary can come from a model whose embedding table is
        # larger than the vocabulary; like BERT, treat them as unknown.
        if 0 <= index < len(self.ids_to_tokens):
            return self.ids_to_tokens[index]
        return self.unk_token

    def convert_tokens_to_string(self, tokens):
        """
        Converts a sequence of tokens (list of string) to a single string by
        joining them with spaces; the original spacing is not recoverable.

        Args:
            tokens (list[str] or str): A sequence of tokens, or a single token (returned as it is).

        Returns:
            str: Converted string.
        """
        if isinstance(tokens, str):  # one token, as PaddleNLP's own code passes it: not its characters
            return tokens
        return " ".join(tokens)

    def pad(
        self,
        encoded_inputs,
        padding=True,
        max_length=None,
        pad_to_multiple_of=None,
        return_attention_mask=None,
        return_tensors=None,
        verbose=True,
    ):
        # The base class returns a single empty sequence (the encoding of a text
        # without words) unpadded, so it would come out shorter than `max_length`.
        ids = encoded_inputs.get(self.model_input_names[0]) if isinstance(encoded_inputs, Mapping) else None
        if isinstance(ids, (list, tuple)) and not ids:
            padding_strategy, _, max_length, _ = self._get_padding_truncation_strategies(
                padding=padding, max_length=max_length, verbose=verbose
            )
            encoded_inputs = self._pad(
                dict(encoded_inputs),
                max_length=max_length,
                padding_strategy=padding_strategy,
                pad_to_multiple_of=pad_to_multiple_of,
                return_attention_mask=return_attention_mask,
            )
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)
        return super().pad(
            encoded_inputs,
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
            verbose=verbose,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """PaddleNLP's ``save_pretrained``; an in-memory ``vocab`` goes to vocab.txt, not into tokenizer_config.json."""
        init_kwargs = self.init_kwargs
        self.init_kwargs = {key: value for key, value in init_kwargs.items() if key != "vocab"}
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.init_kwargs = init_kwargs

    def save_resources(self, save_directory):
        """
        Writes the vocabulary to `vocab.txt` under `save_directory`.

        The vocabulary may exist only in memory, so it is written rather than
        copied from `vocab_file`. A temporary file renamed into place keeps an
        interrupted save from leaving a truncated vocabulary behind.

        Args:
            save_directory (str): Directory to save files into.
        """
        vocab_path = os.path.join(save_directory, self.resource_files_names["vocab_file"])
        write_text_atomically(vocab_path, "".join(token + "\n" for token in self.ids_to_tokens))
