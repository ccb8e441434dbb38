"""The read-only guard on user SQL: a `query` or `where` that could write is refused at load.

Why an allow-list of functions. The guard used to refuse a short list of functions known to write
(a deny-list), and PostgreSQL defeated it: ``query_to_xml('…', …)`` and ``ts_stat('…')`` run
whatever SQL they are given as text, and through them ``set_config``, ``dblink_exec``,
``lo_export`` and ``COPY … TO PROGRAM`` ran unseen. A deny-list is never complete (extensions,
user-defined functions, new releases), so every function a text calls must now be on ``_READS``,
postrun's list of functions known to only read, or on the suite's ``allow_functions``, names its
author vouches for. ``_DENIED`` stays, for the clearest message: functions that run SQL given as
text or reach past the read-only transaction, refused even when a suite allows them.

What is enforced, at load, with file and line: one statement; a read (SELECT, VALUES, a set
operation; a ``where`` stays one condition); no write or lock anywhere in it (a data-modifying
CTE, SELECT … INTO, FOR UPDATE); every call allowed as above. Calls are read from the tokens, not
from sqlglot's function classes, which forget the name written (``ifnull`` and ``nvl`` both
become ``Coalesce``) and model a different set of functions in every release: a call is a name
followed by ``(`` (comments and blanks between are gone once tokenized), with the schema before
it. A call into a schema other than a built-in catalog (``_BUILTIN_SCHEMAS``) is judged by its
qualified name. Not calls: SQL keywords that take a parenthesis (``in (``, ``over (``), a name
after AS or ``::`` (an alias's columns or a type's modifiers: ``as u(op)``, ``decimal(10, 2)``)
and the aliases with columns that the parsed tree names (``g(n)``, ``with r(n) as``); a name on
``_DENIED`` before ``(`` is refused wherever it stands.

Every dialect reads the text, sqlglot's own, DuckDB's, PostgreSQL's and SQLite's, and every
reading must pass: where their tokenizers disagree the databases do too (SQLite does not nest
``/* */`` comments; PostgreSQL's ``E'\\''`` and ``$$`` strings end elsewhere for the others),
and a text is as dangerous as its most dangerous reading. A dialect that cannot parse the text
still judges its tokens (statements and their first words, calls), taking its aliases with
columns from a dialect that parsed it and tokenized it alike up to them. When no dialect parses
it, a write keyword anywhere is refused as well, and so is a text one of them cannot even
tokenize (a quote or comment left open). A dialect that cannot tokenize a text another one
parses is left out: its database would not read the text either, short of a difference between
sqlglot and the database (sqlglot's SQLite reads ``]]`` inside ``[…]`` as an escaped bracket,
so DuckDB's ``[[1, 2], [3]]`` would otherwise be refused).

What the connections enforce without the guard (``runner.sources.sql``): DuckDB files open
read-only, SQLite files with ``mode=ro``; PostgreSQL sessions start with
``default_transaction_read_only`` and every transaction runs ``SET TRANSACTION READ ONLY``, so a
statement that switched the session default off cannot make a later check's transaction
writable, and each statement is prepared, so a text holds one statement. A file source's DuckDB
is in memory and writable: there only this guard stands between a query and ``COPY … TO``.

What the guard cannot promise: functions reached without being written as ``name(``
(operators, casts and type input functions that resolve to user-defined functions,
PostgreSQL's attribute notation ``t.f`` for ``f(t)``); what an allowed name resolves to (a
function of that name earlier on PostgreSQL's search_path; quoted names are compared
case-insensitively); and where an allowed reader reads: ``read_csv`` opens any path the postrun
process may open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokenizer_core import Token

_DIALECTS = (None, "duckdb", "postgres", "sqlite")
"""sqlglot's own dialect, then the databases postrun reads: each must read the text as a read."""
_DIALECT_NAMES = {None: "sqlglot", "duckdb": "DuckDB", "postgres": "PostgreSQL", "sqlite": "SQLite"}

_STATEMENTS = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "Drop": "DROP",
    "Create": "CREATE",
    "Alter": "ALTER",
    "TruncateTable": "TRUNCATE",
    "Copy": "COPY",
    "Export": "EXPORT",
    "Attach": "ATTACH",
    "Detach": "DETACH",
    "Install": "INSTALL",
    "LoadData": "LOAD",
    "Pragma": "PRAGMA",
    "Set": "SET",
    "Use": "USE",
    "Grant": "GRANT",
    "Revoke": "REVOKE",
    "Comment": "COMMENT",
    "Analyze": "ANALYZE",
    "Refresh": "REFRESH",
    "Transaction": "BEGIN",
    "Commit": "COMMIT",
    "Rollback": "ROLLBACK",
    "Into": "SELECT ... INTO, which creates a table",
    "Lock": "FOR UPDATE/SHARE, which locks rows",
}
"""sqlglot node class → what it is called in a message; refused anywhere in the tree.
``Command`` (what sqlglot cannot model: CALL, LOAD, VACUUM, EXPLAIN …) is refused too."""

