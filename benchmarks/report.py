"""What a run leaves behind: the CSV, the markdown table, the JSON, the plot and the printed summary.

One CSV writer and one table formatter serve every preset; a preset only picks the table's columns
(:data:`TABLES`).
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .models import MODELS, MODES
from .run import Settings

__all__ = [
    "CSV_COLUMNS",
    "TABLES",
    "Column",
    "write_csv",
    "format_table",
    "format_engine_grid",
    "plot_results",
    "write_outputs",
    "summary",
    "describe",
]

CSV_COLUMNS = [
    "model",
    "framework",
    "engine",
    "description",
    "mode",
    "length",
    "batch",
    "status",
    "tokens_per_s",
    "texts_per_s",
    "seconds_per_step",
    "timed_steps",
    "ratio_vs_softmax",
    "ratio_paddle_vs_torch",
    "ratio_vs_dygraph",
    "max_abs_diff_vs_dygraph",
    "peak_mib",
    "flops_per_token",
    "model_gflops",
    "matmul_gflops",
    "fraction_of_matmul_peak",
    "hidden",
    "heads",
    "layers",
    "intermediate",
    "vocab",
    "threads",
    "tokens_per_step",
]


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    fmt: Optional[str] = None  # a number's format; None: text, left-aligned
    scale: float = 1.0
    shows_status: bool = False  # a case that did not run shows why in this column


_MODEL, _MODE = Column("model", "model"), Column("mode", "mode")
_LENGTH, _BATCH = Column("length", "length", "d"), Column("batch", "batch", "d")
_VS_TORCH = Column("Paddle / torch", "ratio_paddle_vs_torch", ".2f")
TABLES: Dict[str, Tuple[Column, ...]] = {
    # throughput against length, the softmax baseline and PyTorch, and what share of matmul speed it reaches
    "speed": (
        _MODEL,
        _MODE,
        _LENGTH,
        _BATCH,
        Column("tokens/s", "tokens_per_s", ",.0f", shows_status=True),
        Column("vs softmax", "ratio_vs_softmax", ".2f"),
        _VS_TORCH,
        Column("peak MiB", "peak_mib", ",.0f"),
        Column("GFLOP/s", "model_gflops", ".1f"),
        Column("of matmul peak", "fraction_of_matmul_peak", ".0%"),
    ),
    # the inference engines side by side per batch shape, with their parity to dygraph
    "deploy": (
        _BATCH,
        _LENGTH,
        _MODEL,
        _MODE,
        Column("ms/batch", "seconds_per_step", ",.1f", scale=1000.0, shows_status=True),
        Column("texts/s", "texts_per_s", ",.1f"),
        Column("tokens/s", "tokens_per_s", ",.0f"),
        Column("vs dygraph", "ratio_vs_dygraph", ".2f"),
        _VS_TORCH,
        Column("max abs diff", "max_abs_diff_vs_dygraph", ".1e"),
    ),
}


def _cell(row: dict, column: Column) -> str:
    if column.shows_status and row["status"] != "ok":
        return row["status"]
    value = row[column.key]
    if value is None:
        return ""
    if column.fmt is None:
        return str(value)
    return format(value if column.scale == 1 else value * column.scale, column.fmt)


def format_table(rows: Sequence[dict], table: str = "speed") -> str:
    """The markdown table of ``rows`` with the columns of ``TABLES[table]``, one line per row."""
    columns = TABLES[table]
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + "".join("---|" if column.fmt is None else "---:|" for column in columns),
    ]
    lines += ["| " + " | ".join(_cell(row, column) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


# The engines of the deploy presets, as docs/deployment.md's engine table names them, in its column order.
ENGINE_COLUMNS = {
    "paddle-official": "dygraph",
    "paddle-inference": "Paddle Inference, portable",
    "paddle-inference-onednn": "portable + oneDNN",
    "paddle-inference-fused": "Paddle Inference, fused",
    "paddle-inference-fused-onednn": "fused + oneDNN",
    "paddle-onnxruntime": "onnxruntime",
    "paddle-onnxruntime-int8": "onnxruntime int8",
    "paddle-onnxruntime-packed": "onnxruntime packed",
    "paddle-auto": "auto (measured)",
    "torch-official": "PyTorch eager",
}
# The fp32 engines the default (auto) is judged against: the fastest of these in the same run.
FP32_ENGINES = ("paddle-official", "paddle-inference", "paddle-inference-onednn", "paddle-inference-fused",
                "paddle-inference-fused-onednn", "paddle-onnxruntime", "paddle-onnxruntime-packed")  # fmt: skip


def format_engine_grid(rows: Sequence[dict]) -> str:
    """The deploy presets' inference rows pivoted: one line per batch shape (in the run's order), tokens/s of each
    engine (with its ratio to dygraph), then the default (auto) against the fastest fp32 engine, int8 against fp32
    on onnxruntime, the fused graph against PyTorch and its share of the fp32 matmul peak."""
    by_shape: Dict[Tuple[int, int], Dict[str, dict]] = {}
    for row in rows:
        if row["model"] in ENGINE_COLUMNS and row["mode"] == "infer":
            by_shape.setdefault((row["batch"], row["length"]), {})[row["model"]] = row
    engines = [model for model in ENGINE_COLUMNS if any(model in shape for shape in by_shape.values())]
    headers = [ENGINE_COLUMNS[model] for model in engines] + ["auto / fastest fp32", "int8 / fp32", "fused vs PyTorch", "fused, of matmul peak"]
    lines = ["| batch | length | " + " | ".join(headers) + " |", "|---:|---:|" + "---:|" * len(headers)]
    for (batch, length), shape in by_shape.items():
        cells = [_engine_cell(shape.get(model)) for model in engines]
        fused = shape.get("paddle-inference-fused")
        ok = fused is not None and fused["status"] == "ok"
        versus = f"{fused['ratio_paddle_vs_torch']:.2f}x" if ok and fused.get("ratio_paddle_vs_torch") else ""
        peak = format(fused["fraction_of_matmul_peak"], ".0%") if ok and fused.get("fraction_of_matmul_peak") else ""
        lines.append(f"| {batch} | {length} | " + " | ".join(cells + [_auto_ratio(shape), _int8_ratio(shape), versus, peak]) + " |")
    return "\n".join(lines)


def _speed(row: Optional[dict]) -> Optional[float]:
    return row["tokens_per_s"] if row is not None and row["status"] == "ok" else None


def _auto_ratio(shape: Dict[str, dict]) -> str:
    """The default's speed over the fastest fp32 engine's at one shape, naming that engine."""
    speeds = {model: _speed(shape.get(model)) for model in FP32_ENGINES}
    speeds = {model: speed for model, speed in speeds.items() if speed}
    auto = _speed(shape.get("paddle-auto"))
    if not auto or not speeds:
        return ""
    fastest = max(speeds, key=speeds.get)
    return f"{auto / speeds[fastest]:.2f} ({ENGINE_COLUMNS[fastest]})"


def _int8_ratio(shape: Dict[str, dict]) -> str:
    int8, fp32 = _speed(shape.get("paddle-onnxruntime-int8")), _speed(shape.get("paddle-onnxruntime"))
    return f"{int8 / fp32:.2f}x" if int8 and fp32 else ""


def _engine_cell(row: Optional[dict]) -> str:
    if row is None:
        return ""
    if row["status"] != "ok":
        return row["status"]
    ratio = row.get("ratio_vs_dygraph")
    is_dygraph = row["model"] == "paddle-official"
    return f"{row['tokens_per_s']:,.0f}" + ("" if is_dygraph or ratio is None else f" ({ratio:.2f}x)")


def write_csv(rows: Sequence[dict], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ("" if row[key] is None else row[key]) for key in CSV_COLUMNS})


# ----------------------------------------------------------------------------------------------
# the plot
# ----------------------------------------------------------------------------------------------
MARKERS = "os^vDP"  # one per batch size on a batch grid


def _style(model: str) -> Tuple[str, str]:
    """Colour by formulation, attention or engine; a torch twin dashed in its Paddle model's colour."""
    spec = MODELS[model]
    colour = {"official": "C0", "lucidrains": "C1"}[spec.formulation]
    colour = "C2" if spec.attention == "softmax" else colour
    colour = {"inference": "C3", "inference-onednn": "C4", "onnxruntime": "C5", "onnxruntime-int8": "C6", "inference-fused": "C7",
              "inference-fused-onednn": "C8", "onnxruntime-packed": "C9", "auto": "k"}.get(spec.engine, colour)  # fmt: skip
    return colour, "--" if spec.framework == "torch" else "-"


