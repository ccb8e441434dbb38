"""`postrun check --explain`: the statements a run would send, without connecting to anything,
built by the very functions the run uses (the check types' ``scans`` and ``queries``, through a
``Context`` on the run's ``Plan``), so that what is printed is what a run sends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from runner.checks.base import CheckType
from runner.context import Context, compile_sql
from runner.plan import Plan, SharedScan
from runner.suite import Suite


@dataclass(frozen=True)
class Step:
    """One statement of a check as --explain shows it."""

    statement: sa.Executable
    source: str
    shared: SharedScan | None = None
    when: str | None = None
    sent: bool = True


def explain(
    suite: Suite,
    selected: Mapping[str, bool],
    kinds: Mapping[str, CheckType],
    *,
    sample_limit: int,
) -> str:
    """Each statement once, numbered, under the first check it answers; a shared scan names the
    checks it answers, a statement sent only sometimes says when."""
    checks = [c for c in suite.checks if selected.get(c.name)]
    plan = Plan.of(checks, kinds)
    sources = {name: config.open() for name, config in suite.sources.items()}
    lines = [f"plan of suite '{suite.name}': {len(checks)} of {len(suite.checks)} checks"]
    numbers: dict[int, str] = {}
    count = sometimes = 0
    try:
        for check in checks:
            kind = kinds[check.type]
            ctx = Context(check, kind, sources, suite.params, sample_limit=sample_limit, plan=plan)
            lines.append(f"\ncheck '{check.name}' ({check.type})")
            steps = list(steps_of(ctx))
            if not steps:
                lines.append("  no SQL: reads files")
            for step in steps:
                if step.shared is not None and id(step.shared) in numbers:
                    lines.append(f"  {numbers[id(step.shared)]} (shared, above)")
                    continue
                count += 1
                sometimes += step.when is not None
                lines.append(f"  q{count} on source '{step.source}'{_about(step, count, numbers)}")
                source = sources.get(step.source)
                sql = compile_sql(step.statement, source) if source else str(step.statement)
                lines += [f"    {line.rstrip()}" for line in sql.splitlines()]
    finally:
        for opened in sources.values():
            opened.close()
    only = f" ({sometimes} of them only when their check fails)" if sometimes else ""
    lines.append(f"\n{count} statements{only}.")
    return "\n".join(lines)


def steps_of(ctx: Context) -> Iterator[Step]:
    """The check's scans (a shared one, or its own query) and every other statement it may
    send, in the order a run sends them."""
    check, kind = ctx.spec, ctx.kind
    for scan in kind.scans(check) if kind.scans is not None else ():
        shared = ctx.plan.shared(scan.relation, check)
        source = shared.source if shared is not None else ctx.relation_source(scan.relation)
        yield Step(ctx.scan_statement(scan.relation), source or "", shared)
    for query in kind.queries(check, ctx) if kind.queries is not None else ():
        source = query.source or check.source or ""
        yield Step(query.statement, source, when=query.when, sent=query.sent)


def _about(step: Step, number: int, numbers: dict[int, str]) -> str:
    if step.shared is not None:
        numbers[id(step.shared)] = f"q{number}"
        shared = step.shared
        checks = shared.checks
        return f", one query for {len(checks)} check{'s' if len(checks) > 1 else ''}: " + ", ".join(
            checks
        )
    return f", {step.when}" if step.when else ""