_HEADS = frozenset(
    {
        *("INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "TRUNCATE", "COPY"),
        *("DROP", "CREATE", "ALTER", "EXPORT", "IMPORT", "ATTACH", "DETACH", "INSTALL", "LOAD"),
        *("PRAGMA", "SET", "RESET", "GRANT", "REVOKE", "CALL", "DO", "VACUUM", "CHECKPOINT"),
        *("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "LOCK"),
    }
)
"""First words of statements that write or leave the transaction, for SQL sqlglot cannot parse."""

_WRITE_WORDS = {
    **{head.lower(): head for head in _HEADS if head not in ("END", "REPLACE")},
    "into": _STATEMENTS["Into"],
    "share": _STATEMENTS["Lock"],
}
"""Words refused anywhere in a text no dialect parses (outside strings and quoted names): every
statement head but END and REPLACE (which only CASE … END and replace() use inside a read), and
what makes a SELECT create a table or lock rows."""

_DENIED = {
    # PostgreSQL: run SQL given as text, or queries of their own
    "query_to_xml*": "runs SQL given as text, which postrun cannot check",
    "*_to_xml*": "runs queries of its own, which postrun cannot check",
    "ts_stat": "runs SQL given as text, which postrun cannot check",
    "ts_rewrite": "runs SQL given as text, which postrun cannot check",
    "crosstab*": "runs SQL given as text, which postrun cannot check",  # tablefunc
    "connectby": "runs queries of its own over a table named as text, which postrun cannot check",
    "xpath_table": "runs queries of its own over a table named as text, which postrun cannot check",
    "dblink*": "runs SQL over another connection, outside the read-only transaction",
    # PostgreSQL: change settings, act on other sessions or the server
    "set_config": "changes session settings",
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "reloads the server configuration",
    "pg_rotate_logfile*": "rotates the server log",
    "pg_log_backend_memory_contexts": "writes to the server log",
    "pg_notify": "sends a notification to other sessions",
    "pg_advisory*": "takes or releases an advisory lock, which other sessions wait on",
    "pg_try_advisory*": "takes an advisory lock, which other sessions wait on",
    "pg_switch_wal": "forces a new WAL file",
    "pg_create_restore_point": "writes a WAL record",
    "pg_logical_emit_message": "writes a WAL record",
    "pg_*replication*": "changes replication state",
    "pg_promote": "promotes a standby server",
    "pg_backup_*": "starts or stops a backup",
    "pg_start_backup": "starts a backup",
    "pg_stop_backup": "stops a backup",
    "pg_stat_reset*": "resets statistics",
    "pg_import_system_collations": "creates collations",
    "txid_current": "assigns a transaction id",
    "pg_current_xact_id": "assigns a transaction id",
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    # PostgreSQL: files on the database server
    "pg_read_file": "reads files on the database server",
    "pg_read_binary_file": "reads files on the database server",
    "pg_file_*": "writes, renames or deletes files on the database server",  # adminpack
    "pg_ls_*": "lists folders on the database server",
    "pg_stat_file": "reads file details on the database server",
    "lo_import": "reads a server file into the database",
    "lo_export": "writes a server file",
    "lo_*": "reads or writes large objects on the database server",
    # DuckDB
    "query": "runs SQL given as text, which postrun cannot check",
    "query_table": "reads tables named as text, which postrun cannot check",
    "json_execute_serialized_sql": "runs SQL given as JSON, which postrun cannot check",
    "postgres_query": "runs SQL over another connection, outside the read-only transaction",
    "postgres_execute": "runs SQL over another connection, outside the read-only transaction",
    "mysql_query": "runs SQL over another connection, outside the read-only transaction",
    "mysql_execute": "runs SQL over another connection, outside the read-only transaction",
    "checkpoint": "writes the database file",
    "force_checkpoint": "writes the database file",
    "getenv": "reads postrun's environment, where secrets live",
    "duckdb_secrets": "lists stored secrets",
    "which_secret": "tells which stored secret applies to a path",
    "read_text": "returns any file's raw contents, not data to check",
    "read_blob": "returns any file's raw contents, not data to check",
    "glob": "lists files anywhere on the machine",
    # SQLite
    "load_extension": "loads native code into the database",
    "readfile": "reads files",
    "writefile": "writes files",
    "fsdir": "lists files",
    "edit": "starts an editor",
    "eval": "runs SQL given as text, which postrun cannot check",
    "fts3_tokenizer": "can register native code as a tokenizer",
    # Spark
    "reflect": "calls any Java method on the Spark server",
    "try_reflect": "calls any Java method on the Spark server",
    "java_method": "calls any Java method on the Spark server",
    "transform": "is also SELECT TRANSFORM … USING, which runs a program on the Spark server",
    "secret": "reads a stored secret, not data to check",
}
"""Functions refused with a reason, never allowed, by lower-case name (``*`` matches any run of
characters); the first pattern that matches gives the reason."""

_READS = frozenset(
    (  # noqa: SIM905 - one reviewable list, grouped and commented, reads best as words
        # aggregates
        " count count_if count_star sum avg mean min max median mode product"
        " stddev stddev_pop stddev_samp variance var_pop var_samp"
        " quantile quantile_cont quantile_disc approx_quantile reservoir_quantile"
        " percentile_cont percentile_disc approx_count_distinct approx_top_k"
        " string_agg array_agg list group_concat listagg"
        " bool_and bool_or every bit_and bit_or bit_xor"
        " any_value arbitrary first last arg_min arg_max argmin argmax min_by max_by"
        " corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2"
        " regr_slope regr_sxx regr_sxy regr_syy histogram entropy kurtosis skewness mad"
        " fsum favg sumkahan kahan_sum total json_agg jsonb_agg json_object_agg"
        " jsonb_object_agg json_group_array json_group_object xmlagg range_agg"
        # window functions
        " row_number rank dense_rank percent_rank cume_dist ntile lag lead"
        " first_value last_value nth_value"
        # conditionals and grouping
        " coalesce nullif ifnull nvl greatest least iif if num_nulls num_nonnulls"
        " grouping grouping_id rollup cube likely unlikely likelihood"
        # strings
        " length char_length character_length octet_length bit_length strlen"
        " lower upper lcase ucase initcap trim ltrim rtrim btrim"
        " substr substring left right replace translate concat concat_ws"
        " position strpos instr split_part string_split str_split string_split_regex split"
        " string_to_array string_to_table array_to_string"
        " regexp_replace regexp_matches regexp_match regexp_like regexp_extract"
        " regexp_extract_all regexp_full_match regexp_split_to_array regexp_split_to_table"
        " regexp_count regexp_instr regexp_substr regexp_escape"
        " starts_with ends_with prefix suffix contains like ilike like_escape ilike_escape"
        " lpad rpad repeat reverse format printf quote_ident quote_literal quote_nullable quote"
        " chr ascii unicode char ord to_hex hex unhex bin to_base64 from_base64 base64"
        " encode decode convert_from convert_to overlay to_ascii"
        " md5 md5_number sha1 sha256 hash"
        " soundex levenshtein damerau_levenshtein jaccard jaro_similarity"
        " jaro_winkler_similarity hamming mismatches strip_accents nfc_normalize normalize"
        " url_encode url_decode"
        # numbers
        " abs round round_even ceil ceiling floor trunc power pow sqrt cbrt exp ln log log10"
        " log2 mod sign random pi degrees radians sin cos tan asin acos atan atan2 cot"
        " sinh cosh tanh asinh acosh atanh div gcd lcm factorial even isnan isinf isfinite"
        " width_bucket scale trim_scale min_scale gamma lgamma bit_count xor"
        " uuid gen_random_uuid uuid_generate_v4"
        # dates and times
        " now current_date current_time current_timestamp localtime localtimestamp"
        " transaction_timestamp statement_timestamp clock_timestamp timeofday today"
        " get_current_time get_current_timestamp"
        " date_trunc datetrunc date_part datepart extract date_diff datediff date_sub date_add"
        " age make_date make_time make_timestamp make_timestamptz make_interval"
        " to_timestamp to_date to_char to_number strftime strptime try_strptime"
        " epoch epoch_ms epoch_us epoch_ns julianday unixepoch date time datetime timediff"
        " year month day hour minute second millisecond microsecond nanosecond"
        " week weekofyear weekday dayofweek dayofmonth dayofyear isodow isoyear yearweek"
        " quarter era decade century millennium last_day monthname dayname"
        " justify_days justify_hours justify_interval date_bin time_bucket timezone"
        " to_years to_months to_weeks to_days to_hours to_minutes to_seconds"
        " to_milliseconds to_microseconds overlaps"
        # JSON
        " json jsonb json_extract json_extract_string json_extract_path json_extract_path_text"
        " jsonb_extract_path jsonb_extract_path_text json_array_length jsonb_array_length"
        " json_typeof jsonb_typeof json_type json_valid json_object jsonb_object json_array"
        " json_build_object jsonb_build_object json_build_array jsonb_build_array"
        " json_each jsonb_each json_each_text jsonb_each_text json_array_elements"
        " jsonb_array_elements json_array_elements_text jsonb_array_elements_text"
        " json_object_keys jsonb_object_keys json_keys json_structure json_contains"
        " json_exists json_value json_query json_scalar jsonb_path_query"
        " jsonb_path_query_array jsonb_path_query_first jsonb_path_exists jsonb_path_match"
        " jsonb_set jsonb_set_lax jsonb_insert jsonb_strip_nulls json_strip_nulls jsonb_pretty"
        " json_pretty jsonb_exists jsonb_exists_any jsonb_exists_all jsonb_contains"
        " jsonb_contained jsonb_concat to_json to_jsonb row_to_json array_to_json"
        " json_populate_record json_populate_recordset jsonb_populate_record"
        " jsonb_populate_recordset json_to_record json_to_recordset jsonb_to_record"
        " jsonb_to_recordset json_transform json_transform_strict from_json from_json_strict"
        " json_quote json_merge_patch json_patch json_tree json_insert json_replace json_set"
        " json_remove json_error_position"
        # arrays, lists, structs, maps, series
        " unnest array array_length cardinality len array_upper array_lower array_ndims"
        " array_dims array_position array_positions array_remove array_replace array_append"
        " array_prepend array_cat array_concat array_contains array_has array_has_any"
        " array_has_all array_slice array_sort array_reverse_sort array_distinct array_unique"
        " array_reverse array_filter array_transform array_apply array_reduce array_extract"
        " array_value array_fill array_aggr array_aggregate trim_array flatten"
        " list_value list_pack list_contains list_has list_has_any list_has_all list_extract"
        " list_element list_concat list_cat list_append list_prepend list_slice list_sort"
        " list_reverse_sort list_reverse list_distinct list_unique list_filter list_transform"
        " list_apply list_reduce list_aggregate list_aggr list_sum list_min list_max list_avg"
        " list_count list_position list_indexof list_zip list_select list_where"
        " generate_series generate_subscripts range"
        " struct_pack struct_extract struct_insert row map map_keys map_values map_extract"
        " map_entries map_from_entries element_at apply reduce columns"
        # types, and the database describing itself
        " typeof pg_typeof try_cast current_setting version current_database current_schema"
        " current_schemas current_catalog current_user session_user pg_backend_pid"
        " pg_postmaster_start_time to_regclass to_regtype format_type pg_input_is_valid"
        " obj_description col_description has_table_privilege has_schema_privilege"
        " has_column_privilege pg_has_role pg_relation_size pg_total_relation_size"
        " pg_table_size pg_indexes_size pg_database_size pg_column_size pg_size_pretty"
        " sqlite_version"
        # type names, written with modifiers (`decimal(10, 2)`); called, they convert
        " decimal numeric varchar character nchar nvarchar bit varbit float"
        " timestamp timestamptz timetz struct"
        # text search and XML values (not ts_stat / ts_rewrite / *_to_xml: _DENIED)
        " to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery"
        " ts_rank ts_rank_cd ts_headline setweight numnode querytree tsvector_to_array"
        " array_to_tsvector xmlelement xmlforest xmlconcat xmlparse xmlserialize xmlroot"
        " xmlpi xmlcomment xmltext xpath xpath_exists xmlexists xmltable xml_is_well_formed"
        " xml_is_well_formed_document xml_is_well_formed_content"
        # waits, bounded by the check's timeout (PostgreSQL's statement_timeout)
        " pg_sleep pg_sleep_for pg_sleep_until"
        # DuckDB's readers of the result files a file source names
        " read_csv read_csv_auto read_json read_json_auto read_json_objects"
        " read_json_objects_auto read_ndjson read_ndjson_auto read_ndjson_objects"
        " read_parquet parquet_scan parquet_metadata parquet_schema sniff_csv"
        # Spark SQL: aggregates
        " collect_list collect_set percentile percentile_approx approx_percentile std"
        " histogram_numeric try_sum try_avg count_min_sketch"
        # Spark SQL: conditionals, strings
        " nvl2 isnull isnotnull nanvl equal_null zeroifnull nullifzero"
        " rlike regexp locate substring_index format_number format_string sha sha2 crc32"
        " xxhash64 sentences elt find_in_set space mask luhn_check to_varchar to_binary"
        " try_to_binary unbase64 startswith endswith parse_url str_to_map try_url_decode"
        # Spark SQL: numbers
        " pmod bround shiftleft shiftright shiftrightunsigned positive negative rint signum"
        " hypot log1p expm1 e csc sec conv rand randn try_add try_subtract try_multiply"
        " try_divide try_mod try_to_number"
        # Spark SQL: dates and times
        " date_format from_unixtime unix_timestamp to_unix_timestamp to_utc_timestamp"
        " from_utc_timestamp months_between add_months next_day date_from_unix_date unix_date"
        " unix_seconds unix_millis unix_micros timestamp_seconds timestamp_millis"
        " timestamp_micros to_timestamp_ntz to_timestamp_ltz try_to_timestamp"
        " make_timestamp_ntz make_timestamp_ltz make_dt_interval make_ym_interval"
        " convert_timezone current_timezone dateadd timestampadd timestampdiff curdate"
        " window session_window window_time"
        # Spark SQL: JSON, CSV, XML values
        " get_json_object json_tuple schema_of_json from_csv to_csv schema_of_csv xpath_string"
        " xpath_int xpath_long xpath_short xpath_float xpath_double xpath_number xpath_boolean"
        # Spark SQL: arrays, maps, structs, generators (higher-order ones too, but not
        # transform(): see _DENIED)
        " explode explode_outer posexplode posexplode_outer inline inline_outer stack size"
        " array_join array_size array_min array_max array_union array_intersect array_except"
        " arrays_zip arrays_overlap array_repeat array_compact array_insert sequence slice"
        " sort_array shuffle aggregate forall zip_with map_filter map_zip_with transform_keys"
        " transform_values map_from_arrays map_concat map_contains_key named_struct get"
        " try_element_at"
        # Spark SQL: where a row comes from, casts written as calls
        " monotonically_increasing_id spark_partition_id input_file_name"
        " input_file_block_start input_file_block_length current_user user"
        " int integer bigint smallint tinyint double real string boolean binary"
    ).split()
)
"""Functions known to only read, by lower-case name, in DuckDB, PostgreSQL, SQLite and Spark
SQL: none runs SQL text, writes, locks, signals, changes a setting, touches server files, opens a
connection or calls into the server's own code (Spark's ``reflect``: ``_DENIED``).
``currval`` is on neither list: it only reads, but only after ``nextval`` (refused) in the same
session, so a postrun check has no use for it."""

_BUILTIN_SCHEMAS = frozenset({"pg_catalog", "main", "system"})
"""Catalogs of built-in functions: ``pg_catalog.lower(x)`` is judged as ``lower(x)``."""

_PAREN_KEYWORDS = frozenset(
    (  # noqa: SIM905 - a bag of SQL keywords
        "all and any as between by case cast distinct else except exclude exists filter from"
        " group having in intersect interval is join lateral limit materialized not offset on"
        " only or over percent pivot qualify rename repeatable rows sample select sets some"
        " tablesample then to union unpivot using values varying when where with zone"
        " bernoulli reservoir system"
    ).split()
)
"""SQL keywords a ``(`` may follow without a call: ``in (…)``, ``over (…)``, ``filter (where …)``,
``grouping sets (…)``, ``tablesample system (10)``, ``character varying(10)``."""

_PLAIN_TOKEN = re.compile(
    r"""(?P<blank>\s+)
      | (?P<string>'[^'\\]*(?:''[^'\\]*)*')
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[0-9]+(?:\.[0-9]+)?)
      | (?P<symbol>[(),.*+\-/%<>=!|&~^:?])
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
"""What ``_plainly_read`` reads; anything ``other`` (a quote, a backslash, ``$``, ``;``, ``[``,
a non-ASCII letter …) sends the text to sqlglot."""

_UNSAFE_WORDS = frozenset(
    {
        *(head.lower() for head in _HEADS if head not in ("END", "REPLACE")),
        *("into", "for", "share", "returning", "transaction", "use", "comment", "analyze"),
        *("refresh", "execute", "prepare", "union", "intersect", "except", "minus", "with"),
        *("describe", "show", "explain", "summarize"),
    }
)
"""Words that keep ``_plainly_read`` from vouching for a text: every statement head but END and
REPLACE (which only CASE … END and replace() use inside a single statement), what makes a
SELECT write or lock (INTO, FOR UPDATE/SHARE), WITH (sqlglot reads any statement as a CTE's
body), set operations, and statements sqlglot reads inside parentheses (its PostgreSQL reads
``(describe end)`` as a DESCRIBE of a COMMIT)."""

_NAME = re.compile(r"[^\W\d][\w$]*")


class _Reading(NamedTuple):
    """How one dialect reads a text: its tokens, and its statements when it parses them."""

    tokens: list[Token]
    statements: list[exp.Expr] | None


def read_only_problem(
    sql: str,
    *,
    fragment: Literal["query", "where"],
    field: str | None = None,
    allow_functions: Iterable[str] = (),
) -> str | None:
    """None when ``sql`` is a single read query (``where``: a condition) calling only functions
    known to only read or named in ``allow_functions``; otherwise why not, in one line that
    starts with ``field`` (default: the fragment kind), e.g. ``query holds 2 statements; give
    one``."""
    allowed = frozenset(name.lower() for name in allow_functions)
    if _plainly_read(sql, fragment, allowed):
        return None
    with _quiet_sqlglot():
        return _problem(sql, fragment, field or fragment, allowed)


def never_allowed(name: str) -> str | None:
    """Why the ``allow_functions`` entry ``name`` can never be allowed, or None when it can."""
    bare = name.rpartition(".")[2].lower()
    why = _denied(bare)
    return None if why is None else f"{bare}() {why}"


def _plainly_read(
    sql: str, fragment: Literal["query", "where"], allowed: frozenset[str] = frozenset()
) -> bool:
    """Whether ``sql`` is, on its face, one read the full check would accept, so that a suite of
    plain SQL does not pay for importing sqlglot (a tenth of a short run): only words, numbers,
    ``'strings'`` without backslashes, operators and balanced parentheses (no comment, quoted
    name or ``;``); a query starts with SELECT; no word outside a string could start, name or
    lock a write (``_UNSAFE_WORDS``); every ``word(`` is a keyword or an allowed function.
    Anything else is left to sqlglot."""
    if "--" in sql or "/*" in sql:
        return False
    tokens = [m for m in _PLAIN_TOKEN.finditer(sql) if m.lastgroup != "blank"]
    if not tokens or any(token.lastgroup == "other" for token in tokens):
        return False
    if fragment == "query" and tokens[0][0].lower() != "select":
        return False
    depth = 0
    for index, token in enumerate(tokens):
        depth += {"(": 1, ")": -1}.get(token[0], 0)
        if depth < 0:  # a `where` that would close the parenthesis it is wrapped in
            return False
        word = token[0].lower() if token.lastgroup == "word" else ""
        if word in _UNSAFE_WORDS:
            return False
        called = index + 1 < len(tokens) and tokens[index + 1][0] == "("
        if word and called and not _plain_call(sql, tokens, index, allowed):
            return False
    return depth == 0


def _plain_call(sql: str, tokens: list[re.Match[str]], index: int, allowed: frozenset[str]) -> bool:
    """Whether the ``word(`` at ``tokens[index]`` is a call the full check lets through."""
    before = sql[: tokens[index].start()].rstrip()
    if before.endswith("."):  # a schema's function, or a method call: sqlglot reads it
        return False
    word = tokens[index][0].lower()
    cast = len(before) - len(before.rstrip(":")) == 2  # `::` before a type, not `:p` or `:::`
    alias = index > 0 and tokens[index - 1][0].lower() == "as"
    excused = word in _PAREN_KEYWORDS or cast or alias
    return _call_problem((), word, excused, allowed) is None


def _problem(
    sql: str, fragment: str, name: str, allowed: frozenset[str] = frozenset()
) -> str | None:
    # Wrapped exactly as runner.context embeds a `where`, so `1=1) ; drop …` shows as a statement.
    text = sql if fragment == "query" else f"SELECT 1 WHERE ({sql}\n)"
    readings = {dialect: _read(text, dialect) for dialect in _DIALECTS}
    read = [reading for reading in readings.values() if reading is not None]
    parsed = any(reading.statements is not None for reading in read)
    if not parsed and len(read) < len(readings):
        return _unreadable([_DIALECT_NAMES[d] for d, r in readings.items() if r is None], name)
    problems = []
    for reading in read:
        if reading.statements is not None:
            problem = _tree_problem(reading.statements, reading.tokens, fragment, name, allowed)
        else:
            aliases = _borrowed_aliases(reading.tokens, [r for r in read if r.statements])
            problem = _token_problem(
                reading.tokens, fragment, name, allowed, aliases=aliases, parsed=parsed
            )
        problems += [problem] if problem is not None else []
    # a write or a denied function, as any dialect reads it, before a function on no list
    serious = [problem for problem in problems if not problem.startswith(f"{name} calls ")]
    return next(iter(serious or problems), None)


def _read(text: str, dialect: str | None) -> _Reading | None:
    """``text`` as ``dialect`` reads it; None when it cannot even tokenize it."""
    from sqlglot.dialects.dialect import Dialect

    reader = Dialect.get_or_raise(dialect)
    try:
        tokens = reader.tokenize(text)
    except Exception:  # TokenError (a quote or comment left open) or worse: nothing to read
        return None
    try:
        parsed = reader.parser().parse(tokens, text)
    except Exception:  # ParseError, RecursionError…: this dialect judges the tokens alone
        return _Reading(tokens, None)
    # a comment after the last ';' comes back as a `Semicolon` statement of its own
    statements = [s for s in parsed if s is not None and type(s).__name__ != "Semicolon"]
    return _Reading(tokens, statements)


def _unreadable(dialects: list[str], name: str) -> str:
    if len(dialects) == len(_DIALECTS):
        return f"{name} cannot be read as SQL: a quote or comment is left open"
    reads = "reads" if len(dialects) == 1 else "read"
    return (
        f"{name} cannot be read the same way by every SQL dialect: as {' and '.join(dialects)}"
        f" {reads} it, a quote or comment is left open"
    )


def _tree_problem(
    statements: list[exp.Expr],
    tokens: list[Token],
    fragment: str,
    name: str,
    allowed: frozenset[str],
) -> str | None:
    if not statements:  # only comments: nothing runs
        return None
    if len(statements) > 1:
        return _too_many(_called(statements[1]), len(statements), fragment, name)
    root = statements[0]
    if not _is_read(root, fragment):
        return _not_single(_called(root), fragment, name)
    for node in root.walk():
        found = _found(node)
        if found is not None:
            return f"{name} must only read; found {found}"
    return _calls_problem(tokens, _aliases(root), name, allowed)


def _token_problem(
    tokens: list[Token],
    fragment: str,
    name: str,
    allowed: frozenset[str],
    *,
    aliases: frozenset[int],
    parsed: bool,
) -> str | None:
    """What the tokens of a text this dialect cannot parse show: more than one statement, one
    that starts as a write, a call off the lists and, unless another dialect ``parsed`` the
    text, a write keyword anywhere."""
    problem = _problem_in_words(_heads(tokens), fragment, name)
    if problem is not None:
        return problem
    if not parsed:
        for token in tokens:
            found = _WRITE_WORDS.get(token.text.lower()) if _is_word(token) else None
            if found is not None:
                return f"{name} must only read; found {found}"
    return _calls_problem(tokens, aliases, name, allowed)


def _borrowed_aliases(tokens: list[Token], parsed: list[_Reading]) -> frozenset[int]:
    """The aliases with columns (``v(a)``) that dialects which parsed the text found where this
    dialect, which has no tree to tell an alias from a call, tokenized everything up to the
    alias's parenthesis alike: a reading that differs before it (a comment or string ending
    elsewhere) may put the name in a call."""
    borrowed: set[int] = set()
    for other in parsed:
        agreed = 0
        for mine, theirs in zip(tokens, other.tokens, strict=False):
            if (mine.start, mine.end) != (theirs.start, theirs.end):
                break
            agreed += 1
        starts = {token.start for token in tokens[: max(agreed - 1, 0)]}
        for statement in other.statements or []:
            borrowed |= _aliases(statement) & starts
    return frozenset(borrowed)


def _heads(tokens: list[Token]) -> list[str]:
    """The first word of each ';'-separated statement."""
    heads, starting = [], True
    for token in tokens:
        if token.token_type.name == "SEMICOLON":
            starting = True
        elif starting:
            heads.append(_word(token.text))
            starting = False
    return heads


def _calls_problem(
    tokens: list[Token], aliases: frozenset[int], name: str, allowed: frozenset[str]
) -> str | None:
    """Why a call in ``tokens`` may not run, a denied one first (its reason matters more than
    that of a function on no list); ``aliases``: where a name followed by ``(`` is an alias
    with its columns (``g(n)``), by offset in the text."""
    found = (_call_problem(*call, allowed) for call in _calls(tokens, aliases))
    problems = [problem for problem in found if problem is not None]
    denied = [problem for problem in problems if problem.startswith("must only read")]
    return f"{name} {(denied or problems)[0]}" if problems else None


def _calls(
    tokens: list[Token], aliases: frozenset[int]
) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """Each name followed by ``(``: its schema, its lower-case name, and whether it is excused
    as a keyword, an alias or a type (judged only against ``_DENIED``)."""
    for index, token in enumerate(tokens[:-1]):
        if tokens[index + 1].token_type.name != "L_PAREN" or not _is_name(token):
            continue
        before = tokens[index - 1].token_type.name if index else ""
        if before == "DOT":
            yield _qualifier(tokens, index), token.text.lower(), False
        else:
            keyword = _is_word(token) and token.text.lower() in _PAREN_KEYWORDS
            excused = keyword or before in ("ALIAS", "DCOLON") or token.start in aliases
            yield (), token.text.lower(), excused


def _call_problem(
    qualifier: tuple[str, ...], bare: str, excused: bool, allowed: frozenset[str]
) -> str | None:
    """Why a call of ``bare`` (in schema ``qualifier``) is refused, after the field name; an
    ``excused`` name (a keyword, an alias, a type) is refused only when it is denied."""
    why = _denied(bare)
    if why is not None:
        return f"must only read; {bare}() {why}"
    if excused:
        return None
    builtin = all(part in _BUILTIN_SCHEMAS for part in qualifier)
    if builtin and (bare in _READS or bare in allowed):
        return None
    called = bare if builtin else ".".join((*qualifier, bare))
    if called in allowed:
        return None
    return (
        f"calls {called}(), which is not on postrun's list of functions known to only read;"
        f" if it only reads, add {called} to the suite's allow_functions"
    )


def _denied(bare: str) -> str | None:
    return next((why for pattern, why in _DENIED.items() if fnmatchcase(bare, pattern)), None)


def _qualifier(tokens: list[Token], index: int) -> tuple[str, ...]:
    """The schema (and catalog) names before the call at ``index``: ``a.b.f(`` → ``('a', 'b')``;
    none for a method call on a value (DuckDB's ``'x'.upper()``)."""
    parts: list[str] = []
    at = index - 1
    while at >= 1 and tokens[at].token_type.name == "DOT" and _is_name(tokens[at - 1]):
        parts.insert(0, tokens[at - 1].text.lower())
        at -= 2
    return tuple(parts)


def _is_name(token: Token) -> bool:
    """A quoted name or an unquoted word (a keyword counts)."""
    return token.token_type.name == "IDENTIFIER" or _is_word(token)


def _is_word(token: Token) -> bool:
    """An unquoted word: not a quoted name, not a string's contents."""
    kind = token.token_type.name
    return (
        kind != "IDENTIFIER" and not kind.endswith("STRING") and bool(_NAME.fullmatch(token.text))
    )


def _aliases(root: exp.Expr) -> frozenset[int]:
    """Where the tree has an alias that may carry columns (``g(n)``, ``with r(n) as``)."""
    from sqlglot import exp

    return frozenset(
        alias.this.meta["start"]
        for alias in root.find_all(exp.TableAlias)
        if isinstance(alias.this, exp.Identifier) and "start" in alias.this.meta
    )


def _problem_in_words(heads: list[str], fragment: str, name: str) -> str | None:
    if len(heads) > 1:
        return _too_many(heads[1], len(heads), fragment, name)
    if heads and heads[0] in _HEADS:
        return _not_single(heads[0], fragment, name)
    return None


def _too_many(second: str, count: int, fragment: str, name: str) -> str:
    if fragment == "where":
        return f"{name} must be a condition, found a second statement" + (
            f" ({second})" if second else ""
        )
    return f"{name} holds {count} statements; give one"


def _not_single(found: str, fragment: str, name: str) -> str:
    what = found or "an expression"
    if fragment == "where":
        return f"{name} must be a condition, found {what}"
    return f"{name} must be a single SELECT; found {what}"


def _is_read(root: exp.Expr, fragment: str) -> bool:
    from sqlglot import exp

    if fragment == "where":
        return isinstance(root, exp.Select)  # `1=1) union (select …` would change the query
    return isinstance(root, exp.Query | exp.Values)


def _called(statement: exp.Expr) -> str:
    """What a statement is called in a message (DELETE, PRAGMA, UNION …); '' if not a keyword."""
    if type(statement).__name__ in ("Union", "Except", "Intersect"):
        return statement.key.upper()
    found = _found(statement)
    if found is not None:
        return found
    try:
        words = statement.sql().split(maxsplit=1)
    except Exception:  # sqlglot cannot write back every tree it reads (e.g. B'')
        return ""
    return _word(words[0]) if words else ""


def _word(text: str) -> str:
    """``text`` upper-cased when it is a plain word, else '' (a message stays one short line)."""
    return text.upper() if text.isascii() and text.isalpha() else ""


def _found(node: exp.Expr) -> str | None:
    """What ``node`` is called when it is refused (a write or a statement), else None."""
    names = [cls.__name__ for cls in type(node).__mro__]
    if "Command" in names:
        return _word(str(node.this)) or "a statement sqlglot cannot read"
    return next((_STATEMENTS[n] for n in names if n in _STATEMENTS), None)


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning for every statement it falls back to parsing as a Command;
    # those are refused with a clear reason, and the warning would only clutter stderr.
    logger = logging.getLogger("sqlglot")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled
