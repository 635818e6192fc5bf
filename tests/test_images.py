"""Image folders, image files and NumPy arrays as model input (snnfast.data.images)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snnfast.data import (
    ImageOptions,
    ImageSource,
    convert_array,
    iter_images,
    list_images,
    load_images,
    read_image,
)
from snnfast.errors import ConfigError, DataError, MemoryLimitError, ShapeError

RNG = np.random.default_rng(0)


def save(path: Path, array: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path, **kw) if mode else Image.fromarray(array).save(
        path, **kw
    )
    return path


def grey(h: int = 28, w: int = 28) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def test_class_subfolders_give_sorted_labels_and_ids(tmp_path) -> None:
    save(tmp_path / "shoes" / "b.png", grey())
    save(tmp_path / "shoes" / "deep" / "a.png", grey())
    save(tmp_path / "bags" / "z.jpg", grey())
    save(tmp_path / ".hidden" / "x.png", grey())
    save(tmp_path / "bags" / ".x.png", grey())
    (tmp_path / "bags" / "notes.txt").write_text("not an image")
    listing = list_images(tmp_path)
    assert listing.class_names == ("bags", "shoes")
    names = [Path(p).relative_to(tmp_path).as_posix() for p in listing.paths]
    assert names == ["bags/z.jpg", "shoes/b.png", "shoes/deep/a.png"]
    assert listing.labels.tolist() == [0, 1, 1]
    batch = load_images(tmp_path, (1, 28, 28))
    assert batch.ids.tolist() == [0, 1, 2] and batch.labels.tolist() == [0, 1, 1]
    assert batch.class_names == ("bags", "shoes") and batch.images.dtype == np.uint8


def test_flat_folder_has_no_labels_and_mixed_folders_are_refused(tmp_path) -> None:
    a = grey()
    save(tmp_path / "flat" / "1.png", a)
    save(tmp_path / "flat" / "2.png", grey())
    batch = load_images(tmp_path / "flat", (1, 28, 28))
    assert batch.labels is None and batch.class_names is None
    np.testing.assert_array_equal(batch.images[0, 0], a)  # right size and mode: untouched
    save(tmp_path / "mixed" / "top.png", grey())
    save(tmp_path / "mixed" / "cls" / "x.png", grey())
    with pytest.raises(DataError, match="both image files.*and subfolders"):
        list_images(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        list_images(tmp_path / "empty")
    with pytest.raises(DataError, match="no image folder"):
        list_images(tmp_path / "absent")


def test_colour_conversions_are_the_documented_ones(tmp_path) -> None:
    rgb = RNG.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16  # Pillow's L = 0.299 R + ...
    got = read_image(save(tmp_path / "rgb.png", rgb), (1, 28, 28))
    np.testing.assert_array_equal(got[0], luma)
    np.testing.assert_allclose(got[0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1)
    g8 = grey()
    as_rgb = read_image(save(tmp_path / "g.png", g8), (3, 28, 28))
    assert as_rgb.shape == (3, 28, 28) and all(np.array_equal(c, g8) for c in as_rgb)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:14, :, 3] = 255  # top half opaque, bottom half transparent
    for bg in (0, 255):
        out = read_image(save(tmp_path / "a.png", rgba), (1, 28, 28), ImageOptions(background=bg))
        assert (out[0, :14] == 200).all() and (out[0, 14:] == bg).all()
    deep = np.full((28, 28), 65535, np.uint16)
    deep[0, 0] = 0
    deep[0, 1] = 32896  # 128.5 x 257 -> rounds to 128
    out = read_image(save(tmp_path / "d16.png", deep), (1, 28, 28))
    assert out[0, 0, 0] == 0 and out[0, 0, 1] == 128 and out[0, 5, 5] == 255
    pal = Image.fromarray(rgb).convert("P")
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(
        read_image(tmp_path / "p.png", (3, 28, 28)),
        np.asarray(pal.convert("RGB")).transpose(2, 0, 1),
    )


def test_exif_orientation_is_applied(tmp_path) -> None:
    img = np.zeros((20, 10), np.uint8)
    img[0, :] = 255  # a bright top row
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(img).save(tmp_path / "o.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "o.jpg", (1, 10, 20))
    assert out[0, :, -1].mean() > 200 and out[0, :, 0].mean() < 50  # the row became a column


@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
def test_resizing_fits(tmp_path, fit) -> None:
    wide = np.full((40, 80), 100, np.uint8)
    out = read_image(save(tmp_path / "w.png", wide), (1, 28, 28), ImageOptions(fit=fit))
    assert out.shape == (1, 28, 28)
    if fit == "pad":  # the 2:1 image fills the middle 14 rows, the rest is background
        assert (out[0, 7:21] == 100).all() and (out[0, :5] == 0).all() and (out[0, -5:] == 0).all()
    else:
        assert (out == 100).all()  # a uniform image stays uniform whatever the filter
    big = RNG.integers(0, 256, (280, 280), dtype=np.uint8)
    for resample in ("nearest", "bilinear", "lanczos"):
        small = read_image(
            save(tmp_path / "b.png", big), (1, 28, 28), ImageOptions(resample=resample)
        )
        assert small.shape == (1, 28, 28)
    # bilinear downscaling averages (antialiased): the noise shrinks
    smooth = read_image(tmp_path / "b.png", (1, 28, 28)).astype(float)
    assert smooth.std() < 0.5 * big.std()


def test_undecodable_files_raise_with_their_path_or_are_skipped(tmp_path) -> None:
    save(tmp_path / "c" / "good1.png", grey())
    (tmp_path / "c" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    save(tmp_path / "c" / "good2.png", grey())
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.png"):
        load_images(tmp_path / "c", (1, 28, 28))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = load_images(tmp_path / "c", (1, 28, 28), options=ImageOptions(on_error="skip"))
    assert batch.ids.tolist() == [1, 2]  # bad.png sorts first: its id 0 is missing
    assert [Path(p).name for p in batch.paths] == ["good1.png", "good2.png"]
    assert any("bad.png" in str(w.message) for w in caught)
    (tmp_path / "c" / "good1.png").unlink()
    (tmp_path / "c" / "good2.png").unlink()
    with pytest.raises(DataError, match="no image of"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_images(tmp_path / "c", (1, 28, 28), options=ImageOptions(on_error="skip"))


def test_npy_arrays_with_labels_stream_in_batches(tmp_path) -> None:
    x = RNG.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    y = np.arange(10) % 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    batches = list(
        iter_images(tmp_path / "x.npy", (1, 28, 28), batch_size=4, labels=tmp_path / "y.npy")
    )
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches])[:, 0], x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
    rgb = load_images(x[:, None], (3, 32, 32))
    assert rgb.images.shape == (10, 3, 32, 32) and rgb.paths is None
    four = RNG.integers(0, 256, (2, 4, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(load_images(four, (4, 8, 8)).images, four)  # already right
    with pytest.raises(ShapeError, match="grey .1. or RGB .3."):
        convert_array(four, (1, 8, 8))
    with pytest.raises(ShapeError, match="uint8"):
        ImageSource.open(x.astype(np.float32))
    with pytest.raises(ShapeError, match="labels"):
        ImageSource.open(x, labels=y[:5])
    with pytest.raises(ConfigError, match="labels can be given only"):
        ImageSource.open(tmp_path, labels=y)
    np.save(tmp_path / "obj.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable .npy"):
        ImageSource.open(tmp_path / "obj.npy")


def test_sizes_are_checked_before_allocating(tmp_path, monkeypatch) -> None:
    x = np.zeros((100, 28, 28), np.uint8)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setenv("SNNFAST_MEMORY_LIMIT", "50000")
    with pytest.raises(MemoryLimitError, match="100 images of 1 x 28 x 28"):
        load_images(tmp_path / "x.npy", (1, 28, 28))
    save(tmp_path / "huge.png", np.zeros((200, 200), np.uint8))
    with pytest.raises(MemoryLimitError, match="decoding"):
        read_image(tmp_path / "huge.png", (1, 28, 28))


def test_bad_options_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match="resample"):
        ImageOptions(resample="cubic")
    with pytest.raises(ConfigError, match="background"):
        ImageOptions(background=300)
    with pytest.raises(ShapeError, match="C = 2"):
        read_image("x.png", (2, 28, 28))
