"""``rhel data list | info NAME|PATH | fetch NAME|PATH``.

Each takes ``--data-dir`` (default ``$RHEL_DATA_DIR``, else the per-user cache directory). Names match in any
case and with ``-`` or ``_``; a path to a dataset folder (``.../bonn-eeg``) is that dataset, any other path is your
own data.
"""

from __future__ import annotations

import argparse
import sys

from rhel.data.core import DataError
from rhel.data.download import resolve_data_dir, verify_folder
from rhel.data.registry import dataset_folder, dataset_info, fetch, is_present, list_datasets, load_path, resolve


def _size(info) -> str:  # noqa: ANN001
    return f"{info.num_classes} classes" if info.task == "classification" else f"{info.output_dim} outputs"


def _local(name: str, folder) -> str:  # noqa: ANN001
    """``generated``, ``no`` (missing or an empty folder), ``yes`` (present and verified) or ``CORRUPT``."""
    if folder is None:
        return "generated"
    if not is_present(folder):
        return "no"
    try:
        verify_folder(folder, what=name)
    except DataError:
        return "CORRUPT"
    return "yes"


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per dataset: name, task, length x channels, and whether it is available locally."""
    print(f"data directory: {resolve_data_dir(args.data_dir)}")
    print(f"{'name':<24} {'task':<15} {'size':<11} {'length x ch':>14}  local")
    for name in list_datasets():
        info = dataset_info(name)
        shape = f"{info.length} x {info.channels}"
        local = _local(name, dataset_folder(name, args.data_dir))
        print(f"{name:<24} {info.task:<15} {_size(info):<11} {shape:>14}  {local}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the metadata of one dataset (a name, or a path) and where it is (or would be) stored."""
    try:
        registered, folder = resolve(args.name, args.data_dir)
        if registered is None:
            ds = load_path(folder)
            print(ds.info.summary())
            print(f"splits:        {len(ds.train)} train / {len(ds.val)} validation / {len(ds.test)} test")
            return 0
    except KeyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(dataset_info(registered).summary())
    if folder is None:
        print("folder:        none (generated in-process)")
    else:
        state = {"yes": "present, verified", "no": "missing", "CORRUPT": "present but a checksum does not match"}
        print(f"folder:        {folder} ({state[_local(registered, folder)]})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download a dataset into the data directory (verified, atomic); a no-op for data present and verified."""
    try:
        folder = fetch(args.name, args.data_dir, progress=not args.quiet)
    except KeyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if folder is None:
        print(f"{args.name} is generated in-process; nothing to fetch")
    else:
        print(f"{args.name}: ready in {folder}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` with its sub-commands ``list``, ``info NAME|PATH`` and ``fetch NAME|PATH``."""
    parser = subparsers.add_parser("data", help="list, describe and download datasets")
    data_dir_help = "data directory (default: $RHEL_DATA_DIR if set, else ~/.cache/rhel)"
    parser.add_argument("--data-dir", default=None, help=data_dir_help)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    what = "a dataset name (any case, - or _) or a path to a dataset folder or your own data"
    p = sub.add_parser("list", parents=[common], help="list the datasets and whether each is present and verified")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", parents=[common], help="describe one dataset")
    p.add_argument("name", metavar="NAME|PATH", help=what)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("fetch", parents=[common], help="download one dataset (no-op when present and verified)")
    p.add_argument("name", metavar="NAME|PATH", help=what)
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: show one)")
    p.set_defaults(func=cmd_fetch)
    return parser
