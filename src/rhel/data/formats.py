"""Readers for the time-series archive formats, without heavyweight dependencies.

* ``.ts`` (sktime / UEA): a small parser written here (``@`` header, then one case per line, dimensions
  separated by ``:``, values by ``,``, the class label last; ``?`` is a missing value).
* ``.arff``: :func:`scipy.io.arff.loadarff`, which handles both the univariate layout (one numeric attribute
  per step) and the UEA multivariate layout (one relational attribute whose rows are the dimensions). The
  archive's per-dimension layout (``<Name>Dimension<d>_TRAIN.arff``) is stacked on the channel axis.
* UCR text (``.tsv`` of the 2018 archive, or the older comma/space separated ``.txt``): label first, one
  series per row; ``NaN`` pads the variable-length problems.
* ``.npz``: arrays ``x_train, y_train, x_test, y_test`` (optionally ``x_val, y_val``, ``mask_*``).

Every reader returns a list of ``(L_i, C)`` float arrays (one per case) and an array of label strings.
Trailing missing values (NaN in every channel) are the archives' padding of variable-length series and are
stripped; any other missing or non-finite value is an error naming the file, the case and the position.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import arff

from rhel.data.core import DataError

__all__ = ["RawSplit", "read_ts", "read_arff", "read_ucr_text", "find_problem", "read_problem", "SPLITS"]

SPLITS = ("TRAIN", "TEST")
_DIM_RE = re.compile(r"^(?P<name>.+?)Dimension(?P<dim>\d+)_(?P<split>TRAIN|TEST)\.arff$", re.IGNORECASE)


@dataclass
class RawSplit:
    """Series of one archive split: ``series[i]`` is ``(L_i, C)`` float64, ``labels[i]`` a label string."""

    series: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.series) != len(self.labels):
            raise DataError(f"{len(self.series)} series but {len(self.labels)} labels")


def _label_text(value: object) -> str:
    """Canonical label string: bytes decoded, numeric labels written as integers when they are integral."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip().strip("'\"")
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if f.is_integer() else text


def _clean_case(x: np.ndarray, source: str, case: int) -> np.ndarray:
    """Strip trailing all-NaN steps (variable-length padding); reject any other non-finite value."""
    valid_rows = np.flatnonzero(~np.isnan(x).all(axis=1))
    end = int(valid_rows[-1]) + 1 if valid_rows.size else 0
    if end == 0:
        raise DataError(f"{source}: case {case} has no values")
    x = x[:end]
    bad = ~np.isfinite(x)
    if bad.any():
        step, channel = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{source}: case {case}, dimension {channel}, step {step}: missing or non-finite value "
            f"{x[step, channel]} ({int(bad.sum())} in this case)"
        )
    return x


def _to_float(tokens: Sequence[str], source: str, where: str) -> np.ndarray:
    """Parse value tokens (``?`` and ``NaN`` are missing values); errors name the file, case and value
    index."""
    try:
        return np.asarray(tokens, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(tokens), dtype=np.float64)
    for j, t in enumerate(tokens):
        t = t.strip()
        if t == "?":
            out[j] = np.nan
            continue
        try:
            out[j] = float(t)
        except ValueError:
            raise DataError(f"{source}: {where}, value {j}: cannot parse {t!r}") from None
    return out


