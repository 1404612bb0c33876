"""Bad input to the data layer is refused at load time, with a short message naming the file, label or option.

One test per kind of bad input (issue 11), on small synthetic fixtures in the real file layouts; real files are
only ever copied into ``tmp_path`` before they are corrupted. Plus the workflow items of issue 12: name spellings,
paths, presence and an offline ``fetch``.
"""

import argparse
import hashlib
import shutil
import urllib.error
import zipfile

import numpy as np
import pytest

from rhel.data import DataError, DownloadError, dataset_info, fetch, load
from rhel.data import download as dl
from rhel.data.cli import register
from rhel.data.download import VERIFIED_CACHE, extract_zip
from rhel.data.eeg import _read_member
from rhel.data.fsdd import read_wav
from rhel.data.registry import is_present


def _npz(path, y_train, y_test, **extra):
    rng = np.random.default_rng(0)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    x = {"x_train": rng.normal(size=(len(y_train), 8)), "x_test": rng.normal(size=(len(y_test), 8))}
    np.savez(path, y_train=y_train, y_test=y_test, **x, **extra)
    return path


def _tsv(folder, labels_train, labels_test, name="Toy"):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for split, labels in (("TRAIN", labels_train), ("TEST", labels_test)):
        rows = ["\t".join([str(lab), *(f"{v:.3f}" for v in rng.normal(size=6))]) for lab in labels]
        (folder / f"{name}_{split}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def _offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


# --- labels ---


def test_label_out_of_range(tmp_path):
    path = _npz(tmp_path / "r.npz", [0, 1, 2, 3] * 5 + [7], [0, 1, 2, 3])
    with pytest.raises(DataError, match=r"r\.npz \(y_train\): label 7 at index 20 is out of range for 4 classes"):
        load(path, num_classes=4)
    with pytest.raises(DataError, match=r"r\.npz: label 7 implies 8 classes, but classes \[4, 5, 6\] have no example"):
        load(path)


def test_label_negative(tmp_path):
    path = _npz(tmp_path / "neg.npz", [0, 1, -1, 1] * 5, [0, 1])
    with pytest.raises(DataError, match=r"neg\.npz \(y_train\): label -1 at index 2 is negative"):
        load(path)


def test_label_not_an_integer(tmp_path):
    path = _npz(tmp_path / "half.npz", [0.0, 1.0, 1.5, 1.0] * 5, [0.0, 1.0])
    with pytest.raises(DataError, match=r"half\.npz \(y_train\): label 1\.5 at index 2 is not an integer"):
        load(path, task="classification")
    folder = _tsv(tmp_path / "Toy", [1, 2, 1.5, 2] * 5, [1, 2])
    with pytest.raises(DataError, match=r"Toy_TRAIN\.tsv: class label '1\.5' of case 2 is not an integer"):
        load(folder)


def test_float_labels_without_a_task_are_never_regressed_silently(tmp_path):
    path = _npz(tmp_path / "floats.npz", [0.0, 1.0, 1.5, 1.0] * 5, [0.0, 1.0])
    with pytest.warns(UserWarning, match=r"floats\.npz \(y_train\): float targets that look like class labels.*task="):
        assert load(path).info.task == "regression"  # the documented rule, announced
    with pytest.raises(DataError, match=r"label 1\.5 at index 2 is not an integer"):
        load(path, task="classification")


def test_class_only_in_test_split(tmp_path):
    path = _npz(tmp_path / "t.npz", [0, 1, 2] * 6, [0, 1, 2, 3])
    with pytest.raises(DataError, match=r"t\.npz: class\(es\) 3 occur only in the test split"):
        load(path)
    folder = _tsv(tmp_path / "Toy", ["a", "b"] * 10, ["a", "b", "c"])
    with pytest.raises(DataError, match=r"Toy: class\(es\) 'c' occur only in the test split"):
        load(folder)


def test_single_class_is_refused(tmp_path):
    folder = _tsv(tmp_path / "One", [1] * 20, [1] * 5, name="One")
    with pytest.raises(DataError, match=r"One: every example has the same class \('1'\).*100 %"):
        load(folder)


def _archive(folder, ext, lines):
    """Both splits of problem ``folder.name`` as ``<Name>_TRAIN.<ext>`` / ``_TEST.<ext>`` holding ``lines``."""
    folder.mkdir()
    for split in ("TRAIN", "TEST"):
        (folder / f"{folder.name}_{split}.{ext}").write_text("\n".join(lines) + "\n")
    return folder


def test_arff_without_class_attribute(tmp_path):
    lines = ["@relation NoLab", "@attribute t0 numeric", "@attribute t1 numeric", "@data", "1,2", "3,4"]
    with pytest.raises(DataError, match=r"NoLab_TRAIN\.arff: no class attribute"):
        load(_archive(tmp_path / "NoLab", "arff", lines))


def test_ts_label_outside_declared_classes(tmp_path):
    lines = ["@problemName Decl", "@univariate true", "@classLabel true 0 1 2 3", "@data", "1,2,3:0", "1,2,4:7"]
    with pytest.raises(DataError, match=r"Decl_TRAIN\.ts, line 6: class label '7' is not one of the declared"):
        load(_archive(tmp_path / "Decl", "ts", lines))


def test_regression_targets_that_would_broadcast(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "reg.npz"
    np.savez(path, x_train=rng.normal(size=(6, 8)), y_train=rng.normal(size=(6, 1)),
             x_test=rng.normal(size=(3, 8)), y_test=rng.normal(size=(3, 3)))  # fmt: skip
    with pytest.raises(DataError, match=r"reg\.npz \(y_test\): regression targets of shape \(N, 1, 3\) do not match"):
        load(path)


# --- data integrity ---


def test_checksum_mismatch_is_refused_and_names_the_file(tmp_path, shared_data):
    """Fault injection: one byte appended to a copy of the Bonn zip; the published sha256 no longer matches."""
    folder = tmp_path / "bonn-eeg"
    folder.mkdir()
    zip_path = folder / "Bonn EEG dataset.zip"
    shutil.copy(shared_data / "bonn-eeg" / "Bonn EEG dataset.zip", zip_path)
    with open(zip_path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match=r"Bonn EEG dataset\.zip: checksum mismatch .*rhel data fetch bonn_eeg"):
        load("bonn_eeg", data_dir=tmp_path)


def test_truncated_file_fails_its_manifest_and_the_verified_digest_is_cached(tmp_path, shared_data):
    """A WAV truncated to half fails the dataset's SHA256SUMS; good files are verified once, then cached."""
    rec = tmp_path / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    names = ["0_george_0.wav", "1_george_0.wav"]
    sums = (shared_data / "fsdd" / "SHA256SUMS").read_text().splitlines()
    (tmp_path / "fsdd" / "SHA256SUMS").write_text("\n".join(line for line in sums if line.split()[-1] in names))
    for n in names:
        shutil.copy(shared_data / "fsdd" / "recordings" / n, rec / n)
    assert dl.verify_folder(tmp_path / "fsdd") == 2
    cache = (tmp_path / "fsdd" / VERIFIED_CACHE).read_text()
    assert "recordings/0_george_0.wav" in cache and "mtime_ns" in cache
    data = (rec / names[1]).read_bytes()
    (rec / names[1]).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"1_george_0\.wav: checksum mismatch .* from .*SHA256SUMS"):
        dl.verify_folder(tmp_path / "fsdd")
    with pytest.raises(DataError, match=r"1_george_0\.wav: unreadable or truncated WAV"):
        read_wav(rec / names[1])  # without a manifest the reader itself names the file


def test_corrupt_npz(tmp_path):
    path = _npz(tmp_path / "c.npz", [0, 1] * 5, [0, 1])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"c\.npz: corrupt or truncated \.npz"):
        load(path)


