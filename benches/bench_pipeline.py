"""The rest of the pipeline: the ANN's latency in PyTorch and the hnswlib index.

- PyTorch ANN (the shipped 32-64-10), batch 1 and batch 1,000, on all cores with
  ``OMP_WAIT_POLICY=PASSIVE``; the NumPy forward pass of :mod:`snnfast.ann` is the baseline
  measured in the same run, and the paper's Xeon figures are recorded beside ours.
- hnswlib: building the cosine index over 10,000 real training-image embeddings (the ANN
  readout, so no long SNN run is needed), and single-query search latency against brute-force
  exact search.
"""

from __future__ import annotations

import numpy as np
import pytest

from snnfast._checks import all_cores
from snnfast.latency import measure
from snnfast.paper.published import PAPER_XEON_BATCH1_MS, PAPER_XEON_LARGE_MS

N_CORPUS = 10_000


def _best_of(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` calls, in seconds (no warm-up: callers warm up themselves)."""
    return measure(fn, repeats=repeat, warmup=0).min_s


@pytest.fixture(scope="module")
def torch_ann(converted):
    """The converted model's ANN as an eval-mode torch module, on all cores."""
    torch = pytest.importorskip("torch")
    from snnfast.train import build_torch_model

    model = build_torch_model(converted.arch)
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(v)) for k, v in converted.ann_state.items()}
    )
    model.eval()
    torch.set_num_threads(all_cores())
    return model


@pytest.fixture(scope="module")
def float_images(test_images):
    return test_images.astype(np.float32) / np.float32(255.0)


def test_torch_ann_batch1(benchmark, torch_ann, float_images, converted):
    import torch

    from snnfast import ann

    x = torch.from_numpy(float_images)
    order = iter(np.resize(np.arange(len(x)), 1_000_000))

    def one():
        i = next(order)
        with torch.inference_mode():
            return torch_ann(x[i : i + 1])

    benchmark.pedantic(one, rounds=500, warmup_rounds=20, iterations=1)
    ms = benchmark.stats.stats.median * 1e3
    numpy_ms = (
        _best_of(
            lambda: [
                ann.predict(converted.arch, converted.ann_state, float_images[i : i + 1])
                for i in range(50)
            ]
        )
        / 50
    )
    benchmark.extra_info.update(
        ms_per_image_median=ms,
        numpy_ms_per_image=numpy_ms * 1e3,
        speedup_vs_numpy=numpy_ms * 1e3 / ms,
        paper_xeon_ms=PAPER_XEON_BATCH1_MS,
        ratio_to_paper_xeon=ms / PAPER_XEON_BATCH1_MS,
        threads=torch.get_num_threads(),
    )
    with torch.inference_mode():
        logits = torch_ann(x[:20]).numpy()
    np.testing.assert_array_equal(  # the module is the model: same classes as NumPy
        logits.argmax(1), ann.predict(converted.arch, converted.ann_state, float_images[:20])
    )


def test_torch_ann_batch1000(benchmark, torch_ann, float_images, converted):
    import torch

    from snnfast import ann

    x = torch.from_numpy(float_images)
    assert len(x) == 1000

    def batch():
        with torch.inference_mode():
            return torch_ann(x)

    benchmark.pedantic(batch, rounds=10, warmup_rounds=2, iterations=1)
    ms = benchmark.stats.stats.median * 1e3 / len(x)
    numpy_ms = (
        _best_of(lambda: ann.predict(converted.arch, converted.ann_state, float_images), repeat=2)
        * 1e3
        / len(x)
    )
    benchmark.extra_info.update(
        ms_per_image_median=ms,
        images_per_s=1e3 / ms,
        numpy_ms_per_image=numpy_ms,
        speedup_vs_numpy=numpy_ms / ms,
        paper_xeon_large_batch_ms=PAPER_XEON_LARGE_MS,
        ratio_to_paper_xeon=ms / PAPER_XEON_LARGE_MS,
    )


@pytest.fixture(scope="module")
def ann_embeddings(converted, test_images):
    """ANN-readout embeddings of the first 10,000 training images (corpus) and the queries."""
    from snnfast.data import load_fashion_mnist
    from snnfast.embed import embed

    x, y = load_fashion_mnist("train", limit=N_CORPUS)
    corpus = embed(converted, x, readout="ann", progress=False)
    queries = embed(converted, test_images, readout="ann", progress=False)
    return corpus, y, queries


def test_hnsw_index_build(benchmark, ann_embeddings):
    from snnfast.retrieval import RetrievalIndex

    corpus, labels, _ = ann_embeddings
    index = benchmark.pedantic(
        lambda: RetrievalIndex.build(corpus.vectors, labels, corpus.meta),
        rounds=3,
        iterations=1,
    )
    assert len(index) == N_CORPUS
    benchmark.extra_info.update(
        items=N_CORPUS,
        dim=corpus.meta.dim,
        items_per_s=N_CORPUS / benchmark.stats.stats.median,
        threads=all_cores(),
    )


def test_hnsw_single_query(benchmark, ann_embeddings):
    from snnfast.retrieval import RetrievalIndex, exact_search

    corpus, labels, queries = ann_embeddings
    index = RetrievalIndex.build(corpus.vectors, labels, corpus.meta)
    q = queries.vectors
    order = iter(np.resize(np.arange(len(q)), 1_000_000))

    def one():
        i = next(order)
        return index.search(q[i : i + 1], 10, queries.meta, threads=1)

    benchmark.pedantic(one, rounds=1000, warmup_rounds=20, iterations=1)
    us = benchmark.stats.stats.median * 1e6
    exact_us = (
        _best_of(
            lambda: [exact_search(corpus.vectors, q[i : i + 1], 10) for i in range(20)], repeat=2
        )
        / 20
        * 1e6
    )
    found = index.search(q[:200], 10, queries.meta).ids
    exact, _ = exact_search(corpus.vectors, q[:200], 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
    benchmark.extra_info.update(
        us_per_query_median=us,
        exact_us_per_query=exact_us,
        speedup_vs_exact=exact_us / us,
        recall_at_10=recall,
        corpus=N_CORPUS,
    )
    assert recall > 0.9
    assert us < exact_us, f"HNSW query {us:.0f} us is not faster than exact search {exact_us:.0f}"
