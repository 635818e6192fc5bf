"""The core map: which layer sits on which core of each chip (the paper's Fig 3)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from .mapper import Mapping

__all__ = ["core_map"]


def core_map(mapping: Mapping, path: str | os.PathLike[str], title: str | None = None) -> None:
    """Draw each chip's core grid coloured by layer, with a legend (the paper's Fig 3).

    One panel per chip, ``grid_rows x grid_cols`` cells; unused cores are left light grey.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from ..plots import save_figure

    if not isinstance(mapping, Mapping):
        raise ConfigError(f"core_map needs a snnfast.chip.Mapping, got {type(mapping).__name__}")
    chip = mapping.chip
    n_chips = mapping.n_chips
    fig = Figure(figsize=(0.4 * chip.grid_cols * n_chips, 0.4 * chip.grid_rows + 0.6))
    axes = fig.subplots(1, n_chips, squeeze=False)[0]
    cmap = [to_rgba(f"C{i % 10}") for i in range(len(mapping.layers))]
    placements = mapping.placements
    layer_of = mapping.core_layer
    for c, ax in enumerate(axes):
        ax.set_xlim(0, chip.grid_cols)
        ax.set_ylim(chip.grid_rows, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"chip {c}" if n_chips > 1 else (title or "Loihi chip"), fontsize=9)
        for row in range(chip.grid_rows):
            for col in range(chip.grid_cols):
                ax.add_patch(_cell(col, row, "#eeeeee"))
    for core, (c, row, col) in enumerate(placements):
        ax = axes[c]
        l = int(layer_of[core])
        ax.add_patch(_cell(col, row, cmap[l]))
        ax.text(col + 0.5, row + 0.5, str(l), ha="center", va="center", fontsize=6)
    handles = [
        Patch(
            color=cmap[lm.index],
            label=f"L{lm.index} {lm.kind} {'x'.join(map(str, lm.shape))}: {lm.n_cores} cores",
        )
        for lm in mapping.layers
    ]
    axes[-1].legend(
        handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False
    )
    if title and n_chips > 1:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def _cell(col: int, row: int, color: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((col + 0.05, row + 0.05), 0.9, 0.9, facecolor=color, edgecolor="white")