def test_corrupt_zip_member(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("A_Z/Z001.txt", "\n".join(str(i % 97) for i in range(4000)))
    raw = bytearray(archive.read_bytes())
    for i in range(60, 120):  # inside the deflate stream of the one member
        raw[i] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with zipfile.ZipFile(archive) as zf, pytest.raises(DataError, match=r"a\.zip: member 'A_Z/Z001\.txt' is corrupt"):
        _read_member(zf, "A_Z/Z001.txt", archive)
    with pytest.raises(DataError, match=r"a\.zip: truncated or corrupt zip"):
        extract_zip(archive, tmp_path / "out")


def test_unknown_option(tmp_path):
    with pytest.raises(DataError, match=r"unknown option\(s\) \['lenght'\] for dataset long_range_pattern.*length"):
        load("long_range_pattern", lenght=64)
    folder = _tsv(tmp_path / "Toy", ["a", "b"] * 10, ["a", "b"])
    with pytest.raises(DataError, match=r"unknown option\(s\) \['padding'\] for the archive folder .*Toy"):
        load(folder, padding="end")
    with pytest.raises(DataError, match=r"unknown option\(s\) \['max_length'\] for the \.npz file .*x\.npz"):
        load(_npz(tmp_path / "x.npz", [0, 1] * 5, [0, 1]), max_length=4)


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=r"nowhere/mine\.npz: no such file or folder"):
        load(tmp_path / "nowhere" / "mine.npz")
    with pytest.raises(KeyError, match="unknown dataset 'no_such_dataset'"):
        load("no_such_dataset")


