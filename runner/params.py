"""Suite params: declared types, values from --param / POSTRUN_PARAM_<K> / default, and
``${ENV}`` / ``{param}`` substitution in paths and URLs (never in SQL)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError
from runner.redact import is_secret_name
from runner.spec import Spec
from runner.suite_errors import did_you_mean

ParamType = Literal["string", "int", "float", "bool", "date", "path", "list"]
ENV_PREFIX = "POSTRUN_PARAM_"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_TOKEN = re.compile(
    r"\$\{(?P<env>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\{(?P<param>[A-Za-z_][A-Za-z0-9_]*)\}"
)


class ParamSpec(Spec):
    """A value the suite takes at run time."""

    type: ParamType = "string"
    """string, int, float, bool, date (YYYY-MM-DD), path, or list (comma-separated on the CLI)."""
    required: bool = False
    """A run without a value for this param is a usage error."""
    default: Any = None
    """Value when neither --param nor POSTRUN_PARAM_<NAME> gives one."""
    description: str | None = None
    """What the param means."""
    secret: bool | None = None
    """Mask the value in every report and message; by default, a param whose name says secret
    (password, token, secret, key …) is masked."""

    def is_secret(self, name: str) -> bool:
        return self.secret if self.secret is not None else is_secret_name(name)


def resolve_params(
    specs: Mapping[str, ParamSpec],
    given: Mapping[str, str],
    *,
    suite_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Typed values for every declared param; a usage error names the first bad one."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise UsageError(_unknown_param(unknown[0], list(specs)))
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        env_key = ENV_PREFIX + name.upper()
        secret = spec.is_secret(name)
        if name in given:
            values[name] = coerce(name, spec.type, given[name], base=cwd, secret=secret)
        elif env_key in env:
            values[name] = coerce(name, spec.type, env[env_key], base=cwd, secret=secret)
        elif spec.default is not None:
            values[name] = coerce(name, spec.type, spec.default, base=suite_dir, secret=secret)
        elif spec.required:
            raise UsageError(f"param '{name}' is required: pass --param {name}=… or set {env_key}")
        else:
            values[name] = None
    return values


def coerce(name: str, kind: ParamType, value: Any, *, base: Path, secret: bool = False) -> Any:
    """``value`` as the param's type; paths become absolute against ``base``. The message for a
    bad secret value does not repeat it."""
    try:
        return _coerce(kind, value, base)
    except (TypeError, ValueError) as exc:
        article = "an" if kind == "int" else "a"
        if secret:
            raise UsageError(
                f"param '{name}' must be {article} {kind}; the value given is not one (not "
                "shown: the param is secret)"
            ) from None
        raise UsageError(f"param '{name}' must be {article} {kind}, got {value!r}: {exc}") from exc


def _coerce(kind: ParamType, value: Any, base: Path) -> Any:
    if kind == "list":
        items = value if isinstance(value, list) else [] if value == "" else str(value).split(",")
        return [item.strip() if isinstance(item, str) else item for item in items]
    if isinstance(value, list | dict):
        raise TypeError("a single value is needed")
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("not an integer")
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError("not a number")
        return float(value)
    if kind == "bool":
        return _bool(value)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if kind == "path":
        return os.path.normpath(base / Path(str(value)).expanduser())
    return str(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError("use true or false")


def placeholders(text: str) -> tuple[list[str], list[str]]:
    """The ``${ENV}`` names and ``{param}`` names used in ``text``."""
    envs = [m["env"] for m in _TOKEN.finditer(text) if m["env"]]
    params = [m["param"] for m in _TOKEN.finditer(text) if m["param"]]
    return envs, params


def placeholders_in_sql(sql: str) -> list[tuple[str, bool]]:
    """The ``{param}`` names written in SQL, each with whether it stands inside a '…' string
    (where it may be meant literally); ``{param}`` is never substituted in SQL."""
    found: list[tuple[str, bool]] = []
    quoted = [False] * len(sql)
    inside = False
    for i, char in enumerate(sql):
        if char == "'":
            inside = not inside  # '' inside a string closes and reopens it: still inside
        quoted[i] = inside
    for match in _TOKEN.finditer(sql):
        if match["param"]:
            found.append((match["param"], quoted[match.start()]))
    return found


def interpolate(
    text: str, params: Mapping[str, Any], *, env: Mapping[str, str], what: str
) -> tuple[str, list[bool]]:
    """``text`` with ``${ENV}``, ``${ENV:-default}`` and ``{param}`` replaced.

    Also returns, per character of the result, whether it came from outside the suite file
    (an environment variable or a command-line value), so a relative path can be resolved
    against the right folder.
    """
    out: list[str] = []
    outside: list[bool] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal = text[pos : match.start()]
        out.append(literal)
        outside.extend([False] * len(literal))
        value, from_outside = _token_value(match, params, env, what)
        out.append(value)
        outside.extend([from_outside] * len(value))
        pos = match.end()
    out.append(text[pos:])
    outside.extend([False] * (len(text) - pos))
    return "".join(out), outside


def _token_value(
    match: re.Match[str], params: Mapping[str, Any], env: Mapping[str, str], what: str
) -> tuple[str, bool]:
    if match["env"]:
        name = match["env"]
        if name in env:
            return env[name], True
        if match["default"] is not None:
            return match["default"], False
        raise UsageError(f"{what}: environment variable {name} is not set and has no default")
    name = match["param"]
    if params.get(name) is None:
        raise UsageError(f"{what}: param '{name}' has no value; pass --param {name}=…")
    value = params[name]
    return (",".join(map(str, value)) if isinstance(value, list) else str(value)), True


def _unknown_param(name: str, known: list[str]) -> str:
    listing = ", ".join(known) if known else "none"
    return f"unknown param '{name}'{did_you_mean(name, known)}; the suite declares: {listing}"
