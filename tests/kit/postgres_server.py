"""A throwaway PostgreSQL server on 127.0.0.1, started from the binaries on the machine.

The cluster lives in a fresh temporary directory (fsync off: it is thrown away), listens on a
free port and on a socket in that directory, and is stopped and deleted at the end. PostgreSQL
refuses to run as root, so as root it runs as an unprivileged user (`nobody`, or `postgres`
when the Debian package made one) through `setpriv`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "bot"
PASSWORD = "test-password"


class PostgresUnavailable(Exception):
    """No PostgreSQL binaries on this machine, or the server would not start."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}"


def find_binaries() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` with a server in it (or PG_BIN)."""
    configured = os.environ.get("PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Starts a server, yields where it listens, and stops and deletes it afterwards."""
    binaries = find_binaries()
    if binaries is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install"
            " postgresql), and PG_BIN is not set"
        )
    root = Path(tempfile.mkdtemp(prefix="suno-pg-"))
    data = root / "data"
    run_as = _unprivileged_user()
    try:
        _prepare(root, run_as)
        _run(run_as, [str(binaries / "initdb"), *_initdb_args(root, data)])
        port = _free_port()
        _run(
            run_as,
            [
                str(binaries / "pg_ctl"),
                "start",
                "--wait",
                "--timeout=60",
                f"--pgdata={data}",
                f"--log={root / 'server.log'}",
                f"--options=-c listen_addresses=127.0.0.1 -c port={port}"
                f" -c unix_socket_directories={root} -c fsync=off -c synchronous_commit=off"
                " -c full_page_writes=off -c max_connections=300",
            ],
            log=root / "server.log",
        )
        try:
            yield PostgresServer("127.0.0.1", port)
        finally:
            _run(run_as, [str(binaries / "pg_ctl"), "stop", f"--pgdata={data}", "--mode=fast"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _initdb_args(root: Path, data: Path) -> list[str]:
    password_file = root / "password"
    return [
        f"--pgdata={data}",
        f"--username={USER}",
        f"--pwfile={password_file}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-sync",
    ]


def _prepare(root: Path, run_as: pwd.struct_passwd | None) -> None:
    (root / "password").write_text(PASSWORD + "\n")
    if run_as is not None:
        for path in (root, root / "password"):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    root.chmod(0o700)


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Whom to run the server as when this process is root; None when it is not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, and there is no postgres or nobody user")


def _run(run_as: pwd.struct_passwd | None, command: list[str], log: Path | None = None) -> None:
    if run_as is not None:
        command = [
            "setpriv",
            f"--reuid={run_as.pw_uid}",
            f"--regid={run_as.pw_gid}",
            "--clear-groups",
            "--",
            *command,
        ]
    result = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, found above
        command,
        capture_output=True,
        text=True,
        check=False,
        # PostgreSQL's tools change into no directory of their own; the caller's may be
        # unreadable for the unprivileged user.
        cwd="/",
        env={**os.environ, "LC_ALL": "C.UTF-8", "HOME": "/"},
    )
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip()
        if log is not None and log.exists():
            detail = f"{detail}\n{log.read_text()[-2000:]}"
        program = next(Path(part).name for part in command if "/" in part)
        raise PostgresUnavailable(f"{program} failed: {detail}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