def read_ts(path: Path) -> RawSplit:
    """Parse a ``.ts`` file (equal or unequal length, with class labels; timestamps are not supported)."""
    source = str(path)
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    n_dims: int | None = None
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise DataError(f"{source}: not a text file ({e})") from None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{source}, line {lineno}: expected an @ header line before @data, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if header.get("timestamps", "false").lower() == "true":
                    raise DataError(f"{source}: time-stamped .ts files are not supported")
                if "dimensions" in header:
                    n_dims = int(header["dimensions"])
            else:
                header[key] = value.strip()
            continue
        declared = header.get("classlabel", "false").split()
        if declared[0].lower() != "true":
            raise DataError(f"{source}: no class labels (@classLabel is not true); rhel needs one label per case")
        fields = line.split(":")
        labels.append(_label_text(fields[-1]))
        fields = fields[:-1]
        if len(declared) > 1 and labels[-1] not in {_label_text(c) for c in declared[1:]}:
            raise DataError(
                f"{source}, line {lineno}: class label {labels[-1]!r} is not one of the declared {declared[1:]}"
            )
        where = f"line {lineno} (case {len(series)})"
        if n_dims is not None and len(fields) != n_dims:
            raise DataError(f"{source}, {where}: {len(fields)} dimensions, header says {n_dims}")
        dims = [_to_float(f.split(","), source, f"{where}, dimension {d}") for d, f in enumerate(fields)]
        lengths = {d.size for d in dims}
        if len(lengths) != 1:
            raise DataError(f"{source}, {where}: ragged case, dimension lengths {[d.size for d in dims]}")
        series.append(_clean_case(np.stack(dims, axis=1), f"{source}, {where}", len(series)))
    if not in_data:
        raise DataError(f"{source}: no @data section (truncated or not a .ts file)")
    if not series:
        raise DataError(f"{source}: no cases after @data")
    return RawSplit(series, np.asarray(labels))


def read_arff(path: Path) -> RawSplit:
    """Parse a univariate or relational (multivariate) ARFF file with :func:`scipy.io.arff.loadarff`."""
    source = str(path)
    try:
        data, meta = arff.loadarff(io.StringIO(path.read_text(encoding="utf-8", errors="replace")))
    except (ValueError, TypeError, IndexError, arff.ParseArffError, NotImplementedError) as e:
        raise DataError(f"{source}: malformed ARFF ({e})") from None
    names, types = meta.names(), meta.types()
    label_cols = [n for n, t in zip(names, types, strict=True) if t in ("nominal", "string")]
    if not label_cols:
        raise DataError(f"{source}: no class attribute (a nominal or string @attribute); rhel needs one label per case")
    labels = np.asarray([_label_text(v) for v in data[label_cols[-1]]])
    rel = [n for n, t in zip(names, types, strict=True) if t == "relational"]
    series: list[np.ndarray] = []
    if rel:
        for i, row in enumerate(data[rel[0]]):
            x = np.stack([np.asarray(row[f], dtype=np.float64) for f in row.dtype.names], axis=1)  # (C, L)
            series.append(_clean_case(x.T, source, i))
    else:
        numeric = [n for n, t in zip(names, types, strict=True) if t == "numeric"]
        if not numeric:
            raise DataError(f"{source}: no numeric or relational attributes")
        values = np.stack([np.asarray(data[n], dtype=np.float64) for n in numeric], axis=1)  # (N, L)
        series = [_clean_case(values[i][:, None], source, i) for i in range(values.shape[0])]
    if not series:
        raise DataError(f"{source}: no cases in @data")
    return RawSplit(series, labels)


