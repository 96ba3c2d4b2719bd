"""python -m benchmarks.speed and the benchmarks package: --quick and a tiny deploy run (CSV, PNG, one table row
per case), the FLOP counter by hand, the presets against the shipped config, the one table formatter,
and the fork servers' separation of the frameworks.

No timing assertions: the run's numbers depend on the machine and on whatever else shares its CPU.
"""

import csv
import importlib.util
import itertools
import os
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.models import MODELS, TORCH_TWIN, Sizes, attention_matrix_mib, flops_per_token
from benchmarks.report import CSV_COLUMNS, format_engine_grid, format_table
from benchmarks.speed import DEFAULTS, PRESETS, settings_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]

QUICK_LENGTHS = (32, 64)
MODES = ("train", "infer")


def _torch_stack_available() -> bool:
    return all(
        importlib.util.find_spec(name) for name in ("torch", "fast_transformer_pytorch", "rotary_embedding_torch")
    )


def _expected_models(preset: str) -> list:
    return [m for m in PRESETS[preset]["models"] if MODELS[m].framework == "paddle" or _torch_stack_available()]


def _run_tool(tmp_path, *arguments) -> tuple:
    """Run python -m benchmarks.speed into tmp_path/benchmark; return the completed process and the CSV rows."""
    output_dir = tmp_path / "benchmark"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", *arguments, "--output-dir", str(output_dir)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},  # the benchmarks are outside the wheel
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    with open(output_dir / "benchmark.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == CSV_COLUMNS
        rows = list(reader)
    png = output_dir / "benchmark.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wall time" in completed.stdout
    return completed, rows, json.loads((output_dir / "benchmark.json").read_text(encoding="utf-8"))


def _table_rows(stdout: str, header_start: str) -> list:
    """The data rows, as lists of cells, of the markdown table whose header starts with ``header_start``."""
    output = stdout.splitlines()
    starts = [index for index, line in enumerate(output) if line.startswith(header_start)]
    assert starts, stdout
    lines = list(itertools.takewhile(lambda line: line.startswith("|"), output[starts[0]:]))
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) <= {" ", ""}
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_quick_run_writes_csv_png_and_one_row_per_case(tmp_path):
    completed, rows, result = _run_tool(tmp_path, "--quick")

    expected_models = _expected_models("quick")
    expected_cases = set(itertools.product(expected_models, MODES, QUICK_LENGTHS))
    expected_cases -= {(m, "train", n) for m in expected_models for n in QUICK_LENGTHS if MODELS[m].exported}

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
        if MODELS[row["model"]].exported:  # the engines run dygraph's weights: the same probabilities
            assert float(row["max_abs_diff_vs_dygraph"]) < 1e-5

    table = _table_rows(completed.stdout, "| model | mode | length |")
    table_cases = [(cells[0], cells[1], int(cells[2])) for cells in table]
    assert len(table_cases) == len(set(table_cases)) and set(table_cases) == expected_cases

    # each fork server holds its own framework only, and only paddle's is CPU-tuned
    environment = result["environment"]
    assert environment["paddle_process_imports"] == ["paddle"]
    assert set(environment["paddle_cpu_tuning"]) == {"mkl_avx2_on_amd", "malloc_keeps_memory"}
    if _torch_stack_available():
        assert environment["torch_process_imports"] == ["torch"]
        assert "torch_cpu_tuning" not in environment


