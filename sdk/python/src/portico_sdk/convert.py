"""JSON to dataclasses, for typed inputs (`Action.Inputs`) and config (`Request.config_as`).

A field `fail_on_error` reads the JSON key `failOnError` (Port's inputs are camelCase) or the
key `fail_on_error` itself. Unknown keys are ignored. A missing field without a default, or a
value of the wrong type, raises the given failure class naming the field. Field types checked:
`str`, `int`, `float` (an int is accepted), `bool`, `dict`/`dict[str, T]`, `list`/`list[T]`,
`T | None`, `Literal[...]`, nested dataclasses and `Any`/`object`; other annotations are not
checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .failures import Failure, InvalidInput


def camel(name: str) -> str:
    """`fail_on_error` -> `failOnError`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def convert(cls: type, data: Any, path: str = "inputs", error: type[Failure] = InvalidInput) -> Any:
    """Builds `cls` (a dataclass, or any type `check` knows) from parsed JSON `data`.

    `path` names the value in messages (`inputs.name: missing`); `error` is the failure raised.
    """
    return _value(cls, data, path, error)


def _dataclass(cls: type, data: Any, path: str, error: type[Failure]) -> Any:
    if not isinstance(data, dict):
        raise error(f"{path}: expected an object, got {_json_type(data)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        key = camel(field.name)
        if key in data:
            raw = data[key]
        elif field.name in data:
            key, raw = field.name, data[field.name]
        elif field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING:
            continue
        elif _optional(hints.get(field.name, Any)):
            raw = None
        else:
            raise error(f"{_join(path, key)}: missing")
        values[field.name] = _value(hints.get(field.name, Any), raw, _join(path, key), error)
    return cls(**values)


def _value(tp: Any, data: Any, path: str, error: type[Failure]) -> Any:
    if tp is Any or tp is object:
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, data, path, error)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _value(options[0], data, path, error)
        for option in options:
            try:
                return _value(option, data, path, error)
            except Failure:
                continue
        raise error(f"{path}: {_json_type(data)} is not allowed here")
    if origin is typing.Literal:
        if data in args:
            return data
        allowed = ", ".join(repr(a) for a in args)
        raise error(f"{path}: must be one of {allowed}, not {data!r}")
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise error(f"{path}: expected a boolean, got {_json_type(data)}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        raise error(f"{path}: expected an integer, got {_json_type(data)}")
    if tp is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise error(f"{path}: expected a number, got {_json_type(data)}")
    if tp is str:
        if isinstance(data, str):
            return data
        raise error(f"{path}: expected a string, got {_json_type(data)}")
    if tp is list or origin is list:
        if not isinstance(data, list):
            raise error(f"{path}: expected an array, got {_json_type(data)}")
        item = args[0] if args else Any
        return [_value(item, v, f"{path}[{i}]", error) for i, v in enumerate(data)]
    if tp is dict or origin is dict:
        if not isinstance(data, dict):
            raise error(f"{path}: expected an object, got {_json_type(data)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _value(item, v, _join(path, k), error) for k, v in data.items()}
    return data


def _optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(tp)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float)):
        return "a number"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, list):
        return "an array"
    if isinstance(data, dict):
        return "an object"
    return type(data).__name__
