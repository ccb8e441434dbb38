"""Suite files: every mistake is reported with file, line and one readable reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.errors import SuiteError
from runner.suite import parse_suite

ONE_SOURCE = """\
    suite: nightly
    params:
      run_date: {type: date}
    sources:
      warehouse: {url: "duckdb:///w.duckdb"}
    checks:
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tmp_path so that error messages show the suite as 'suite.yml'."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def with_checks(checks: str) -> str:
    """The one-source suite header followed by ``checks`` (any indentation)."""
    return textwrap.dedent(ONE_SOURCE) + textwrap.indent(textwrap.dedent(checks), "  ")


def suite_error(folder: Path, text: str) -> str:
    (folder / "suite.yml").write_text(textwrap.dedent(text))
    with pytest.raises(SuiteError) as caught:
        parse_suite("suite.yml")
    return str(caught.value)


CHECK_ERRORS = [
    pytest.param(
        """\
          - type: not_null
            name: pnl
            table: portfolio_snapshots
            colums: [daily_pnl]
        """,
        "suite.yml:10: check 'pnl': unknown key 'colums' (did you mean 'columns'?)",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            equals: {tabel: portfolios}
        """,
        "suite.yml:9: check #1 (row_count): unknown key 'tabel' (did you mean 'table'?)",
        id="unknown-key-in-equals-relation",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            min: 1
            severity: fatal
        """,
        "suite.yml:10: check #1 (row_count): severity: Input should be 'error' or 'warn'",
        id="severity-fatal",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            min: -1
        """,
        "suite.yml:9: check #1 (row_count): min: Input should be greater than or equal to 0",
        id="negative-min",
    ),
    pytest.param(
        """\
          - type: not_null
            table: portfolio_snapshots
            columns: 5
        """,
        "suite.yml:9: check #1 (not_null): columns: Input should be a valid list",
        id="columns-not-a-list",
    ),
    pytest.param(
        """\
          - table: portfolio_snapshots
            min: 1
        """,
        "suite.yml:7: check #1: missing required key 'type'",
        id="missing-type",
    ),
    pytest.param(
        """\
          - type: row_cont
            table: portfolio_snapshots
        """,
        "suite.yml:7: check #1 (row_cont): unknown check type 'row_cont' (did you mean 'row_count'?)",
        id="unknown-type-did-you-mean",
    ),
    pytest.param(
        """\
          - type: row_count
            min: 1
        """,
        "suite.yml:7: check #1 (row_count): give exactly one of 'table' or 'query'",
        id="row-count-without-relation",
    ),
    pytest.param(
        """\
          - type: not_null
            name: pnl
            table: portfolio_snapshots
        """,
        "suite.yml:7: check 'pnl': missing required key 'columns'",
        id="not-null-without-columns",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            query: select 1
            min: 1
        """,
        "suite.yml:7: check #1 (row_count): give exactly one of 'table' or 'query'",
        id="table-and-query",
    ),
    pytest.param(
        """\
          - type: row_count
            query: select * from portfolio_snapshots
            where: daily_pnl is null
            min: 1
        """,
        "suite.yml:7: check #1 (row_count): 'where' applies to 'table'; put the condition inside"
        " 'query'",
        id="where-with-query",
    ),
    pytest.param(
        """\
          - {type: row_count, name: snapshots, table: portfolio_snapshots, min: 1}
          - {type: row_count, name: portfolios, table: portfolios, min: 1}
          - {type: row_count, name: snapshots, table: portfolio_snapshots, max: 9}
        """,
        "suite.yml:9: check 'snapshots': name already used on line 7",
        id="duplicate-name",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, min: 1, source: warehuose}
        """,
        "suite.yml:7: check 'row_count:portfolio_snapshots': unknown source 'warehuose'"
        " (did you mean 'warehouse'?)",
        id="unknown-source-did-you-mean",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, min: 1, source: lake}
        """,
        "suite.yml:7: check 'row_count:portfolio_snapshots': unknown source 'lake'"
        " (known: warehouse)",
        id="unknown-source-listing",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            equals: {table: portfolios, source: warehuose}
        """,
        "suite.yml:9: check 'row_count:portfolio_snapshots': unknown source 'warehuose'"
        " (did you mean 'warehouse'?)",
        id="unknown-source-in-equals",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            where: snapshot_date = :run_dat
            min: 1
        """,
        "suite.yml:9: check 'row_count:portfolio_snapshots': where uses :run_dat, which is not"
        " a declared param (did you mean 'run_date'?)",
        id="undeclared-param-in-where",
    ),
    pytest.param(
        """\
          - type: sql
            query: select * from runs where batch_id = :batch_id
        """,
        "suite.yml:8: check 'sql:warehouse': query uses :batch_id, which is not a declared param",
        id="undeclared-param-in-query",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            where: snapshot_date = {run_date}
            min: 1
        """,
        "suite.yml:9: check 'row_count:portfolio_snapshots': where uses {run_date}, which is"
        " substituted only in paths and URLs, never in SQL: use :run_date (a bound parameter)",
        id="brace-param-in-where",
    ),
    pytest.param(
        """\
          - type: sql
            query: "select * from runs where run_date = '{run_date}'"
        """,
        "suite.yml:8: check 'sql:warehouse': query uses {run_date}, which is substituted only"
        " in paths and URLs, never in SQL: use :run_date (a bound parameter)",
        id="brace-param-quoted-in-query",
    ),
    pytest.param(
        """\
          - type: sql
            query: select {batch} from runs
        """,
        "suite.yml:8: check 'sql:warehouse': query uses {batch}, which is substituted only in"
        " paths and URLs, never in SQL: use :batch (a bound parameter)",
        id="brace-undeclared-outside-string",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            equals: {table: portfolios, where: "as_of = :as_of"}
        """,
        "suite.yml:9: check 'row_count:portfolio_snapshots': equals.where uses :as_of, which is"
        " not a declared param",
        id="undeclared-param-in-equals-where",
    ),
    pytest.param(
        """\
          - type: row_count
            table: portfolio_snapshots
            equals: 3
            min: 1
        """,
        "suite.yml:7: check #1 (row_count): give exactly one of 'equals', 'min'/'max' or 'between'",
        id="two-comparators",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, min: 1, tolerance: 3}
        """,
        "suite.yml:7: check #1 (row_count): 'tolerance' applies to 'equals' only",
        id="tolerance-without-equals",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, equals: 3, tolerance: 5 rows}
        """,
        "suite.yml:7: check #1 (row_count): tolerance: '5 rows' is not a count (3) or a"
        " percentage (1%)",
        id="tolerance-not-a-count",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, between: [1]}
        """,
        "suite.yml:7: check #1 (row_count): between: List should have at least 2 items after"
        " validation, not 1",
        id="between-one-bound",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, between: [5, 1]}
        """,
        "suite.yml:7: check #1 (row_count): 'between' must be [low, high] with low <= high",
        id="between-reversed",
    ),
    pytest.param(
        """\
          - {type: row_count, table: portfolio_snapshots, min: 1, timeout: soon}
        """,
        "suite.yml:7: check #1 (row_count): timeout: 'soon' is not a duration (use e.g. 30s, 5m,"
        " 2h10m, 1d)",
        id="bad-duration",
    ),
    pytest.param(
        """\
          - {type: sql, query: select 1, equals: 1, min: 0}
        """,
        "suite.yml:7: check #1 (sql): give 'equals' or 'min'/'max', not both",
        id="sql-equals-and-min",
    ),
]