@pytest.mark.slow
def test_deploy_preset_tiny_run_compares_every_engine_with_dygraph(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    sizes = ["--hidden", "32", "--heads", "4", "--layers", "1", "--intermediate", "64", "--vocab-size", "100"]
    completed, rows, _ = _run_tool(
        tmp_path, "--preset", "deploy", "--batch-sizes", "3", "--lengths", "8", "16", *sizes,
        "--repeats", "1", "--steps", "2", "--warmup", "1", "--matmul-size", "64",
    )
    expected_models = _expected_models("deploy")
    expected_cases = set(itertools.product(expected_models, (3,), (8, 16)))
    cases = [(row["model"], int(row["batch"]), int(row["length"])) for row in rows]
    assert len(cases) == len(set(cases)) and set(cases) == expected_cases
    for row in rows:
        assert row["status"] == "ok" and row["mode"] == "infer", row
        seconds = float(row["seconds_per_step"])
        assert float(row["texts_per_s"]) == pytest.approx(int(row["batch"]) / seconds)
        assert float(row["tokens_per_s"]) == pytest.approx(int(row["batch"]) * int(row["length"]) / seconds)
        if row["model"] == "paddle-official":
            assert float(row["ratio_vs_dygraph"]) == pytest.approx(1.0)
            assert float(row["max_abs_diff_vs_dygraph"]) == 0.0
        elif MODELS[row["model"]].engine == "onnxruntime-int8":  # quantization error, not float noise
            assert float(row["ratio_vs_dygraph"]) > 0
            assert 0 < float(row["max_abs_diff_vs_dygraph"]) < 0.15
        elif MODELS[row["model"]].exported:
            assert float(row["ratio_vs_dygraph"]) > 0
            assert float(row["max_abs_diff_vs_dygraph"]) < 1e-5  # the parity of tests/test_deployment.py
        else:  # the torch twin has weights of its own: no parity figure
            assert row["max_abs_diff_vs_dygraph"] == ""

    header = "| batch | length | model | mode | ms/batch | texts/s | tokens/s | vs dygraph | Paddle / torch |"
    table = _table_rows(completed.stdout, header + " max abs diff |")
    assert {(cells[2], int(cells[0]), int(cells[1])) for cells in table} == expected_cases
    assert len(table) == len(expected_cases)

    # The same rows pivoted, as docs/deployment.md's engine table: one line per batch shape, engines side by side.
    grid = _table_rows(completed.stdout, "| batch | length | dygraph | Paddle Inference, portable |")
    assert [(int(cells[0]), int(cells[1])) for cells in grid] == [(3, 8), (3, 16)]
    by_shape = {(int(row["batch"]), int(row["length"]), row["model"]): row for row in rows}
    for cells in grid:
        dygraph = by_shape[int(cells[0]), int(cells[1]), "paddle-official"]
        assert cells[2] == f"{float(dygraph['tokens_per_s']):,.0f}"
        fused = by_shape.get((int(cells[0]), int(cells[1]), "paddle-inference-fused"))
        torch = by_shape.get((int(cells[0]), int(cells[1]), "torch-official"))
        if fused is not None:
            assert f"{float(fused['tokens_per_s']):,.0f} ({float(fused['ratio_vs_dygraph']):.2f}x)" in cells
        if fused is not None and torch is not None:
            assert cells[-2] == f"{float(fused['ratio_paddle_vs_torch']):.2f}x"


def test_engine_grid_pivots_inference_rows_in_run_order():
    def row(model, batch, length, tokens_per_s, status="ok", mode="infer", **extra):
        return {"model": model, "batch": batch, "length": length, "tokens_per_s": tokens_per_s, "status": status,
                "mode": mode, "ratio_vs_dygraph": extra.get("ratio"), "ratio_paddle_vs_torch": extra.get("vs_torch"),
                "fraction_of_matmul_peak": extra.get("peak")}  # fmt: skip

    rows = [
        row("paddle-official", 16, 128, 50_000.0, ratio=1.0),
        row("paddle-official", 16, 128, 1.0, mode="train"),  # another mode: not in the grid
        row("paddle-inference-fused", 16, 128, 60_000.0, ratio=1.2, vs_torch=1.5, peak=0.8),
        row("torch-official", 16, 128, 40_000.0),
        row("paddle-official", 1, 2048, 30_000.0, ratio=1.0),
        row("paddle-inference-fused", 1, 2048, 0.0, status="oom"),
        row("torch-official", 1, 2048, 20_000.0),
        row("paddle-onnxruntime", 16, 128, 75_000.0, ratio=1.5),
        row("paddle-onnxruntime-int8", 16, 128, 120_000.0, ratio=2.4),
        row("paddle-auto", 16, 128, 72_000.0, ratio=1.44),
    ]
    lines = format_engine_grid(rows).splitlines()
    engines = ("| dygraph | Paddle Inference, fused | onnxruntime | onnxruntime int8 | auto (measured) | PyTorch eager "
               "| auto / fastest fp32 | int8 / fp32 | fused vs PyTorch | fused, of matmul peak |")  # fmt: skip
    assert lines[0] == "| batch | length " + engines
    assert lines[2:] == [
        # the run's order, not sorted; the default against the fastest fp32 engine (int8 is not one), int8 against fp32
        "| 16 | 128 | 50,000 | 60,000 (1.20x) | 75,000 (1.50x) | 120,000 (2.40x) | 72,000 (1.44x) | 40,000 | 0.96 (onnxruntime) | 1.60x | 1.50x | 80% |",
        "| 1 | 2048 | 30,000 | oom |  |  |  | 20,000 |  |  |  |  |",  # a case that did not run shows why, and no ratio
    ]


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
    for engine in ("paddle-inference", "paddle-inference-onednn", "paddle-onnxruntime"):
        assert flops_per_token(engine, sizes, 4, "infer") == pytest.approx(official)

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
    from fastformer_zoo.settings import load_config

    paper = load_config(PROJECT_ROOT / "configs" / "amazon.yaml")
    preset = PRESETS["paper-b64"]
    assert (preset["tokens_per_step"] // preset["lengths"][0], preset["lengths"][0]) == (paper.data.batch_size, 256)
    assert preset["intermediate"] == paper.model["intermediate_size"]
    assert (DEFAULTS["hidden"], DEFAULTS["heads"], DEFAULTS["layers"]) == (
        paper.model["hidden_size"], paper.model["num_attention_heads"], paper.model["num_hidden_layers"],
    )
    lucidrains = PRESETS["lucidrains-b16"]
    assert (lucidrains["tokens_per_step"] // lucidrains["lengths"][0], lucidrains["lengths"][0]) == (16, 512)
    assert DEFAULTS["hidden"] // DEFAULTS["heads"] == 16 and DEFAULTS["intermediate"] == 4 * DEFAULTS["hidden"]


def test_deploy_preset_is_the_old_inference_benchmark_grid():
    """--preset deploy: the paper-size classifier, 50k vocabulary, batch 1/16/64 x length 32/128/512, every engine."""
    settings, table = settings_for("deploy", {})
    assert table == "deploy" and settings.modes == ("infer",)
    assert settings.shapes() == [(b, n) for b in (1, 16, 64) for n in (32, 128, 512)]
    assert settings.sizes.vocab == 50000 and settings.sizes.intermediate == PRESETS["paper-b64"]["intermediate"]
    engines = {MODELS[model].engine for model in settings.models if MODELS[model].framework == "paddle"}
    assert engines == {"eager", "inference", "inference-onednn", "inference-fused", "inference-fused-onednn", "onnxruntime", "onnxruntime-int8",
                       "onnxruntime-packed", "auto"}  # fmt: skip
    long, _ = settings_for("deploy-long", {})  # the same engines on the long-sequence grid
    assert long.models == settings.models and long.batch_sizes is None and long.lengths[-1] == 8192
    # the grid keeps its meaning: the token budget, both modes, no onnxruntime
    grid, _ = settings_for("grid", {})
    assert grid.batch_sizes is None and grid.shapes()[0] == (2048 // 128, 128) and grid.modes == MODES
    assert not {"paddle-onnxruntime", "paddle-onnxruntime-int8", "paddle-onnxruntime-packed", "paddle-auto"} & set(grid.models)
    without_torch, _ = settings_for("deploy", {"lengths": [8]}, torch=False)
    assert all(MODELS[m].framework == "paddle" for m in without_torch.models) and without_torch.lengths == (8,)
    with pytest.raises(ValueError):
        settings_for("quick", {"hidden": 30})  # not a multiple of the 4 heads


def test_one_table_formatter_serves_both_layouts():
    row = {key: None for key in CSV_COLUMNS}
    row.update(model="paddle-inference", mode="infer", length=32, batch=16, status="ok", tokens_per_s=5120.0,
               texts_per_s=160.0, seconds_per_step=0.1, ratio_vs_dygraph=1.25, max_abs_diff_vs_dygraph=3e-8)
    skipped = {**row, "status": "skipped: over time", "tokens_per_s": None, "seconds_per_step": None}
    speed_lines = format_table([row, skipped], "speed").splitlines()
    assert speed_lines[2] == "| paddle-inference | infer | 32 | 16 | 5,120 |  |  |  |  |  |"
    assert speed_lines[3].split(" | ")[4] == "skipped: over time"
    deploy_lines = format_table([row, skipped], "deploy").splitlines()
    assert deploy_lines[2] == "| 16 | 32 | paddle-inference | infer | 100.0 | 160.0 | 5,120 | 1.25 |  | 3.0e-08 |"
    assert deploy_lines[3].split(" | ")[4] == "skipped: over time"


def test_benchmark_modules_import_no_framework():
    """The fork servers import benchmarks.harness: it must bring neither paddle nor torch (nor the model
    package, which benchmarks.commits imports from another checkout)."""
    code = (
        "import sys; import benchmarks.speed, benchmarks.commits, benchmarks.harness, benchmarks.workloads; "
        "print(sorted(m for m in ('paddle', 'torch', 'paddlenlp', 'paddlenlp_fastformer') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


@pytest.mark.skipif(not _torch_stack_available(), reason="torch or fast-transformer-pytorch not installed")
def test_torch_fork_server_holds_torch_only_and_is_not_tuned():
    from benchmarks.harness import ForkServer

    server = ForkServer("torch", "auto")
    try:
        info = server.run("probe", {"framework": "torch"}, timeout=300)
    finally:
        server.close()
    assert info["ok"], info
    assert info["imports"] == ["torch"]  # torch binds to paddle's OpenMP runtime when paddle is loaded
    assert info["cpu_tuning"] is None  # tune_cpu is paddle's, applied in the paddle server only


def test_commit_measurement_survives_its_round_trip_to_the_measuring_process():
    import benchmarks.commits as commits

    measurement = commits.Measurement("/tmp/checkout", "paddle-official", "official", 1)
    assert eval(repr(measurement), {"Measurement": commits.Measurement}) == measurement


@pytest.mark.slow
def test_generation_benchmark_prints_both_tables():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.generation", "--contexts", "16", "40", "--new_tokens", "2", "--repeats", "1", "--threads", "1"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 16 |") or line.startswith("| 40 |")]
    assert len(rows) == 4 and "Decoder-only" in result.stdout and "Encoder-decoder" in result.stdout
