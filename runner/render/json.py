"""verdict.json: the verdict model's own dump (schema_version 1)."""

from __future__ import annotations

import orjson

from runner.results import Verdict


def render_json(verdict: Verdict) -> bytes:
    return orjson.dumps(verdict.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
