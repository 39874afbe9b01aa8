"""Fashion-MNIST: IDX reading and the loader on fake files; the real Debian package when installed."""

import numpy as np
import pytest
from fake_datasets import write_idx

from atelier.train.datasets import DatasetFormatError, DatasetLayoutError, FashionMNIST, FashionMNISTOutfits
from atelier.train.datasets import sample as keys
from atelier.train.datasets.fashion_mnist import (
    CLASS_ROLES,
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    fashion_mnist_available,
    read_idx,
)


@pytest.fixture
def fake_root(tmp_path):
    """Fake IDX files: 20 train images (two per class, pixel value = 10 * index), 10 test images."""
    for prefix, count in (("train", 20), ("t10k", 10)):
        labels = np.arange(count, dtype=np.uint8) % 10
        images = np.stack([np.full((28, 28), 10 * i, dtype=np.uint8) for i in range(count)])
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_read_idx_round_trip_and_bad_files(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DatasetFormatError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"12345")
    with pytest.raises(DatasetFormatError, match="10"):
        read_idx(tmp_path / "short")


def test_loader_on_fake_files(fake_root):
    assert fashion_mnist_available(fake_root)
    dataset = FashionMNIST(fake_root, "train")
    assert len(dataset) == 20
    sample = dataset[13]
    assert sample[keys.LABEL] == 3 and sample[keys.CATEGORY] == "dress" and sample[keys.CAPTION] == "Dress"
    assert sample[keys.IMAGE].shape == (3, 28, 28)
    assert abs(sample[keys.IMAGE].mean().item() - 130 / 255) < 1e-6
    assert FashionMNIST(fake_root, "test", size=(32, 32))[0][keys.IMAGE].shape == (3, 32, 32)


def test_roles_filter_and_seeded_outfits(fake_root):
    shoes = FashionMNIST(fake_root, "train", roles=["shoes"])
    assert sorted({shoes[i][keys.LABEL] for i in range(len(shoes))}) == [5, 7, 9]
    with pytest.raises(ValueError, match="hat"):
        FashionMNIST(fake_root, roles=["hat"])
    images = FashionMNIST(fake_root, "train")
    outfits = FashionMNISTOutfits(images, 6, seed=3)
    again = FashionMNISTOutfits(images, 6, seed=3)
    np.testing.assert_array_equal(outfits.outfits, again.outfits)
    assert not np.array_equal(outfits.outfits, FashionMNISTOutfits(images, 6, seed=4).outfits)
    outfit = outfits[0]
    assert outfit[keys.ITEM_IMAGES].shape == (4, 3, 28, 28)
    assert outfit[keys.ITEM_CATEGORIES] == ["top", "bottom", "bag", "shoes"]
    roles = [CLASS_ROLES[images.labels[int(name.split("-")[1])]] for name in outfit[keys.ITEM_IDS]]
    assert roles == ["top", "bottom", "bag", "shoes"]


def test_missing_folder_is_named(tmp_path):
    assert not fashion_mnist_available(tmp_path)
    with pytest.raises(DatasetLayoutError, match="dataset-fashion-mnist"):
        FashionMNIST(tmp_path / "absent")
    with pytest.raises(DatasetLayoutError, match="train-images-idx3-ubyte.gz"):
        FashionMNIST(tmp_path)


@pytest.mark.skipif(
    not fashion_mnist_available(DEBIAN_FASHION_MNIST_DIR),
    reason="Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_debian_package_has_the_published_splits():
    train = FashionMNIST(split="train")
    test = FashionMNIST(split="test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [1000] * 10)
    sample = test[0]
    assert sample[keys.CAPTION] == FASHION_MNIST_CLASSES[sample[keys.LABEL]]
    assert 0.0 <= sample[keys.IMAGE].min() and sample[keys.IMAGE].max() <= 1.0 and sample[keys.IMAGE].std() > 0
    bags = FashionMNIST(split="test", roles=["bag"])
    assert len(bags) == 1000
