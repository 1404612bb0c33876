"""``rhel data list | info NAME | fetch NAME``.

Each takes ``--data-dir`` (default ``$RHEL_DATA_DIR``, else the per-user cache directory).
"""

from __future__ import annotations

import argparse
import sys

from rhel.data.core import DataError
from rhel.data.download import resolve_data_dir
from rhel.data.registry import dataset_folder, dataset_info, fetch, list_datasets


def _size(info) -> str:  # noqa: ANN001
    return f"{info.num_classes} classes" if info.task == "classification" else f"{info.output_dim} outputs"


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per dataset: name, task, length x channels, and whether it is available locally."""
    print(f"data directory: {resolve_data_dir(args.data_dir)}")
    print(f"{'name':<24} {'task':<15} {'size':<11} {'length x ch':>14}  local")
    for name in list_datasets():
        info = dataset_info(name)
        folder = dataset_folder(name, args.data_dir)
        local = "generated" if folder is None else ("yes" if folder.exists() else "no")
        shape = f"{info.length} x {info.channels}"
        print(f"{name:<24} {info.task:<15} {_size(info):<11} {shape:>14}  {local}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the metadata of one dataset and where it is (or would be) stored."""
    try:
        info = dataset_info(args.name)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    print(info.summary())
    folder = dataset_folder(info.name, args.data_dir)
    if folder is None:
        print("folder:        none (generated in-process)")
    else:
        print(f"folder:        {folder} ({'present' if folder.exists() else 'missing'})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download a dataset into the data directory (verified, atomic); prints where it is."""
    try:
        folder = fetch(args.name, args.data_dir, progress=not args.quiet)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
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
    """Add ``data`` with its sub-commands ``list``, ``info NAME`` and ``fetch NAME``."""
    parser = subparsers.add_parser("data", help="list, describe and download datasets")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $RHEL_DATA_DIR or ~/.cache/rhel)")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory (as above)")
    p = sub.add_parser("list", parents=[common], help="list the datasets")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", parents=[common], help="describe one dataset")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("fetch", parents=[common], help="download one dataset")
    p.add_argument("name")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch)
    return parser
