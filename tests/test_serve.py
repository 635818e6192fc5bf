"""``snnfast serve``: the JSON API of a real server on 127.0.0.1, started by the command line in a
subprocess, over a catalogue of 300 Fashion-MNIST images (the shipped model, converted here).

The answers are checked against the library called directly (the same neighbours, the same
spike counts and chip estimate), and every bad request against its status and message.
"""

from __future__ import annotations

import dataclasses
import io
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers_convert import fashion
from helpers_serve import N_ITEMS, Server, T, make_catalogue, multipart, png, request, search

from snnfast import ann, cli
from snnfast.chip import estimate_energy, map_network, run_chip
from snnfast.convert import ConvertedModel
from snnfast.data import CLASS_NAMES, ImageOptions, read_image
from snnfast.embed import embed
from snnfast.retrieval import RetrievalIndex

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytestmark = pytest.mark.skipif(not ann.SHIPPED_MODEL.exists(), reason="no shipped model")


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return make_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def server(cat):
    s = Server(
        [
            "--model", str(cat.model),
            "--index", str(cat.index["spike_count"]), str(cat.index["membrane"]),
            "--ann-index", str(cat.index["ann"]),
            "--images", str(cat.images), "--labels", str(cat.labels),
            "--class-names", *CLASS_NAMES,
            "--max-upload-mb", "1", "--max-megapixels", "4",
        ]
    )  # fmt: skip
    yield s
    s.stop()


@pytest.fixture(scope="module")
def model(cat) -> ConvertedModel:
    return ConvertedModel.load(cat.model)


def queries(n: int, start: int = 0) -> np.ndarray:
    x, _ = fashion("test", start + n)
    return x[start : start + n]


def expected(cat, model: ConvertedModel, image: np.ndarray, readout: str, k: int):
    """What the library itself finds for ``image``: (ids, distances, predicted class)."""
    settings = model.settings.replace(timesteps=T)
    emb = embed(model, image[None], readout, None if readout == "ann" else settings)
    found = RetrievalIndex.load(cat.index[readout]).search(emb.vectors, k, emb.meta)
    return found.ids[0].tolist(), found.distances[0], int(emb.predictions[0])


def assert_refused(reply, status: int, *words: str) -> None:
    assert reply.status == status, (reply.status, reply.body[:300])
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail
    for word in words:
        assert word in detail, detail


