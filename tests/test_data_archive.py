"""UCR/UEA archive layouts on generated fixtures: .ts, relational ARFF, per-dimension ARFF, UCR .tsv, and
.npz.

The UEA loader is exercised through the registry (a fake ``EigenWorms`` folder under a temporary data
directory), so the same code path as the real download is tested: merge TRAIN+TEST, drop duplicates, re-split
70/15/15.
"""

from pathlib import Path

import numpy as np
import pytest

from rhel.data import DataError, load
from rhel.data.formats import read_arff, read_problem, read_ts

CLASSES = ("a", "b", "c")


def _cases(n, channels, length, seed, ragged=False):
    rng = np.random.default_rng(seed)
    xs = []
    for i in range(n):
        L = length - (i % 3) if ragged else length
        xs.append(np.round(rng.normal(size=(L, channels)), 4))
    ys = [CLASSES[i % 3] for i in range(n)]
    return xs, ys


def write_ts(path: Path, xs, ys, equal=True):
    lines = [
        "# generated fixture",
        f"@problemName {path.stem}",
        "@timeStamps false",
        "@missing false",
        "@univariate false",
        f"@dimensions {xs[0].shape[1]}",
        f"@equalLength {'true' if equal else 'false'}",
        f"@classLabel true {' '.join(CLASSES)}",
        "@data",
    ]
    for x, y in zip(xs, ys, strict=True):
        lines.append(":".join(",".join(f"{v:g}" for v in x[:, c]) for c in range(x.shape[1])) + f":{y}")
    path.write_text("\n".join(lines) + "\n")


def write_relational_arff(path: Path, xs, ys):
    length = xs[0].shape[0]
    head = [f"@relation {path.stem}", "@attribute input relational"]
    head += [f"@attribute t{i} numeric" for i in range(length)]
    head += ["@end input", "@attribute target {" + ",".join(CLASSES) + "}", "@data"]
    rows = []
    for x, y in zip(xs, ys, strict=True):
        dims = "\\n".join(",".join(f"{v:g}" for v in x[:, c]) for c in range(x.shape[1]))
        rows.append(f"'{dims}',{y}")
    path.write_text("\n".join(head + rows) + "\n")


def write_univariate_arff(path: Path, xs, ys, channel):
    length = xs[0].shape[0]
    head = [f"@relation {path.stem}"] + [f"@attribute att{i} numeric" for i in range(length)]
    head += ["@attribute target {" + ",".join(CLASSES) + "}", "@data"]
    rows = [",".join(f"{v:g}" for v in x[:, channel]) + f",{y}" for x, y in zip(xs, ys, strict=True)]
    path.write_text("\n".join(head + rows) + "\n")


def make_uea_folder(folder: Path, layout: str, name="EigenWorms", n_train=30, n_test=20, channels=3, length=40):
    folder.mkdir(parents=True)
    data = {"TRAIN": _cases(n_train, channels, length, 0), "TEST": _cases(n_test, channels, length, 1)}
    for split, (xs, ys) in data.items():
        if layout == "ts":
            write_ts(folder / f"{name}_{split}.ts", xs, ys)
        elif layout == "arff":
            write_relational_arff(folder / f"{name}_{split}.arff", xs, ys)
        else:
            for c in range(channels):
                write_univariate_arff(folder / f"{name}Dimension{c + 1}_{split}.arff", xs, ys, c)
    return data


