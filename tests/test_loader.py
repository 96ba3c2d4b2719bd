"""Tests for fastformer_zoo.data.loader: the dataset, collator, data loader and length-bucketed batch sampler."""

import numpy as np
import pytest

from fastformer_zoo.data.loader import LengthBucketBatchSampler, ReviewDataset, make_collator, make_dataloader
from paddlenlp_fastformer.tokenizer import FastformerTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return FastformerTokenizer.build_from_corpus(["good bad fine great awful ok"])


def test_dataset_tokenizes_once_with_truncation(tokenizer):
    examples = [{"text": "good good good good good", "label": 4}, {"text": "bad", "label": 0}]
    dataset = ReviewDataset(examples, tokenizer, max_seq_len=3)
    assert len(dataset) == 2
    assert dataset[0] == {"input_ids": [tokenizer.vocab["good"]] * 3, "label": 4}
    assert dataset.lengths.tolist() == [3, 1]
    assert len(ReviewDataset([], tokenizer)) == 0


def test_collator_pads_to_longest_with_mask(tokenizer):
    dataset = ReviewDataset([{"text": "good bad fine", "label": 2}, {"text": "ok", "label": 1}], tokenizer)
    batch = make_collator(tokenizer)([dataset[0], dataset[1]])
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert all(array.dtype == np.int64 for array in batch.values())
    ids = [tokenizer.vocab[word] for word in ("good", "bad", "fine", "ok")]
    assert batch["input_ids"].tolist() == [ids[:3], [ids[3], tokenizer.pad_token_id, tokenizer.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [2, 1]


def test_dataloader_yields_padded_batches(tokenizer):
    examples = [{"text": " ".join(["good"] * (i % 9 + 1)), "label": i % 5} for i in range(40)]
    loader = make_dataloader(ReviewDataset(examples, tokenizer), batch_size=8, shuffle=False)
    batches = list(loader)
    assert len(batches) == 5
    labels = [label for batch in batches for label in batch["labels"].numpy().tolist()]
    assert sorted(labels) == sorted(example["label"] for example in examples)
    assert all(batch["input_ids"].shape == batch["attention_mask"].shape for batch in batches)
    # Sorted lengths: five each of 1..4, four each of 5..9; a batch pads to its last.
    assert [batch["input_ids"].shape[1] for batch in batches] == [2, 4, 5, 7, 9]


LENGTHS = np.random.default_rng(0).integers(1, 500, size=1003)


def epoch_batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sampler_yields_each_index_once_per_epoch():
    sampler = LengthBucketBatchSampler(LENGTHS, batch_size=32, shuffle=True, seed=1)
    for epoch in range(2):
        batches = epoch_batches(sampler, epoch)
        assert len(batches) == len(sampler) == 32
        assert sorted(i for batch in batches for i in batch) == list(range(1003))


@pytest.mark.parametrize("num_replicas", [1, 2])
def test_sampler_max_tokens_cuts_long_batches_and_keeps_short_ones(num_replicas):
    lengths = np.array([10] * 64 + [1000] * 64)
    shares = []
    for rank in range(num_replicas):
        sampler = LengthBucketBatchSampler(lengths, batch_size=64 // num_replicas, shuffle=True, seed=1,
                                           num_replicas=num_replicas, rank=rank, max_tokens=4000)  # fmt: skip
        shares.append(epoch_batches(sampler, 0))
    assert len({len(share) for share in shares}) == 1  # every rank steps together
    for share in shares:
        assert all(len(batch) * lengths[batch].max() <= 4000 for batch in share if lengths[batch].max() == 1000)
        assert sorted(len(batch) for batch in share if lengths[batch].max() == 10) == [64 // num_replicas]
    assert sorted(i for share in shares for batch in share for i in batch) == list(range(128))


def test_sampler_max_tokens_below_one_example_keeps_one_per_batch():
    sampler = LengthBucketBatchSampler([500] * 6, batch_size=3, shuffle=False, max_tokens=100)
    assert list(sampler) == [[0], [1], [2], [3], [4], [5]]


def test_sampler_batches_are_length_homogeneous():
    lengths = LENGTHS[:1000]
    sampler = LengthBucketBatchSampler(lengths, batch_size=10, shuffle=True, seed=1)
    batches = epoch_batches(sampler, 0)
    spread = np.mean([np.ptp(lengths[batch]) for batch in batches])
    random_batches = np.random.default_rng(1).permutation(1000).reshape(-1, 10)
    random_spread = np.mean([np.ptp(lengths[batch]) for batch in random_batches])
    assert spread < 0.1 * random_spread
    # One pool holds everything here, so only the shuffled batch order keeps short batches from coming first.
    assert not np.all(np.diff([lengths[batch].max() for batch in batches]) >= 0)


def test_sampler_is_deterministic_per_seed_and_epoch():
    def batches(seed, epoch):
        sampler = LengthBucketBatchSampler(LENGTHS, batch_size=16, shuffle=True, seed=seed, pool_factor=4)
        return epoch_batches(sampler, epoch)

    assert batches(7, 0) == batches(7, 0)
    assert batches(7, 1) == batches(7, 1)
    assert batches(7, 0) != batches(7, 1)
    assert batches(7, 0) != batches(8, 0)


@pytest.mark.parametrize("size, drop_last", [(1000, False), (1003, True)])
def test_sampler_replicas_get_equal_disjoint_shares(size, drop_last):
    options = dict(batch_size=10, shuffle=True, seed=3, num_replicas=4, drop_last=drop_last)
    samplers = [LengthBucketBatchSampler(LENGTHS[:size], rank=rank, **options) for rank in range(4)]
    shares = [epoch_batches(sampler, epoch=2) for sampler in samplers]
    assert {len(share) for share in shares} == {25}
    indices = [i for share in shares for batch in share for i in batch]
    assert len(indices) == len(set(indices)) == 1000


def test_sampler_replicas_wrap_around_to_equal_counts():
    shares = [list(LengthBucketBatchSampler(LENGTHS, batch_size=10, num_replicas=4, rank=rank)) for rank in range(4)]
    assert [len(share) for share in shares] == [26] * 4
    assert all(len(batch) == 10 for share in shares for batch in share)
    assert set(i for share in shares for batch in share for i in batch) == set(range(1003))


def test_sampler_drop_last_drops_partial_batch():
    sampler = LengthBucketBatchSampler(LENGTHS[:105], batch_size=10, shuffle=True, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10 and all(len(batch) == 10 for batch in batches)


def test_eval_sampler_is_sorted_and_complete():
    sampler = LengthBucketBatchSampler(LENGTHS, batch_size=64, shuffle=False)
    order = [i for batch in sampler for i in batch]
    assert sorted(order) == list(range(1003))
    assert np.all(np.diff(LENGTHS[order]) >= 0)
    assert len(sampler) == 16 and list(sampler) == list(sampler)


def test_sampler_rejects_rank_out_of_range():
    with pytest.raises(ValueError, match="rank 2 is out of range for 2 replicas"):
        LengthBucketBatchSampler(LENGTHS, batch_size=4, num_replicas=2, rank=2)
