"""Check keyword parameters against a factory's signature before anything runs."""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing
from pathlib import Path, PurePath
from typing import Any, Callable, Literal, Union

from dd_plugins.errors import ParameterError


def accepted_parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Keyword parameters a factory accepts (positional-only and ``*args`` excluded)."""
    signature = inspect.signature(factory)
    return {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def closest(name: str, choices: list[str]) -> str | None:
    """The most similar known name, for 'did you mean' hints."""
    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_parameters(factory: Callable[..., Any], params: dict[str, Any], where: str) -> None:
    """Raise ParameterError if ``params`` name an unknown or miss a required parameter."""
    signature = inspect.signature(factory)
    takes_var_kwargs = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    accepted = accepted_parameters(factory)
    if not takes_var_kwargs:
        for key in params:
            if key not in accepted:
                hint = closest(key, list(accepted))
                did_you_mean = f" Did you mean '{hint}'?" if hint else ""
                raise ParameterError(
                    f"{where}: unknown parameter '{key}'.{did_you_mean} "
                    f"Accepted parameters: {', '.join(sorted(accepted)) or '(none)'}."
                )
    missing = [
        name
        for name, p in accepted.items()
        if p.default is p.empty and name not in params
    ]
    if missing:
        raise ParameterError(f"{where}: missing required parameter(s): {', '.join(missing)}.")


def parameter_types(factory: Callable[..., Any]) -> dict[str, Any]:
    """Resolved type hints of a factory's parameters; a hint that cannot be resolved is left out."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # a forward reference the factory's module cannot resolve: check nothing
        return {}
    hints.pop("return", None)
    return hints


def describe_type(annotation: Any) -> str:
    """A short human name for a type hint (``float``, ``int or None``, ``one of 'a', 'b'``)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def coerce_value(value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` where TOML cannot say it directly, or raise ValueError.

    TOML has no tuples, paths or None, and writes ``1`` for a float 1.0: an int is accepted (and
    converted) for ``float``, a list for ``tuple``, a string for ``Path``. Types this cannot check
    (arbitrary classes with no TOML form) are accepted as they are.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ValueError
    if origin in (Union, types.UnionType):
        for member in args:
            try:
                return coerce_value(value, member)
            except ValueError:
                continue
        raise ValueError
    if annotation is type(None):
        if value is None:
            return value
        raise ValueError
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if annotation is Path or (inspect.isclass(annotation) and issubclass(annotation, PurePath)):
        if isinstance(value, (str, PurePath)):
            return Path(value)
        raise ValueError
    container = origin or annotation
    if container in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ValueError
        if container is tuple and len(args) == len(value) and Ellipsis not in args:
            return tuple(coerce_value(v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        items = [coerce_value(v, item) for v in value]
        return tuple(items) if container is tuple else items
    if container in (dict, collections.abc.Mapping):
        if isinstance(value, dict):
            return value
        raise ValueError
    return value


def check_parameter_types(factory: Callable[..., Any], params: dict[str, Any], where: str) -> dict[str, Any]:
    """``params`` converted to the factory's type hints; ParameterError names the first key that does not fit.

    ``where`` prefixes the message, e.g. ``method`` gives ``method.ipc: expected int, got str ('ten')``.
    """
    hints = parameter_types(factory)
    out = {}
    for key, value in params.items():
        if key not in hints:
            out[key] = value
            continue
        try:
            out[key] = coerce_value(value, hints[key])
        except ValueError:
            raise ParameterError(
                f"{where}.{key}: expected {describe_type(hints[key])}, got "
                f"{type(value).__name__} ({value!r})"
            ) from None
    return out
