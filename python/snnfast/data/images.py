"""Your own images for snnfast: folders of image files and NumPy arrays.

Images (:func:`list_images`, :func:`load_images`, :func:`iter_images`, :class:`ImageSource`)
come from

- a folder of image files: with class subfolders (``root/<class>/**/*.png``) the labels are the
  subfolders' indices in sorted order (:attr:`ImageList.class_names`); a flat folder has no
  labels. Hidden files and folders (``.name``) are skipped; files are taken in sorted order of
  their path, which gives each its id (its row in the listing);
- a single image file (no label);
- a NumPy ``.npy`` file (or array) of uint8 ``[N, C, H, W]`` or ``[N, H, W]``, with optional
  integer labels ``[N]``; read memory-mapped, so large files stream.

Every image becomes uint8 ``[C, H, W]`` of the model's input shape, with Pillow (imported only
when an image file is decoded or an array resized), as a user would expect:

1. the EXIF orientation is applied (a phone photo comes out upright); of an animation, the
   first frame;
2. colour: to grey (``C = 1``) with Pillow's ``"L"`` conversion, the ITU-R 601-2 luma
   ``L = (299 R + 587 G + 114 B) / 1000``; to RGB (``C = 3``) a grey image is replicated into
   the three channels; palette and CMYK images are converted to RGB first; an alpha channel is
   composited onto ``background`` (default 0, black: the background of Fashion-MNIST); 16-bit
   grey is scaled to 8 bits (``round(v * 255 / 65535)``);
3. size: ``fit="stretch"`` (default) resizes to ``H x W`` ignoring the aspect ratio,
   ``"crop"`` scales the shorter side and crops the centre, ``"pad"`` scales the longer side
   and pads with ``background``, ``"center"`` does not scale at all: the image is placed in the
   middle, padded with ``background`` or cropped (the odd pixel goes to the bottom / right);
   the resampling filter is ``resample`` (default
   ``"bilinear"``: Pillow's bilinear filter, whose support grows with the reduction, so large
   images are antialiased). An image already of the right size and mode is not resampled.

A file that cannot be decoded raises :class:`~snnfast.errors.DataError` naming it, or, with
``on_error="skip"``, is skipped with a warning (its id is then missing from the results).
Sizes are checked before allocating (:func:`snnfast._checks.check_memory`): a whole folder's
array, each image's decoded pixels.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _checks
from ..errors import ConfigError, DataError, ShapeError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_EXTENSIONS",
    "RESAMPLING",
    "FITS",
    "ImageList",
    "ImageBatch",
    "ImageOptions",
    "ImageSource",
    "list_images",
    "read_image",
    "convert_array",
    "iter_images",
    "load_images",
]

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
"""File name endings (lower case) that :func:`list_images` takes for image files."""

RESAMPLING = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
"""Pillow resampling filters :class:`ImageOptions` accepts (``PIL.Image.Resampling``)."""

FITS = ("stretch", "crop", "pad", "center")
"""How an image of another aspect ratio is fitted to the model's ``H x W``."""

_ON_ERROR = ("raise", "skip")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA = ("LA", "La", "RGBA", "RGBa", "PA")


@dataclass(frozen=True)
class ImageOptions:
    """How image files and arrays are turned into the model's input (see the module docstring).

    Attributes:
        resample: one of :data:`RESAMPLING` (default ``"bilinear"``).
        fit: one of :data:`FITS` (default ``"stretch"``).
        background: grey level 0..255 that alpha is composited onto and ``"pad"`` fills with.
        on_error: ``"raise"`` (default) a :class:`~snnfast.errors.DataError` for a file that
            cannot be decoded, or ``"skip"`` it with a warning.
    """

    resample: str = "bilinear"
    fit: str = "stretch"
    background: int = 0
    on_error: str = "raise"

    def __post_init__(self) -> None:
        where = "ImageOptions"
        _checks.choice(self.resample, "resample", RESAMPLING, where=where)
        _checks.choice(self.fit, "fit", FITS, where=where)
        _checks.integer(self.background, "background", 0, 255, where=where)
        _checks.choice(self.on_error, "on_error", _ON_ERROR, where=where)


@dataclass(frozen=True)
class ImageList:
    """The image files of a folder, listed without decoding them.

    Attributes:
        root: the folder.
        paths: ``[N]`` unicode strings, the files in sorted order (row ``i`` has id ``i``).
        labels: int64 ``[N]`` class indices (the class subfolder of each file), or ``None`` for
            a flat folder.
        class_names: the class subfolders' names in label order, or ``None``.
    """

    root: str
    paths: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None

    def __len__(self) -> int:
        return int(self.paths.shape[0])


