"""Real datasets from ../shared/data (skipped when absent): shapes and class counts as their SOURCE.md
state."""

import argparse

import numpy as np
import pytest

from rhel.data import dataset_info, list_datasets, load
from rhel.data.cli import register


def _all(ds, attr):
    return np.concatenate([getattr(s, attr) for s in (ds.train, ds.val, ds.test)])


@pytest.fixture(scope="module")
def fsdd(shared_data):
    return load("fsdd", data_dir=shared_data, seed=0)


def test_fsdd(fsdd):
    ds = fsdd
    assert ds.info.sampling_rate == 8000 and ds.info.length == 18262 and ds.info.num_classes == 10
    assert ds.test.inputs.shape == (300, 18262, 1)
    assert len(ds.train) + len(ds.val) == 2700 and len(ds.val) == 405
    assert np.bincount(_all(ds, "targets")).tolist() == [300] * 10
    assert np.bincount(ds.test.targets).tolist() == [30] * 10
    lengths = _all(ds, "mask").sum(axis=1)
    assert lengths.min() == 1148 and lengths.max() == 18262 and abs(np.median(lengths) - 3358) <= 1
    assert -1.0 <= ds.train.inputs.min() and ds.train.inputs.max() < 1.0


def test_fsdd_resample_and_crop(shared_data, fsdd):
    ds = load("fsdd", data_dir=shared_data, seed=0, sample_rate=4000, max_length=4000)
    assert ds.info.sampling_rate == 4000 and ds.train.inputs.shape[1:] == (4000, 1)
    np.testing.assert_array_equal(ds.test.targets, fsdd.test.targets)
    assert ds.train.mask[:, -1].mean() < 0.5  # most recordings are shorter than 1 s


def test_fsdd_frames(shared_data, fsdd):
    """frame=K: K consecutive samples per step; max_length counts samples, the last frame is zero-padded."""
    ds = load("fsdd", data_dir=shared_data, seed=0, max_length=8002, frame=8)
    assert ds.info.length == 1001 and ds.info.channels == 8 and ds.info.sampling_rate == 1000
    assert ds.test.inputs.shape == (300, 1001, 8)
    samples = fsdd.test.inputs[:, :8002, 0]
    np.testing.assert_array_equal(ds.test.inputs[:, :1000].reshape(300, -1), samples[:, :8000])
    np.testing.assert_array_equal(ds.test.inputs[:, 1000, :2], samples[:, 8000:])
    np.testing.assert_array_equal(ds.test.inputs[:, 1000, 2:], 0.0)
    np.testing.assert_array_equal(ds.test.mask, fsdd.test.mask[:, :8002:8])
    with pytest.raises(ValueError, match="frame must be a positive number"):
        load("fsdd", data_dir=shared_data, seed=0, frame=0)


def test_fsdd_frames_mask_either_padding():
    """A frame is valid when any of its samples is: the frame holding a start-padded recording's first samples
    stays in."""
    from rhel.data.core import to_frames

    x = np.arange(20, dtype=np.float32).reshape(2, 10, 1)
    mask = np.array([[True] * 7 + [False] * 3, [False] * 5 + [True] * 5])
    frames, frame_mask = to_frames(x, mask, 4)
    assert frames.shape == (2, 3, 4)
    np.testing.assert_array_equal(frames[0, 2], [8, 9, 0, 0])
    np.testing.assert_array_equal(frame_mask, [[True, True, False], [False, True, True]])


def test_fsdd_split_seeded(shared_data, fsdd):
    other = load("fsdd", data_dir=shared_data, seed=1, max_length=2000)
    a = load("fsdd", data_dir=shared_data, seed=0, max_length=2000)
    np.testing.assert_array_equal(a.val.inputs, fsdd.val.inputs[:, :2000])
    assert not np.array_equal(a.val.inputs, other.val.inputs)


def test_mnist(shared_data):
    ds = load("mnist", data_dir=shared_data, seed=0)
    assert ds.test.inputs.shape == (10000, 784, 1) and len(ds.train) + len(ds.val) == 60000
    assert np.bincount(ds.test.targets).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train_pixels = np.concatenate([ds.train.inputs, ds.val.inputs])
    assert abs(float(train_pixels.mean(dtype=np.float64)) * 255 - 33.3184) < 1e-3
    assert train_pixels.min() == 0.0 and train_pixels.max() == 1.0
    p = load("permuted_mnist", data_dir=shared_data, seed=0)
    assert p.info.name == "permuted_mnist"
    np.testing.assert_array_equal(np.sort(p.test.inputs[0, :, 0]), np.sort(ds.test.inputs[0, :, 0]))
    assert not np.array_equal(p.test.inputs[0], ds.test.inputs[0])


