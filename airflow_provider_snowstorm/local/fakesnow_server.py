"""Process entry point that serves fakesnow's Snowflake HTTP protocol over TLS.

Run by :func:`airflow_provider_snowstorm.local.snowflake.start_emulator` in its own process group; not meant to be
imported by the pipeline. fakesnow's server keeps every session in one shared in-memory DuckDB unless a client sends
``FAKESNOW_DB_PATH``; a client-side path opens a separate DuckDB instance per login, which breaks when two sessions
attach the same file. We instead give the shared instance a ``db_path`` so all sessions share one DuckDB whose
databases live as ``<data_dir>/<DATABASE>.db`` files, and re-attach those files at start-up so data survives restarts.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakesnow.instance import FakeSnow
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("snowstorm.local.fakesnow_server")
LOGIN_PATH = "/session/v1/login-request"
QUERY_PATH = "/queries/v1/query-request"
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def serve(
    host: str, port: int, data_dir: Path, certfile: Path, keyfile: Path, log_level: str = "warning"
) -> None:
    """Serve until SIGTERM/SIGINT, then checkpoint DuckDB so the files are complete on disk."""
    import fakesnow.server
    import uvicorn
    from fakesnow.instance import FakeSnow

    # fakesnow triggers this DuckDB notice on every query; it would drown the server log
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    data_dir.mkdir(parents=True, exist_ok=True)
    shared = FakeSnow(db_path=data_dir)
    attach_existing_databases(shared, data_dir)
    fakesnow.server.shared_fs = shared
    fakesnow.server.sessions = ClosingSessions()
    try:
        uvicorn.run(
            build_app(),
            host=host,
            port=port,
            ssl_certfile=str(certfile),
            ssl_keyfile=str(keyfile),
            log_level=log_level,
            access_log=False,
        )
    finally:
        _checkpoint(shared)
        shared.duck_conn.close()


class ClosingSessions(dict[str, Any]):
    """fakesnow's session registry, but a logout also closes the session's DuckDB connection.

    fakesnow only forgets a session on logout and keeps its DuckDB connection open, so a transaction the client
    left open (a failed ``BEGIN ... COMMIT`` or ``autocommit=False`` run) would stay open and every later write to
    the same rows fail with a DuckDB conflict. Snowflake rolls back an open transaction when its session ends;
    closing the connection does the same.
    """

    def __delitem__(self, token: str) -> None:
        connection = self[token]
        super().__delitem__(token)
        try:
            connection.close()
        except Exception:
            logger.exception("Could not close a fakesnow session")


def build_app() -> Starlette:
    """fakesnow's app with two fixes that make sessions behave like Snowflake's for the stock connector.

    - Login also returns a master token: the connector only logs out (``POST /session?delete=true``) when it has
      one, and without a logout fakesnow never ends a session (see :class:`ClosingSessions`).
    - Query errors fakesnow does not handle come back as a failed query instead of HTTP 500: the connector
      retries 5xx for minutes, so an unsupported statement or a DuckDB write conflict would hang the caller.
    """
    import fakesnow.server
    from starlette.applications import Starlette
    from starlette.routing import Route

    replacements = {LOGIN_PATH: login_request_with_master_token, QUERY_PATH: query_request_without_retries}
    routes = [
        Route(route.path, replacements[route.path], methods=["POST"])
        if isinstance(route, Route) and route.path in replacements
        else route
        for route in fakesnow.server.routes
    ]
    return Starlette(routes=routes)


async def login_request_with_master_token(request: Request) -> Response:
    import fakesnow.server
    from starlette.responses import JSONResponse

    response = await fakesnow.server.login_request(request)
    body = json.loads(bytes(response.body))
    if body.get("success") and isinstance(body.get("data"), dict):
        body["data"].setdefault("masterToken", secrets.token_urlsafe(32))
    return JSONResponse(body, status_code=response.status_code)


async def query_request_without_retries(request: Request) -> Response:
    import fakesnow.server
    from starlette.responses import JSONResponse

    response = await fakesnow.server.query_request(request)
    if response.status_code < 500:
        return response
    body = json.loads(bytes(response.body))
    code = str(body.get("code") or "261000")
    return JSONResponse(
        {
            "data": {
                "errorCode": code,
                "sqlState": "XX000",
                "errorMessage": " (see the emulator's server.log)",
            },
            "code": code,
            "message": str(body.get("message") or "Unhandled error in the Snowflake emulator"),
            "success": False,
        }
    )


def _checkpoint(shared: FakeSnow) -> None:
    """Write every file-backed database's WAL into its file, so the data directory is complete when stopped."""
    try:
        attached = shared.duck_conn.execute(
            "SELECT database_name FROM duckdb_databases() WHERE path IS NOT NULL AND NOT internal"
        ).fetchall()
        for (name,) in attached:
            shared.duck_conn.execute(f'CHECKPOINT "{name}"')
    except Exception:
        logger.exception("Could not checkpoint the emulator's databases")


def attach_existing_databases(shared: FakeSnow, data_dir: Path) -> list[str]:
    """Attach every ``<name>.db`` file, as fakesnow does when it creates a database, so old data is visible.

    fakesnow only attaches a file when a session names its database at login or runs CREATE DATABASE, so without
    this a fully qualified query against a database from a previous run would fail with "does not exist".
    """
    from fakesnow import info_schema, macros

    names = []
    for database_file in sorted(data_dir.glob("*.db")):
        name = database_file.stem
        if not _SAFE_NAME.fullmatch(name):
            logger.warning("Skipping %s: not a plain Snowflake database name", database_file)
            continue
        quoted_path = str(database_file).replace("'", "''")
        shared.duck_conn.execute(f"ATTACH IF NOT EXISTS '{quoted_path}' AS {name}")
        shared.duck_conn.execute(info_schema.per_db_creation_sql(name))
        shared.duck_conn.execute(macros.creation_sql(name))
        names.append(name)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve fakesnow over TLS (started by the snowstorm CLI).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--certfile", type=Path, required=True)
    parser.add_argument("--keyfile", type=Path, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.data_dir, args.certfile, args.keyfile, args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