def test_health_info_and_openapi(server, cat) -> None:
    health = request(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["items"] == N_ITEMS and health["indexes"] == 2
    info = request(f"{server.url}/info").json()
    assert [(i["readout"], i["timesteps"], i["size"]) for i in info["indexes"]] == [
        ("spike_count", T, N_ITEMS),
        ("membrane", T, N_ITEMS),
    ]
    assert info["ann_index"]["readout"] == "ann" and info["items"]["labelled"] is True
    assert info["model"]["layers"] == ["input", "conv1", "pool1", "conv2", "pool2", "fc"]
    assert info["limits"]["max_upload_bytes"] == 1 << 20 and info["chip"] == "Loihi 1"
    spec = request(f"{server.url}/openapi.json").json()
    assert {"/search", "/items/{item_id}", "/health", "/info"} <= set(spec["paths"])
    assert "SearchResponse" in spec["components"]["schemas"]
    docs = request(f"{server.url}/docs")
    assert docs.status == 200 and b"openapi.json" in docs.body


def test_upload_finds_what_the_library_finds(server, cat, model) -> None:
    _, y_train = fashion("train", N_ITEMS)
    image = queries(1, start=3)[0]
    reply = search(server.url, png(image), filename="shirt.png", k=5)
    assert reply.status == 200, reply.body
    r = reply.json()
    ids, dist, predicted = expected(cat, model, image, "spike_count", 5)
    assert [n["id"] for n in r["snn"]["items"]] == ids
    assert np.allclose([n["distance"] for n in r["snn"]["items"]], dist, atol=1e-6)
    assert [n["label"] for n in r["snn"]["items"]] == y_train[ids].tolist()
    assert [n["class_name"] for n in r["snn"]["items"]] == [CLASS_NAMES[i] for i in y_train[ids]]
    assert r["snn"]["readout"] == "spike_count" and r["snn"]["timesteps"] == T
    ann_ids, _, _ = expected(cat, model, image, "ann", 5)
    assert [n["id"] for n in r["ann"]["items"]] == ann_ids
    q = r["query"]
    assert q["source"] == "upload" and q["filename"] == "shirt.png" and q["label"] is None
    assert q["predicted"] == predicted and q["predicted_name"] == CLASS_NAMES[predicted]
    assert q["image"].startswith("data:image/png;base64,")
    assert r["k"] == 5 and r["timing"]["total_ms"] > 0


def test_chip_estimate_is_the_engines_and_the_chip_models(server, model) -> None:
    image = queries(1, start=7)[0]
    r = search(server.url, png(image), k=1).json()
    chip = r["chip"]
    settings = model.settings.replace(timesteps=T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the weight exponent note
        mapping = map_network(model.network)
    counted = run_chip(mapping, image[None], settings)
    run, report = counted.result, estimate_energy(counted)
    assert [layer["spikes"] for layer in chip["layers"]] == run.spikes_per_layer()[0].tolist()
    assert [layer["synops"] for layer in chip["layers"]] == run.synops[0].tolist()
    assert [layer["neurons"] for layer in chip["layers"]] == model.network.sizes
    assert chip["spikes"] == int(run.spikes_per_layer()[0].sum())
    assert chip["steps"] == chip["timesteps"] == T and chip["n_cores"] == report.n_cores
    assert chip["latency_s"] == pytest.approx(report.latency_s)
    assert chip["total_energy_j"] == pytest.approx(report.total_energy_j)
    assert chip["dynamic_energy_j"] + chip["static_energy_j"] == pytest.approx(
        chip["total_energy_j"]
    )
    no_chip = search(server.url, png(image), k=1, chip="false", ann="false").json()
    assert no_chip["chip"] is None and no_chip["ann"] is None


def test_search_by_id_finds_the_item_itself(server) -> None:
    _, y_train = fashion("train", N_ITEMS)
    r = search(server.url, id=42, k=3).json()
    first = r["snn"]["items"][0]
    assert first["id"] == 42 and first["distance"] < 1e-5
    assert r["query"] == {**r["query"], "source": "item", "id": 42, "label": int(y_train[42])}
    assert r["ann"]["items"][0]["id"] == 42
    # a url-encoded form works as well as a multipart one
    body = b"id=42&k=3"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    again = request(f"{server.url}/search", body, headers).json()
    assert again["snn"]["items"] == r["snn"]["items"]


def test_the_index_is_picked_by_readout_and_t(server, cat, model) -> None:
    image = queries(1, start=11)[0]
    r = search(server.url, png(image), readout="membrane", T=T, k=4).json()
    ids, _, _ = expected(cat, model, image, "membrane", 4)
    assert r["snn"]["readout"] == "membrane" and [n["id"] for n in r["snn"]["items"]] == ids
    assert_refused(search(server.url, png(image), T=8), 422, "T = 8", "spike_count at T = 16")
    assert_refused(search(server.url, png(image), readout="integrated"), 422, "'integrated'")
    assert_refused(search(server.url, png(image), readout="ann"), 422, "readout 'ann'")


def test_items_are_the_catalogue_images(server) -> None:
    from PIL import Image

    x_train, _ = fashion("train", N_ITEMS)
    reply = request(f"{server.url}/items/7")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(reply.body))), x_train[7, 0])
    assert_refused(request(f"{server.url}/items/{N_ITEMS}"), 404, f"id {N_ITEMS}", "0 .. 299")
    assert_refused(request(f"{server.url}/items/abc"), 422, "item_id")
    assert_refused(search(server.url, id=N_ITEMS), 404, f"id {N_ITEMS}")