def _lines(rows: Sequence[dict], mode: str, key: str) -> Dict[Tuple[str, int, str], List[tuple]]:
    """(model, marker index, label) -> sorted (length, value) points; on a batch grid, a line per batch size."""
    per_batch = len({(r["model"], r["mode"], r["length"], r["batch"]) for r in rows}) > len(
        {(r["model"], r["mode"], r["length"]) for r in rows}
    )
    batches = sorted({row["batch"] for row in rows})
    lines: Dict[Tuple[str, int, str], List[tuple]] = {}
    for row in rows:
        if row["mode"] == mode and row[key] is not None and row[key] > 0:
            if per_batch:
                name = (row["model"], batches.index(row["batch"]), f"{row['model']} B{row['batch']}")
            else:
                name = (row["model"], 0, row["model"])
            lines.setdefault(name, []).append((row["length"], row[key]))
    return {name: sorted(points) for name, points in lines.items()}


def plot_results(rows: Sequence[dict], path: str, title: str = "") -> None:
    """Tokens/s and peak memory against length, log-log, one line per model, one row of plots per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [mode for mode in MODES if any(row["mode"] == mode for row in rows)] or list(MODES[:1])
    figure, axes = plt.subplots(len(modes), 2, figsize=(12, 4.2 * len(modes)), squeeze=False)
    for row_index, mode in enumerate(modes):
        for column, (key, label) in enumerate((("tokens_per_s", "tokens/s"), ("peak_mib", "peak memory (MiB)"))):
            axis = axes[row_index][column]
            for (model, marker, name), points in _lines(rows, mode, key).items():
                colour, style = _style(model)
                axis.plot(*zip(*points), style, color=colour, marker=MARKERS[marker % len(MARKERS)], label=name)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel("sequence length")
            axis.set_ylabel(label)
            axis.set_title(f"{mode}: {label}")
            axis.grid(True, which="both", alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------------------------
# files and the printed summary
# ----------------------------------------------------------------------------------------------
def _sizes_text(settings: Settings) -> str:
    sizes = settings.sizes
    return (
        f"hidden {sizes.hidden}, {sizes.heads} heads, {sizes.layers} layers, intermediate {sizes.intermediate}, "
        f"vocabulary {sizes.vocab}"
    )


def _batch_text(settings: Settings) -> str:
    if settings.batch_sizes is None:
        return f"batch = max(1, {settings.tokens_per_step} // length)"
    return "batch " + ", ".join(str(batch) for batch in settings.batch_sizes)


def write_outputs(result: dict, output_dir: str, command: str) -> Dict[str, str]:
    """benchmark.csv, benchmark.png and benchmark.json in ``output_dir``; returns their paths by suffix."""
    settings, environment, sizes = result["settings"], result["environment"], result["settings"].sizes
    os.makedirs(output_dir, exist_ok=True)
    paths = {suffix: os.path.join(output_dir, f"benchmark.{suffix}") for suffix in ("csv", "png", "json")}
    write_csv(result["rows"], paths["csv"])
    title = (
        f"D={sizes.hidden} H={sizes.heads} L={sizes.layers} I={sizes.intermediate}; "
        f"{_batch_text(settings)}; {environment['threads']} threads, {environment['cpu']}; dashed: PyTorch"
    )
    plot_results(result["rows"], paths["png"], title)
    with open(paths["json"], "w", encoding="utf-8") as handle:
        json.dump({"command": command, **result, "settings": asdict(settings)}, handle, indent=1, default=str)
    return paths


def summary(result: dict, paths: Dict[str, str], table: str) -> str:
    """The text printed at the end of a run: versions and machine, method, the table, files, wall time."""
    settings, environment, matmul = result["settings"], result["environment"], result["matmul_gflops"]
    matmul_text = ", ".join(f"{name} {value:.1f}" if value else f"{name} n/a" for name, value in matmul.items())
    return "\n".join(
        [
            "",
            f"paddle {environment.get('paddle')}, torch {environment.get('torch') or 'n/a'}, "
            f"{environment['threads']} thread(s) of {environment['cpu_count']} ({environment['cpu']}; "
            f"{' '.join(environment.get('cpu_instruction_sets') or ['no AVX2'])}); fp32 {settings.matmul_size}^3 matmul GFLOP/s (best round): {matmul_text}",
            f"{_sizes_text(settings)}; {_batch_text(settings)}; median of {settings.repeats} round(s) x "
            f"{settings.steps} timed step(s), {settings.warmup} warm-up step(s) each; "
            f"OMP_WAIT_POLICY {environment.get('omp_wait_policy')}; "
            f"paddle CPU tuning {environment.get('paddle_cpu_tuning')}",
            "",
            format_table(result["rows"], table),
            "",
            *([format_engine_grid(result["rows"]), ""] if table == "deploy" else []),
            "wrote " + ", ".join(paths.values()),
            f"wall time {result['wall_seconds']:.0f} s; load average at the end "
            f"{tuple(round(x, 1) for x in environment['load_average_end'])}",
        ]
    )


def describe(settings: Settings) -> str:
    """The one line announcing a run."""
    return (
        f"benchmark: {len(settings.models)} models x {len(settings.modes)} modes x {len(settings.shapes())} shapes, "
        f"{settings.repeats} round(s); {_sizes_text(settings)}; {_batch_text(settings)}"
    )
