"""A small catalogue and a real ``snnfast serve`` process for the service's tests.

:func:`make_catalogue` converts the shipped model (500 calibration images), embeds the first
:data:`N_ITEMS` Fashion-MNIST training images with two SNN readouts and the ANN, and writes
the model, three hnswlib indexes and the images as ``.npy`` files. :class:`Server` runs
``python -m snnfast.cli serve ... --port 0`` in a subprocess and reads the URL it prints.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from helpers_convert import fashion

from snnfast import ann
from snnfast.convert import convert
from snnfast.embed import embed_readouts
from snnfast.evaluation import calibration_indices
from snnfast.retrieval import RetrievalIndex

N_ITEMS = 300
READOUTS = ("spike_count", "membrane", "ann")
T = 16


@dataclass(frozen=True)
class Catalogue:
    """The files of the test catalogue."""

    model: Path
    index: dict[str, Path]  # by readout
    images: Path  # uint8 [N, 1, 28, 28]
    labels: Path  # int64 [N]


def make_catalogue(root: Path) -> Catalogue:
    arch, state, _ = ann.load_model(None)
    x, y = fashion("train", 2000)
    model = convert(state, arch, calibration_images=x[calibration_indices(len(x), 500)])
    model.save(root / "m.npz")
    items, labels = x[:N_ITEMS], y[:N_ITEMS]
    np.save(root / "items.npy", items)
    np.save(root / "labels.npy", labels)
    embs = embed_readouts(model, items, READOUTS, model.settings.replace(timesteps=T))
    paths = {}
    for readout, emb in embs.items():
        paths[readout] = root / f"{readout}.bin"
        RetrievalIndex.build(emb.vectors, labels, emb.meta, threads=1).save(paths[readout])
    return Catalogue(root / "m.npz", paths, root / "items.npy", root / "labels.npy")


def png(image: np.ndarray, size: int | None = None) -> bytes:
    """A uint8 ``[1, H, W]`` image as PNG bytes (upscaled to ``size`` x ``size`` if given)."""
    from PIL import Image

    img = Image.fromarray(image[0])
    if size is not None:
        img = img.resize((size, size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Server:
    """``snnfast serve ARGS --port 0`` in a subprocess; :attr:`url` once it listens."""

    def __init__(self, args: list[str], timeout: float = 120.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "snnfast.cli", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        if not line or "http://" not in line[0]:
            self.stop()
            raise RuntimeError(
                f"snnfast serve did not start: {line!r}; stderr: {''.join(self.stderr)}"
            )
        self.banner = line[0]
        self.url = line[0].split()[2].rstrip("/")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for text in self.proc.stderr:
            self.stderr.append(text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout=60.0
) -> Reply:
    """One HTTP request; a 4xx/5xx is a :class:`Reply` too, not an exception."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None
) -> tuple[bytes, dict[str, str]]:
    """A ``multipart/form-data`` body and its header."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    for name, (filename, content) in (files or {}).items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def search(url: str, image: bytes | None = None, filename: str = "q.png", **fields) -> Reply:
    """``POST /search`` with an image file and/or form fields."""
    files = None if image is None else {"image": (filename, image)}
    body, headers = multipart({k: str(v) for k, v in fields.items()}, files)
    return request(f"{url}/search", body, headers)
