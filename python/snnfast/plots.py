"""Figures: accuracy and runtime against time steps, query grids. Rendered with Matplotlib's Agg
backend (no display needed), written atomically. The core map is :func:`snnfast.chip.core_map`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping as StrMapping
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ._io import atomic_write
from .errors import ShapeError

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Render ``fig`` to PNG in memory, then write it to ``path`` in one atomic step."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


# -- the paper's Fig 6: retrieval examples ----------------------------------------------------

__all__.append("query_grid")


def _gray_images(images: Any, name: str) -> np.ndarray:
    """uint8 ``[N, 1, H, W]`` or ``[N, H, W]`` → ``[N, H, W]``."""

    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise ShapeError(
            f"{name} must be uint8 [N, 1, H, W] or [N, H, W], got shape "
            f"{np.shape(images)} dtype {arr.dtype}"
        )
    return arr


def query_grid(
    path: str | os.PathLike[str],
    queries: np.ndarray,
    corpus_images: np.ndarray,
    ann_ids: ArrayLike,
    snn_ids: ArrayLike,
    random_ids: ArrayLike,
    class_names: list[str] | tuple[str, ...],
    query_labels: ArrayLike | None = None,
    snn_title: str = "SNN",
) -> None:
    """Write the paper's Fig 6 layout as a PNG: one row per query with the query image, three
    random corpus images of its class, the ANN's top 3 and the SNN's top 3.

    Args:
        path: PNG file to write.
        queries: uint8 ``[Q, 1, 28, 28]`` (or ``[Q, 28, 28]``) query images.
        corpus_images: uint8 ``[N, 1, 28, 28]`` corpus images the ids index into.
        ann_ids, snn_ids, random_ids: int ``[Q, 3]`` corpus row numbers.
        class_names: class names, indexed by label.
        query_labels: int ``[Q]`` classes of the queries (row titles). Default: row ``i`` is
            class ``i``, the paper's layout of one query per class in class order.
        snn_title: heading of the SNN columns (e.g. ``"SNN(16)"``).

    Raises:
        ShapeError: images of the wrong shape/dtype, id arrays not ``[Q, 3]``, ids outside the
            corpus, or more queries than class names without ``query_labels``.
    """

    q = _gray_images(queries, "queries")
    corpus = _gray_images(corpus_images, "corpus_images")
    groups = []
    for name, ids in (("random_ids", random_ids), ("ann_ids", ann_ids), ("snn_ids", snn_ids)):
        a = np.asarray(ids)
        if a.shape != (q.shape[0], 3) or not np.issubdtype(a.dtype, np.integer):
            raise ShapeError(
                f"{name} must be an integer array [{q.shape[0]}, 3], got shape "
                f"{a.shape} dtype {a.dtype}"
            )
        if a.size and (a.min() < 0 or a.max() >= corpus.shape[0]):
            raise ShapeError(f"{name} has ids outside the corpus [0, {corpus.shape[0]})")
        groups.append(a)
    if query_labels is None:
        if q.shape[0] > len(class_names):
            raise ShapeError(
                f"{q.shape[0]} queries but {len(class_names)} class names; pass query_labels"
            )
        labels = np.arange(q.shape[0])
    else:
        labels = np.asarray(query_labels).reshape(-1)
        if labels.shape[0] != q.shape[0]:
            raise ShapeError(f"query_labels has {labels.shape[0]} entries for {q.shape[0]} queries")
    n_rows = q.shape[0]
    fig = Figure(figsize=(9.5, max(n_rows, 1) * 0.95 + 0.4))
    axes = fig.subplots(n_rows, 10, squeeze=False)
    headings = ["query", "random", "", "", "ANN top-3", "", "", f"{snn_title} top-3", "", ""]
    for r in range(n_rows):
        row = [q[r]] + [corpus[i] for g in groups for i in g[r]]
        for c, (ax, img) in enumerate(zip(axes[r], row)):
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and headings[c]:
                ax.set_title(headings[c], fontsize=9, loc="left")
        axes[r][0].set_ylabel(
            str(class_names[int(labels[r])]), fontsize=8, rotation=0, ha="right", va="center"
        )
    fig.subplots_adjust(left=0.12, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.05)
    save_figure(fig, path)


# -- the paper's Figs 4 and 5: accuracy and runtime against the number of time steps ----------

__all__ += ["metrics_vs_timesteps", "runtime_vs_timesteps"]


def _steps_axis(ax: Any, steps: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(s) for s in steps])
    ax.set_xlabel("number of time steps")
    ax.grid(True, which="major", alpha=0.3)


def _int_steps(values: Any, name: str) -> list[int]:

    arr = np.asarray(values)
    if (
        arr.ndim != 1
        or arr.size == 0
        or not np.issubdtype(arr.dtype, np.integer)
        or (arr.min() < 1)
    ):
        raise ShapeError(
            f"{name} must be a non-empty 1-D array of positive integers, got {values!r}"
        )
    return [int(v) for v in arr]


def metrics_vs_timesteps(
    path: str | os.PathLike[str],
    timesteps: Sequence[int],
    series: StrMapping[str, tuple[Any, Any]],
    reference: dict[str, float] | None = None,
    title: str | None = None,
) -> None:
    """Write the paper's Fig 4: metrics (percent) against time steps, mean with std error bars.

    Args:
        path: PNG file to write.
        timesteps: the x values, positive integers (drawn on a log2 axis).
        series: metric name -> ``(means, stds)``, one value per time step, in percent.
        reference: optional metric name -> value (e.g. the ANN's), drawn as a dashed line in
            the metric's colour.
        title: figure title.

    Raises:
        ShapeError: ``timesteps`` not positive integers, or a series of another length.
    """

    steps = _int_steps(timesteps, "timesteps")
    if not series:
        raise ShapeError("series must name at least one metric")
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for i, (name, (mean, std)) in enumerate(series.items()):
        m = np.asarray(mean, dtype=np.float64)
        s = np.asarray(std, dtype=np.float64)
        if m.shape != (len(steps),) or s.shape != (len(steps),):
            raise ShapeError(
                f"series {name!r}: means and stds need {len(steps)} values each, "
                f"got shapes {m.shape} and {s.shape}"
            )
        color = f"C{i % 10}"
        ax.errorbar(steps, m, yerr=s, color=color, marker="o", ms=4, capsize=3, label=name)
        if reference and name in reference:
            ax.axhline(float(reference[name]), color=color, ls="--", lw=1, label=f"{name}, ANN")
    _steps_axis(ax, steps)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def runtime_vs_timesteps(
    path: str | os.PathLike[str],
    series: StrMapping[str, tuple[Any, Any]],
    points: StrMapping[str, tuple[Any, Any]] | None = None,
    title: str | None = None,
    ylabel: str = "runtime per image (ms)",
) -> None:
    """Write the paper's Fig 5: runtime per image against time steps, on log-log axes.

    Args:
        path: PNG file to write.
        series: name -> ``(timesteps, values)``, drawn as lines with markers.
        points: name -> ``(timesteps, values)``, drawn as large unconnected markers (e.g. the
            paper's measurements).
        title: figure title.
        ylabel: label of the y axis.

    Raises:
        ShapeError: steps not positive integers, values not positive, or lengths that differ.
    """

    if not series and not points:
        raise ShapeError("runtime_vs_timesteps needs at least one series or point set")
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    all_steps: set[int] = set()
    groups = [(series or {}, False), (points or {}, True)]
    k = 0
    for group, as_points in groups:
        for name, (steps_in, values) in group.items():
            steps = _int_steps(steps_in, f"steps of {name!r}")
            v = np.asarray(values, dtype=np.float64)
            if v.shape != (len(steps),) or not (np.isfinite(v).all() and (v > 0).all()):
                raise ShapeError(f"{name!r}: need {len(steps)} positive finite values, got {v}")
            style: dict[str, Any] = (
                {"ls": "none", "marker": "*", "ms": 12} if as_points else {"marker": "o", "ms": 4}
            )
            ax.plot(steps, v, color=f"C{k % 10}", label=name, **style)
            all_steps.update(steps)
            k += 1
    _steps_axis(ax, sorted(all_steps))
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)