@pytest.mark.parametrize("layout", ["ts", "arff", "dims"])
def test_uea_layouts_read_identically(tmp_path, layout):
    data = make_uea_folder(tmp_path / "p", layout)
    name, raw = read_problem(tmp_path / "p")
    assert name == "EigenWorms"
    for split in ("TRAIN", "TEST"):
        xs, ys = data[split]
        assert len(raw[split].series) == len(xs)
        for got, want in zip(raw[split].series, xs, strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert raw[split].labels.tolist() == ys


def test_uea_registry_resplit_dedupe_and_seed(tmp_path):
    make_uea_folder(tmp_path / "EigenWorms", "dims")
    ds = load("EigenWorms", data_dir=tmp_path, seed=0)  # 50 cases merged, re-split 70/15/15
    assert (len(ds.train), len(ds.val), len(ds.test)) == (35, 7, 8)
    assert ds.train.inputs.shape[1:] == (40, 3) and ds.info.num_classes == 3 and ds.classes == CLASSES
    again = load("EigenWorms", data_dir=tmp_path, seed=0)
    np.testing.assert_array_equal(ds.test.inputs, again.test.inputs)
    other = load("EigenWorms", data_dir=tmp_path, seed=1)
    assert not np.array_equal(ds.test.inputs, other.test.inputs)
    official = load("EigenWorms", data_dir=tmp_path, seed=0, resplit=False)
    assert len(official.test) == 20 and len(official.train) + len(official.val) == 30


def test_uea_dedupe_drops_repeats(tmp_path):
    folder = tmp_path / "EigenWorms"
    folder.mkdir()
    xs, ys = _cases(20, 2, 10, 0)
    write_ts(folder / "EigenWorms_TRAIN.ts", xs, ys)
    write_ts(folder / "EigenWorms_TEST.ts", xs[:5] + _cases(5, 2, 10, 9)[0], ys[:5] + ys[:5])
    ds = load("EigenWorms", data_dir=tmp_path)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 25
    assert len(load("EigenWorms", data_dir=tmp_path, dedupe=False).train) == 21


def test_unequal_length_ts_padded_with_mask(tmp_path):
    folder = tmp_path / "Var"
    folder.mkdir()
    for split, seed in (("TRAIN", 0), ("TEST", 1)):
        xs, ys = _cases(9, 2, 12, seed, ragged=True)
        write_ts(folder / f"Var_{split}.ts", xs, ys, equal=False)
    ds = load(folder)
    lengths = np.concatenate([s.mask.sum(1) for s in (ds.train, ds.val, ds.test)])
    assert sorted(set(lengths.tolist())) == [10, 11, 12] and ds.train.inputs.shape[1] == 12
    res = load(folder, pad="resample", max_length=16)
    assert res.train.mask is None and res.train.inputs.shape[1:] == (16, 2)
    framed = load(folder, frame=5)  # 12 steps of 2 channels -> 3 frames of 10 channels, every sample kept
    assert framed.train.inputs.shape[1:] == (3, 10) and framed.info.length == 3 and framed.info.channels == 10
    x, m = ds.train.inputs, ds.train.mask
    np.testing.assert_array_equal(framed.train.inputs[:, :2].reshape(-1, 10, 2), x[:, :10])
    np.testing.assert_array_equal(framed.train.inputs[:, 2, :4].reshape(-1, 2, 2), x[:, 10:])
    np.testing.assert_array_equal(framed.train.inputs[:, 2, 4:], 0.0)
    np.testing.assert_array_equal(framed.train.mask, m[:, ::5])  # padding at the end: valid if its first step is
    with pytest.raises(ValueError, match="frame must be a positive number"):
        load(folder, frame=1.5)


def test_ucr_tsv_user_folder(tmp_path):
    folder = tmp_path / "Toy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", 40), ("TEST", 20)):
        rows = [[k % 2 + 1, *rng.normal(size=25).round(3)] for k in range(n)]
        (folder / f"Toy_{split}.tsv").write_text("\n".join("\t".join(f"{v:g}" for v in r) for r in rows) + "\n")
    ds = load(str(folder), seed=2)
    assert ds.info.name == "Toy" and ds.info.num_classes == 2 and ds.classes == ("1", "2")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (34, 6, 20)
    assert np.bincount(ds.test.targets).tolist() == [10, 10]
    assert ds.train.inputs.shape[1:] == (25, 1)
    assert load(folder, format="tsv").info.length == 25