def read_ucr_text(path: Path) -> RawSplit:
    """Parse a UCR text file: one series per row, label first (tab, comma or whitespace separated)."""
    source = str(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    width: int | None = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            tokens = line.split("\t") if "\t" in line else line.split(",") if "," in line else line.split()
            if width is None:
                width = len(tokens)
            elif len(tokens) != width:
                raise DataError(f"{source}, line {lineno}: {len(tokens)} columns, previous rows have {width} (ragged)")
            labels.append(_label_text(tokens[0]))
            values = _to_float(tokens[1:], source, f"line {lineno}")
            series.append(_clean_case(values[:, None], f"{source}, line {lineno}", len(series)))
    if not series:
        raise DataError(f"{source}: empty file")
    return RawSplit(series, np.asarray(labels))


def _per_dimension_files(folder: Path, name: str, split: str) -> list[Path]:
    found: dict[int, Path] = {}
    for p in folder.iterdir():
        m = _DIM_RE.match(p.name)
        if m and m["name"] == name and m["split"].upper() == split:
            found[int(m["dim"])] = p
    if found and sorted(found) != list(range(1, len(found) + 1)):
        raise DataError(f"{folder}: per-dimension files of {name} {split} are not numbered 1..D: {sorted(found)}")
    return [found[d] for d in sorted(found)]


def find_problem(folder: Path, name: str | None = None) -> tuple[str, str]:
    """Detect the problem name and format of an archive folder: ``(name, fmt)``.

    ``fmt`` is one of ``"ts"``, ``"arff"``, ``"arff-dims"`` (per dimension), ``"tsv"``, ``"txt"``; the first
    present in that order wins.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    if name is None:
        names = set()
        for p in folder.iterdir():
            m = _DIM_RE.match(p.name)
            if m:
                names.add(m["name"])
            elif re.search(r"_(TRAIN|TEST)\.(ts|arff|tsv|txt)$", p.name, re.IGNORECASE):
                names.add(re.sub(r"_(TRAIN|TEST)\.(ts|arff|tsv|txt)$", "", p.name, flags=re.IGNORECASE))
        if len(names) != 1:
            raise DataError(
                f"{folder}: expected the files of one problem (<Name>_TRAIN/_TEST .ts/.arff/.tsv/.txt or "
                f"<Name>Dimension<d>_TRAIN.arff), found {sorted(names) or 'none'}"
            )
        (name,) = names
    for fmt in ("ts", "arff", "arff-dims", "tsv", "txt"):
        if fmt == "arff-dims":
            if _per_dimension_files(folder, name, "TRAIN"):
                return name, fmt
        elif (folder / f"{name}_TRAIN.{fmt}").is_file():
            return name, fmt
    raise DataError(f"{folder}: no {name}_TRAIN file (.ts, .arff, Dimension<d> .arff, .tsv or .txt)")


def read_problem(folder: Path, name: str | None = None, fmt: str | None = None) -> tuple[str, dict[str, RawSplit]]:
    """Read both splits (``TRAIN``, ``TEST``) of an archive problem folder; returns ``(name, {split:
    RawSplit})``."""
    detected, auto_fmt = find_problem(folder, name)
    fmt = fmt or auto_fmt
    out: dict[str, RawSplit] = {}
    for split in SPLITS:
        if fmt == "arff-dims":
            files = _per_dimension_files(folder, detected, split)
            if not files:
                raise DataError(f"{folder}: no {detected}Dimension<d>_{split}.arff files")
            parts = [read_arff(p) for p in files]
            for p, part in zip(files[1:], parts[1:], strict=True):
                if len(part.series) != len(parts[0].series):
                    raise DataError(f"{p}: {len(part.series)} cases, {files[0].name} has {len(parts[0].series)}")
                if not np.array_equal(part.labels, parts[0].labels):
                    i = int(np.flatnonzero(part.labels != parts[0].labels)[0])
                    raise DataError(f"{p}: label of case {i} differs from {files[0].name}")
            series = []
            for i in range(len(parts[0].series)):
                cols = [part.series[i] for part in parts]
                lengths = [c.shape[0] for c in cols]
                if len(set(lengths)) != 1:
                    raise DataError(f"{folder}: case {i} of {split} has dimension lengths {lengths} (ragged)")
                series.append(np.concatenate(cols, axis=1))
            out[split] = RawSplit(series, parts[0].labels)
        else:
            path = folder / f"{detected}_{split}.{fmt}"
            if not path.is_file():
                raise DataError(f"{path}: missing")
            reader = {"ts": read_ts, "arff": read_arff, "tsv": read_ucr_text, "txt": read_ucr_text}.get(fmt)
            if reader is None:
                raise ValueError(f"unknown archive format {fmt!r}")
            out[split] = reader(path)
        _check_numeric_labels(out[split].labels, path if fmt != "arff-dims" else files[0])
    return detected, out


def _check_numeric_labels(labels: np.ndarray, path: Path) -> None:
    """Archive labels are class names (UCR uses ``-1``/``1``), but numeric names must be integers: ``1.5`` is a
    corrupt label, not a class."""
    for i, label in enumerate(labels.tolist()):
        try:
            value = float(label)
        except ValueError:
            continue
        if not value.is_integer():
            raise DataError(f"{path}: class label {label!r} of case {i} is not an integer; fix the label column")
