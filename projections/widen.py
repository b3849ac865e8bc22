"""Column type changes of read-model tables that already exist.

`CREATE TABLE IF NOT EXISTS` leaves an existing table as it was, so a projection whose DDL
widens a column also carries the change for tables created before (migrate runs every
projection's DDL). It is done only while the column still has its old type: migrating again
takes no lock and rewrites nothing.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def widen_to_numeric(table: str, column: str) -> str:
    """DDL that turns `table.column` from bigint into numeric, if it is still bigint (the table
    is found through the search_path, as the projection's own statements find it)."""
    for name in (table, column):
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    return f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{table}'::regclass
            AND attname = '{column}' AND atttypid = 'bigint'::regtype) THEN
        ALTER TABLE {table} ALTER COLUMN {column} TYPE numeric;
    END IF;
END $$;
"""
