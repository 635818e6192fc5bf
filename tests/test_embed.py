"""Embeddings: readouts, shapes, batching, predictions, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_convert import fashion, random_state

from snnfast import ann
from snnfast.ann import Architecture
from snnfast.convert import ConvertedModel, convert
from snnfast.embed import embed, embed_checkpoints, embed_readouts, predict_from_output
from snnfast.errors import ConfigError, ShapeError
from snnfast.settings import RunSettings

TINY = Architecture.parse("4-8-10")


@pytest.fixture(scope="module")
def model() -> ConvertedModel:
    x, _ = fashion("train", 200)
    return convert(random_state(TINY, seed=4), TINY, calibration_images=x)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return fashion("test", 50)[0]


def test_membrane_and_spike_count_readouts(model, images) -> None:
    res = model.network.run(images, timesteps=12)
    emb = model.embedding_layer
    assert emb == 4 and model.output_layer == 5  # conv, pool, conv, pool | dense
    for readout, source in (("membrane", res.membrane), ("spike_count", res.spike_counts)):
        e = embed(model, images, readout=readout, timesteps=12, progress=False)
        assert e.vectors.dtype == np.float32 and e.vectors.shape == (50, 8 * 4 * 4)
        np.testing.assert_array_equal(e.vectors, source[emb].reshape(50, -1).astype(np.float32))
        assert e.meta.readout == readout and e.meta.timesteps == 12 and e.meta.dim == 128
        assert e.meta.model_id == model.model_id()
        np.testing.assert_array_equal(e.synops, res.synops)
        expected = predict_from_output(res.spike_counts[-1], res.membrane[-1])
        np.testing.assert_array_equal(e.predictions, expected)
    assert np.abs(e.vectors).sum() > 0


def test_batch_size_does_not_change_results(model, images) -> None:
    a = embed(model, images, timesteps=8, batch_size=7, progress=False)
    b = embed(model, images, settings=RunSettings(timesteps=8, threads=1), batch_size=1000)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.predictions, b.predictions)


def test_ann_readout(model, images) -> None:
    e = embed(model, images, readout="ann", batch_size=16, progress=False)
    acts = ann.forward(TINY, model.ann_state, images)
    np.testing.assert_allclose(
        e.vectors, acts[TINY.embedding_layer].reshape(50, -1), rtol=1e-5, atol=1e-6
    )  # BLAS sums differ by batch
    np.testing.assert_array_equal(e.predictions, ann.predict(TINY, model.ann_state, images))
    assert e.meta.timesteps == 0 and e.meta.readout == "ann" and e.synops is None


def test_longer_runs_agree_more_with_the_ann(model) -> None:
    x, _ = fashion("test", 200)
    ann_pred = embed(model, x, readout="ann", progress=False).predictions
    agree = [
        np.mean(embed(model, x, timesteps=t, progress=False).predictions == ann_pred)
        for t in (4, 128)
    ]
    assert agree[1] > agree[0] and agree[1] > 0.8


def test_prediction_tie_breaks() -> None:
    counts = np.array([[3, 5, 5, 1], [2, 2, 2, 2], [0, 0, 0, 0], [7, 0, 0, 0]])
    membrane = np.array([[0, 10, 20, 0], [-5, 3, 3, 2], [-8388608, -1, -1, -2], [0, 8388607, 0, 0]])
    # most spikes; then highest potential; then lowest index
    assert predict_from_output(counts, membrane).tolist() == [2, 1, 1, 0]


def test_accepts_nhw_images(model, images) -> None:
    a = embed(model, images, timesteps=4, progress=False)
    b = embed(model, images[:, 0], timesteps=4, progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)


@pytest.mark.parametrize(
    "bad, what",
    [
        (np.zeros((2, 1, 28, 28), dtype=np.float32), "float32"),
        (np.zeros((2, 3, 28, 28), dtype=np.uint8), r"\(2, 3, 28, 28\)"),
        (np.zeros((2, 28), dtype=np.uint8), r"\(2, 28\)"),
        (np.zeros((0, 1, 28, 28), dtype=np.uint8), "empty"),
    ],
)
@pytest.mark.parametrize("readout", ["membrane", "ann"])
def test_bad_images(model, bad, what, readout) -> None:
    with pytest.raises(ShapeError, match=what):
        embed(model, bad, readout=readout, progress=False)


def test_bad_options(model, images) -> None:
    with pytest.raises(ConfigError, match="readout"):
        embed(model, images, readout="voltage", progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        embed(model, images, batch_size=0, progress=False)
    with pytest.raises(ConfigError, match="timesteps"):
        embed(model, images, timesteps=0, progress=False)
    with pytest.raises(ConfigError, match="distinct"):
        embed_checkpoints(model, images, [4, 4], progress=False)
    with pytest.raises(ConfigError, match="sequence"):
        embed_checkpoints(model, images, 4, progress=False)


def test_checkpoints_equal_separate_embeddings(model, images) -> None:
    readouts = ("membrane", "spike_count", "integrated", "ann")
    for early_exit in (None, 2):
        got = embed_checkpoints(
            model, images, [9, 3], readouts, RunSettings(early_exit=early_exit), batch_size=20
        )
        assert sorted(got) == [3, 9]
        for t, per_readout in got.items():
            want = embed_readouts(
                model, images, readouts, RunSettings(timesteps=t, early_exit=early_exit)
            )
            for r in readouts:
                np.testing.assert_array_equal(per_readout[r].vectors, want[r].vectors)
                np.testing.assert_array_equal(per_readout[r].predictions, want[r].predictions)
                assert per_readout[r].meta == want[r].meta
                if r != "ann":
                    np.testing.assert_array_equal(per_readout[r].synops, want[r].synops)
                    np.testing.assert_array_equal(per_readout[r].steps, want[r].steps)
        # Different numbers of steps give different membrane readouts on this network.
        assert not np.array_equal(got[3]["membrane"].vectors, got[9]["membrane"].vectors)
