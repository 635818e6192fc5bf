"""The one evaluation path: the calibration rule, one simulation for every T, scoring, refusals;
and ``snnfast demo`` scoring and costing one and the same network."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_convert import fashion, random_state

from snnfast import ann
from snnfast.ann import Architecture
from snnfast.convert import convert
from snnfast.embed import embed
from snnfast.errors import ConfigError, IndexMismatchError, ShapeError
from snnfast.evaluation import (
    ann_embeddings,
    calibrate_and_convert,
    calibration_images,
    calibration_indices,
    evaluate_model,
    recall_sample,
    score_embeddings,
)
from snnfast.paper.table2 import run_pipeline

TINY = Architecture.parse("4-8-10")


@pytest.fixture(scope="module")
def tiny():
    state = random_state(TINY, seed=4)
    x, y = fashion("train", 400)
    xq, yq = fashion("test", 80)
    return convert(state, TINY, calibration_images=x[:100]), x, y, xq, yq


def test_calibration_indices_are_seeded() -> None:
    a = calibration_indices(500, 100, seed=1)
    assert a.size == 100 and np.all(np.diff(a) > 0) and a.max() < 500
    np.testing.assert_array_equal(a, calibration_indices(500, 100, seed=1))
    assert not np.array_equal(a, calibration_indices(500, 100, seed=2))
    assert calibration_indices(50, 100).size == 50
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="calibration_size"):
            calibration_indices(500, bad)
    x = np.arange(500 * 4, dtype=np.uint8).reshape(500, 1, 2, 2)
    np.testing.assert_array_equal(calibration_images(x, 100, 1), x[a])
    r = recall_sample(80, 30, seed=0)
    assert r.size == 30 and np.all(np.diff(r) > 0) and recall_sample(10, 30).size == 10


def test_the_calibration_rule_makes_one_network_whatever_the_corpus(tmp_path) -> None:
    """The rule: calibration images come from the whole training set, so the corpus size
    does not change the SNN (it did when they came from the first n_train images)."""
    model_path = tmp_path / "m.npz"
    ann.save_model(model_path, TINY, random_state(TINY, seed=6))
    ids = set()
    for n_train in (60, 250):
        out = run_pipeline(
            model_path,
            timesteps=(4,),
            n_train=n_train,
            n_test=20,
            progress=False,
            calibration_size=100,
            recall_queries=5,
            threads=1,
        )
        assert out.n_train == n_train and out.calibration["size"] == 100
        ids.add(out.model_id)
    train, _ = fashion("train", None)
    whole = calibrate_and_convert(model_path, train, calibration_size=100)
    assert ids == {whole.model_id()}
    # the sample itself: drawn from all 60,000 images
    assert calibration_indices(len(train), 100).max() > 250


def test_one_simulation_scores_every_t_as_separate_runs(tiny) -> None:
    model, x, y, xq, yq = tiny
    settings = model.settings.replace(threads=1)
    rows = evaluate_model(
        model,
        x,
        y,
        xq,
        yq,
        (8, 4),
        ("membrane", "spike_count"),
        settings=settings,
        recall_ids=recall_sample(len(xq), 20),
        progress=False,
    )
    assert [(r.scores.name, r.scores.readout) for r in rows] == [
        ("ANN", "ann"),
        ("SNN(8)", "membrane"),
        ("SNN(8)", "spike_count"),
        ("SNN(4)", "membrane"),
        ("SNN(4)", "spike_count"),
    ]
    for r in rows[1:]:
        s = r.scores
        corpus = embed(model, x, s.readout, settings.replace(timesteps=s.timesteps))
        queries = embed(model, xq, s.readout, settings.replace(timesteps=s.timesteps))
        alone = score_embeddings(
            corpus, queries, y, yq, recall_ids=recall_sample(len(xq), 20), threads=1
        ).scores
        for key in ("classification", "top1", "top3", "map_at_10", "recall_at_10", "n_queries"):
            assert getattr(s, key) == getattr(alone, key), (s.name, key)
        assert s.synops_per_image == alone.synops_per_image
        assert s.mean_steps == s.timesteps and s.recall_queries == 20
        assert set(s.timings) >= {"embed_corpus_s", "embed_queries_s", "index_build_s"}
    ann_row = rows[0].scores
    assert ann_row.timesteps == 0 and ann_row.synops_per_image is None
    assert ann_row.classification == pytest.approx(
        np.mean(ann.predict(TINY, dict(model.ann_state), xq) == yq)
    )
    assert type(ann_row).from_json(json.loads(json.dumps(ann_row.to_json()))) == ann_row


def test_ann_embeddings_are_the_ann_readout(tiny) -> None:
    model, x, _, _, _ = tiny
    a = ann_embeddings(model, x[:50])
    b = embed(model, x[:50], "ann", progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert a.meta == b.meta


def test_refusals(tiny) -> None:
    model, x, y, xq, yq = tiny
    corpus = embed(model, x, "membrane", timesteps=4)
    queries = embed(model, xq, "membrane", timesteps=4)
    other = embed(model, xq, "spike_count", timesteps=4)
    with pytest.raises(ShapeError, match="corpus_labels"):
        score_embeddings(corpus, queries, y[:-1], yq)
    with pytest.raises(IndexMismatchError, match="readout"):
        score_embeddings(corpus, other, y, yq)
    for kwargs in (
        {"timesteps": (4, 4)},
        {"timesteps": (0,)},
        {"readouts": ("ann",)},
        {"readouts": ("membrane", "membrane")},
        {"timesteps": (), "include_ann": False},
        {"settings": {"v_init": 0.5}},
    ):
        with pytest.raises(ConfigError):
            evaluate_model(model, x, y, xq, yq, progress=False, **kwargs)


def test_demo_scores_and_costs_the_same_network(tmp_path, capsys) -> None:
    from snnfast import cli

    if not ann.SHIPPED_MODEL.exists():
        pytest.skip("no shipped model")
    out = tmp_path / "demo"
    args = ["-q", "demo", "--out", str(out), "--timesteps", "4", "--n-train", "300"]
    assert cli.main([*args, "--n-test", "40", "--threads", "1"]) == 0
    doc = json.loads((out / "demo.json").read_text())
    assert doc["n_train"] == 300 and doc["n_test"] == 40
    assert doc["chip"]["model_id"] == doc["model_id"]
    train, _ = fashion("train", None)
    assert doc["model_id"] == calibrate_and_convert(None, train).model_id()
    assert [e["timesteps"] for e in doc["chip"]["energy"]] == [4]
    assert doc["chip"]["n_cores"] == sum(doc["chip"]["cores_per_layer"])
    for name in ("queries.png", "core_map.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "SNN(4)" in capsys.readouterr().out
