"""The image-folder loader (data.images): any size and mode in, uint8 RGB out; a given
train/test split; clear errors; cached arrays that are damaged are made again; the real
CIFAR-10 JPEG folder, a few images per class."""

import os

import numpy as np
import pytest
from bad_input.images import bomb_png
from conftest import SHARED_DATA
from PIL import Image

from keras_cases import UserError
from keras_cases.data import arrays, images

# (mode, size, colour) per image: RGB, greyscale, RGBA, palette and 16-bit greyscale, of
# different sizes; every image is one flat colour, so its pixels are known after resizing
KINDS = [
    ("RGB", (40, 30), (200, 10, 30)),
    ("L", (20, 20), 90),
    ("RGBA", (50, 50), (10, 220, 40, 128)),
    ("P", (33, 17), None),
    ("I;16", (24, 24), 30000),
    ("RGB", (8, 64), (5, 5, 250)),
]


def expected_rgb(mode, colour):
    if mode == "L":
        return (colour,) * 3
    if mode == "RGBA":
        return colour[:3]
    if mode == "P":
        return (255, 255, 0)
    if mode == "I;16":
        return None  # PIL's 16-bit -> RGB conversion clips; only the shape is checked
    return colour


def write_image(path, mode, size, colour, fmt=None):
    if mode == "P":
        im = Image.new("RGB", size, (255, 255, 0)).convert("P")
    else:
        im = Image.new(mode, size, colour)
    im.save(path, format=fmt)


