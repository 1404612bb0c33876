"""Synthetic tasks: shapes, seeds, correct targets, and that long_range_pattern is learnable only from the
past."""

import numpy as np
import pytest

from rhel.data import dataset_info, load


def _centroid_accuracy(ds, feature):
    f_train, f_test = feature(ds.train.inputs), feature(ds.test.inputs)
    k = ds.info.num_classes
    centroids = np.stack([f_train[ds.train.targets == c].mean(0) for c in range(k)])
    pred = np.argmin(((f_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((pred == ds.test.targets).mean())


def test_long_range_pattern_defaults_and_learnability():
    ds = load("long_range_pattern", seed=0)
    assert ds.train.inputs.shape == (1024, 512, 4) and ds.val.inputs.shape == (256, 512, 4)
    assert ds.test.targets.dtype == np.int64 and ds.info.num_classes == 4 and ds.train.mask is None
    assert "Chance = 1/4" in ds.info.description
    # a mean-over-time readout of the raw input is already well above chance (0.25) ...
    assert _centroid_accuracy(ds, lambda x: x.mean(axis=1)) > 0.8
    # ... while the second half of the sequence carries no information about the class
    assert _centroid_accuracy(ds, lambda x: x[:, 256:].mean(axis=1)) < 0.35


def test_long_range_pattern_seed_and_length():
    a = load("long_range_pattern", seed=1, length=1000, n_train=64, n_val=8, n_test=8)
    b = load("long_range_pattern", seed=1, length=1000, n_train=64, n_val=8, n_test=8)
    c = load("long_range_pattern", seed=2, length=1000, n_train=64, n_val=8, n_test=8)
    assert a.train.inputs.shape == (64, 1000, 4) and a.info.length == 1000
    np.testing.assert_array_equal(a.train.inputs, b.train.inputs)
    assert not np.array_equal(a.train.inputs, c.train.inputs)
    # changing n_train leaves validation and test unchanged
    d = load("long_range_pattern", seed=1, length=1000, n_train=32, n_val=8, n_test=8)
    np.testing.assert_array_equal(a.test.inputs, d.test.inputs)
    with pytest.raises(ValueError):
        load("long_range_pattern", num_classes=9, channels=4)


def test_copy_memory_targets():
    ds = load("copy_memory", seed=0, length=60, n_copy=5, n_symbols=4, n_train=16, n_val=4, n_test=4)
    x, y = ds.train.inputs, ds.train.targets
    assert x.shape == (16, 60, 6) and y.shape == (16, 5, 4) and ds.info.task == "regression"
    np.testing.assert_array_equal(x[:, :5, 1:5], y)  # the symbols to recall
    assert np.all(x[:, 60 - 6, 5] == 1) and np.all(x[:, 5 : 60 - 6, 0] == 1)  # delimiter, blanks
    np.testing.assert_allclose(x.sum(-1), 1.0)
    assert "MSE 0.1875" in ds.info.description


def test_adding_targets():
    ds = load("adding", seed=0, length=100, n_train=32, n_val=4, n_test=4)
    x, y = ds.train.inputs, ds.train.targets
    assert x.shape == (32, 100, 2) and y.shape == (32, 1, 1)
    assert np.all(x[:, :50, 1].sum(1) == 1) and np.all(x[:, 50:, 1].sum(1) == 1)
    np.testing.assert_allclose(y[:, 0, 0], (x[..., 0] * x[..., 1]).sum(1) - 1.0, rtol=1e-6, atol=1e-6)
    assert np.all(np.abs(y) < 1.0)  # within the tanh regression head's range
    assert dataset_info("adding").output_dim == 1
