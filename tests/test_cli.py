"""The command line, stage by stage, on the shipped model and a few hundred real images."""

from __future__ import annotations

import pytest

from snnfast import ann, cli
from snnfast.evaluation import EmbeddingScores
from snnfast.paper.table2 import format_table2

pytestmark = pytest.mark.skipif(not ann.SHIPPED_MODEL.exists(), reason="no shipped model")


def test_table2_shows_our_figures_beside_the_papers():
    def row(name, classification, top1, top3, map_at_10, recall_at_10):
        return EmbeddingScores(
            name=name,
            readout="ann" if name == "ANN" else "membrane",
            timesteps=0 if name == "ANN" else 16,
            classification=classification,
            top1=top1,
            top3=top3,
            map_at_10=map_at_10,
            recall_at_10=recall_at_10,
            n_queries=10,
            recall_queries=0 if recall_at_10 is None else 10,
            timings={},
        )

    rows = [row("ANN", 0.9, 0.8, 0.95, 0.85, 0.99), row("SNN(16)", 0.85, 0.8, 0.9, 0.8, None)]
    text = format_table2(rows)
    assert " 90.00" in text and " 95.00" in text and "85.05 / 85.55 / 93.56" in text
    assert text.count("—") == 1  # only the missing recall


def test_convert_embed_index_search(tmp_path, capsys):
    conv = tmp_path / "snn.npz"
    assert cli.main(["-q", "convert", str(ann.SHIPPED_MODEL), "--out", str(conv)]) == 0
    train = tmp_path / "train.npz"
    test = tmp_path / "test.npz"
    args = ["--timesteps", "8", "--limit"]
    assert (
        cli.main(["-q", "embed", str(conv), "--split", "train", *args, "300", "--out", str(train)])
        == 0
    )
    assert (
        cli.main(["-q", "embed", str(conv), "--split", "test", *args, "20", "--out", str(test)])
        == 0
    )
    index = tmp_path / "index.bin"
    assert cli.main(["-q", "index", str(train), "--out", str(index)]) == 0
    capsys.readouterr()
    assert cli.main(["-q", "search", str(index), str(test), "--ids", "0", "3", "-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("query 0 (label") and out[1].startswith("query 3")
    # A query embedded with another readout is refused, naming the field.
    other = tmp_path / "other.npz"
    assert (
        cli.main(
            [
                "-q",
                "embed",
                str(conv),
                "--split",
                "test",
                "--readout",
                "spike_count",
                *args,
                "5",
                "--out",
                str(other),
            ]
        )
        == 0
    )
    assert cli.main(["-q", "search", str(index), str(other)]) == 2
    assert "readout" in capsys.readouterr().err


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    assert cli.main(["-q", "embed", str(bad), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnfast: error:") and "bad.npz" in err
    assert not (tmp_path / "x.npz").exists()


def test_train_writes_a_model_the_converter_reads(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "m.npz"
    args = ["-q", "train", "4-8-10", "--epochs", "1", "--limit", "300", "--threads", "1"]
    assert cli.main([*args, "--out", str(out)]) == 0
    assert "4-8-10: train" in capsys.readouterr().out
    arch, state, meta = ann.load_model(out)
    assert arch.spec == "4-8-10" and meta["recipe"]["epochs"] == 1
    assert cli.main(["-q", "convert", str(out), "--out", str(tmp_path / "s.npz")]) == 0


def test_bad_counts_exit_2_naming_the_option(tmp_path, capsys):
    for argv in (
        ["evaluate", "--timesteps", "0"],
        ["evaluate", "--timesteps", "-4"],
        ["demo", "--n-train", "x"],
        ["chip", "m.npz", "--n-images", "0"],
        ["lowlatency", str(tmp_path), "--energy-images", "0"],
        ["reproduce", str(tmp_path), "--jobs", "0"],
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(["-q", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {argv[-2]}" in err and ">= 1" in err, argv


def test_output_paths_are_refused_before_the_work(tmp_path, capsys, monkeypatch):
    import snnfast.paper.table2 as table2

    def refuse(*args, **kwargs):
        raise AssertionError("the evaluation ran before the output path was checked")

    monkeypatch.setattr(table2, "run_pipeline", refuse)
    folder = tmp_path / "folder"
    folder.mkdir()
    assert cli.main(["-q", "evaluate", "--json", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    plain = tmp_path / "plain.txt"
    plain.write_text("a file, not a folder")
    assert cli.main(["-q", "evaluate", "--json", str(plain / "r.json")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert cli.main(["-q", "demo", "--out", str(plain / "demo")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert cli.main(["-q", "chip", "m.npz", "--png", str(plain / "c.png")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert plain.read_text() == "a file, not a folder"