def test_hand_movement_direction(shared_data):
    official = load("HandMovementDirection", data_dir=shared_data, resplit=False)
    assert official.test.inputs.shape == (74, 400, 10) and official.classes == (
        "backward",
        "forward",
        "left",
        "right",
    )
    counts = np.bincount(official.test.targets).tolist()
    assert counts == [15, 30, 15, 14] and sorted(counts) == [14, 15, 15, 30]  # SOURCE.md: 30/15/15/14
    train = np.concatenate([official.train.targets, official.val.targets])
    assert np.bincount(train).tolist() == [40, 40, 40, 40]
    ds = load("HandMovementDirection", data_dir=shared_data, seed=0)  # merged and re-split 70/15/15
    assert (len(ds.train), len(ds.val), len(ds.test)) == (164, 35, 35)
    assert np.bincount(_all(ds, "targets")).tolist() == [55, 70, 55, 54]


def test_bonn_and_delhi_eeg(shared_data):
    ds = load("bonn_eeg", data_dir=shared_data, seed=0)
    x = _all(ds, "inputs")
    assert x.shape == (500, 4097, 1) and (len(ds.train), len(ds.val), len(ds.test)) == (350, 75, 75)
    assert np.bincount(_all(ds, "targets")).tolist() == [100] * 5
    assert np.bincount(ds.test.targets).tolist() == [15] * 5
    assert x.min() == -1885 and x.max() == 2047 and ds.info.sampling_rate == 173.61
    binary = load("bonn_eeg", data_dir=shared_data, binary=True)
    assert np.bincount(_all(binary, "targets")).tolist() == [400, 100]
    d = load("delhi_eeg", data_dir=shared_data, seed=0)
    assert _all(d, "inputs").shape == (150, 1024, 1)
    assert np.bincount(_all(d, "targets")).tolist() == [50, 50, 50]
    # frame=K: K consecutive samples per step, every sample kept (the last frame zero-padded), the rate over K
    framed = load("bonn_eeg", data_dir=shared_data, seed=0, frame=4)
    assert framed.train.inputs.shape[1:] == (1025, 4) and framed.info.sampling_rate == pytest.approx(173.61 / 4)
    np.testing.assert_array_equal(framed.test.inputs[:, :1024].reshape(75, -1), ds.test.inputs[:, :4096, 0])
    np.testing.assert_array_equal(framed.test.inputs[:, 1024], np.pad(ds.test.inputs[:, 4096], ((0, 0), (0, 3))))
    assert load("delhi_eeg", data_dir=shared_data, seed=0, frame=2).train.inputs.shape[1:] == (512, 2)
    with pytest.raises(ValueError, match="frame must be a positive number"):
        load("delhi_eeg", data_dir=shared_data, frame=0)


UCR = {  # name: (train, test, length, classes), from ucr-long/SOURCE.md
    "Rock": (20, 50, 2844, 4),
    "PigAirwayPressure": (104, 208, 2000, 52),
    "PigArtPressure": (104, 208, 2000, 52),
    "PigCVP": (104, 208, 2000, 52),
    "ACSF1": (100, 100, 1460, 10),
    "EOGHorizontalSignal": (362, 362, 1250, 12),
    "Worms": (181, 77, 900, 5),
    "WormsTwoClass": (181, 77, 900, 2),
}


@pytest.mark.parametrize("name", list(UCR))
def test_ucr_long(shared_data, name):
    n_train, n_test, length, classes = UCR[name]
    ds = load(name, data_dir=shared_data, seed=0)
    assert ds.test.inputs.shape == (n_test, length, 1) and len(ds.train) + len(ds.val) == n_train
    assert ds.info.num_classes == classes and len(np.unique(_all(ds, "targets"))) == classes
    assert ds.train.mask is None


def test_cli_info_for_every_dataset(shared_data, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for name in list_datasets():
        args = parser.parse_args(["data", "info", name, "--data-dir", str(shared_data)])
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert f"name:          {name}" in out and "obtain:" in out
        assert dataset_info(name).length > 0
    args = parser.parse_args(["data", "--data-dir", str(shared_data), "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "fsdd" in out and "HandMovementDirection" in out and "generated" in out
    args = parser.parse_args(["data", "info", "no_such_dataset"])
    assert args.func(args) == 2
