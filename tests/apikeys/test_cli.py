from __future__ import annotations

import httpx

from app.apikeys.service import parse_scopes
from tests.support.cli import run_cli


async def test_create_prints_only_a_working_key(
    database_url: str, client: httpx.AsyncClient
) -> None:
    result = run_cli(database_url, "apikey", "create", "--name", "crm", "--scopes", "read,write")
    assert result.returncode == 0
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    assert key.startswith("sk_")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/customers", headers=headers)).status_code == 200
    assert (await client.get("/v1/policy", headers=headers)).status_code == 403

    listed = run_cli(database_url, "apikey", "list")
    assert "crm" in listed.stdout and key not in listed.stdout
    prefix = key.split("_")[1]
    assert run_cli(database_url, "apikey", "revoke", prefix).returncode == 0
    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.key_cache.clear()
    assert (await client.get("/v1/customers", headers=headers)).status_code == 401


def test_bad_scopes_exit_2(database_url: str) -> None:
    result = run_cli(database_url, "apikey", "create", "--name", "x", "--scopes", "root")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "scopes" in result.stderr


def test_parse_scopes() -> None:
    assert parse_scopes("write, read,read") == ["read", "write"]
    for bad in ("", "read,sudo", ","):
        try:
            parse_scopes(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_migrate_is_idempotent(database_url: str) -> None:
    assert run_cli(database_url, "migrate").returncode == 0
    assert run_cli(database_url, "migrate").returncode == 0


def test_unreachable_database_is_a_clear_error() -> None:
    result = run_cli("postgresql://postgres@127.0.0.1:1/nowhere", "migrate")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the database is not reachable")
    assert "Traceback" not in result.stderr
