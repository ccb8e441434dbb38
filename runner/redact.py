"""What is secret and how it is hidden: URL userinfo, secret query values, secret-named params.

Every byte postrun writes or prints goes through here (SPEC §6). Two rules:

- **A URL is masked by position.** Everything between ``scheme://`` and the ``@`` that ends
  the userinfo becomes ``***``, whatever it holds, and so do the values of query keys that name
  a secret (``password``, ``token``, ``api_key`` …). A URL whose userinfo cannot be told apart
  from the rest (``@`` more than once) shows only its scheme; such a URL is refused when a
  suite loads (``url_problem``), so no driver ever reads it.
- **Free text is masked by value.** A driver's message may echo a password or a token; those
  exact values are replaced where they stand as a whole token (``postgres`` as a password does
  not turn ``postgresql://`` into ``***ql://``). Values shorter than ``MIN_SECRET_LENGTH``
  are masked in URLs only: replacing every ``pw`` in a report would ruin it and hide nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from runner.values import CUTS

MASK = "***"
MIN_SECRET_LENGTH = 4
_SECRET_WORDS = ("password", "passwd", "pwd", "token", "secret", "key", "credential", "signature")
_SIGNED_HEADER = re.compile(r"\b(Credential|Signature|SignedHeaders)=[^,&\s'\"]+")
"""An AWS Signature V4 ``Authorization`` header's parts, as a driver's message may echo them."""
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):(?P<slashes>//)?")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")


def is_secret_name(name: str) -> bool:
    """Whether a param or URL query key names a secret (sslpassword, access_token, api-key …)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be shown or used safely, or None: an unencoded '@' in its user or
    password makes the userinfo ambiguous (the driver would read part of it as the host)."""
    match = _SCHEME.match(url)
    if match is None or not match["slashes"]:
        return None
    if url.count("@", match.end()) > 1:
        return (
            "holds '@' more than once: percent-encode '@' in the user, password and query "
            "values as %40"
        )
    return None


def mask_url(url: str) -> str:
    """``url`` with its whole userinfo and every secret query value replaced by ***; only the
    scheme when the userinfo is ambiguous or the text is not a URL."""
    match = _SCHEME.match(url)
    if match is None:
        return "(not a URL)"
    if url_problem(url) is not None:
        return f"{match['scheme']}://…"
    prefix, rest = url[: match.end()], url[match.end() :]
    if match["slashes"] and "@" in rest:
        rest = MASK + rest[rest.index("@") :]
    base, question, query = rest.partition("?")
    if question:
        query = "&".join(_mask_pair(pair) for pair in query.split("&"))
    # Spark Connect: sc://host:15002/;token=…;use_ssl=true (parameters after ';' in the path)
    base = ";".join(
        [part if i == 0 else _mask_pair(part) for i, part in enumerate(base.split(";"))]
    )
    return prefix + base + question + query


def url_secrets(url: str) -> list[str]:
    """The values in ``url`` that must never be printed: its userinfo and password (as written
    and decoded) and the values of secret query keys."""
    found: list[str] = []
    match = _SCHEME.match(url)
    if match is not None and match["slashes"]:
        rest = url[match.end() :]
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            found += [userinfo, userinfo.partition(":")[2]]
            # the driver's reading of an ambiguous URL ends the userinfo at the first '@'
            found.append(userinfo.partition("@")[0].partition(":")[2])
        base, _, query = rest.partition("?")
        pairs = [*(query.split("&") if query else ()), *base.split(";")[1:]]  # sc://h/;token=…
        for pair in pairs:
            key, _, value = pair.partition("=")
            if is_secret_name(unquote_plus(key)):
                found.append(value)
    decoded = [unquote(s) for s in found] + [unquote_plus(s) for s in found]
    encoded = [quote(s, safe="") for s in found] + [quote_plus(s) for s in found]
    return [s for s in dict.fromkeys([*found, *decoded, *encoded]) if s]


class Redactor:
    """Hides secrets in free text: URLs by position (``mask_url``), then each secret value of
    at least ``MIN_SECRET_LENGTH`` characters where it stands as a whole token."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.values = values
        self._pattern = re.compile("|".join(_token(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if "://" in text:
            text = _URL_IN_TEXT.sub(lambda m: _mask_url_in_text(m[0]), text)
        if "=" in text:
            text = _SIGNED_HEADER.sub(lambda m: f"{m[1]}={MASK}", text)
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
            if "[truncated: " in text or "\n[…]\n" in text:
                text = self._mask_cuts(text)
        return text

    def _mask_cuts(self, text: str) -> str:
        """Where a text was cut (``runner.values.CUTS``) the part of a secret left on either
        side of the cut is masked too, down to ``_SECRET_PART`` characters."""
        parts = re.split(f"({CUTS})", text)
        for i in range(1, len(parts), 2):
            parts[i - 1] = _mask_end(parts[i - 1], self.values)
            if parts[i].startswith("\n"):  # a clip keeps the end too: a secret may resume there
                parts[i + 1] = _mask_start(parts[i + 1], self.values)
        return "".join(parts)


_SECRET_PART = 3
"""Characters of a secret at a cut that are masked: fewer could be anything."""


def _mask_end(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        for size in range(len(secret) - 1, _SECRET_PART - 1, -1):
            if text.endswith(secret[:size]):
                return text[:-size] + MASK
    return text


def _mask_start(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        for size in range(len(secret) - 1, _SECRET_PART - 1, -1):
            if text.startswith(secret[-size:]):
                return MASK + text[size:]
    return text


def _token(value: str) -> str:
    """``value`` as a pattern that matches it only where it is not part of a longer word."""
    head = r"(?<![A-Za-z0-9])" if value[0].isalnum() else ""
    tail = r"(?![A-Za-z0-9])" if value[-1].isalnum() else ""
    return head + re.escape(value) + tail


def _mask_pair(pair: str) -> str:
    key, equals, value = pair.partition("=")
    return f"{key}={MASK}" if equals and value and is_secret_name(unquote_plus(key)) else pair


def _mask_url_in_text(url: str) -> str:
    # A URL inside a sentence may end with punctuation that belongs to the sentence.
    stripped = url.rstrip(".,;:)]}")
    return mask_url(stripped) + url[len(stripped) :] if any(c in stripped for c in "@?;") else url
