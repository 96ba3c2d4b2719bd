"""Figures as PNG files: matplotlib without a display, each file written atomically."""
from __future__ import annotations

import io

from paddlenlp_fastformer.file_utils import write_bytes_atomically

__all__ = ["pyplot", "save_png"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure, path, dpi: int = 110) -> None:
    """Write ``figure`` to ``path`` as a PNG, replacing an earlier file in one rename, and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    write_bytes_atomically(path, buffer.getvalue())