def make_folder(root, classes=("cat", "dog", "owl"), per_class=6, ext=".png"):
    """root/<class>/<i><ext>: per_class images of mixed modes and sizes per class."""
    colours = {}
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            mode, size, colour = KINDS[i % len(KINDS)]
            if ext == ".jpg" and mode not in ("RGB", "L"):
                mode, size, colour = "RGB", size, (100, 50, 25)
            write_image(root / c / f"{i:02d}{ext}", mode, size, colour)
            colours[(c, i)] = expected_rgb(mode, colour)
    return colours


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """Decoded folders are cached under $KERAS_HOME/datasets: keep the tests' out of ~/.keras."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


def test_mixed_sizes_and_modes_become_uint8_rgb(tmp_path, cache_home):
    root = tmp_path / "pets"
    colours = make_folder(root)
    (root / "cat" / "notes.txt").write_text("not an image, not an image extension: ignored")
    (root / ".hidden").mkdir()  # hidden folders are not classes
    d = images.load_folder(root, size=16)
    assert d.class_names == ("cat", "dog", "owl") and d.n_classes == 3
    assert d.sizes == (10, 4, 4)  # 18 images split 60/20/20, stratified
    for x in (d.x_train, d.x_val, d.x_test):
        assert x.dtype == np.uint8 and x.shape[1:] == (16, 16, 3)
    for y in (d.y_train, d.y_val, d.y_test):
        assert np.bincount(y, minlength=3).min() >= 1  # every class in every split (stratified)
    # every flat-colour image comes back as its colour (converted to RGB) at every pixel
    x_all = np.concatenate([d.x_train, d.x_val, d.x_test])
    found = 0
    for (c, i), rgb in colours.items():
        if rgb is None:
            continue
        hits = np.all(x_all == np.asarray(rgb, np.uint8), axis=(1, 2, 3))
        assert hits.any(), (c, i, rgb)
        found += 1
    assert found >= 12
    cached = list((cache_home / "datasets" / "keras_cases_images").glob("pets-*.npz"))
    assert len(cached) == 1
    again = images.load_folder(root, size=16)  # from the cache: the same arrays
    np.testing.assert_array_equal(again.x_train, d.x_train)
    write_image(root / "owl" / "99.png", "RGB", (12, 12), (1, 2, 3))  # a changed folder is decoded again
    assert sum(images.load_folder(root, size=16).sizes) == 19
    assert len(list((cache_home / "datasets" / "keras_cases_images").glob("pets-*.npz"))) == 2


def test_a_corrupt_image_is_a_user_error_naming_the_file(tmp_path, cache_home):
    root = tmp_path / "pets"
    make_folder(root)
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with pytest.raises(UserError, match=r"broken\.jpg is not a readable image"):
        images.load_folder(root, size=16)


def test_train_and_test_folders_are_kept_apart(tmp_path, cache_home):
    root = tmp_path / "split"
    make_folder(root / "train", per_class=10, ext=".jpg")
    make_folder(root / "test", per_class=3, ext=".jpg")
    d = images.load_folder(root, size=24)
    assert d.class_names == ("cat", "dog", "owl")
    assert len(d.y_test) == 9 and np.array_equal(np.bincount(d.y_test), [3, 3, 3])
    assert len(d.y_train) + len(d.y_val) == 30 and np.array_equal(np.bincount(d.y_val), [1, 1, 1])
    assert d.x_test.shape == (9, 24, 24, 3)
    (root / "test" / "emu").mkdir()
    write_image(root / "test" / "emu" / "0.png", "RGB", (10, 10), (0, 0, 0))
    with pytest.raises(UserError, match="class folders the training split does not: emu"):
        images.load_folder(root, size=24)


def test_bad_folders_are_user_errors(tmp_path, cache_home):
    with pytest.raises(UserError, match="image folder not found"):
        images.load_folder(tmp_path / "nowhere")
    one = tmp_path / "one"
    make_folder(one, classes=("cat",))
    with pytest.raises(UserError, match="at least 2"):
        images.load_folder(one)
    few = tmp_path / "few"
    make_folder(few, per_class=3)
    with pytest.raises(UserError, match="need at least 5"):
        images.load_folder(few)
    none = tmp_path / "none"
    (none / "a").mkdir(parents=True)
    (none / "b").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        images.load_folder(none)
    with pytest.raises(UserError, match="unknown dataset"):
        images.load("imagenet")


def test_a_damaged_cache_file_is_decoded_again(tmp_path, cache_home):
    root = tmp_path / "pets"
    make_folder(root)
    first = images.load_folder(root, size=16)
    (cached,) = (cache_home / "datasets" / "keras_cases_images").glob("pets-*.npz")
    data = cached.read_bytes()
    for broken in (data[: len(data) // 2], b"", b"PK\x03\x04 not a zip at all"):  # cut short, empty, garbage
        cached.write_bytes(broken)
        again = images.load_folder(root, size=16)
        np.testing.assert_array_equal(again.x_train, first.x_train)
        assert cached.read_bytes() == data  # and the cache is written whole again


def test_a_damaged_mnist1d_cache_is_made_again(tmp_path, monkeypatch):
    pytest.importorskip("mnist1d")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    first = arrays.load_mnist1d()
    cached = tmp_path / "keras_home" / "datasets" / "mnist1d" / "mnist1d_default.npz"
    cached.write_bytes(cached.read_bytes()[:1000])
    again = arrays.load_mnist1d()
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert again.sizes == first.sizes == (3200, 800, 1000)


def test_an_image_over_the_decompression_bomb_limit_is_refused_before_decoding(tmp_path, cache_home):
    root = tmp_path / "pets"
    make_folder(root)
    (root / "owl" / "huge.png").write_bytes(bomb_png(20_000, 20_000))  # 400 MP declared, 60 bytes
    with pytest.raises(UserError, match=r"huge\.png declares 400,000,000 pixels, over PIL's decompression-bomb"):
        images.load_folder(root, size=16)
    (root / "owl" / "huge.png").write_bytes(bomb_png(10_000, 10_000))  # over the limit, under twice it:
    with pytest.raises(UserError, match="decompression-bomb"):  # PIL only warns; refused all the same
        images.load_folder(root, size=16)
    assert not (cache_home / "datasets" / "keras_cases_images").exists()  # nothing decoded, nothing cached


def cifar_folder(monkeypatch):
    """The CIFAR-10 JPEG copy: $KERAS_CASES_DATA_DIR first, else the shared datasets folder."""
    if images.cifar10_folder() is None:
        monkeypatch.setenv("KERAS_CASES_DATA_DIR", str(SHARED_DATA))
    folder = images.cifar10_folder()
    assert folder is not None, (
        f"the CIFAR-10 JPEG copy is missing: not in $KERAS_CASES_DATA_DIR "
        f"({os.environ.get('KERAS_CASES_DATA_DIR')}) nor {SHARED_DATA}"
    )
    return folder


def test_real_cifar10_jpeg_folder_first_images_per_class(monkeypatch):
    folder = cifar_folder(monkeypatch)
    classes, files, y = images.scan_folder(folder / "train")
    assert tuple(classes) == images.CIFAR10_CLASSES
    assert len(files) == 50_000 and np.array_equal(np.bincount(y), [5000] * 10)
    first = [files[int(np.flatnonzero(y == k)[0])] for k in range(10)]
    assert [f.parent.name for f in first] == list(images.CIFAR10_CLASSES)
    x = images.decode(first, 32)
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8
    assert all(x[i].std() > 10 for i in range(10))  # real photographs, not blank
    with Image.open(first[3]) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), x[3])  # 32x32: no resizing


def test_cifar10_per_class_decodes_only_what_it_needs(monkeypatch):
    cifar_folder(monkeypatch)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")  # no cached arrays: the JPEG route
    d = images.cifar10_per_class(2)
    assert d.sizes == (20, 20, 20) and d.class_names == images.CIFAR10_CLASSES
    for y in (d.y_train, d.y_val, d.y_test):
        assert np.array_equal(np.bincount(y, minlength=10), [2] * 10)
    assert "[2 per class]" in d.name and d.x_train.dtype == np.uint8
    # the validation images are training files (a fixed permutation), never test files
    assert not any(np.array_equal(a, b) for a in d.x_val for b in d.x_test)


def test_augmentation_is_identity_at_inference():
    import keras

    x = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 3)).astype("float32")
    aug = images.augmentation(flip=True, translate=0.1, rotate=0.05, contrast=0.1, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    assert [type(layer).__name__ for layer in aug.layers] == [
        "RandomFlip",
        "RandomTranslation",
        "RandomRotation",
        "RandomContrast",
    ]
