"""tools/benchmark.py: a --quick smoke run (CSV, PNG, one table row per case) and the FLOP counter by hand.

No timing assertions: the run's numbers depend on the machine and on whatever else shares its CPU.
"""

import csv
import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from paddlenlp_fastformer.benchmark import CSV_COLUMNS, MODELS, TORCH_TWIN, Sizes, attention_matrix_mib, flops_per_token

PROJECT_ROOT = Path(__file__).resolve().parents[1]

QUICK_LENGTHS = (32, 64)
MODES = ("train", "infer")


def _torch_stack_available() -> bool:
    return all(
        importlib.util.find_spec(name) for name in ("torch", "fast_transformer_pytorch", "rotary_embedding_torch")
    )


def _table_rows(stdout: str) -> list:
    """The markdown table's data rows as lists of cells (header and separator left out)."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert lines and lines[0].startswith("| model | mode | length |"), stdout
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) <= {" ", ""}
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_quick_run_writes_csv_png_and_one_row_per_case(tmp_path):
    output_dir = tmp_path / "benchmark"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "benchmark.py"), "--quick", "--output-dir", str(output_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    expected_models = [name for name, spec in MODELS.items() if spec.framework == "paddle"]
    if _torch_stack_available():
        expected_models += [name for name, spec in MODELS.items() if spec.framework == "torch"]
    expected_cases = set(itertools.product(expected_models, MODES, QUICK_LENGTHS))
    expected_cases -= {(model, "train", n) for model in expected_models for n in QUICK_LENGTHS if MODELS[model].engine != "eager"}

    with open(output_dir / "benchmark.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == CSV_COLUMNS
        rows = list(reader)
    cases = [(row["model"], row["mode"], int(row["length"])) for row in rows]
    assert len(cases) == len(set(cases)) and set(cases) == expected_cases
    for row in rows:
        assert row["status"] == "ok", row  # tiny cases never hit the memory or time limits
        assert float(row["tokens_per_s"]) > 0 and float(row["peak_mib"]) >= 0
        assert float(row["flops_per_token"]) > 0 and float(row["model_gflops"]) > 0
        assert int(row["batch"]) == max(1, 128 // int(row["length"]))  # --quick: 128 tokens per step
        if row["model"] == "paddle-softmax":
            assert float(row["ratio_vs_softmax"]) == pytest.approx(1.0)
        if row["model"] in TORCH_TWIN and _torch_stack_available():
            assert float(row["ratio_paddle_vs_torch"]) > 0

    table = _table_rows(completed.stdout)
    table_cases = [(cells[0], cells[1], int(cells[2])) for cells in table]
    assert len(table_cases) == len(set(table_cases)) and set(table_cases) == expected_cases

    png = output_dir / "benchmark.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (output_dir / "benchmark.json").is_file()
    assert "wall time" in completed.stdout


def test_flop_counter_matches_a_hand_count():
    # D=8 hidden, H=2 heads (d=4 features each), L=1 layer, I=16, V=10 vocabulary, C=5 labels, N=4 tokens.
    sizes = Sizes(hidden=8, heads=2, layers=1, intermediate=16, vocab=10, num_labels=5, max_length=4)
    feed_forward = 2 * 8 * 16 + 2 * 16 * 8  # ffn_in, ffn_out: 512
    pooler_and_classifier = (
        2 * 8 * 8 + 2 * 8 * 1 + 2 * 8 + 2 * 8 * 5 / 4
    )  # att_fc1, att_fc2, weighted sum, classifier/N

    official_attention = (
        4 * (2 * 8 * 8)  # query, key, transform, output
        + 2 * (2 * 8 * 2)  # query_att, key_att: D -> H
        + 2 * (2 * 8)  # global query and global key: weighted sums over tokens
        + 2 * 8  # p = q_g * k and u = k_g * q
    )
    assert official_attention == 624
    official = official_attention + feed_forward + pooler_and_classifier
    assert official == 1316
    assert flops_per_token("paddle-official", sizes, 4, "infer") == pytest.approx(official)
    assert flops_per_token("torch-official", sizes, 4, "train") == pytest.approx(3 * official)

    softmax_attention = 4 * (2 * 8 * 8) + 2 * 4 * 8 + 2 * 4 * 8  # q, k, v, out; QK^T and weights x V over N=4
    assert flops_per_token("paddle-softmax", sizes, 4, "infer") == pytest.approx(
        softmax_attention + feed_forward + pooler_and_classifier
    )
    # 1024 tokens: the two N x D products grow with the length, nothing else (but the classifier's 1/N share)
    assert flops_per_token("paddle-softmax", sizes, 1024, "infer") - flops_per_token(
        "paddle-softmax", sizes, 4, "infer"
    ) == pytest.approx(4 * (1024 - 4) * 8 + 2 * 8 * 5 / 1024 - 2 * 8 * 5 / 4)

    lucidrains_attention = (
        2 * 8 * 24  # to_qkv: D -> 3 H d
        + 2 * 8 * 8  # to_out: H d -> D
        + 2 * 2 * 4  # query score vector: d -> 1 per head
        + 2 * 2 * 2  # key score vector reads r = d/2 summed pairs (rotary)
        + 2 * (2 * 2 * 4)  # global query and global key sums
        + 2 * (2 * 4)  # k * q_g and v * k_g
        + 2 * (2 * 2 * 4)  # to_r: r -> d per head
    )
    assert lucidrains_attention == 616
    lm_head = 2 * 8 * 10
    lucidrains = lucidrains_attention + feed_forward + lm_head
    assert flops_per_token("paddle-lucidrains", sizes, 4, "infer") == pytest.approx(lucidrains)
    assert flops_per_token("torch-lucidrains", sizes, 64, "train") == pytest.approx(3 * lucidrains)


def test_attention_memory_estimate_only_for_softmax():
    sizes = Sizes(hidden=256, heads=16, layers=2)
    one_matrix_mib = 4 * 2 * 16 * 2048 * 2048 / 2**20  # B=2, H=16, N=2048: 512 MiB
    assert attention_matrix_mib("paddle-softmax", sizes, 2, 2048, "infer") == pytest.approx(2 * one_matrix_mib)
    assert attention_matrix_mib("paddle-softmax", sizes, 2, 2048, "train") == pytest.approx(5 * one_matrix_mib)
    assert attention_matrix_mib("paddle-official", sizes, 2, 2048, "train") == 0.0


def test_paper_preset_is_the_shipped_paper_config():
    """--preset paper-b64 measures configs/amazon.yaml's model at the paper's batch and length."""
    from paddlenlp_fastformer.benchmark import DEFAULTS, PRESETS
    from paddlenlp_fastformer.config import load_config

    paper = load_config(PROJECT_ROOT / "configs" / "amazon.yaml")
    preset = PRESETS["paper-b64"]
    assert (preset["tokens_per_step"] // preset["lengths"][0], preset["lengths"][0]) == (paper.data.batch_size, 256)
    assert preset["intermediate"] == paper.model.intermediate_size
    assert (DEFAULTS["hidden"], DEFAULTS["heads"], DEFAULTS["layers"]) == (
        paper.model.hidden_size, paper.model.num_attention_heads, paper.model.num_hidden_layers,
    )
    lucidrains = PRESETS["lucidrains-b16"]
    assert (lucidrains["tokens_per_step"] // lucidrains["lengths"][0], lucidrains["lengths"][0]) == (16, 512)
    assert DEFAULTS["hidden"] // DEFAULTS["heads"] == 16 and DEFAULTS["intermediate"] == 4 * DEFAULTS["hidden"]
