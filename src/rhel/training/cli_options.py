"""Shared pieces of the ``rhel`` sub-commands' parsers: the gradient-method option and deprecated flag spellings.

Every command that takes gradient methods spells the option ``--gradient`` and its values as the one table
:data:`rhel.gradients.methods.METHOD_NAMES` does; a command that supports only some of them takes a subset with the
same spelling. Old flag spellings stay as hidden aliases that print a one-line deprecation notice.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rhel.gradients.methods import ESTIMATOR_METHODS, METHOD_NAMES

#: The RHEL rows of the one table (``rhel``, ``rhel-one-sided``, ``rhel-richardson``): what ``rhel gradcheck`` compares
#: with BPTT and what ``rhel demo`` trains against BPTT.
RHEL_METHODS: tuple[str, ...] = tuple(ESTIMATOR_METHODS.values())


class _Deprecated(argparse.Action):
    """Store like the new flag does (``store``, or ``store_true`` for ``nargs=0``) and print a one-line notice."""

    def __init__(self, option_strings, dest, *, new: str, const=None, nargs=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of the option ``new`` (same ``dest``, ``type``, ``nargs``).

    **Arguments:**

    - `parser`: the parser holding ``new``.
    - `old`: the old spelling (``"--eps-values"``).
    - `new`: the option it now is (``"--epsilon-values"``); its destination receives the value.
    - `kwargs`: ``type``, ``nargs``, ``choices`` of the old spelling (default: those of ``new``).
    """
    action = next(a for a in parser._actions if new in a.option_strings)
    options = {"type": action.type, "nargs": action.nargs, "choices": action.choices, **kwargs}
    if action.nargs == 0:  # a switch
        options = {"nargs": 0, "const": action.const}
    parser.add_argument(old, dest=action.dest, new=new, action=_Deprecated, help=argparse.SUPPRESS, **options)


def add_gradient_option(
    parser: argparse.ArgumentParser,
    names: Sequence[str] = METHOD_NAMES,
    *,
    default: Sequence[str] | str | None = None,
    several: bool = True,
    what: str = "gradient method(s) to run",
    references: Sequence[str] = (),
) -> None:
    """Add ``--gradient METHOD [METHOD ...]`` (or one ``METHOD`` when not ``several``), choices from ``names``.

    **Arguments:**

    - `parser`: the sub-command's parser.
    - `names`: the method names it accepts: :data:`rhel.gradients.methods.METHOD_NAMES` or a subset of it.
    - `default`: the default value (``None``: the config's); shown in the help text.
    - `several`: accept one or more methods.
    - `what`: the start of the help text.
    - `references`: names accepted besides gradient methods, listed first (``rhel bench``'s ``forward``: the loss
      alone, the reference its times are divided by).
    """
    unknown = [name for name in names if name not in METHOD_NAMES]
    if unknown:
        raise ValueError(f"--gradient names {unknown} are not in rhel.gradients.methods.METHOD_NAMES")
    if default is None:
        shown = "the config's"
    else:
        shown = " ".join(default) if not isinstance(default, str) else default
    parser.add_argument(
        "--gradient",
        nargs="+" if several else None,
        choices=(*references, *names),
        default=list(default) if several and default is not None else default,
        metavar="METHOD",
        help=f"{what}: {', '.join((*references, *names))} (default: {shown})",
    )
