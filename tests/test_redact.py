"""What is secret and how it is hidden: URLs masked by position, free text by whole-token value."""

from __future__ import annotations

import pytest

from runner.redact import Redactor, is_secret_name, mask_url, url_problem, url_secrets


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://gate:s3cret@db:5432/batch", "postgresql://***@db:5432/batch"),
        ("postgresql://gate@db:5432/batch", "postgresql://***@db:5432/batch"),
        (
            "postgresql://gate@db/batch?password=s3cret&sslmode=require",
            "postgresql://***@db/batch?password=***&sslmode=require",
        ),
        ("snowflake://gate@acct/db?token=abc123", "snowflake://***@acct/db?token=***"),
        (
            "postgresql://gate:p%40ss@db/batch?api_key=k1",
            "postgresql://***@db/batch?api_key=***",
        ),
        # ':', '/' and '?' are legal in a password: everything up to the '@' is userinfo
        ("postgresql://u:pa:ss/w?rd@db/batch", "postgresql://***@db/batch"),
        # an unencoded '@' makes the userinfo ambiguous: only the scheme is shown
        ("postgresql://reader:p@ss:w/rd?x=1@host/db", "postgresql://…"),
        ("postgresql://u:pw@host/db?app=me@there", "postgresql://…"),
        # a common word as the password leaves the scheme and host alone
        ("postgresql://postgres:postgres@postgres:5432/db", "postgresql://***@postgres:5432/db"),
        ("duckdb:///data/w.duckdb", "duckdb:///data/w.duckdb"),
        ("duckdb:///:memory:?motherduck_token=ey.J0", "duckdb:///:memory:?motherduck_token=***"),
        ("sqlite:///w.sqlite?mode=ro", "sqlite:///w.sqlite?mode=ro"),
        ("not a url?token=zz", "(not a URL)"),
    ],
)
def test_redact_mask_url_by_position(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://u:p%40ss@h/db", None),
        ("postgresql://u:pa:ss/w?rd@h/db", None),
        ("sqlite:///w.sqlite", None),
        (
            "postgresql://reader:p@ss@h/db",
            "holds '@' more than once: percent-encode '@' in the user, password and query "
            "values as %40",
        ),
    ],
)
def test_redact_url_problem(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem


def test_redact_url_secrets_cover_every_reading_of_the_userinfo() -> None:
    found = url_secrets("postgresql://reader:p@ss:w/rd?x=1@host/db?password=q%26r&sslmode=x")
    assert {"reader:p@ss:w/rd?x=1", "p@ss:w/rd?x=1", "q%26r", "q&r"} <= set(found)
    assert "p" in found  # the driver's reading: the password ends at the first '@'
    assert "x" not in found and "host" not in found


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # a common word as the password: masked as a word, never inside the scheme or another
        ('password authentication failed for user "postgres"', 'failed for user "***"'),
        ("postgresql://postgres:postgres@db/x refused", "postgresql://***@db/x refused"),
        ("connecting to postgresql over tcp", "connecting to postgresql over tcp"),
        ("dsn password=postgres host=db", "dsn password=*** host=db"),
        # a URL inside a sentence keeps the sentence's punctuation
        ("(see postgresql://u:pw12@h/db).", "(see postgresql://***@h/db)."),
    ],
)
def test_redact_free_text_masks_whole_tokens(text: str, shown: str) -> None:
    assert shown in Redactor(["postgres"])(text)


def test_redact_short_values_are_left_to_positional_masking() -> None:
    redact = Redactor(["pw", "abc"])
    assert redact("a pw in abc text, postgresql://u:pw@h/db") == (
        "a pw in abc text, postgresql://***@h/db"
    )


def test_redact_longest_secret_first() -> None:
    assert Redactor(["Hunter2", "Hunter2-Secret"])("x Hunter2-Secret y") == "x *** y"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("pg_password", True),
        ("API_TOKEN", True),
        ("client_secret", True),
        ("api-key", True),
        ("aws_credentials", True),
        ("run_date", False),
        ("results_dir", False),
    ],
)
def test_redact_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret
