"""Images for snnfast: Fashion-MNIST (:mod:`snnfast.data.fashion_mnist`) and your own image
folders, image files and NumPy arrays (:mod:`snnfast.data.images`). Pillow is imported only when
an image file is decoded or an array resized."""

from __future__ import annotations

from .fashion_mnist import (
    CLASS_NAMES,
    DEFAULT_ROOT,
    ENV_VAR,
    INSTALL_HINT,
    data_root,
    load_fashion_mnist,
    train_val_split,
)
from .images import (
    FITS,
    IMAGE_EXTENSIONS,
    RESAMPLING,
    ImageBatch,
    ImageList,
    ImageOptions,
    ImageSource,
    convert_array,
    iter_images,
    list_images,
    load_images,
    read_image,
)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_ROOT",
    "ENV_VAR",
    "INSTALL_HINT",
    "data_root",
    "load_fashion_mnist",
    "train_val_split",
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
