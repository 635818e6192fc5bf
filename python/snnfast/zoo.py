"""A zoo of CNN shapes for :func:`snnfast.from_torch`, trained on Fashion-MNIST.

Each entry is a plain PyTorch model (a factory function, usable as ``snnfast convert-torch
snnfast.zoo:resnet``) and the input it takes; :func:`prepare` makes that input from
Fashion-MNIST's 28x28 grey images (zero-padded to 32x32 and repeated to three channels where
the architecture wants RGB-sized input):

============  ==============  ==================================================================
name          input           what it exercises
============  ==============  ==================================================================
``lenet5``    1 x 32 x 32     LeCun's LeNet-5: 5x5 convolutions, average pooling, three dense
                              layers
``vgg``       3 x 32 x 32     a VGG-style stack with batch norm and stride-2 convolutions in
                              place of pooling
``mobilenet`` 3 x 32 x 32     depthwise-separable blocks (depthwise 3x3 + pointwise 1x1, batch
                              norm), a global average pool
``resnet``    3 x 32 x 32     a ResNet-style net: three residual blocks (identity and strided
                              1x1 projection shortcuts, batch norm), a global average pool
``gap``       1 x 28 x 28     "same"-padded convolutions and an ``AdaptiveAvgPool2d(1)`` head
``table1``    1 x 28 x 28     the paper's ``32-64-10`` (:mod:`snnfast.train`), the shipped
                              weights
============  ==============  ==================================================================

:func:`train_entry` trains one with :func:`snnfast.train.fit` (AdamW, warm-up and cosine decay,
best of the epochs on a 5,000-image validation split, seeded). Torch is imported inside the
functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _checks, _container
from ._records import Record
from .errors import ConfigError, ModelFormatError

__all__ = [
    "ENTRIES",
    "ZooEntry",
    "ZooModel",
    "gap",
    "lenet5",
    "load",
    "mobilenet",
    "prepare",
    "resnet",
    "table1",
    "train_entry",
    "vgg",
]

FORMAT = "torch_state"
FORMAT_VERSION = 2


def lenet5() -> Any:
    """LeNet-5 (LeCun et al. 1998) on 1 x 32 x 32 with ReLU and average pooling."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def _conv_bn(c_in: int, c_out: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> Any:
    from torch import nn

    return [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


def vgg() -> Any:
    """A VGG-style net: 3x3 conv + batch norm + ReLU pairs, stride 2 to downsample."""
    from torch import nn

    layers: list[Any] = []
    for c_in, c_out in ((3, 32), (32, 64), (64, 128)):
        layers += _conv_bn(c_in, c_out) + _conv_bn(c_out, c_out, stride=2)
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.25), nn.Linear(128 * 4 * 4, 10))


def mobilenet() -> Any:
    """A MobileNet-style net of depthwise-separable blocks and a global average pool."""
    from torch import nn

    layers: list[Any] = _conv_bn(3, 16, stride=2)
    for c_in, c_out, stride in ((16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)):
        layers += _conv_bn(c_in, c_in, stride, groups=c_in) + _conv_bn(c_in, c_out, kernel=1)
    return nn.Sequential(*layers, nn.AvgPool2d(4), nn.Flatten(), nn.Linear(128, 10))


def resnet() -> Any:
    """A ResNet-style net: a stem and three residual blocks (16, 32, 64 channels)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return torch.relu(out)

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(*_conv_bn(3, 16))
            self.layer1 = Block(16, 16, 1)
            self.layer2 = Block(16, 32, 2)
            self.layer3 = Block(32, 64, 2)
            self.pool = nn.AvgPool2d(8)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layer3(self.layer2(self.layer1(self.stem(x))))
            return self.fc(torch.flatten(self.pool(x), 1))

    return ResNet()


def gap() -> Any:
    """ "Same"-padded convolutions with average pooling and an ``AdaptiveAvgPool2d(1)`` head."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same"),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(64, 128, 3, padding="same"),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def table1() -> Any:
    """The paper's ``32-64-10`` as :mod:`snnfast.train` builds it, with the shipped weights."""
    import torch

    from .ann import load_model
    from .train import build_torch_model

    arch, state, _ = load_model()
    model = build_torch_model(arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()


@dataclass(frozen=True)
class ZooEntry:
    """One architecture of the zoo.

    Attributes:
        name: its name.
        factory: makes the (untrained) torch model.
        input_shape: ``(C, H, W)`` it takes (see :func:`prepare`).
        trained: ``False`` for an entry that comes with its weights (``table1``).
    """

    name: str
    factory: Callable[[], Any]
    input_shape: tuple[int, int, int]
    trained: bool = True


ENTRIES: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("lenet5", lenet5, (1, 32, 32)),
        ZooEntry("vgg", vgg, (3, 32, 32)),
        ZooEntry("mobilenet", mobilenet, (3, 32, 32)),
        ZooEntry("resnet", resnet, (3, 32, 32)),
        ZooEntry("gap", gap, (1, 28, 28)),
        ZooEntry("table1", table1, (1, 28, 28), trained=False),
    )
}
"""The zoo, by name."""


