"""Check a plain YAML mapping against a parameter dataclass: names, types, allowed values.

Kept separate from the recipe loader so stages, input, output and executor settings share one checker.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal


class ParamError(ValueError):
    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key = key


def describe_type(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe_type(a) for a in typing.get_args(annotation))
    if origin is list:
        (inner,) = typing.get_args(annotation)
        return f"list[{describe_type(inner)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _matches(value: Any, annotation) -> tuple[bool, Any]:
    """Return (ok, value converted to the annotation) — only lossless conversions (int -> float)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return value in typing.get_args(annotation), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            ok, converted = _matches(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        (inner,) = typing.get_args(annotation)
        if not isinstance(value, list):
            return False, value
        converted = []
        for item in value:
            ok, item = _matches(item, inner)
            if not ok:
                return False, value
            converted.append(item)
        return True, converted
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if annotation is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported parameter annotation {annotation!r}")


def build_params(cls: type, raw: dict | None, what: str = "parameter"):
    """Instantiate dataclass `cls` from `raw`, or raise ParamError naming the offending key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ParamError(None, f"expected a mapping of {what}s, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(names) or 'none'})"
            raise ParamError(key, f"unknown {what}{hint}")
        ok, converted = _matches(value, hints[key])
        if not ok:
            raise ParamError(key, f"expected {describe_type(hints[key])}, got {value!r}")
        values[key] = converted
    try:
        instance = cls(**values)
    except TypeError as err:  # a required field is missing
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        raise ParamError(missing[0] if missing else None, f"missing {what}: {err}") from None
    check = getattr(instance, "check", None)
    if check is not None:
        check()  # cross-field rules; raises ParamError
    return instance
