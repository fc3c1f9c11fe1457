"""Command options: one frozen dataclass per command, turned into an argparse parser.

Flags have the same names as the fields (`max_classes` -> `--max-classes`); defaults live in
the dataclass; `help`, `choices` and `positional` come from field metadata. Parsing errors
become `UsageError` (one line, exit code 2) instead of argparse's usage dump.

    @dataclass(frozen=True)
    class ShardOptions:
        root: str = field(metadata={"help": "dataset folder"})
        image_size: int = 256

    opts = parse_options(ShardOptions, argv, prog="curate shard")
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from curation.errors import UsageError

T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # argparse calls this on bad argv
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def build_parser(cls: type, prog: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description or (cls.__doc__ or "").strip())
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = _unwrap_optional(hints[f.name])
        meta = dict(f.metadata)
        has_default = f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        )
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if has_default else None)
        )
        help_text = meta.get("help", "")
        if has_default and default not in (None, False):
            help_text = f"{help_text} (default: {default})".strip()
        is_list = typing.get_origin(tp) in (list, tuple)
        elem = typing.get_args(tp)[0] if is_list else tp
        kwargs: dict[str, Any] = {"help": help_text}
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if meta.get("positional"):
            kwargs.update(type=elem, nargs=("+" if is_list else None), metavar=f.name.upper())
            parser.add_argument(f.name, **kwargs)
            continue
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            kwargs.update(type=elem, default=default, required=not has_default)
            if is_list:
                kwargs["nargs"] = "+"
            kwargs["metavar"] = meta.get("metavar", f.name.upper())
        parser.add_argument(flag, dest=f.name, **kwargs)
    return parser


def parse_options(cls: type[T], argv: Sequence[str] | None, prog: str) -> T:
    """Parse `argv` into a frozen `cls`; its `__post_init__` validates (raise UsageError)."""
    ns = build_parser(cls, prog).parse_args(argv)
    values = vars(ns)
    for f in dataclasses.fields(cls):  # lists arrive as lists; tuples keep dataclasses hashable
        if isinstance(values.get(f.name), list) and "tuple" in str(f.type):
            values[f.name] = tuple(values[f.name])
    return cls(**values)
