"""A new user's path: their own torch model and a folder of PNGs through the command line."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from helpers_convert import fashion

from snnfast import cli

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")

MODEL_CODE = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding="same"), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
        )
        self.head = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        x = self.features(x)
        return self.head(torch.flatten(x, 1))


def make():
    return Tiny()
"""


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    (root / "mymodel.py").write_text(textwrap.dedent(MODEL_CODE))
    import importlib.util

    spec = importlib.util.spec_from_file_location("mymodel", root / "mymodel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.make()
    torch.save(model.state_dict(), root / "weights.pt")
    images, labels = fashion("test", 60)
    for i, (img, lab) in enumerate(zip(images, labels)):
        folder = root / "catalogue" / f"class{lab}"
        folder.mkdir(parents=True, exist_ok=True)
        PIL.fromarray(img[0]).save(folder / f"{i:03d}.png")
    PIL.fromarray(images[7, 0]).resize((56, 56)).save(root / "query.png")  # another size
    return root


def test_convert_torch_embed_index_search_an_image(user_files, capsys, monkeypatch) -> None:
    root = user_files
    monkeypatch.chdir(root)
    model = root / "snn.npz"
    argv = [
        "-q",
        "convert-torch",
        "mymodel.py:make",
        "--weights",
        "weights.pt",
        "--out",
        str(model),
    ]
    assert cli.main([*argv, "--images", str(root / "catalogue"), "--calibration-size", "50"]) == 0
    assert "spiking layers" in capsys.readouterr().out
    emb = root / "cat.npz"
    assert cli.main(["-q", "embed", str(model), str(root / "catalogue"), "--out", str(emb)]) == 0
    index = root / "cat.index"
    assert cli.main(["-q", "index", str(emb), "--out", str(index)]) == 0
    capsys.readouterr()
    argv = ["-q", "search", str(index), str(root / "query.png"), "--model", str(model), "-k", "3"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "query.png" in out and out.count("label") >= 3


def test_convert_torch_refuses_what_it_cannot_read(user_files, capsys, monkeypatch) -> None:
    root = user_files
    monkeypatch.chdir(root)
    out = str(root / "x.npz")
    assert cli.main(["-q", "convert-torch", "mymodel", "--out", out]) == 2
    assert "MODULE:FACTORY" in capsys.readouterr().err
    assert cli.main(["-q", "convert-torch", "nosuchmodule:make", "--out", out]) == 2
    assert "cannot import" in capsys.readouterr().err
    (root / "junk.pt").write_bytes(b"not a state dict")
    argv = ["-q", "convert-torch", "mymodel.py:make", "--weights", "junk.pt", "--out", out]
    assert cli.main(argv) == 2
    assert "junk.pt" in capsys.readouterr().err
    with np.errstate(all="ignore"):
        assert not (root / "x.npz").exists()
