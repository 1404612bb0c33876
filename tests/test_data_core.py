"""Core helpers of rhel.data: the one split, validation and padding paths every loader uses."""

import numpy as np
import pytest

from rhel.data import DataError, DatasetInfo, build_splits, make_split, pad_sequences, split_indices
from rhel.data.core import encode_labels


def test_split_indices_sizes_disjoint_and_seeded():
    parts = split_indices(1000, (0.7, 0.15, 0.15), seed=3)
    assert [p.size for p in parts] == [700, 150, 150]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))
    again = split_indices(1000, (0.7, 0.15, 0.15), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = split_indices(1000, (0.7, 0.15, 0.15), seed=4)
    assert not np.array_equal(parts[2], other[2])


def test_split_indices_stratified():
    labels = np.repeat(np.arange(4), [100, 200, 60, 40])
    train, val, test = split_indices(400, (0.7, 0.15, 0.15), seed=0, labels=labels)
    assert (train.size, val.size, test.size) == (280, 60, 60)
    for part, frac in ((train, 0.7), (val, 0.15), (test, 0.15)):
        counts = np.bincount(labels[part], minlength=4)
        expected = frac * np.array([100, 200, 60, 40])
        assert np.all(np.abs(counts - expected) <= 1.0), (counts, expected)


def test_split_indices_rejects_bad_fractions():
    with pytest.raises(ValueError):
        split_indices(10, (0.5, 0.6), seed=0)


def test_pad_sequences_modes():
    a, b = np.ones((3, 2)), 2 * np.ones((5, 2))
    x, m = pad_sequences([a, b])
    assert x.shape == (2, 5, 2) and x.dtype == np.float32
    assert m.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert x[0, 3:].sum() == 0
    x, m = pad_sequences([a, b], pad="start")
    assert m[0].tolist() == [False, False, True, True, True] and x[0, 0].sum() == 0
    x, m = pad_sequences([a, b], length=4)  # crop keeps the first steps
    assert x.shape == (2, 4, 2) and m[1].all()
    x, m = pad_sequences([a, np.arange(5.0)[:, None].repeat(2, 1)], length=9, pad="resample")
    assert m is None and x.shape == (2, 9, 2)
    np.testing.assert_allclose(x[1, :, 0], np.linspace(0, 4, 9))
    with pytest.raises(DataError, match="channel counts"):
        pad_sequences([np.ones((3, 1)), np.ones((3, 2))])


def test_make_split_reports_nonfinite_position():
    x = np.zeros((4, 6, 2))
    x[2, 5, 1] = np.nan
    with pytest.raises(DataError, match=r"myfile inputs: nan at index \(2, 5, 1\)"):
        make_split(x, np.zeros(4), None, "classification", "myfile")
    mask = np.ones((4, 6), bool)
    mask[2, 5] = False  # a NaN in padding is ignored
    s = make_split(x, np.zeros(4), mask, "classification", "myfile")
    assert s.targets.dtype == np.int64 and s.inputs.dtype == np.float32
    with pytest.raises(DataError, match="regression targets must be"):
        make_split(np.zeros((4, 6, 2)), np.zeros(4), None, "regression", "f")
    with pytest.raises(DataError, match=r"inputs must be \(N, L, C\)"):
        make_split(np.zeros((4, 6)), np.zeros(4), None, "classification", "f")


def test_encode_labels_numeric_order():
    y, classes = encode_labels(np.array(["10", "2", "1", "2"]))
    assert classes == ("1", "2", "10") and y.tolist() == [2, 1, 0, 1]
    with pytest.raises(DataError, match="not one of the classes"):
        encode_labels(np.array(["x"]), classes=("a",))


def _info(n_classes=3):
    return DatasetInfo("t", "classification", n_classes, None, 5, 1, None, "d", "o")


def test_build_splits_official_test_and_standardized():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(100, 5, 1))
    y = np.arange(100) % 2
    test = np.arange(100) >= 80
    ds = build_splits(_info(2), x, y, seed=1, test_index=test, val_fraction=0.25)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (60, 20, 20)
    np.testing.assert_array_equal(ds.test.inputs, x[80:].astype(np.float32))
    z = ds.standardized()
    assert abs(float(z.train.inputs.mean())) < 1e-5 and abs(float(z.train.inputs.std()) - 1) < 1e-4
