"""The catalogue images a search service shows and searches by id: :class:`Catalogue`.

An index stores vectors and metadata, not pictures. The images come from

- the source the index was built from (``snnfast serve --images SOURCE``): a Fashion-MNIST
  split (``train`` or ``test``), an image folder or a ``.npy`` file; an item's id is its row in
  the source, as ``snnfast embed`` numbers them; or
- the index itself, when it is an hnswlib index built from image files (it keeps each item's
  path): an item's id is the index's id.

Every image is given as the model sees it: uint8 ``[C, H, W]`` of the model's input shape
(:mod:`snnfast.data.images`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import CLASS_NAMES, ImageOptions, ImageSource, load_fashion_mnist
from ..errors import ConfigError, IndexMismatchError
from ..retrieval import NO_LABEL, RetrievalIndex, VectorStore
from .records import ItemsInfo

__all__ = ["SPLITS", "Catalogue", "UnknownItem"]

SPLITS = ("train", "test")
"""Sources read as a Fashion-MNIST split (unless a file or folder of that name exists)."""


class UnknownItem(ConfigError):
    """A catalogue id that is not there (the service answers 404)."""


class Catalogue:
    """Catalogue images by id. Make one with :meth:`open` or :meth:`from_index`.

    Attributes:
        description: where the images come from.
        class_names: the label names, or ``None``.
    """

    def __init__(
        self,
        source: ImageSource,
        shape: tuple[int, int, int],
        *,
        ids: np.ndarray | None = None,
        class_names: tuple[str, ...] | None = None,
        options: ImageOptions | None = None,
        description: str | None = None,
    ) -> None:
        self._source = source
        self._shape = shape
        self._options = options or ImageOptions()
        self.description = description or source.description
        self.class_names = class_names if class_names is not None else source.class_names
        if ids is None:
            self._sorted_ids: np.ndarray | None = None
            self._rows: np.ndarray | None = None
        else:
            order = np.argsort(ids, kind="stable")
            self._sorted_ids, self._rows = ids[order], order

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str],
        shape: tuple[int, int, int],
        *,
        labels: str | os.PathLike[str] | None = None,
        class_names: tuple[str, ...] | None = None,
        options: ImageOptions | None = None,
    ) -> Catalogue:
        """The images of ``source``: ``"train"`` / ``"test"`` (Fashion-MNIST, unless a file or
        folder of that name exists), an image folder or a ``.npy`` file (with ``labels``, a
        ``.npy`` file of integers). ``class_names`` name the labels (default: a folder's class
        subfolders, Fashion-MNIST's classes, none for a ``.npy`` file).

        Raises:
            DataError: a missing or unreadable source.
            ConfigError: labels given for a folder or a Fashion-MNIST split; class names for
                images without labels, or fewer names than labels.
        """
        name = os.fspath(source)
        if name in SPLITS and not Path(name).exists():
            if labels is not None:
                raise ConfigError("--labels is for a .npy source; Fashion-MNIST has its own")
            images, y = load_fashion_mnist(name)
            src = ImageSource(
                f"Fashion-MNIST {name} ({len(y):,} images)",
                len(y),
                labels=y,
                class_names=CLASS_NAMES,
                array=images,
            )
        else:
            src = ImageSource.open(source, labels)
        if class_names is not None:
            names = tuple(str(c) for c in class_names)
            if src.labels is None:
                raise ConfigError(
                    f"class names were given for {src.description}, which has no labels"
                )
            if len(src.labels) and int(src.labels.max()) >= len(names):
                raise ConfigError(
                    f"{len(names)} class names were given but {src.description} has label "
                    f"{int(src.labels.max())}"
                )
            return cls(src, shape, class_names=names, options=options)
        return cls(src, shape, options=options)

    @classmethod
    def from_index(
        cls,
        index: VectorStore,
        shape: tuple[int, int, int],
        *,
        options: ImageOptions | None = None,
    ) -> Catalogue | None:
        """The images of an hnswlib index built from image files (through the paths it keeps),
        or ``None`` when the index keeps no paths (or is not an hnswlib index)."""
        if not isinstance(index, RetrievalIndex) or index.paths is None:
            return None
        paths = index.paths
        if not all(paths):
            return None
        labels = index.labels
        src = ImageSource(
            f"the image files of the index ({len(paths):,})",
            len(paths),
            paths=paths,
            labels=None if (labels == NO_LABEL).all() else labels,
        )
        return cls(src, shape, ids=index.ids, options=options)

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"Catalogue({self.description})"

    @property
    def labelled(self) -> bool:
        """Whether the images have labels."""
        return self._source.labels is not None

    def ids(self) -> np.ndarray:
        """Every id, ascending."""
        if self._sorted_ids is None:
            return np.arange(len(self), dtype=np.int64)
        return self._sorted_ids

    def row(self, item_id: int) -> int:
        """The source row of ``item_id``.

        Raises:
            UnknownItem: no item has this id.
        """
        if self._sorted_ids is None:
            if 0 <= item_id < len(self):
                return int(item_id)
        else:
            pos = int(np.searchsorted(self._sorted_ids, item_id))
            if pos < len(self._sorted_ids) and self._sorted_ids[pos] == item_id:
                assert self._rows is not None
                return int(self._rows[pos])
        ids = self.ids()
        raise UnknownItem(
            f"no catalogue item has id {item_id} (ids {int(ids[0])} .. {int(ids[-1])}, "
            f"{len(self):,} items)"
        )

    def image(self, item_id: int) -> np.ndarray:
        """The item's image as the model's input, uint8 ``[C, H, W]``.

        Raises:
            UnknownItem: no item has this id.
            DataError: its file cannot be decoded.
        """
        row = self.row(item_id)
        opts = ImageOptions(
            resample=self._options.resample,
            fit=self._options.fit,
            background=self._options.background,
            on_error="raise",
        )
        return self._source.read_ids(np.array([row]), self._shape, opts).images[0]

    def label(self, item_id: int) -> int | None:
        """The item's label, or ``None`` when unknown."""
        labels = self._source.labels
        if labels is None:
            return None
        value = int(labels[self.row(item_id)])
        return None if value == NO_LABEL else value

    def class_name(self, label: int | None) -> str | None:
        """The name of ``label``, or ``None``."""
        if label is None or self.class_names is None or not 0 <= label < len(self.class_names):
            return None
        return self.class_names[label]

    def check_against(self, index: VectorStore, where: str) -> None:
        """Refuse a catalogue that is not the one ``index`` was built from: an index id it does
        not hold, or a label that differs (checked where both know the labels; an hnswlib index
        only, the other backends do not list their items).

        Raises:
            IndexMismatchError: names the first item that differs.
        """
        if not isinstance(index, RetrievalIndex):
            return
        ids, labels = index.ids, index.labels
        known = self.ids()
        pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        missing = ids[known[pos] != ids]
        if missing.size:
            raise IndexMismatchError(
                f"{where} holds item id {int(missing[0])}, which the catalogue images "
                f"({self.description}) do not have: give the images the index was built from"
            )
        if self._source.labels is None:
            return
        mine = self._source.labels[
            self._rows[pos] if self._rows is not None else ids
        ]  # rows of the index's ids
        differ = np.flatnonzero((labels != NO_LABEL) & (mine != labels))
        if differ.size:
            i = int(differ[0])
            raise IndexMismatchError(
                f"{where} has label {int(labels[i])} for item {int(ids[i])} but the catalogue "
                f"images ({self.description}) have label {int(mine[i])}: give the images the "
                "index was built from"
            )

    def info(self) -> ItemsInfo:
        """What the catalogue is, for ``GET /info``."""
        ids = self.ids()
        return ItemsInfo(
            description=self.description,
            count=len(self),
            first_id=int(ids[0]) if len(ids) else 0,
            labelled=self.labelled,
            class_names=self.class_names,
        )
