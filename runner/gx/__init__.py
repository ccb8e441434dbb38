"""Great Expectations suites as checks: ``compile`` reads a GX suite and compiles what it can to
SQL without importing GX; ``fallback`` runs the rest through GX itself, imported only then."""
