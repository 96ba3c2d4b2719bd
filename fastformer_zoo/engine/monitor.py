"""Training curves users can look at: VisualDL scalars while a run trains, and a PNG beside its log.

The PNG is drawn from the run's own progress record (the logged losses and the dev scores, saved
with ``last/``), so a resumed run draws the whole curve, not just the part after the restart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

from .plots import pyplot, save_png

__all__ = ["TrainingMonitor", "CURVE_FILE", "VISUALDL_DIR"]

CURVE_FILE = "training_curve.png"
VISUALDL_DIR = "vdl"


class TrainingMonitor:
    """Scalars to VisualDL (when enabled) and the curve PNG, for one run's output directory."""

    def __init__(self, output_dir: Path, use_visualdl: bool):
        self.output_dir = Path(output_dir)
        self.writer = None
        if use_visualdl:
            from visualdl import LogWriter  # installed with paddlenlp; only imported when asked for

            # VisualDL appends to its own event files; after a resume, steps simply continue.
            self.writer = LogWriter(logdir=str(self.output_dir / VISUALDL_DIR))

    def log_step(self, step: int, loss: float, learning_rate: float, tokens_per_second: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/learning_rate", learning_rate, step)
            self.writer.add_scalar("train/tokens_per_s", tokens_per_second, step)

    def log_dev(self, step: int, record: dict) -> None:
        """The dev metrics of one evaluation (``record``: name -> value), each as ``dev/<name>``."""
        if self.writer is not None:
            for name, value in record.items():
                self.writer.add_scalar(f"dev/{name}", value, step)
            self.writer.flush()

    def draw(self, loss_log: list, history: list, curve: Sequence[Tuple[str, str]], title: Optional[str] = None) -> None:
        """Write ``training_curve.png``: logged training loss by step, and by step the dev scores ``curve`` names
        (``(key of a history record, legend)`` pairs; fractions, drawn as percentages)."""
        if not loss_log:
            return
        figure, loss_axis = pyplot().subplots(figsize=(7, 3.6))
        steps, losses = zip(*loss_log)
        loss_axis.plot(steps, losses, color="#3b75af", linewidth=1.2, label="training loss")
        loss_axis.set_xlabel("optimizer step")
        loss_axis.set_ylabel("training loss")
        if history:
            score_axis = loss_axis.twinx()
            dev_steps = [record["step"] for record in history]
            for (key, name), color in zip(curve, ("#d1762a", "#4a9a52")):
                score_axis.plot(dev_steps, [100 * record[key] for record in history], "o-", color=color, label=name)
            score_axis.set_ylabel("dev score (%)")
            handles = loss_axis.get_legend_handles_labels()[0] + score_axis.get_legend_handles_labels()[0]
            loss_axis.legend(handles=handles, loc="center right", fontsize=8)
        loss_axis.set_title(title or self.output_dir.name, fontsize=10)
        figure.tight_layout()
        save_png(figure, self.output_dir / CURVE_FILE, dpi=100)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
