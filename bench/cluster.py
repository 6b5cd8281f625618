"""Throw-away PostgreSQL servers for the scaling tests and bench: a primary, a streaming
replica of it and a PgBouncer in front, each on a free loopback port in a temporary
directory."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def postgres_bin() -> Path | None:
    """A directory with initdb, pg_ctl, pg_basebackup and postgres, or None."""
    candidates: list[Path] = []
    try:
        import pgserver._commands

        candidates.append(pgserver._commands.POSTGRES_BIN_PATH)
    except ImportError:
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if all((directory / tool).exists() for tool in _TOOLS):
            return directory
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """PostgreSQL and PgBouncer refuse to run as root: use an unprivileged user then."""
    if os.geteuid() != 0:
        return None
    name = "pgserver"  # the user the embedded server runs as under root, too
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/sh", name], check=True, capture_output=True)
    return name


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user)
        for parent in path.parents:
            if parent == Path("/tmp") or parent == parent.parent:
                break
            parent.chmod(parent.stat().st_mode | 0o055)


@dataclass
class Node:
    """One PostgreSQL server (primary or replica)."""

    bin: Path
    data: Path
    port: int
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.user,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def start_primary(root: Path, bin: Path) -> Node:
    user = _server_user()
    data = root / "primary"
    data.mkdir(mode=0o700)
    _own(root, user)
    _own(data, user)
    node = Node(bin=bin, data=data, port=free_port(), user=user)
    node._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    with (data / "postgresql.conf").open("a") as conf:
        # Fast and small: throw-away data, no durability needed.
        conf.write(
            "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nfsync = off\n"
            "synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n"
            "max_connections = 200\n"
        )
    node.start()
    return node


def start_replica(primary: Node, root: Path) -> Node:
    data = root / "replica"
    node = Node(bin=primary.bin, data=data, port=free_port(), user=primary.user)
    node._run(
        "pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(data),
        "-R",
        "-X",
        "stream",
        "--checkpoint=fast",  # not a spread checkpoint: minutes after a bulk load
        "--no-sync",
    )
    node.start()
    return node


async def wait_for(url: str, sql: str, *args: object, within: float = 20) -> None:
    """Until `sql` returns true on `url` (e.g. the replica has caught up)."""
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
            try:
                if await conn.fetchval(sql, *args):
                    return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sql!r} not true on {url} within {within} s")
        await asyncio.sleep(0.1)


@dataclass
class Bouncer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_pgbouncer(binary: str, server: Node, root: Path, *, pool_size: int = 4) -> Bouncer:
    """PgBouncer in transaction pooling mode in front of `server`."""
    directory = root / "pgbouncer"
    directory.mkdir()
    _own(directory, server.user)
    port = free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port={server.port}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {directory / 'log'}\n"
    )
    for path in directory.iterdir():
        _own(path, server.user)
    process = subprocess.Popen(
        [binary, str(directory / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=server.user,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Bouncer(process=process, port=port)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"pgbouncer did not start: {(directory / 'log').read_text()[-500:]}")
