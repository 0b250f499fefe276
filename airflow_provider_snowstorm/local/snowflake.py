"""Run fakesnow as a local Snowflake over TLS, reachable through a normal Airflow ``snowflake`` connection.

Why: a new user can run the whole pipeline on one machine with no Snowflake account, through the same code path as
production (the stock ``SnowflakeHook`` and the Snowflake connector). The connector only speaks HTTPS, so we serve
fakesnow's Starlette app with uvicorn and a certificate from a throw-away local CA, and point the client's
``REQUESTS_CA_BUNDLE`` at a bundle that contains that CA.

State lives under one directory (``./.snowstorm`` by default, ``$SNOWSTORM_HOME`` or an argument overrides it)::

    <state_dir>/snowflake/server.json     pid, host and port of the running server
    <state_dir>/snowflake/server.log      the server's output
    <state_dir>/snowflake/data/<DB>.db    one DuckDB file per Snowflake database
    <state_dir>/snowflake/tls/            CA, server certificate and key, client CA bundle
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_snowstorm.local.certificates import ensure_certificates

STATE_DIR_ENV = "SNOWSTORM_HOME"
DEFAULT_STATE_DIR_NAME = ".snowstorm"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_CONN_ID = "snowflake_default"
DEFAULT_DATABASE = "SNOWSTORM"
DEFAULT_SCHEMA = "ANALYTICS"
DEFAULT_WAREHOUSE = "SNOWSTORM_WH"
DEFAULT_ROLE = "SNOWSTORM_ROLE"
LOCAL_ACCOUNT = "snowstorm-local"
# fakesnow accepts any credentials; these only satisfy the connector, which refuses an empty password.
LOCAL_LOGIN = "snowstorm"
LOCAL_PASSWORD = "fakesnow-local-only"  # noqa: S105 - a dummy for the local emulator, never a real secret
CA_BUNDLE_ENV = "REQUESTS_CA_BUNDLE"

_SERVER_MODULE = "airflow_provider_snowstorm.local.fakesnow_server"
_STATE_FILE = "server.json"
_LAST_PORT_FILE = "last_port"  # kept after a stop, so the next start reuses the port
_LOG_FILE = "server.log"
_LOCK_FILE = ".lock"
# Servers started by this process, kept so they can be reaped (a dead child stays a zombie until waited for).
_children: dict[int, subprocess.Popen[bytes]] = {}


class EmulatorError(RuntimeError):
    """The local Snowflake emulator could not be started, reached or stopped."""


@dataclass(frozen=True)
class EmulatorHandle:
    """A running emulator: where it listens and what a client must trust to reach it."""

    host: str
    port: int
    ca_bundle: Path
    pid: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return emulator_dir(self.state_dir) / "data"


def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: the argument, else ``$SNOWSTORM_HOME``, else ``./.snowstorm``."""
    chosen = state_dir or os.environ.get(STATE_DIR_ENV) or Path.cwd() / DEFAULT_STATE_DIR_NAME
    return Path(chosen).expanduser().resolve()


def emulator_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the emulator keeps its pid file, log, data and TLS files."""
    return resolve_state_dir(state_dir) / "snowflake"


def start_emulator(
    state_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    *,
    host: str = DEFAULT_HOST,
    timeout: float = 30.0,
) -> EmulatorHandle:
    """Start the emulator in the background, or return the one already running for this state directory.

    ``port=None`` reuses the port of the last start when it is free (connections written for it, such as
    ``.snowstorm/env.sh``, keep working after a stop and start), else picks a free port. Raises
    :class:`EmulatorError` if a different port was asked for than the running server's, if the port is taken, or if
    the server does not answer within ``timeout`` seconds.
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    root = emulator_dir(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        running = _running_handle(root)
        if running is not None:
            if port is not None and port != running.port:
                raise EmulatorError(
                    f"The emulator for {root} already runs on port {running.port}, not {port}; stop it first."
                )
            return running
        tls = ensure_certificates(root / "tls")
        chosen_port = port or _previous_port(root, host) or _free_port(host)
        if _port_in_use(host, chosen_port):
            raise EmulatorError(f"Port {chosen_port} on {host} is already in use; choose another port.")
        command = [
            sys.executable,
            "-m",
            _SERVER_MODULE,
            "--host",
            host,
            "--port",
            str(chosen_port),
            "--data-dir",
            str(root / "data"),
            "--certfile",
            str(tls.cert),
            "--keyfile",
            str(tls.key),
        ]
        with (root / _LOG_FILE).open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own module, run by the current interpreter
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=root,
            )
        _children[process.pid] = process
        handle = EmulatorHandle(
            host=host,
            port=chosen_port,
            ca_bundle=tls.bundle,
            pid=process.pid,
            state_dir=root.parent,
        )
        try:
            _wait_until_answering(handle, process, timeout)
        except BaseException:
            _terminate_group(process.pid, timeout=5.0)
            raise
        _write_state(root, handle)
        return handle


def emulator_status(state_dir: str | os.PathLike[str] | None = None) -> EmulatorHandle | None:
    """The running emulator for this state directory, or None (a stale pid file is removed)."""
    root = emulator_dir(state_dir)
    if not root.is_dir():
        return None
    with _locked(root):
        return _running_handle(root)


def stop_emulator(
    target: EmulatorHandle | str | os.PathLike[str] | None = None, *, timeout: float = 10.0
) -> bool:
    """Stop the emulator (its whole process group); True if one was running. Data stays on disk."""
    state_dir = target.state_dir if isinstance(target, EmulatorHandle) else target
    root = emulator_dir(state_dir)
    if not root.is_dir():
        return False
    with _locked(root):
        handle = _running_handle(root)
        if handle is None:
            return False
        _terminate_group(handle.pid, timeout=timeout)
        (root / _STATE_FILE).unlink(missing_ok=True)
        return True


@contextlib.contextmanager
def running_emulator(
    state_dir: str | os.PathLike[str] | None = None, port: int | None = None, *, timeout: float = 30.0
) -> Iterator[EmulatorHandle]:
    """Start the emulator for the block and stop it afterwards, unless it was already running before."""
    already_running = emulator_status(state_dir)
    handle = already_running or start_emulator(state_dir, port, timeout=timeout)
    try:
        yield handle
    finally:
        if already_running is None:
            stop_emulator(handle)


def client_environment(handle: EmulatorHandle) -> dict[str, str]:
    """Environment a client process needs to trust the emulator's certificate (no credentials)."""
    return {CA_BUNDLE_ENV: str(handle.ca_bundle)}


def airflow_connection_dict(
    handle: EmulatorHandle,
    *,
    database: str = DEFAULT_DATABASE,
    schema: str = DEFAULT_SCHEMA,
    warehouse: str = DEFAULT_WAREHOUSE,
    role: str = DEFAULT_ROLE,
) -> dict[str, Any]:
    """An Airflow ``snowflake`` connection for the emulator, as the dict behind ``AIRFLOW_CONN_*`` JSON."""
    return {
        "conn_type": "snowflake",
        "login": LOCAL_LOGIN,
        "password": LOCAL_PASSWORD,
        "schema": schema,
        "extra": {
            "account": LOCAL_ACCOUNT,
            "host": handle.host,
            "port": handle.port,
            "database": database,
            "warehouse": warehouse,
            "role": role,
            # no OCSP responder exists for a local CA: do not block on one
            "ocsp_fail_open": True,
            # No "session_parameters" on purpose: the connector writes the server's AUTOCOMMIT into that dict,
            # which SnowflakeHook caches, and its run(autocommit=False) then silently runs in autocommit mode.
        },
    }


def airflow_connection_json(
    handle: EmulatorHandle,
    *,
    database: str = DEFAULT_DATABASE,
    schema: str = DEFAULT_SCHEMA,
    warehouse: str = DEFAULT_WAREHOUSE,
    role: str = DEFAULT_ROLE,
) -> str:
    """The JSON value for ``AIRFLOW_CONN_<ID>`` that points the stock ``SnowflakeHook`` at the emulator."""
    connection = airflow_connection_dict(
        handle, database=database, schema=schema, warehouse=warehouse, role=role
    )
    return json.dumps(connection, sort_keys=True)


def connection_env_var(conn_id: str) -> str:
    """``AIRFLOW_CONN_<ID>``: the variable Airflow reads a connection from."""
    if not conn_id or not conn_id.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"conn_id must be letters, digits, '_' or '-', got {conn_id!r}")
    return f"AIRFLOW_CONN_{conn_id.upper().replace('-', '_')}"


def airflow_environment(
    handle: EmulatorHandle,
    *,
    conn_id: str = DEFAULT_CONN_ID,
    database: str = DEFAULT_DATABASE,
    schema: str = DEFAULT_SCHEMA,
) -> dict[str, str]:
    """Everything a process needs to use the emulator as connection ``conn_id``."""
    return {
        **client_environment(handle),
        connection_env_var(conn_id): airflow_connection_json(handle, database=database, schema=schema),
    }


def shell_exports(environment: Mapping[str, str]) -> str:
    """``export NAME=value`` lines, quoted for POSIX shells (for ``eval "$(... env)"``)."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in environment.items())


def _running_handle(root: Path) -> EmulatorHandle | None:
    """Read the pid file; drop it when its process is gone or is not our server any more."""
    state_file = root / _STATE_FILE
    try:
        state = json.loads(state_file.read_text())
        handle = EmulatorHandle(
            host=str(state["host"]),
            port=int(state["port"]),
            ca_bundle=Path(state["ca_bundle"]),
            pid=int(state["pid"]),
            state_dir=root.parent,
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        state_file.unlink(missing_ok=True)
        return None
    if not _is_our_server(handle.pid):
        state_file.unlink(missing_ok=True)
        return None
    return handle


def _write_state(root: Path, handle: EmulatorHandle) -> None:
    state = {"host": handle.host, "port": handle.port, "pid": handle.pid, "ca_bundle": str(handle.ca_bundle)}
    temporary = root / f"{_STATE_FILE}.tmp"
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(root / _STATE_FILE)
    (root / _LAST_PORT_FILE).write_text(str(handle.port))


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise start/stop/status across processes that share a state directory."""
    with (root / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # a zombie (Z) or dead (X) process has exited, it only waits for its parent
        return stat.read_text().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    return True


def _is_our_server(pid: int) -> bool:
    """Alive and, where /proc tells us, really our server (guards against pid reuse after a reboot)."""
    if not _is_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return _SERVER_MODULE.encode() in cmdline.read_bytes()
    except OSError:
        return True


def _terminate_group(pid: int, *, timeout: float) -> None:
    """SIGTERM the server's process group, SIGKILL it if it does not exit in time, and reap our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_alive(pid):
            time.sleep(0.05)
        if not _is_alive(pid):
            break
    child = _children.pop(pid, None)
    if child is not None:
        child.wait(timeout=timeout)
    if _is_alive(pid):
        raise EmulatorError(f"The emulator (pid {pid}) did not stop.")


def _wait_until_answering(handle: EmulatorHandle, process: subprocess.Popen[bytes], timeout: float) -> None:
    context = ssl.create_default_context(cafile=str(handle.ca_bundle))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise EmulatorError(
                f"The emulator exited with code {process.returncode} while starting; "
                f"see {emulator_dir(handle.state_dir) / _LOG_FILE}:\n{_log_tail(handle)}"
            )
        if _answers(handle, context):
            return
        if time.monotonic() > deadline:
            raise EmulatorError(
                f"The emulator did not answer on {handle.url} within {timeout:.0f} s; "
                f"see {emulator_dir(handle.state_dir) / _LOG_FILE}:\n{_log_tail(handle)}"
            )
        time.sleep(0.1)


def _answers(handle: EmulatorHandle, context: ssl.SSLContext) -> bool:
    """True when the server completes a verified TLS handshake and answers like fakesnow."""
    connection = http.client.HTTPSConnection(handle.host, handle.port, timeout=1.0, context=context)
    try:
        connection.request("POST", "/queries/v1/abort-request", body=b"{}")
        return bool(json.loads(connection.getresponse().read()).get("success"))
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _log_tail(handle: EmulatorHandle, lines: int = 20) -> str:
    try:
        text = (emulator_dir(handle.state_dir) / _LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _previous_port(root: Path, host: str) -> int | None:
    """The port this state directory's emulator used last, if it is free now."""
    try:
        port = int((root / _LAST_PORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 and not _port_in_use(host, port) else None


def _free_port(host: str) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