def test_bad_images_are_refused_with_a_message(server, tmp_path) -> None:
    from PIL import Image

    image = queries(1)[0]
    assert_refused(search(server.url, b"hello, not an image", filename="a.txt"), 415, "'a.txt'")
    assert_refused(search(server.url, png(image)[:60], filename="cut.png"), 422, "'cut.png'")
    assert_refused(search(server.url, b"", filename="empty.png"), 422, "empty")
    buf = io.BytesIO()
    Image.new("L", (3000, 2000)).save(buf, format="PNG")  # 6 megapixels in a few kB
    assert_refused(search(server.url, buf.getvalue()), 413, "3000 x 2000", "4,000,000")
    huge = np.random.default_rng(0).integers(0, 256, 1_500_000, dtype=np.uint8).tobytes()
    assert_refused(search(server.url, huge), 413, "limit")
    # streamed without a Content-Length, the body is cut off as it passes the limit
    body, headers = multipart({}, {"image": ("big.png", huge)})

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    conn.request("POST", "/search", body=chunks(), headers=headers, encode_chunked=True)
    reply = conn.getresponse()
    assert reply.status == 413 and b"limit" in reply.read()
    conn.close()
    # a colour photograph of another size is fitted as the library reads a file
    photo = np.random.default_rng(1).integers(0, 256, (90, 60, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path)
    r = search(server.url, path.read_bytes(), filename="photo.jpg", k=2).json()
    seen = np.asarray(Image.open(io.BytesIO(_data(r["query"]["image"]))))
    assert np.array_equal(seen, read_image(path, (1, 28, 28), ImageOptions())[0])


def _data(url: str) -> bytes:
    import base64

    return base64.b64decode(url.split(",", 1)[1])


def test_bad_requests_are_refused_with_a_message(server) -> None:
    image = png(queries(1)[0])
    assert_refused(search(server.url, image, k=0), 422, "k must be an integer in [1, 100]")
    assert_refused(search(server.url, image, k=101), 422, "got 101")
    assert_refused(search(server.url, image, k="many"), 422, "k:")
    assert_refused(search(server.url, image, T=0), 422, "T must be")
    assert_refused(search(server.url), 400, "image", "id")
    assert_refused(search(server.url, image, id=3), 400, "either")
    assert_refused(search(server.url, id=-1), 422, "id must be")
    assert request(f"{server.url}/search").status == 405


def test_32_concurrent_searches_are_all_answered_correctly(server, cat, model) -> None:
    images = queries(32, start=100)
    want = [expected(cat, model, im, "spike_count", 3)[0] for im in images]
    before = request(f"{server.url}/health").json()["searches"]

    def one(i: int):
        if i % 4 == 3:  # a quarter by catalogue id
            return search(server.url, id=i, k=3)
        return search(server.url, png(images[i]), filename=f"q{i}.png", k=3)

    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(one, range(32)))
    assert [r.status for r in replies] == [200] * 32
    for i, reply in enumerate(replies):
        r = reply.json()
        ids = [n["id"] for n in r["snn"]["items"]]
        if i % 4 == 3:
            assert r["query"]["id"] == i and ids[0] == i
        else:
            assert r["query"]["filename"] == f"q{i}.png" and ids == want[i], i
    assert request(f"{server.url}/health").json()["searches"] - before == 32


