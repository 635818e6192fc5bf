"""Train a Table-1 CNN on Fashion-MNIST with PyTorch (imported only inside the functions here).

The torch module follows :mod:`snnfast.ann` exactly (5x5 convolutions, ReLU, 2x2 average
pooling, one dense output layer, no bias tricks, no batch norm) and its ``state_dict()`` has the
keys :func:`snnfast.ann.check_state` expects. Dropout is applied to the input of every layer
after the first convolution (it is the identity at inference, so the NumPy forward pass
matches the module in ``eval()`` mode).

Training is seeded and repeatable on one machine with the same thread count: the torch seed
fixes the initial weights and dropout masks, a NumPy generator seeded alike fixes the order of
the mini-batches, and the validation split is :func:`snnfast.data.train_val_split`. The weights
kept are those of the epoch with the best validation accuracy. No data augmentation.

Low-latency option (off by default): ``qcfs_levels=L`` trains with the QCFS activation of
:mod:`snnfast.qcfs` (Bu et al., ICLR 2022) after every convolution and pooling layer instead of
ReLU, with one trainable threshold ``lam`` per layer (initialised from the first 1,000 training
images, :func:`snnfast.qcfs.init_scales`; no weight decay on it), and ``qcfs_input=True``
quantises the input too. The weights go into the usual state dict; the thresholds into
:attr:`TrainResult.qcfs`, which :meth:`TrainResult.save` writes into the model's metadata, and
the accuracies are those of the quantised network (:func:`snnfast.qcfs.predict`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import ann, data, qcfs
from .errors import ConfigError

__all__ = ["FitOptions", "Recipe", "TrainResult", "build_torch_model", "fit", "train"]

_QCFS_INIT_IMAGES = 1000  # training images whose activations initialise the QCFS thresholds


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights (besides the data and the torch build).

    The defaults are the recipe of the shipped ``32-64-10`` model
    (:data:`snnfast.ann.SHIPPED_MODEL`): ``train("32-64-10")`` reproduces it.

    Attributes:
        arch: architecture spec, e.g. ``"32-64-10"``.
        epochs: passes over the training split.
        seed: seeds torch (weights, dropout) and the mini-batch order.
        batch_size: images per step.
        lr: peak learning rate of Adam(W).
        weight_decay: AdamW decoupled weight decay (keeps weights, hence activations, moderate).
        dropout: dropout probability on the input of every layer after the first convolution.
        warmup_epochs: linear learning-rate warm-up, then cosine decay to zero at the end.
        val_fraction: share of the training images held out for validation.
        split_seed: seed of the train/validation split.
        threads: torch intra-op threads (results can differ with the thread count).
        limit: use only the first ``limit`` training and test images (tests); None for all.
        qcfs_levels: ``L`` of the QCFS activation in place of ReLU (:mod:`snnfast.qcfs`);
            None (default) trains the paper's ReLU network.
        qcfs_input: with ``qcfs_levels``, also quantise the input to ``L`` levels (what the
            SNN's input neurons, started at half their threshold, emit in ``T = L`` steps).
    """

    arch: str = "32-64-10"
    epochs: int = 30
    seed: int = 0
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    dropout: float = 0.25
    warmup_epochs: float = 1.0
    val_fraction: float = 1 / 12
    split_seed: int = 0
    threads: int = 1
    limit: int | None = None
    qcfs_levels: int | None = None
    qcfs_input: bool = False

    def __post_init__(self) -> None:
        ann.Architecture.parse(self.arch)
        for name in ("epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"recipe: {name} must be a positive integer, got {value!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 2
        ):
            raise ConfigError(f"recipe: limit must be an integer >= 2 or None, got {self.limit!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"recipe: lr must be positive, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"recipe: weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"recipe: dropout must be in [0, 1), got {self.dropout!r}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ConfigError(
                f"recipe: warmup_epochs must be in [0, epochs={self.epochs}], "
                f"got {self.warmup_epochs!r}"
            )
        levels = self.qcfs_levels
        if levels is not None and (
            isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 1024
        ):
            raise ConfigError(
                f"recipe: qcfs_levels must be an integer in [1, 1024] or None, got {levels!r}"
            )
        if not isinstance(self.qcfs_input, bool) or (self.qcfs_input and levels is None):
            raise ConfigError(
                f"recipe: qcfs_input must be True or False and needs "
                f"qcfs_levels, got {self.qcfs_input!r}"
            )


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        arch: the architecture.
        state: the best-validation weights, float32 NumPy arrays keyed like :mod:`snnfast.ann`.
        recipe: the :class:`Recipe` used.
        train_accuracy, val_accuracy, test_accuracy: accuracies in [0, 1] of ``state``,
            measured with the NumPy forward pass of :mod:`snnfast.ann` (of
            :mod:`snnfast.qcfs` for a QCFS-trained network).
        best_epoch: 1-based epoch whose weights were kept.
        history: per epoch: ``epoch``, ``loss`` (mean training loss), ``val_accuracy``,
            ``seconds``.
        torch_version: the torch that trained it.
        qcfs: the QCFS thresholds and levels, or ``None`` for a ReLU network.
    """

    arch: ann.Architecture
    state: dict[str, np.ndarray]
    recipe: Recipe
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    torch_version: str = ""
    qcfs: qcfs.QCFSSpec | None = None

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata stored with the model: recipe, accuracies, history, versions."""
        return {
            "recipe": asdict(self.recipe),
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "best_epoch": self.best_epoch,
            "epochs": self.recipe.epochs,
            "seed": self.recipe.seed,
            "history": self.history,
            "torch_version": self.torch_version,
            "trainer": "snnfast.train.train",
            **({} if self.qcfs is None else {qcfs.METADATA_KEY: self.qcfs.metadata()}),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model with :func:`snnfast.ann.save_model` (metadata: :meth:`metadata`)."""
        ann.save_model(path, self.arch, self.state, self.metadata())


def build_torch_model(
    arch: ann.Architecture | str,
    dropout: float = 0.0,
    qcfs_levels: int | None = None,
    qcfs_input: bool = False,
) -> Any:
    """A ``torch.nn.Module`` of ``arch`` whose ``state_dict()`` keys are those of
    :meth:`snnfast.ann.Architecture.state_shapes`. Input: float ``[N, 1, 28, 28]`` in [0, 1].

    With ``qcfs_levels`` every conv and pool output goes through a QCFS activation
    (:func:`snnfast.qcfs.torch_activation`, in place of ReLU), whose thresholds add the keys
    ``act.<layer>.lam`` to the state dict; ``qcfs_input`` quantises the input as well (no
    state)."""
    import torch
    from torch import nn

    net_arch = ann.Architecture.parse(arch) if isinstance(arch, str) else arch
    if not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    if qcfs_input and qcfs_levels is None:
        raise ConfigError("qcfs_input needs qcfs_levels")
    descs = net_arch.layers

    class TableOneCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for d in descs:
                if d.kind == "conv":
                    conv = nn.Conv2d(d.in_shape[0], d.out_shape[0], d.kernel, d.stride, d.padding)
                    self.add_module(d.name, conv)
            self.fc = nn.Linear(math.prod(descs[-1].in_shape), net_arch.n_classes)
            self.pool = nn.AvgPool2d(ann.POOL)
            self.drop = nn.Dropout(dropout)
            self.act: nn.ModuleDict | None = None
            self.quant_input: nn.Module | None = None
            if qcfs_levels is not None:
                layers = qcfs.scaled_layers(net_arch)
                self.act = nn.ModuleDict(
                    {name: qcfs.torch_activation(qcfs_levels) for name in layers}
                )
                if qcfs_input:
                    self.quant_input = qcfs.torch_activation(qcfs_levels, 1.0, trainable=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.quant_input is not None:
                x = self.quant_input(x)
            for i, d in enumerate(descs):
                if d.kind == "conv":
                    x = getattr(self, d.name)(self.drop(x) if i else x)
                    x = torch.relu(x) if self.act is None else self.act[d.name](x)
                elif d.kind == "pool":
                    x = self.pool(x)
                    x = x if self.act is None else self.act[d.name](x)
                else:
                    x = self.fc(self.drop(torch.flatten(x, 1)))
            return x

    return TableOneCNN()


def _accuracy(
    arch: ann.Architecture,
    state: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    spec: qcfs.QCFSSpec | None = None,
) -> float:
    pred = ann.predict(arch, state, x) if spec is None else qcfs.predict(arch, state, spec, x)
    return float((pred == y).mean())


def _split_state(
    arch: ann.Architecture, state: dict[str, np.ndarray], rec: Recipe
) -> tuple[dict[str, np.ndarray], qcfs.QCFSSpec | None]:
    """The :mod:`snnfast.ann` parameters and, for a QCFS model, its spec (``act.*.lam``)."""
    prefix = "act."
    scales = {
        k[len(prefix) :].rsplit(".", 1)[0]: float(v)
        for k, v in state.items()
        if k.startswith(prefix)
    }
    params = ann.check_state(arch, {k: v for k, v in state.items() if not k.startswith(prefix)})
    if rec.qcfs_levels is None:
        return params, None
    spec = qcfs.QCFSSpec(rec.qcfs_levels, scales, rec.qcfs_levels if rec.qcfs_input else None)
    spec.check(arch)
    return params, spec


@dataclass(frozen=True)
class FitOptions:
    """How :func:`fit` trains: AdamW, linear warm-up then cosine decay, seeded batch order."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float
    seed: int


def fit(
    model: Any,
    x_train: Any,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    param_groups: list[dict[str, Any]],
    options: FitOptions,
    *,
    label: str = "model",
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], int, list[dict[str, float]]]:
    """Train ``model`` (a torch module) with cross-entropy and keep its best-validation weights.

    ``x_train`` is a float32 torch tensor ``[N, C, H, W]`` in the model's input scale, ``x_val``
    the same as NumPy; the batch order comes from ``numpy.random.default_rng(options.seed)``
    (seed torch yourself before building the model). Returns ``(state, best_epoch, history)``:
    the float32 state dict of the best epoch, its 1-based number, and per epoch ``epoch``,
    ``loss``, ``val_accuracy`` and ``seconds``.
    """
    import torch
    from tqdm.auto import tqdm

    o = options
    order_rng = np.random.default_rng(o.seed)
    opt = torch.optim.AdamW(param_groups, lr=o.lr, weight_decay=o.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / o.batch_size)
    total = o.epochs * steps_per_epoch
    warm = o.warmup_epochs * steps_per_epoch

    def lr_factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    xt = x_train
    yt = torch.from_numpy(np.array(y_train, dtype=np.int64))
    xv = torch.from_numpy(np.ascontiguousarray(x_val))
    loss_fn = torch.nn.CrossEntropyLoss()
    best_acc, best_epoch, best_state = -1.0, 0, None
    history: list[dict[str, float]] = []
    for epoch in range(1, o.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.from_numpy(order_rng.permutation(len(y_train)))
        total_loss = 0.0
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{label} epoch {epoch}/{o.epochs}",
            disable=not progress,
            leave=False,
        )
        for step in bar:
            idx = perm[step * o.batch_size : (step + 1) * o.batch_size]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xv[i : i + 1000]).argmax(1) for i in range(0, len(xv), 1000)])
        val_acc = float((pred.numpy() == y_val).mean())
        history.append(
            {
                "epoch": epoch,
                "loss": total_loss / len(y_train),
                "val_accuracy": val_acc,
                "seconds": time.perf_counter() - t0,
            }
        )
        if progress:
            tqdm.write(
                f"{label} epoch {epoch}: loss {total_loss / len(y_train):.4f}, "
                f"val acc {val_acc:.4f} ({history[-1]['seconds']:.0f} s)"
            )
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {
                k: v.detach().cpu().numpy().astype(np.float32, copy=True)
                for k, v in model.state_dict().items()
            }
    assert best_state is not None  # epochs >= 1
    return best_state, best_epoch, history


