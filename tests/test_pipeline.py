"""The paper's Table 2 run (:func:`snnfast.paper.table2.run_pipeline`) on a small slice of
Fashion-MNIST (the evaluation path it uses is tested in test_evaluation)."""

from __future__ import annotations

import json

import pytest
from helpers_convert import random_state

from snnfast import ann
from snnfast.ann import Architecture
from snnfast.errors import ConfigError
from snnfast.paper.table2 import run_pipeline


def test_run_pipeline_small(tmp_path) -> None:
    arch = Architecture.parse("4-8-10")
    model_path = tmp_path / "m.npz"
    ann.save_model(model_path, arch, random_state(arch, seed=6))
    grid = tmp_path / "grid.png"
    out = run_pipeline(
        model_path,
        timesteps=(8, 32),
        n_train=300,
        n_test=100,
        progress=False,
        calibration_size=100,
        recall_queries=40,
        grid_path=grid,
    )
    json.dumps(out.to_json())  # JSON-serialisable
    assert type(out).from_json(json.loads(json.dumps(out.to_json()))) == out
    assert out.n_train == 300 and out.n_test == 100 and out.arch == "4-8-10"
    assert out.calibration["size"] == 100
    assert [r.name for r in out.results] == ["ANN", "SNN(8)", "SNN(32)"]
    for r in out.results:
        for key in ("classification", "top1", "top3", "map_at_10", "recall_at_10"):
            assert 0.0 <= getattr(r, key) <= 1.0
        assert r.top1 <= r.top3 and r.recall_queries == 40
        assert r.recall_at_10 > 0.9
        assert r.timings["index_build_s"] >= 0
    synops = out.results[1].synops_per_image
    assert synops is not None and len(synops) == 6
    ann_top3 = out.results[0].top3
    assert ann_top3 > 0.5  # random conv features already retrieve far above chance (0.27)
    assert grid.read_bytes()[:4] == b"\x89PNG"


def test_run_pipeline_refusals(tmp_path) -> None:
    with pytest.raises(ConfigError, match="readout"):
        run_pipeline(tmp_path / "none.npz", readout="ann")
    with pytest.raises(ConfigError, match="timesteps"):
        run_pipeline(tmp_path / "none.npz", timesteps=())
