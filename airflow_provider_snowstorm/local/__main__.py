"""``python -m airflow_provider_snowstorm.local snowflake start|stop|status|env``: the local Snowflake emulator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_provider_snowstorm.local.snowflake import (
    DEFAULT_CONN_ID,
    DEFAULT_DATABASE,
    DEFAULT_SCHEMA,
    EmulatorError,
    EmulatorHandle,
    airflow_environment,
    emulator_status,
    shell_exports,
    start_emulator,
    stop_emulator,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_snowstorm.local",
        description="Local stand-ins for Snowstorm's external services.",
    )
    services = parser.add_subparsers(dest="service", required=True)
    snowflake = services.add_parser("snowflake", help="fakesnow served over TLS as a local Snowflake")
    commands = snowflake.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start in the background (or report the running one)"),
        ("stop", "stop it; data stays on disk"),
        ("status", "print where it runs; exit code 1 when stopped"),
        ("env", "print shell export lines for REQUESTS_CA_BUNDLE and the Airflow connection"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--home", default=None, help="state directory (default: $SNOWSTORM_HOME, else ./.snowstorm)"
        )
        if name == "start":
            command.add_argument(
                "--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)"
            )
            command.add_argument(
                "--timeout", type=float, default=60.0, help="seconds to wait for it to answer"
            )
        if name == "env":
            command.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="Airflow connection id")
            command.add_argument(
                "--database", default=DEFAULT_DATABASE, help="default database of the connection"
            )
            command.add_argument("--schema", default=DEFAULT_SCHEMA, help="default schema of the connection")
    return parser


def _describe(handle: EmulatorHandle) -> str:
    return f"{handle.url} (pid {handle.pid}, data in {handle.data_dir})"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "start":
            was_running = emulator_status(args.home)
            handle = start_emulator(args.home, args.port, timeout=args.timeout)
            print(f"{'Already running' if was_running else 'Started'}: {_describe(handle)}")
            return 0
        if args.command == "stop":
            print("Stopped." if stop_emulator(args.home) else "Not running.")
            return 0
        handle = emulator_status(args.home)
        if handle is None:
            print("Not running.", file=sys.stderr)
            return 1
        if args.command == "status":
            print(f"Running: {_describe(handle)}")
            return 0
        environment = airflow_environment(
            handle, conn_id=args.conn_id, database=args.database, schema=args.schema
        )
        print(shell_exports(environment))
        return 0
    except (EmulatorError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