def test_empty_folder_is_not_present(tmp_path, monkeypatch):
    """An empty folder left by a failed fetch does not count: load tries the download (offline: says so)."""
    monkeypatch.setattr(dl, "_urlopen", _offline)
    (tmp_path / "delhi-eeg").mkdir()
    assert not is_present(tmp_path / "delhi-eeg")
    with pytest.raises(DownloadError, match=r"could not download Delhi dataset\.zip"):
        load("delhi_eeg", data_dir=tmp_path)


# --- names, paths, fetch, help (issue 12) ---


def test_names_accept_dash_underscore_and_case(shared_data):
    assert dataset_info("bonn-eeg").name == dataset_info("BONN_EEG").name == "bonn_eeg"
    assert dataset_info("long-range-pattern").name == "long_range_pattern"
    by_name = load("bonn_eeg", data_dir=shared_data, seed=3)
    for alias in ("bonn-eeg", "Bonn-EEG", str(shared_data / "bonn-eeg")):
        other = load(alias, data_dir=shared_data, seed=3)
        np.testing.assert_array_equal(other.test.inputs, by_name.test.inputs)
        np.testing.assert_array_equal(other.train.targets, by_name.train.targets)


def test_fetch_is_a_no_op_offline_for_present_verified_data(shared_data, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", _offline)
    assert fetch("HandMovementDirection", shared_data, progress=False) == shared_data / "HandMovementDirection"
    assert fetch(shared_data / "bonn-eeg", progress=False) == shared_data / "bonn-eeg"
    assert fetch("bonn-eeg", shared_data, progress=False) == shared_data / "bonn-eeg"


def test_cli_info_and_fetch_accept_paths_and_document_defaults(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setattr(dl, "_urlopen", _offline)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    path = _npz(tmp_path / "mine.npz", [0, 1, 2] * 10, [0, 1, 2])
    args = parser.parse_args(["data", "info", str(path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert (
        "name:          mine" in out and "3 classes" in out and "splits:        26 train / 4 validation / 3 test" in out
    )
    args = parser.parse_args(["data", "fetch", str(shared_data / "bonn-eeg"), "--quiet"])
    assert args.func(args) == 0
    assert "ready in" in capsys.readouterr().out
    args = parser.parse_args(["data", "info", "delhi-eeg", "--data-dir", str(shared_data)])
    assert args.func(args) == 0 and "(present, verified)" in capsys.readouterr().out
    args = parser.parse_args(["data", "info", str(tmp_path / "missing")])
    assert args.func(args) == 1 and "missing: no such file or folder" in capsys.readouterr().err
    for action in ("list", "info", "fetch"):
        with pytest.raises(SystemExit):
            parser.parse_args(["data", action, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--data-dir DATA_DIR data directory (default: $RHEL_DATA_DIR" in text
    assert "(default: show one)" in text and "NAME|PATH a dataset name" in text


def test_good_data_digest_unchanged(shared_data):
    """Good data loads to the same arrays as before these checks (digests recorded with the previous loader)."""
    ds = load("delhi_eeg", data_dir=shared_data, seed=0)
    h = hashlib.sha256()
    for s in (ds.train, ds.val, ds.test):
        h.update(s.inputs.tobytes())
        h.update(s.targets.tobytes())
    assert h.hexdigest() == DELHI_DIGEST


DELHI_DIGEST = "c5664704735eb76582a7c3fa035baab2d3f08bacb1c786bc62c82425b0a9b731"