@dataclass(frozen=True)
class ImageBatch:
    """Images ready for a model, with what is known about them.

    Attributes:
        images: uint8 ``[N, C, H, W]``.
        ids: int64 ``[N]`` each image's row in its source (files skipped as undecodable leave
            gaps).
        labels: int64 ``[N]``, or ``None`` when the source has none.
        paths: ``[N]`` unicode strings, the file of each image, or ``None`` for arrays.
        class_names: the label names, or ``None``.
    """

    images: np.ndarray
    ids: np.ndarray
    labels: np.ndarray | None = None
    paths: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _walk_images(folder: Path) -> list[str]:
    found: list[str] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        for f in sorted(files):
            if _visible(f) and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(str(Path(top) / f))
    return sorted(found)


def list_images(folder: str | os.PathLike[str]) -> ImageList:
    """List the image files of ``folder`` (class subfolders give labels, in sorted order).

    Raises:
        DataError: the folder is missing, holds no image files, or mixes image files with
            class subfolders at its top level.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"no image folder at {root}")
    entries = sorted((e for e in root.iterdir() if _visible(e.name)), key=lambda e: e.name)
    subdirs = [e for e in entries if e.is_dir()]
    files = [e for e in entries if e.is_file() and e.suffix.lower() in IMAGE_EXTENSIONS]
    if subdirs and files:
        raise DataError(
            f"{root} holds both image files ({files[0].name}, ...) and subfolders "
            f"({subdirs[0].name}, ...): put every image in a class subfolder (labelled) or all "
            "of them in the folder itself (unlabelled)"
        )
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    if subdirs:
        paths: list[str] = []
        label_list: list[int] = []
        for label, sub in enumerate(subdirs):
            found = _walk_images(sub)
            paths += found
            label_list += [label] * len(found)
        labels = np.asarray(label_list, dtype=np.int64)
        class_names = tuple(d.name for d in subdirs)
    else:
        paths = [str(f) for f in files]
    if not paths:
        raise DataError(
            f"{root} holds no image files (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return ImageList(str(root), np.asarray(paths, dtype=str), labels, class_names)


def _pil() -> Any:
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency
        raise DataError("reading image files needs Pillow: pip install 'pillow==13.0.0'") from exc
    return Image, ImageOps


def _target_channels(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        c, h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ShapeError(f"image shape must be (C, H, W), got {shape!r}") from None
    if min(c, h, w) < 1:
        raise ShapeError(f"image shape must be (C, H, W) with positive sizes, got {shape!r}")
    if c not in (1, 3):
        raise ShapeError(f"images can be made grey (C = 1) or RGB (C = 3); the model takes C = {c}")
    return c, h, w


def _to_mode(img: PILImage.Image, channels: int, background: int) -> PILImage.Image:
    """``img`` as Pillow mode ``"L"`` (channels 1) or ``"RGB"`` (3), alpha composited."""
    Image, _ = _pil()
    if img.mode in _SIXTEEN_BIT:
        a = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
        img = Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif img.mode == "F":
        raise DataError("floating-point images (Pillow mode F) are not supported")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    if img.mode in _ALPHA:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (background, background, background, 255))
        img = Image.alpha_composite(base, rgba).convert("RGB")
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def _fit(img: PILImage.Image, h: int, w: int, options: ImageOptions) -> np.ndarray:
    Image, ImageOps = _pil()
    if img.size != (w, h):
        method = getattr(Image.Resampling, options.resample.upper())
        if options.fit == "stretch":
            img = img.resize((w, h), method)
        elif options.fit == "crop":
            img = ImageOps.fit(img, (w, h), method)
        elif options.fit == "center":
            return _center(img, h, w, options.background)
        else:
            b = options.background
            color = b if img.mode == "L" else (b, b, b)
            img = ImageOps.pad(img, (w, h), method, color=color)
    a = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def _center(img: PILImage.Image, h: int, w: int, background: int) -> np.ndarray:
    """``img`` unscaled in the middle of an ``h x w`` canvas of ``background``, as ``[C, H, W]``."""
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    c, h0, w0 = a.shape
    out = np.full((c, h, w), background, dtype=np.uint8)
    dy, dx = (h - h0) // 2, (w - w0) // 2
    sy, sx = max(0, -dy), max(0, -dx)
    ty, tx = max(0, dy), max(0, dx)
    ch, cw = min(h0 - sy, h - ty), min(w0 - sx, w - tx)
    out[:, ty : ty + ch, tx : tx + cw] = a[:, sy : sy + ch, sx : sx + cw]
    return out


def read_image(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    options: ImageOptions | None = None,
) -> np.ndarray:
    """Decode one image file into uint8 ``[C, H, W]`` of ``shape`` (see the module docstring).

    Raises:
        DataError: the file is missing or cannot be decoded (names the file).
        ShapeError: ``shape`` is not ``(1 | 3, H, W)``.
        MemoryLimitError: its decoded pixels would not fit the memory limit.
    """
    from ..errors import SnnfastError

    opts = options or ImageOptions()
    c, h, w = _target_channels(shape)
    Image, ImageOps = _pil()
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no image file at {p}")
    try:
        with Image.open(p) as img:
            width, height = img.size
            _checks.check_memory(width * height * 4 * 3, f"decoding {p} ({width} x {height})")
            return _fit(_to_mode(ImageOps.exif_transpose(img), c, opts.background), h, w, opts)
    except SnnfastError as exc:
        if isinstance(exc, DataError):
            raise DataError(f"cannot decode image {p}: {exc}") from exc
        raise
    except Exception as exc:  # Pillow's decoders raise many kinds (OSError, SyntaxError, ...)
        raise DataError(f"cannot decode image {p}: {type(exc).__name__}: {exc}") from exc


def convert_array(
    images: np.ndarray, shape: Sequence[int], options: ImageOptions | None = None
) -> np.ndarray:
    """uint8 ``[N, C', H', W']`` (or ``[N, H', W']``) as uint8 ``[N, C, H, W]`` of ``shape``.

    Arrays already of the shape are returned as they are (contiguous); otherwise each image goes
    through the same colour and size steps as a decoded file.

    Raises:
        ShapeError: not uint8, not 3-D or 4-D, or channels other than 1 or 3 to convert.
    """
    opts = options or ImageOptions()
    a = _image_array(images, "images")
    n, c0, h0, w0 = a.shape
    if tuple(shape) == (c0, h0, w0):
        return np.ascontiguousarray(a)
    c, h, w = _target_channels(shape)
    if c0 not in (1, 3):
        raise ShapeError(f"images have {c0} channels; only grey (1) or RGB (3) can be converted")
    _checks.check_memory(n * c * h * w, f"converting {n} images to {c} x {h} x {w}")
    if (h0, w0) == (h, w) and c0 == 1:  # grey to RGB: Pillow's conversion replicates
        return np.ascontiguousarray(np.repeat(a, 3, axis=1))
    Image, _ = _pil()
    out = np.empty((n, c, h, w), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(a[i, 0] if c0 == 1 else np.ascontiguousarray(a[i].transpose(1, 2, 0)))
        out[i] = _fit(_to_mode(img, c, opts.background), h, w, opts)
    return out


def _image_array(images: Any, what: str) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise ShapeError(f"{what} must be a NumPy uint8 array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ShapeError(f"{what} must have dtype uint8 (values 0..255), got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or min(images.shape[1:]) < 1:
        raise ShapeError(f"{what} must be uint8 [N, C, H, W] or [N, H, W], got {images.shape}")
    return images


def _labels_array(labels: Any, n: int, what: str) -> np.ndarray:
    if isinstance(labels, (str, os.PathLike)):
        p = Path(labels)
        try:
            labels = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{p} is not a readable .npy array of labels: {exc}") from exc
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
        raise ShapeError(
            f"labels of {what} must be {n} integers, got {lab.dtype} shape {lab.shape}"
        )
    if n and lab.min() < 0:
        raise ShapeError(f"labels of {what} must be >= 0, got {int(lab.min())}")
    return lab.astype(np.int64)


class ImageSource:
    """Images by row, from a folder, one image file or a NumPy array; decoded when read.

    Make one with :meth:`open`. It pickles small (a ``.npy`` file is reopened memory-mapped
    where it is unpickled), so it can be sent to worker processes.

    Attributes:
        description: what it is, for messages (``"folder /data/shoes (1,200 images)"``).
        labels: int64 ``[N]`` or ``None``.
        paths: ``[N]`` file paths or ``None`` (arrays).
        class_names: label names or ``None``.
    """

    def __init__(
        self,
        description: str,
        n: int,
        *,
        paths: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        class_names: tuple[str, ...] | None = None,
        array: np.ndarray | None = None,
        npy_path: str | None = None,
    ) -> None:
        self.description = description
        self._n = int(n)
        self.paths = paths
        self.labels = labels
        self.class_names = class_names
        self._array = array
        self._npy_path = npy_path

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ImageSource({self.description})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self._npy_path is not None:
            state["_array"] = None
        return state

    @classmethod
    def open(
        cls, source: str | os.PathLike[str] | np.ndarray | ImageList, labels: Any = None
    ) -> ImageSource:
        """A source for a folder, an image file, a ``.npy`` file or a uint8 array.

        Args:
            source: what to read.
            labels: for arrays and ``.npy`` files, integer labels ``[N]`` (an array or the path
                of a ``.npy`` file); a folder's labels come from its subfolders.

        Raises:
            DataError: a missing or unreadable source, or an empty folder.
            ShapeError: an array of the wrong dtype or rank, or labels that do not match.
            ConfigError: labels given for a folder or image file.
        """
        if isinstance(source, np.ndarray):
            a = _image_array(source, "images")
            lab = None if labels is None else _labels_array(labels, a.shape[0], "the array")
            return cls(f"array of {a.shape[0]:,} images", a.shape[0], labels=lab, array=a)
        if isinstance(source, ImageList):
            listing = source
        else:
            p = Path(source)
            if p.is_file() and p.suffix.lower() == ".npy":
                a = _open_npy(p)
                lab = None if labels is None else _labels_array(labels, a.shape[0], str(p))
                desc = f"{p} ({a.shape[0]:,} images)"
                return cls(desc, a.shape[0], labels=lab, array=a, npy_path=str(p))
            if labels is not None:
                raise ConfigError(
                    "labels can be given only for arrays and .npy files; a folder's labels are "
                    "its class subfolders"
                )
            if p.is_file():
                return cls(f"image {p}", 1, paths=np.asarray([str(p)]))
            if not p.exists():
                raise DataError(f"no image folder, image file or .npy file at {p}")
            listing = list_images(p)
        return cls(
            f"folder {listing.root} ({len(listing):,} images)",
            len(listing),
            paths=listing.paths,
            labels=listing.labels,
            class_names=listing.class_names,
        )

    def _pixels(self) -> np.ndarray | None:
        if self._array is None and self._npy_path is not None:
            self._array = _open_npy(Path(self._npy_path))
        return self._array

    def fingerprint(self) -> str:
        """SHA-256 of what identifies the source's content: the file list with each file's size
        and modification time, or the ``.npy`` file's, or an in-memory array's bytes."""
        import hashlib

        h = hashlib.sha256()
        if self._npy_path is not None:
            st = Path(self._npy_path).stat()
            h.update(f"npy {Path(self._npy_path).resolve()} {st.st_size} {st.st_mtime_ns}".encode())
        elif self._array is not None:
            h.update(f"array {self._array.shape}".encode())
            h.update(np.ascontiguousarray(self._array).tobytes())
        else:
            assert self.paths is not None
            for path in self.paths:
                try:
                    st = os.stat(path)
                    h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{path}\0missing\n".encode())
        if self.labels is not None:
            h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()

    def read(
        self, start: int, stop: int, shape: Sequence[int], options: ImageOptions | None = None
    ) -> ImageBatch:
        """Rows ``[start, stop)`` as an :class:`ImageBatch` of ``shape`` images.

        Raises:
            DataError: an undecodable file (unless ``options.on_error == "skip"``).
        """
        start, stop = max(0, int(start)), min(self._n, int(stop))
        return self.read_ids(np.arange(start, max(start, stop), dtype=np.int64), shape, options)

    def read_ids(
        self, ids: np.ndarray, shape: Sequence[int], options: ImageOptions | None = None
    ) -> ImageBatch:
        """The rows ``ids`` (int, in ``[0, N)``, any order) as an :class:`ImageBatch`.

        Raises:
            DataError: an undecodable file (unless ``options.on_error == "skip"``).
            ShapeError: an id out of range.
        """
        opts = options or ImageOptions()
        rows = np.asarray(ids, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self._n):
            raise ShapeError(f"image ids must be in [0, {self._n}), got {rows.min()}..{rows.max()}")
        c, h, w = (int(s) for s in shape)
        pixels = self._pixels()
        if pixels is not None:
            contiguous = rows.size and rows[-1] - rows[0] == rows.size - 1
            taken = pixels[rows[0] : rows[-1] + 1] if contiguous else pixels[rows]
            images = convert_array(np.asarray(taken), (c, h, w), opts)
            keep = np.ones(len(rows), dtype=bool)
        else:
            assert self.paths is not None
            _checks.check_memory(len(rows) * c * h * w, f"reading {len(rows)} images")
            images = np.empty((len(rows), c, h, w), dtype=np.uint8)
            keep = np.zeros(len(rows), dtype=bool)
            for i, row in enumerate(rows):
                try:
                    images[i] = read_image(self.paths[row], (c, h, w), opts)
                    keep[i] = True
                except DataError as exc:
                    if opts.on_error == "raise":
                        raise
                    warnings.warn(f"skipped: {exc}", stacklevel=2)
            if not keep.all():
                images = images[keep]
        return ImageBatch(
            images,
            rows[keep],
            None if self.labels is None else self.labels[rows][keep],
            None if self.paths is None else self.paths[rows][keep],
            self.class_names,
        )


def _open_npy(p: Path) -> np.ndarray:
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{p} is not a readable .npy array: {exc}") from exc
    return _image_array(a, str(p))


def iter_images(
    source: str | os.PathLike[str] | np.ndarray | ImageList | ImageSource,
    shape: Sequence[int],
    *,
    batch_size: int = 1000,
    labels: Any = None,
    options: ImageOptions | None = None,
    limit: int | None = None,
) -> Iterator[ImageBatch]:
    """Stream ``source`` in batches of up to ``batch_size`` images of ``shape`` ``(C, H, W)``.

    ``source`` is a folder, an image file, a ``.npy`` file, a uint8 array, an
    :class:`ImageList` or an :class:`ImageSource`; ``labels`` as in :meth:`ImageSource.open`;
    ``limit`` keeps the first rows only.
    """
    src = source if isinstance(source, ImageSource) else ImageSource.open(source, labels)
    bs = _checks.positive_int(batch_size, "batch_size", where="iter_images")
    _check_shape(src, shape)
    n = len(src) if limit is None else min(len(src), _checks.positive_int(limit, "limit"))
    for start in range(0, n, bs):
        yield src.read(start, min(start + bs, n), shape, options)


def _check_shape(src: ImageSource, shape: Sequence[int]) -> tuple[int, int, int]:
    """``shape`` as ``(C, H, W)``; any C is fine for an array already of that shape."""
    pixels = src._pixels()
    if pixels is not None and tuple(shape) == tuple(pixels.shape[1:]):
        c, h, w = (int(s) for s in shape)
        return c, h, w
    return _target_channels(shape)


def load_images(
    source: str | os.PathLike[str] | np.ndarray | ImageList | ImageSource,
    shape: Sequence[int],
    *,
    labels: Any = None,
    options: ImageOptions | None = None,
    limit: int | None = None,
) -> ImageBatch:
    """All of ``source`` (or its first ``limit`` rows) as one :class:`ImageBatch`.

    The whole array's size is checked against the memory limit before it is allocated; use
    :func:`iter_images` to stream a source too large for memory.

    Raises:
        DataError: a missing source, an empty folder, an undecodable file (unless skipped), or
            no image left after skipping.
        ShapeError: bad arrays or labels, or a shape other than ``(1 | 3, H, W)`` to convert to.
        MemoryLimitError: the images would not fit.
    """
    src = source if isinstance(source, ImageSource) else ImageSource.open(source, labels)
    n = len(src) if limit is None else min(len(src), _checks.positive_int(limit, "limit"))
    c, h, w = _check_shape(src, shape)
    _checks.check_memory(n * c * h * w, f"{n:,} images of {c} x {h} x {w}")
    images = np.empty((n, c, h, w), dtype=np.uint8)
    parts: list[ImageBatch] = []
    filled = 0
    for batch in iter_images(src, (c, h, w), options=options, limit=n, batch_size=4096):
        images[filled : filled + len(batch)] = batch.images
        filled += len(batch)
        parts.append(dataclasses.replace(batch, images=images[:0]))
    if filled == 0:
        raise DataError(f"no image of {src.description} could be read")

    def joined(name: str) -> np.ndarray | None:
        values = [getattr(b, name) for b in parts]
        return None if values[0] is None else np.concatenate(values)

    ids = joined("ids")
    assert ids is not None
    return ImageBatch(
        images if filled == n else images[:filled].copy(),
        ids,
        joined("labels"),
        joined("paths"),
        src.class_names,
    )
