"""Regression tests of the reliability findings (issue 11) not covered elsewhere. The others:

1. damaged index files: ``test_index_files.py::test_damaged_hnswlib_index_files``,
   ``test_fuzz_files.py::test_file_loaders_fuzz``;
2. aborts on huge sizes: ``test_engine_limits.py``
   (``test_huge_networks_are_refused_before_allocating``,
   ``test_huge_runs_are_refused_before_allocating``,
   ``test_a_huge_channel_offset_is_refused_not_aborted``), and here (a model file claiming a
   huge input);
3. geometry past 65,535: ``test_engine_limits.py::test_coordinates_beyond_65535_route_exactly``;
4. calibration memory: ``test_quantiles.py`` (exact streamed percentiles); the CLI's refusal of
   an oversized sample: ``test_cli_errors.py::test_bad_runs_exit_2_with_one_line``;
5. the index as one file: here;
6. Ctrl-C: ``test_engine_limits.py::test_ctrl_c_stops_a_long_run_within_a_second``;
7. and 8. CLI errors and silent CLI results: ``test_cli_errors.py``;
9. coercions and aliasing: ``test_engine_limits.py::test_network_copies_what_it_is_given``,
   ``::test_network_arguments_are_what_they_claim``, and here (embeddings);
10. misleading messages: ``test_fuzz_files.py::test_foreign_files_are_named_as_such``,
    ``test_engine_limits.py::test_network_arguments_are_what_they_claim`` (an iterator).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers_convert import fashion, random_state

from snnfast import _container
from snnfast.embed import Embeddings, IndexMeta
from snnfast.errors import ModelFormatError
from snnfast.retrieval import RetrievalIndex

META = IndexMeta("00000000000abc12", "membrane", 16, 4)


@pytest.fixture(scope="module")
def converted_file(tmp_path_factory):
    from snnfast.ann import Architecture
    from snnfast.convert import convert

    arch = Architecture.parse("4-8-10")
    x, _ = fashion("train", 60)
    path = tmp_path_factory.mktemp("findings") / "converted.npz"
    convert(random_state(arch, seed=3), arch, calibration_images=x).save(path)
    return path


@pytest.mark.parametrize("shape", [[1, 70000, 70000], [1, 6, 2**40]])
def test_a_model_file_claiming_a_huge_input_is_refused_not_aborted(
    converted_file, tmp_path, shape
) -> None:
    """Finding 2: ``snnfast embed`` of a (re-checksummed) model file whose header holds a huge
    input shape exits 2 with one line (it aborted the interpreter)."""
    contents = _container.read(converted_file, "converted", [2])
    body = json.loads(json.dumps(contents.body))
    body["network"]["input_shape"] = shape
    bad = tmp_path / "huge.npz"
    _container.write(bad, contents.kind, contents.version, body, dict(contents.arrays))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snnfast.cli",
            "-q",
            "embed",
            str(bad),
            "--out",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(bad) in lines[0] or "memory" in lines[0].lower(), lines[0]


def test_embeddings_own_their_arrays(tmp_path) -> None:
    """Finding 9: editing the arrays given to ``Embeddings`` afterwards changes neither what it
    holds nor what it saves."""
    v = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    pred, labels = np.zeros(10, np.int64), np.arange(10, dtype=np.int64)
    emb = Embeddings(v, pred, META, labels=labels)
    v[:] = 99
    labels[:] = 7
    assert float(emb.vectors.max()) < 99 and int(emb.labels[3]) == 3
    assert not emb.vectors.flags.writeable
    emb.save(tmp_path / "e.npz")
    again = Embeddings.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    np.testing.assert_array_equal(again.labels, np.arange(10))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model_id", 5),
        ("model_id", ""),
        ("readout", "voltage"),
        ("timesteps", -1),
        ("timesteps", "16"),
        ("dim", 0),
        ("dim", 5),
    ],
)
def test_embeddings_headers_are_checked(tmp_path, field, value) -> None:
    """Finding 9: an embeddings file whose header fields are wrong (re-checksummed, as a hostile
    writer would) is refused with ModelFormatError."""
    v = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    Embeddings(v, np.zeros(10, np.int64), META).save(tmp_path / "e.npz")
    contents = _container.read(tmp_path / "e.npz", "embeddings", [_version(tmp_path / "e.npz")])
    body = json.loads(json.dumps(contents.body))
    body["meta"][field] = value
    _container.write(
        tmp_path / "bad.npz", contents.kind, contents.version, body, dict(contents.arrays)
    )
    with pytest.raises(ModelFormatError):
        Embeddings.load(tmp_path / "bad.npz")


def _version(path) -> int:
    sniffed = _container.sniff(path)
    assert sniffed is not None
    return sniffed[1]


def test_an_index_is_one_file(tmp_path) -> None:
    """Finding 5: the graph and its metadata are one checksummed file, so no death between two
    renames can pair a graph with the wrong metadata; saving again leaves no temporary files."""
    v = np.random.default_rng(1).standard_normal((30, 4)).astype(np.float32)
    index = RetrievalIndex.build(v, np.arange(30), META)
    index.save(tmp_path / "i.npz")
    index.save(tmp_path / "i.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.npz"]
    found = RetrievalIndex.load(tmp_path / "i.npz").search(v[:3], 2, META)
    np.testing.assert_array_equal(found.ids[:, 0], [0, 1, 2])
    text = repr(found)
    assert text == "SearchResult(3 queries x k=2)" and "array" not in text


def _rewritten_index(tmp_path, **edits):
    v = np.random.default_rng(1).standard_normal((30, 4)).astype(np.float32)
    RetrievalIndex.build(v, np.arange(30), META).save(tmp_path / "i.npz")
    contents = _container.read(tmp_path / "i.npz", "index", [_version(tmp_path / "i.npz")])
    body = {**json.loads(json.dumps(contents.body)), **edits}
    _container.write(tmp_path / "bad.npz", "index", contents.version, body, dict(contents.arrays))
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("value", [1e308, 2**62, -1, 1.5, True])
def test_an_index_header_graph_size_is_checked(tmp_path, value) -> None:
    """Found by the file fuzz: a graph size of 1e308 made the loader loop (a hang)."""
    bad = _rewritten_index(tmp_path, graph_bytes=value)
    code = (
        "import sys\nfrom snnfast.retrieval import RetrievalIndex\n"
        "from snnfast.errors import ModelFormatError\n"
        "try:\n    RetrievalIndex.load(sys.argv[1])\n"
        "except ModelFormatError:\n    print('refused')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "refused", out.stderr[-2000:]


def test_a_zip_version_field_flip_is_a_format_error(tmp_path, converted_file) -> None:
    """Found by the file fuzz: zipfile raises NotImplementedError for an unknown ZIP version."""
    raw = bytearray(converted_file.read_bytes())
    central = bytes(raw).index(b"PK\x01\x02")  # the first central directory entry
    raw[central + 6] = 0xE2  # its "version needed to extract": 22.6
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    from snnfast.converted import ConvertedModel

    with pytest.raises(ModelFormatError, match="damaged|not a readable"):
        ConvertedModel.load(bad)


@pytest.mark.parametrize(("name", "value"), [("ef", -1), ("M", 0), ("ef_construction", 1 << 20)])
def test_an_index_header_graph_parameters_are_checked(tmp_path, name, value) -> None:
    """Found by the file fuzz: ``params/ef = -1`` reached hnswlib's ``set_ef`` (a TypeError)."""
    good = _rewritten_index(tmp_path)
    contents = _container.read(good, "index", [contents_version := _container.sniff(good)[1]])
    body = json.loads(json.dumps(contents.body))
    body["params"][name] = value
    bad = tmp_path / "params.npz"
    _container.write(bad, "index", contents_version, body, dict(contents.arrays))
    with pytest.raises(ModelFormatError, match=name):
        RetrievalIndex.load(bad)


def test_a_damaged_array_header_is_a_format_error(tmp_path) -> None:
    """Found by the file fuzz: a flipped byte in a ``.npy`` header inside the archive ended
    numpy's header parser with a tokenize.TokenError instead of a named error."""
    from snnfast import ann
    from snnfast.ann import Architecture

    arch = Architecture.parse("4-8-10")
    path = tmp_path / "ann.npz"
    ann.save_model(path, arch, random_state(arch, seed=1))
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        damaged = False
        for info in src.infolist():
            data = bytearray(src.read(info))
            if info.filename.endswith(".npy") and not damaged:
                start = bytes(data).index(b"{'descr'")  # the array's header dict
                data[start + 1] = ord("(")  # an unclosed bracket: the tokenizer runs off the end
                damaged = True
            dst.writestr(info.filename, bytes(data))
    path = bad
    with pytest.raises(ModelFormatError, match="bad array header|damaged"):
        ann.load_model(path)
