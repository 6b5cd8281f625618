"""`python -m app <command>`: parse, call a service, exit."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from app.core.settings import Settings, get_settings

T = TypeVar("T")


def _database_url(settings: Settings) -> str:
    from app.core.db import resolve_database_url

    return resolve_database_url(settings)


def _with_session(url: str, settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    from app.core.db import create_engine, create_sessionmaker

    async def run() -> T:
        engine = create_engine(url, settings)
        try:
            async with create_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.core.migrate import upgrade

    url = _database_url(settings)
    upgrade(url)
    # Worker processes inherit the resolved URL; the embedded server lives as long as
    # this process does.
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through Python
    # (not the default handler) lets atexit stop the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "app.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.migrate import upgrade

    upgrade(_database_url(settings))
    print("migrations applied", file=sys.stderr)
    return 0


def cmd_apikey(args: argparse.Namespace, settings: Settings) -> int:
    from app.apikeys import service
    from app.core.migrate import upgrade

    url = _database_url(settings)
    upgrade(url)
    if args.apikey_command == "create":
        try:
            scopes = service.parse_scopes(args.scopes)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        name = args.name.strip()
        if not name:
            print("error: --name must not be empty", file=sys.stderr)
            return 2
        _, key = _with_session(url, settings, lambda s: service.create(s, name=name, scopes=scopes))
        print(key)
        return 0
    if args.apikey_command == "list":
        rows = _with_session(url, settings, service.list_keys)
        for row in rows:
            state = "revoked" if row.revoked_at else "active"
            print(
                f"{row.prefix}\t{row.name}\t{','.join(row.scopes)}\t{state}\t{row.created_at:%Y-%m-%d}"
            )
        return 0
    revoked = _with_session(url, settings, lambda s: service.revoke(s, prefix=args.prefix))
    if not revoked:
        print(f"error: no active key with prefix {args.prefix}", file=sys.stderr)
        return 1
    print(f"revoked {args.prefix}", file=sys.stderr)
    return 0


def cmd_recompute(args: argparse.Namespace, settings: Settings) -> int:
    from app.classification.recompute import recompute
    from app.core.migrate import upgrade
    from app.core.types import parse_time

    try:
        as_of = parse_time(args.as_of) if args.as_of else None
    except ValueError as exc:
        print(f"error: --as-of {exc}", file=sys.stderr)
        return 2
    url = _database_url(settings)
    upgrade(url)
    with _progress_bar("classifying", unit="customers") as advance:
        summary = _with_session(
            url, settings, lambda s: recompute(s, as_of=as_of, progress=advance)
        )
    print(summary.line())
    return 0


@contextmanager
def _progress_bar(description: str, *, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on a terminal; silence otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True)
    try:

        def advance(done: int, total: int) -> None:
            if total:
                bar.total = total
            bar.update(done)

        yield advance
    finally:
        bar.close()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.core.migrate import upgrade
    from app.core.problems import Problem
    from app.events.importer import UnreadableFile, import_file, inspect

    path = Path(args.file)
    try:
        # A file that cannot be imported at all is told before the database is touched.
        inspect(path, args.kind)
    except UnreadableFile as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = _database_url(settings)
    upgrade(url)

    def reject(line: int, reason: str) -> None:
        _write_stderr(f"line {line}: {reason}")

    with _progress_bar("importing", unit="B") as advance:
        done = 0

        def progress(position: int, size: int) -> None:
            nonlocal done
            advance(position - done, size)
            done = position

        try:
            summary = _with_session(
                url,
                settings,
                lambda s: import_file(
                    s, path=path, kind=args.kind, reject=reject, progress=progress
                ),
            )
        except UnreadableFile as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Problem as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
    print(summary.line())
    return 1 if summary.rejected else 0


def _write_stderr(message: str) -> None:
    """A line on stderr that leaves a progress bar on a terminal intact."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratum", description="Stratum customer classification")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=cmd_migrate)

    apikey = commands.add_parser("apikey", help="manage API keys")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True)
    create = apikey_commands.add_parser("create", help="print a new key on stdout")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    apikey_commands.add_parser("list", help="list keys (prefix, name, scopes, state)")
    revoke = apikey_commands.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    apikey.set_defaults(handler=cmd_apikey)

    load = commands.add_parser("import", help="load a CSV or JSON Lines export")
    load.add_argument("file")
    load.add_argument("--kind", choices=["customers", "events"], default=None)
    load.set_defaults(handler=cmd_import)

    recompute = commands.add_parser(
        "recompute", help="classify every customer and store the result (with change history)"
    )
    recompute.add_argument("--as-of", help="RFC 3339 time (default: now)")
    recompute.set_defaults(handler=cmd_recompute)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from asyncpg import PostgresError
    from sqlalchemy.exc import InterfaceError, OperationalError

    from app.core.observability import configure_logging

    args = build_parser().parse_args(argv)
    settings = get_settings()
    # Logs go to stderr: stdout carries only what a command promises (a key, a summary).
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        code: int = args.handler(args, settings)
    except (OSError, OperationalError, InterfaceError, PostgresError) as exc:
        print(f"error: the database is not reachable: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