def prepare(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Fashion-MNIST images (uint8 ``[N, 1, 28, 28]``) as ``shape``: placed unscaled in the
    middle, zero-padded to ``H x W``, repeated over ``C`` channels (:func:`snnfast.data.
    convert_array` with ``fit="center"``; ``snnfast embed --fit center`` does the same)."""
    from .data import ImageOptions, convert_array

    return convert_array(images, shape, ImageOptions(fit="center"))


@dataclass(frozen=True)
class ZooModel(Record):
    """A trained zoo entry's record (the weights are stored beside it, see :func:`load`).

    Attributes:
        name: the entry.
        epochs, seed, lr, weight_decay: how it was trained.
        best_epoch: the epoch kept.
        val_accuracy, test_accuracy: the ANN's accuracies in [0, 1].
        seconds: training time.
    """

    name: str
    epochs: int
    seed: int
    lr: float
    weight_decay: float
    best_epoch: int
    val_accuracy: float
    test_accuracy: float
    seconds: float


def train_entry(
    name: str,
    out: str | os.PathLike[str],
    *,
    epochs: int = 12,
    seed: int = 0,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    threads: int | None = None,
    progress: bool = True,
) -> ZooModel:
    """Train zoo entry ``name`` on Fashion-MNIST and write its weights and record to ``out``.

    Raises:
        ConfigError: an unknown entry, one that is not trained (``table1``), or bad options.
    """
    import time

    import torch

    from . import data
    from .train import FitOptions, fit

    entry = ENTRIES.get(name)
    if entry is None or not entry.trained:
        known = sorted(k for k, e in ENTRIES.items() if e.trained)
        raise ConfigError(f"zoo: {name!r} is not a zoo entry to train (those are {known})")
    _checks.positive_int(epochs, "epochs", where="zoo")
    x_all, y_all = data.load_fashion_mnist("train")
    x_test, y_test = data.load_fashion_mnist("test")
    tr, va = data.train_val_split(len(y_all))
    x_all = prepare(x_all, entry.input_shape)
    x_test = prepare(x_test, entry.input_shape)

    def scaled(x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) / np.float32(255.0)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(_checks.threads(threads))
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        model = entry.factory()
        state, best_epoch, history = fit(
            model,
            torch.from_numpy(scaled(x_all[tr])),
            y_all[tr],
            scaled(x_all[va]),
            y_all[va],
            [{"params": list(model.parameters())}],
            FitOptions(epochs, 128, lr, weight_decay, 1.0, seed),
            label=name,
            progress=progress,
        )
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        model.eval()
        with torch.no_grad():
            xt = torch.from_numpy(scaled(x_test))
            pred = torch.cat([model(xt[i : i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
    finally:
        torch.set_num_threads(old_threads)
    record = ZooModel(
        name=name,
        epochs=epochs,
        seed=seed,
        lr=lr,
        weight_decay=weight_decay,
        best_epoch=best_epoch,
        val_accuracy=max(h["val_accuracy"] for h in history),
        test_accuracy=float((pred.numpy() == y_test).mean()),
        seconds=time.perf_counter() - t0,
    )
    _container.write(out, FORMAT, FORMAT_VERSION, {"zoo": record.to_json()}, state)
    return record


def load(path: str | os.PathLike[str]) -> tuple[Any, ZooModel]:
    """A trained zoo model (in eval mode) and its record, from :func:`train_entry`'s file.

    Raises:
        ModelFormatError: the file is missing, damaged or not a zoo model.
    """
    import torch

    contents = _container.read(path, FORMAT, [FORMAT_VERSION], what="zoo model")
    record = ZooModel.from_json(contents.body.get("zoo"))
    entry = ENTRIES.get(record.name)
    if entry is None:
        raise ModelFormatError(f"{path}: unknown zoo entry {record.name!r}")
    model = entry.factory()
    try:
        model.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in contents.arrays.items()}
        )
    except RuntimeError as exc:
        raise ModelFormatError(f"{path}: weights do not fit {record.name}: {exc}") from exc
    return model.eval(), record