def test_several_processes_share_the_port_and_answer_right(cat, model) -> None:
    images = queries(16, start=200)
    want = [expected(cat, model, im, "spike_count", 3)[0] for im in images]
    files = ["--model", str(cat.model), "--index", str(cat.index["spike_count"])]
    s = Server([*files, "--images", str(cat.images), "--processes", "2"])
    try:
        assert "2 processes" in s.banner

        def one(i: int):
            return search(s.url, png(images[i]), k=3, chip="false")

        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(one, range(16)))
        assert [[n["id"] for n in r.json()["snn"]["items"]] for r in replies] == want
        assert request(f"{s.url}/health").json()["process"] != s.proc.pid  # a worker's
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_an_index_of_image_files_shows_them_without_images(tmp_path, cat) -> None:
    from PIL import Image

    x, y = fashion("train", 40)
    folder = tmp_path / "shop"
    for i in range(40):
        (folder / f"c{y[i]}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0]).save(folder / f"c{y[i]}" / f"{i:03d}.png")
    emb, index = tmp_path / "e.npz", tmp_path / "i.bin"
    run = ["--readout", "spike_count", "--timesteps", str(T)]
    assert cli.main(["-q", "embed", str(cat.model), str(folder), *run, "--out", str(emb)]) == 0
    assert cli.main(["-q", "index", str(emb), "--out", str(index)]) == 0
    s = Server(["--model", str(cat.model), "--index", str(index)])
    try:
        info = request(f"{s.url}/info").json()
        assert info["items"]["count"] == 40 and info["ann_index"] is None
        r = search(s.url, id=5, k=2).json()
        top = r["snn"]["items"][0]
        assert top["id"] == 5 and Path(top["path"]).parent.parent == folder
        assert r["query"]["label"] == top["label"] and r["ann"] is None
        assert request(f"{s.url}/items/5").status == 200
    finally:
        s.stop()


def test_start_up_errors_exit_2_naming_the_problem(cat, tmp_path, capsys) -> None:
    base = ["serve", "--model", str(cat.model), "--index", str(cat.index["spike_count"])]

    def fails(argv: list[str], *words: str) -> None:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        for word in words:
            assert word in err, err

    missing = tmp_path / "nothing.npz"
    fails(["serve", "--model", str(missing), "--index", str(cat.index["membrane"])], "nothing")
    fails(["serve", "--model", str(cat.index["ann"]), "--index", str(cat.index["ann"])], "ann.bin")
    fails(["serve", "--model", str(cat.model), "--index", str(cat.model)], "m.npz")
    fails([*base, "--ann-index", str(cat.index["membrane"])], "'membrane', not 'ann'")
    fails(["serve", "--model", str(cat.model), "--index", str(cat.index["ann"])], "--ann-index")
    fails([*base, str(cat.index["spike_count"])], "both hold readout 'spike_count'")
    fails([*base, "--images", "test"], "label")  # not the images the index was built from
    fails([*base, "--images", str(tmp_path / "none")], "none")
    npy = [*base, "--images", str(cat.images)]
    fails([*npy, "--class-names", "a"], "no labels")
    fails([*npy, "--labels", str(cat.labels), "--class-names", "a", "b"], "has label 9")
    model = ConvertedModel.load(cat.model)
    other = model.replace(config=dataclasses.replace(model.config, v_init=0.5))
    other.save(tmp_path / "other.npz")
    fails(["serve", "--model", str(tmp_path / "other.npz"), *base[3:]], "model_id")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        fails([*base, "--port", port], f"cannot listen on 127.0.0.1:{port}")


def test_the_service_searches_arrays_without_a_server(cat, model) -> None:
    from snnfast.errors import ShapeError
    from snnfast.serve import SearchOptions, SearchService

    service = SearchService.open(cat.model, [cat.index["spike_count"]], images=cat.images)
    image = queries(1, start=21)[0]
    r = service.search(image, SearchOptions(k=4, chip=False))
    assert r.query.source == "image" and r.chip is None and r.ann is None
    assert [n.id for n in r.snn.items] == expected(cat, model, image, "spike_count", 4)[0]
    _, y_train = fashion("train", N_ITEMS)
    top = r.snn.items[0]
    assert top.label == y_train[top.id] and top.class_name is None  # the index's labels, unnamed
    with pytest.raises(ShapeError, match=r"\[N, 1, 28, 28\]"):
        service.search(image[:, :20])
    assert service.health().searches == 1


def test_a_network_the_chip_cannot_hold_is_served_without_estimates(cat) -> None:
    from snnfast.chip import Loihi1
    from snnfast.retrieval import open_index
    from snnfast.serve import SearchService

    model = ConvertedModel.load(cat.model)
    index = open_index(cat.index["spike_count"])
    service = SearchService(model, [index], chip=Loihi1(max_input_axons=100))
    assert service.mapping is None and service.info().chip is None
    assert any("does not fit" in note and "input axons" in note for note in service.notes)
    r = service.search(queries(1)[0])
    assert r.chip is None and len(r.snn.items) == 10
