"""Check keyword parameters against a factory's signature before anything runs."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

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
