"""The one place figures are made and written: reports, training results and physics demos all use it.

Matplotlib is imported lazily with the non-interactive ``Agg`` backend, so importing the package never needs a
display and never pays for matplotlib unless a figure is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the ``Agg`` backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120, tight: bool = True) -> Path:
    """Lay out (``tight``), write (creating the folder) and close ``fig``; return the path written.

    **Arguments:**

    - ``fig``: a matplotlib figure.
    - ``path``: where to write it; the suffix picks the format (``.png``, ``.pdf``, ``.svg``).
    - ``dpi``: resolution of raster formats.
    - ``tight``: call ``fig.tight_layout()`` first.
    """
    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