def test_npz_user_data(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mine.npz",
        x_train=rng.normal(size=(50, 30)),
        y_train=np.arange(50) % 3,
        x_test=rng.normal(size=(10, 30)),
        y_test=np.arange(10) % 3,
    )
    ds = load(tmp_path / "mine.npz", seed=0)
    assert ds.info.task == "classification" and ds.info.num_classes == 3
    assert ds.train.inputs.shape == (42, 30, 1) and len(ds.val) == 8 and len(ds.test) == 10
    z, o = np.zeros, np.ones
    arrays = dict(x_train=z((4, 5, 2)), y_train=o(4), x_test=z((2, 5, 2)), y_test=o(2), x_val=z((2, 5, 2)), y_val=o(2))
    np.savez(tmp_path / "reg.npz", **arrays)
    reg = load(tmp_path / "reg.npz")
    assert reg.info.task == "regression" and reg.train.targets.shape == (4, 1, 1) and len(reg.val) == 2
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((4, 5)))
    with pytest.raises(DataError, match="missing array 'y_train'"):
        load(tmp_path / "bad.npz")


def test_malformed_files_name_file_and_position(tmp_path):
    p = tmp_path / "Bad_TRAIN.ts"
    p.write_text("@problemName Bad\n@classLabel true a b\n@data\n1,2,3:4,5,6:a\n1,2,x:4,5,6:b\n")
    with pytest.raises(DataError, match=r"Bad_TRAIN.ts: line 5 \(case 1\), dimension 0, value 2: cannot parse 'x'"):
        read_ts(p)
    p.write_text("@problemName Bad\n@classLabel true a b\n@data\n1,2,3:4,5:a\n")
    with pytest.raises(DataError, match=r"line 4 \(case 0\): ragged case, dimension lengths \[3, 2\]"):
        read_ts(p)
    p.write_text("@problemName Bad\n@classLabel true a b\n@data\n1,?,3:4,5,6:a\n")
    with pytest.raises(DataError, match=r"case 0, dimension 0, step 1: missing or non-finite value nan"):
        read_ts(p)
    p.write_text("@problemName Bad\n@classLabel true a b\n")
    with pytest.raises(DataError, match="no @data section"):
        read_ts(p)
    a = tmp_path / "Bad_TRAIN.arff"
    a.write_text("@relation x\n@attribute t0 numeric\n@attribute c {a,b}\n@data\n1.0,a\nzz,b\n")
    with pytest.raises(DataError, match=r"Bad_TRAIN.arff: malformed ARFF"):
        read_arff(a)
    u = tmp_path / "U"
    u.mkdir()
    (u / "U_TRAIN.tsv").write_text("1\t0.5\t0.25\n2\t0.5\n")
    (u / "U_TEST.tsv").write_text("1\t0.5\t0.25\n")
    with pytest.raises(DataError, match=r"U_TRAIN.tsv, line 2: 2 columns, previous rows have 3 \(ragged\)"):
        load(u)
    (u / "U_TRAIN.tsv").write_text("1\t0.5\tinf\n")
    with pytest.raises(DataError, match=r"U_TRAIN.tsv, line 1: case 0, dimension 0, step 1"):
        load(u)


def test_uea_fetch_end_to_end_from_local_zip(tmp_path, monkeypatch):
    """`load` of a missing UEA problem downloads the zip (here a file:// URL), unpacks it and loads it."""
    import zipfile

    from rhel.data import archive

    src = tmp_path / "src"
    make_uea_folder(src / "SelfRegulationSCP1", "arff", name="SelfRegulationSCP1")
    zpath = tmp_path / "SelfRegulationSCP1.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in (src / "SelfRegulationSCP1").iterdir():
            zf.write(p, f"SelfRegulationSCP1/{p.name}")
    monkeypatch.setattr(archive, "archive_urls", lambda name: (zpath.as_uri(),))
    data_dir = tmp_path / "data"
    ds = load("SelfRegulationSCP1", data_dir=data_dir, seed=0)
    assert ds.train.inputs.shape == (35, 40, 3) and len(ds.val) + len(ds.test) == 15
    folder = data_dir / "SelfRegulationSCP1"
    assert (folder / "SelfRegulationSCP1_TRAIN.arff").is_file()
    assert (folder / "SelfRegulationSCP1.zip.sha256").is_file()  # no published checksum: recorded
    assert not list(folder.glob("*.part")) and not list(folder.glob(".extract-*"))
