"""Connection arguments of the local set-up's SQLite metadata database (``[database] sql_alchemy_connect_args``).

SQLite takes one writer at a time, and Python's driver gives up after 5 seconds: a CLI command beside ``airflow
standalone`` (the README's backfill, writing 28 DAG runs while the scheduler writes too) then failed with
"database is locked". A minute of patience lets the writers take turns. Not for Postgres (the cluster), whose
driver has no such argument.
"""

from __future__ import annotations

CONNECT_ARGS: dict[str, object] = {"timeout": 60.0}