@pytest.mark.parametrize(("checks", "expected"), CHECK_ERRORS)
def test_suite_rejects_check_mistake_with_line(in_tmp: Path, checks: str, expected: str) -> None:
    assert suite_error(in_tmp, with_checks(checks)) == expected


FILE_ERRORS = [
    pytest.param(
        """\
        suite: nightly
        sourcse: {}
        checks:
          - {type: sql, query: select 1}
        """,
        "suite.yml:2: unknown key 'sourcse' (did you mean 'sources'?)",
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        suite: nightly
        sources:
          warehouse:
            urll: duckdb:///w.duckdb
        checks:
          - {type: sql, query: select 1}
        """,
        "suite.yml:4: unknown key 'urll' (did you mean 'url'?)",
        id="unknown-key-in-source",
    ),
    pytest.param(
        """\
        suite: nightly
        params:
          run_date:
            typ: date
        checks:
          - {type: sql, query: select 1}
        """,
        "suite.yml:4: unknown key 'typ' (did you mean 'type'?)",
        id="unknown-key-in-param",
    ),
    pytest.param(
        """\
        suite: Nightly
        checks:
          - {type: sql, query: select 1}
        """,
        "suite.yml:1: suite: String should match pattern '^[a-z0-9_-]+$'",
        id="uppercase-suite-name",
    ),
    pytest.param(
        """\
        suite: nightly
        checks: []
        """,
        "suite.yml:2: checks: List should have at least 1 item after validation, not 0",
        id="no-checks",
    ),
    pytest.param(
        """\
        suite: nightly
        sources:
          warehouse: {url: "duckdb:///w.duckdb"}
          lake: {url: "duckdb:///l.duckdb"}
        checks:
          - {type: row_count, table: portfolios, min: 1}
        """,
        "suite.yml:6: check 'row_count:portfolios': name a 'source' (the suite has warehouse,"
        " lake)",
        id="ambiguous-source",
    ),
    pytest.param(
        """\
        suite: nightly
        checks:
          - {type: row_count, table: portfolios, min: 1}
        """,
        "suite.yml:3: check 'row_count:portfolios': name a 'source' (the suite has none declared)",
        id="no-source-at-all",
    ),
    pytest.param(
        """\
        suite: nightly
        sources:
          warehouse: {url: "duckdb:///{db}"}
          results: {files: "{results_dir}/run_*.json"}
        checks:
          - {type: sql, query: select 1, source: warehouse}
        """,
        "suite.yml:3: source 'warehouse': {db} is not a declared param\n"
        "suite.yml:4: source 'results': {results_dir} is not a declared param",
        id="undeclared-param-in-url-and-path",
    ),
    pytest.param(
        """\
        suite: nightly
        checks:
          - type: sql
            query: [select 1
        """,
        "suite.yml:5: invalid YAML: while parsing a flow sequence expected ',' or ']', but got"
        " '<stream end>'",
        id="invalid-yaml-at-end",
    ),
    pytest.param(
        """\
        suite: nightly
        checks:
          - type: sql
           query: select 1
          - type: sql
        """,
        "suite.yml:4: invalid YAML: while parsing a block collection expected <block end>, but"
        " found '<block mapping start>'",
        id="invalid-yaml-indentation",
    ),
    pytest.param(
        """\
        suite: nightly
        checks:
          - {type: sql, query: select 1, query: select 2}
        """,
        'suite.yml:3: invalid YAML: while constructing a mapping found duplicate key "query"'
        ' with value "select 2" (original value: "select 1")',
        id="duplicate-yaml-key",
    ),
    pytest.param("", "suite.yml: a suite file is a mapping with 'suite' and 'checks'", id="empty"),
    pytest.param(
        "- suite: nightly\n",
        "suite.yml:1: a suite file is a mapping with 'suite' and 'checks'",
        id="top-level-list",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FILE_ERRORS)
def test_suite_rejects_file_mistake_with_line(in_tmp: Path, text: str, expected: str) -> None:
    assert suite_error(in_tmp, text) == expected


def test_suite_reports_every_mistake_one_per_line(in_tmp: Path) -> None:
    text = with_checks(
        """\
          - type: not_null
            name: pnl
            table: portfolio_snapshots
            colums: [daily_pnl]
          - type: row_count
            table: portfolio_snapshots
            min: -1
            severity: fatal
          - type: row_cont
            table: portfolios
          - {type: row_count, name: pnl, table: portfolios, min: 1}
          - {type: sql, query: "select 1 where :today", source: warehouse}
        """
    )
    assert suite_error(in_tmp, text).splitlines() == [
        "suite.yml:10: check 'pnl': unknown key 'colums' (did you mean 'columns'?)",
        "suite.yml:13: check #2 (row_count): min: Input should be greater than or equal to 0",
        "suite.yml:14: check #2 (row_count): severity: Input should be 'error' or 'warn'",
        "suite.yml:15: check #3 (row_cont): unknown check type 'row_cont' (did you mean"
        " 'row_count'?)",
        "suite.yml:18: check 'sql:warehouse': query uses :today, which is not a declared param",
    ]


def test_suite_error_issues_carry_path_and_line(in_tmp: Path) -> None:
    (in_tmp / "suite.yml").write_text(with_checks("- {type: nope}\n"))
    with pytest.raises(SuiteError) as caught:
        parse_suite("suite.yml")
    assert [(i.path, i.line) for i in caught.value.issues] == [("suite.yml", 7)]


def test_suite_missing_file_is_reported(in_tmp: Path) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_suite("checks/nope.yml")
    assert str(caught.value) == "checks/nope.yml: no such suite file"


def test_suite_error_names_the_path_as_given(in_tmp: Path) -> None:
    (in_tmp / "checks").mkdir()
    (in_tmp / "checks" / "nightly.yml").write_text(
        with_checks("- {type: not_null, name: pnl, table: t, colums: [a]}\n")
    )
    with pytest.raises(SuiteError) as caught:
        parse_suite("checks/nightly.yml")
    assert str(caught.value) == (
        "checks/nightly.yml:7: check 'pnl': unknown key 'colums' (did you mean 'columns'?)"
    )


def test_suite_derives_default_names_numbering_repeats(in_tmp: Path) -> None:
    (in_tmp / "suite.yml").write_text(
        with_checks(
            """\
              - {type: row_count, table: portfolio_snapshots, min: 1}
              - {type: row_count, table: portfolio_snapshots, max: 100}
              - {type: row_count, name: row_count:portfolio_snapshots#3, table: t, min: 1}
              - {type: row_count, table: portfolio_snapshots, between: [1, 2]}
              - {type: not_null, table: portfolio_snapshots, columns: [daily_pnl]}
              - {type: not_null, query: "select 1 as a", columns: a}
              - {type: sql, query: select 1}
            """
        )
    )
    parsed = parse_suite("suite.yml")
    assert [c.name for c in parsed.checks] == [
        "row_count:portfolio_snapshots",
        "row_count:portfolio_snapshots#2",
        "row_count:portfolio_snapshots#3",
        "row_count:portfolio_snapshots#4",
        "not_null:portfolio_snapshots",
        "not_null:query",
        "sql:warehouse",
    ]


def test_suite_gives_checks_the_only_source(in_tmp: Path) -> None:
    (in_tmp / "suite.yml").write_text(
        with_checks("- {type: row_count, table: portfolios, min: 1}\n")
    )
    assert [c.source for c in parse_suite("suite.yml").checks] == ["warehouse"]


def test_suite_accepts_casts_and_times_that_look_like_params(in_tmp: Path) -> None:
    (in_tmp / "suite.yml").write_text(
        with_checks(
            """\
              - type: sql
                query: "select x::date from t where at > '2025-11-06 10:15:00' and d = :run_date"
            """
        )
    )
    assert [c.name for c in parse_suite("suite.yml").checks] == ["sql:warehouse"]


def test_suite_json_schema_accepts_what_the_loader_accepts(in_tmp: Path) -> None:
    import jsonschema

    from runner.suite import suite_json_schema
    from runner.yamlfile import load_yaml

    (in_tmp / "suite.yml").write_text(
        with_checks(
            """\
            - {type: row_count, table: a, equals: 3, tolerance: 1}
            - {type: row_count, table: a, equals: {table: b, where: x}, tolerance: 2.5%}
            - {type: row_count, table: a, between: [1, 2]}
            - {type: not_null, table: a, columns: b, key: [c]}
            - {type: sql, query: select 1, equals: ok, timeout: 30}
            - {type: sql, query: select 2, min: 0, timeout: 5m, tags: [nightly]}
            """
        )
    )
    parse_suite("suite.yml")
    document = load_yaml(in_tmp / "suite.yml", "suite.yml")
    jsonschema.validate(document.data, suite_json_schema())


def test_suite_timeout_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "suite: s\nsources: {db: {url: 'duckdb:///x.duckdb'}}\n"
        "checks:\n  - {type: row_count, table: t, min: 1, timeout: 0s}\n"
    )
    with pytest.raises(SuiteError) as exc:
        parse_suite(path)
    assert str(exc.value) == (f"{path}:4: check #1 (row_count): timeout: must be longer than 0s")


def test_suite_check_whose_relations_name_sources_needs_no_check_source(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "suite: s\nsources: {a: {url: 'duckdb:///a.duckdb'}, b: {url: 'duckdb:///b.duckdb'}}\n"
        "checks:\n  - type: reference\n    each: {table: t, key: id, source: a}\n"
        "    has: {table: u, key: id, source: b}\n"
    )
    assert [c.name for c in parse_suite(path).checks] == ["reference:t->u"]