def train(
    arch_spec: str | Recipe = "32-64-10",
    *,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **recipe_fields: Any,
) -> TrainResult:
    """Train an architecture on Fashion-MNIST and return the best-validation weights.

    Args:
        arch_spec: architecture spec such as ``"32-64-10"``, or a whole :class:`Recipe`.
        root: data directory (see :func:`snnfast.data.data_root`).
        progress: show a tqdm bar per epoch and one line per epoch.
        **recipe_fields: any :class:`Recipe` field (``epochs``, ``seed``, ``batch_size``,
            ``lr``, ``weight_decay``, ``dropout``, ``warmup_epochs``, ``val_fraction``,
            ``split_seed``, ``threads``, ``limit``, ``qcfs_levels``, ``qcfs_input``); the rest
            keep :class:`Recipe`'s defaults.

    Raises:
        ConfigError: a recipe field is invalid or unknown.
        DataError: the data set is missing or damaged.
    """
    import torch

    base = arch_spec if isinstance(arch_spec, Recipe) else Recipe(arch=arch_spec)
    unknown = set(recipe_fields) - set(Recipe.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown recipe field(s) {sorted(unknown)}")
    rec = Recipe(**{**asdict(base), **recipe_fields})
    arch = ann.Architecture.parse(rec.arch)

    x_all, y_all = data.load_fashion_mnist("train", root=root, limit=rec.limit)
    x_test, y_test = data.load_fashion_mnist("test", root=root, limit=rec.limit)
    tr_idx, va_idx = data.train_val_split(len(y_all), rec.val_fraction, rec.split_seed)
    x_tr, y_tr, x_va, y_va = x_all[tr_idx], y_all[tr_idx], x_all[va_idx], y_all[va_idx]

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(rec.threads)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(rec.seed)
        model = build_torch_model(arch, rec.dropout, rec.qcfs_levels, rec.qcfs_input)
        xt = torch.from_numpy(x_tr.astype(np.float32) / np.float32(255.0))
        if rec.qcfs_levels is not None:
            qcfs.init_scales(model, xt[:_QCFS_INIT_IMAGES])
        named = list(model.named_parameters())
        groups: list[dict[str, Any]] = [
            {"params": [p for k, p in named if not k.startswith("act.")]}
        ]
        scales = [p for k, p in named if k.startswith("act.")]
        if scales:  # the QCFS thresholds: no weight decay
            groups.append({"params": scales, "weight_decay": 0.0})
        best_state, best_epoch, history = fit(
            model,
            xt,
            y_tr,
            x_va.astype(np.float32) / np.float32(255.0),
            y_va,
            groups,
            FitOptions(
                rec.epochs, rec.batch_size, rec.lr, rec.weight_decay, rec.warmup_epochs, rec.seed
            ),
            label=arch.spec,
            progress=progress,
        )
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)

    state, spec = _split_state(arch, best_state, rec)
    return TrainResult(
        arch=arch,
        state=state,
        recipe=rec,
        train_accuracy=_accuracy(arch, state, x_tr, y_tr, spec),
        val_accuracy=_accuracy(arch, state, x_va, y_va, spec),
        test_accuracy=_accuracy(arch, state, x_test, y_test, spec),
        best_epoch=best_epoch,
        history=history,
        torch_version=str(torch.__version__),
        qcfs=spec,
    )
