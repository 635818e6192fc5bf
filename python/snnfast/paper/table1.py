"""The paper's Table 1: twelve architectures, their ANN and SNN accuracies, and whether each fits
one Loihi 1 chip.

Deployability comes from the chip model (:func:`snnfast.chip.map_network`) on a network of the
architecture with random 9-bit weights (:func:`table1_network`): only the geometry and the
weight width matter to the mapper.
"""

from __future__ import annotations

import math

import numpy as np

from ..ann import INPUT_SHAPE, Architecture
from ..chip import Loihi1, map_network
from ..errors import ResourceError
from ..network import AvgPool2d, Conv2d, Dense, Network
from . import _markdown as md
from .config import ReproduceConfig
from .published import PAPER_TABLE1, PAPER_TABLE1_TIMESTEPS, TABLE1_SPECS
from .records import PaperTable1Row, Table1, Table1Ours, Table1Row
from .study import Study, trained
from .sweep import classify

__all__ = ["render_table1", "table1_deployability", "table1_network", "table1_section"]


def table1_network(spec: str, seed: int = 0, w_max: int = 255) -> Network:
    """A :class:`Network` of Table-1 architecture ``spec`` with random weights in ``±w_max``.

    Only the geometry and the weight width matter to the mapper; thresholds are 1, biases 0,
    and pooling layers get a random positive weight. Layer shapes follow
    :attr:`snnfast.ann.Architecture.layers`.
    """
    rng = np.random.default_rng(seed)
    layers: list[Conv2d | AvgPool2d | Dense] = []
    for d in Architecture.parse(spec).layers:
        bias = np.zeros(d.out_shape[0], dtype=np.int32)
        if d.kind == "conv":
            size = (d.out_shape[0], d.in_shape[0], d.kernel, d.kernel)
            weight = rng.integers(-w_max, w_max + 1, size=size, dtype=np.int16)
            layers.append(Conv2d(weight, bias, 1, stride=d.stride, padding=d.padding))
        elif d.kind == "pool":
            layers.append(AvgPool2d(d.kernel, int(rng.integers(1, w_max + 1)), 1))
        else:
            weight = rng.integers(
                -w_max, w_max + 1, size=(d.out_shape[0], math.prod(d.in_shape)), dtype=np.int16
            )
            layers.append(Dense(weight, bias, 1))
    return Network(layers, INPUT_SHAPE)


def table1_deployability(
    chip: Loihi1 | None = None,
) -> list[tuple[str, bool, str, int | None, int | None]]:
    """For each Table-1 spec: ``(spec, deployable, reason, n_cores, n_chips)``.

    ``deployable`` honours ``chip.max_chips``. ``n_cores`` and ``n_chips`` are what the network
    needs (given even when it needs too many chips), ``None`` when a single neuron cannot be
    placed at all; ``reason`` is ``""`` or the :class:`ResourceError` message.
    """
    chip = Loihi1() if chip is None else chip
    rows: list[tuple[str, bool, str, int | None, int | None]] = []
    for spec in TABLE1_SPECS:
        net = table1_network(spec)
        try:
            mapping = map_network(net, chip)
            rows.append((spec, True, "", mapping.n_cores, mapping.n_chips))
            continue
        except ResourceError as exc:
            reason = str(exc)
        try:  # how many chips it would need
            mapping = map_network(net, chip.replace(max_chips=None))
        except ResourceError:
            rows.append((spec, False, reason, None, None))
        else:
            rows.append((spec, False, reason, mapping.n_cores, mapping.n_chips))
    return rows


def table1_section(study: Study) -> Table1:
    """Table 1: the paper's rows, deployability, and our networks' figures where run."""
    cfg = study.cfg
    deploy = {row[0]: row[1:] for row in table1_deployability()}
    rows = []
    for spec in TABLE1_SPECS:
        paper = PAPER_TABLE1[spec]
        ok, reason, cores, chips = deploy[spec]
        ours = None
        if spec in cfg.archs:
            ref = trained(study, spec, cfg.table1_seed)
            meta = ref.metadata
            snn = classify(study, ref, cfg.table1_timesteps, cfg.table1_n_test)
            ours = Table1Ours(
                train=100 * meta["train_accuracy"],
                val=100 * meta["val_accuracy"],
                test=100 * meta["test_accuracy"],
                snn_test=100 * snn.classification,
                snn_n_test=snn.n_test,
                best_epoch=meta.get("best_epoch"),
            )
        rows.append(
            Table1Row(
                arch=spec,
                paper=PaperTable1Row(paper[0], paper[1], paper[2], paper[3], paper[3] is not None),
                deployable=ok,
                reason=reason,
                n_cores=cores,
                n_chips=chips,
                run=spec in cfg.archs,
                ours=ours,
            )
        )
        study.step()
    return Table1(timesteps=cfg.table1_timesteps, seed=cfg.table1_seed, rows=rows)


def render_table1(t1: Table1, cfg: ReproduceConfig) -> list[str]:
    """The report's Table 1 section."""
    lines = [
        "## Table 1: architectures and accuracies",
        "",
        "Each cell is *paper / ours (ours − paper, percentage points)*, in %. "
        f"Our networks: seed {t1.seed}, "
        f"{cfg.epochs} epoch(s)"
        + (f" on the first {cfg.train_limit} images" if cfg.train_limit else "")
        + f". SNN test accuracy at T = {t1.timesteps} time steps (the paper's column is "
        f"T = {PAPER_TABLE1_TIMESTEPS}: its 32-64-10 entry equals Table 2's SNN(128)). "
        "Deployability: the paper's (N/A in its SNN column) and our chip model's "
        "(`snnfast.paper.table1.table1_deployability`, one Loihi 1 chip).",
        "",
    ]
    rows = []
    notes = []
    for r in t1.rows:
        p, o = r.paper, r.ours
        paper_snn = "N/A" if p.snn_test is None else md.num(p.snn_test)
        papers = (p.train, p.val, p.test)
        if o is None:
            cells = [f"{md.num(x)} / not run in {cfg.name} mode" for x in papers]
            cells.append(f"{paper_snn} / not run")
        else:
            cells = [
                f"{md.num(x)} / {md.num(y)} ({md.diff(y, x)})"
                for x, y in zip(papers, (o.train, o.val, o.test))
            ]
            cells.append(
                f"{paper_snn} / {md.num(o.snn_test)} ({md.diff(o.snn_test, p.snn_test)})"
                + ("" if o.snn_n_test == 10000 else f", {o.snn_n_test} test images")
            )
        cores = "—" if r.n_cores is None else f"{r.n_cores} / {r.n_chips}"
        if not r.deployable:
            notes.append(f"- **{r.arch}** not deployable (chip model): {r.reason}")
        deployable = f"{'yes' if p.deployable else 'no'} / {'yes' if r.deployable else 'no'}"
        rows.append([r.arch, *cells, deployable, cores])
    lines += md.table(
        [
            "architecture",
            "ANN train",
            "ANN val",
            "ANN test",
            f"SNN test (T={t1.timesteps})",
            "deployable paper / ours",
            "cores / chips (ours)",
        ],
        rows,
    )
    return lines + [""] + notes + [""]
