"""PPG-DaLiA on a generated fixture in the UCI layout (PPG_FieldStudy/S{i}/S{i}.pkl, latin-1 pickles).

The fixture is tiny (3 subjects x 300 s) and the loader runs with a 1,280-step window and 256-step stride
(the real defaults are 49,920 / 4,992); the label grid (one per 128 steps = 2 s at 64 Hz) is the real one.
"""

import hashlib
import os
import pickle

import numpy as np
import pytest

from rhel.data import DataError, load
from rhel.data.ppg import MANIFEST

SECONDS = 300
SMALL = dict(window=1280, stride=256, label_every=128)


def _subject(i: int) -> dict:
    t64 = np.arange(SECONDS * 64, dtype=np.float64)
    rng = np.random.default_rng(i)
    n_labels = (SECONDS - 8) // 2 + 1
    return {
        "signal": {
            "wrist": {
                "ACC": rng.normal(size=(SECONDS * 32, 3)) * 20,
                "BVP": t64[:, None],  # a ramp: identifies the time of every step after scaling
                "EDA": rng.random((SECONDS * 4, 1)),
                "TEMP": 30 + rng.random((SECONDS * 4, 1)),
            },
            "chest": {"ECG": np.zeros((10, 1))},
        },
        "label": 60.0 + np.arange(n_labels, dtype=np.float64) + 1000 * i,
        "subject": f"S{i}",
    }


@pytest.fixture()
def ppg_root(tmp_path):
    base = tmp_path / "ppg_dalia" / "PPG_FieldStudy"
    for i in (1, 2, 3):
        (base / f"S{i}").mkdir(parents=True)
        with open(base / f"S{i}" / f"S{i}.pkl", "wb") as f:
            pickle.dump(_subject(i), f, protocol=2)
    return tmp_path


def _write_manifest(root):
    base = root / "ppg_dalia" / "PPG_FieldStudy"
    lines = []
    for i in (1, 2, 3):
        digest = hashlib.sha256((base / f"S{i}" / f"S{i}.pkl").read_bytes()).hexdigest()
        lines.append(f"{digest}  S{i}/S{i}.pkl\n")
    (base / MANIFEST).write_text("".join(lines))


def test_refuses_unverified_pickles(ppg_root):
    with pytest.raises(DataError, match="no known checksum for this pickle"):
        load("ppg_dalia", data_dir=ppg_root, **SMALL)


def test_shapes_scaling_alignment_and_disjoint_parts(ppg_root):
    ds = load("ppg_dalia", data_dir=ppg_root, seed=0, trust_local_pickles=True, scale_targets=False, **SMALL)
    # per subject: 150 blocks -> parts of 105 / 22 / 23 blocks -> 48 / 7 / 7 windows of 10 blocks, stride 2
    assert ds.train.inputs.shape == (144, 1280, 6) and ds.train.targets.shape == (144, 10, 1)
    assert ds.val.inputs.shape == (21, 1280, 6) and ds.test.inputs.shape == (21, 1280, 6)
    assert ds.info.task == "regression" and ds.info.target_stride == 128 and ds.info.length == 1280
    for s in (ds.train, ds.val, ds.test):
        assert s.inputs.min() >= -1.0 and s.inputs.max() <= 1.0 and s.targets.dtype == np.float32
    n = SECONDS * 64
    spans = {}
    for name, s in ds.splits().items():
        start = np.rint((s.inputs[:, 0, 3].astype(np.float64) + 1) / 2 * (n - 1)).astype(int)  # BVP ramp
        assert np.all(start % 128 == 0)
        subject = (s.targets[:, 0, 0] // 1000).astype(int)  # labels were offset by 1000 * subject
        block = start // 128
        # label k of a window is the subject's label list with 3 copies of the first prepended
        expected = np.maximum(block[:, None] + np.arange(10) - 3, 0) + 60 + 1000 * subject[:, None]
        np.testing.assert_array_equal(s.targets[:, :, 0], expected)
        for subj in (1, 2, 3):
            st = start[subject == subj]
            spans[(name, subj)] = (st.min(), st.max() + 1280)
    for subj in (1, 2, 3):  # the three parts of a subject never overlap in time
        ranges = sorted(spans[(name, subj)] for name in ("train", "val", "test"))
        assert ranges[0][1] <= ranges[1][0] and ranges[1][1] <= ranges[2][0]


def test_seeded_split_and_scaled_targets(ppg_root):
    _write_manifest(ppg_root)  # checksums known -> no opt-in needed
    a = load("ppg_dalia", data_dir=ppg_root, seed=0, **SMALL)
    b = load("ppg_dalia", data_dir=ppg_root, seed=0, **SMALL)
    np.testing.assert_array_equal(a.test.inputs, b.test.inputs)
    np.testing.assert_array_equal(a.train.targets, b.train.targets)
    c = load("ppg_dalia", data_dir=ppg_root, seed=5, **SMALL)
    assert not np.array_equal(a.test.inputs[:, 0], c.test.inputs[:, 0])
    for s in (a.train, a.val, a.test):  # paper's per-subject min-max of the labels
        assert s.targets.min() >= -1.0 and s.targets.max() <= 1.0


def test_checksum_mismatch_and_unsafe_pickle(ppg_root):
    _write_manifest(ppg_root)
    victim = ppg_root / "ppg_dalia" / "PPG_FieldStudy" / "S2" / "S2.pkl"
    with open(victim, "wb") as f:
        pickle.dump({"signal": {}, "label": [os.getcwd]}, f)
    with pytest.raises(DataError, match=r"S2.pkl: sha256 .* does not match the recorded"):
        load("ppg_dalia", data_dir=ppg_root, **SMALL)
    (victim.parent.parent / MANIFEST).unlink()
    with pytest.raises(DataError, match=r"S2.pkl: unreadable or truncated pickle \(global posix.getcwd"):
        load("ppg_dalia", data_dir=ppg_root, trust_local_pickles=True, **SMALL)
    victim.write_bytes(pickle.dumps(_subject(2))[:100])
    with pytest.raises(DataError, match="S2.pkl: unreadable or truncated pickle"):
        load("ppg_dalia", data_dir=ppg_root, trust_local_pickles=True, **SMALL)
