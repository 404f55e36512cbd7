"""API keys: keyed-hash storage, constant-time verification, revocation seen by every process, the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.store import SQLiteStore
from aisre.store.expiry import parse_expiry
from aisre.store.keys import (
    DuplicateKeyNameError,
    ExpiredKeyError,
    InvalidKeyOptionError,
    KeyNotFoundError,
    KeySecretError,
    KeyStore,
    RevokedKeyError,
    UnknownKeyError,
)

from .conftest import PYTHON

SECRET_FORMAT = re.compile(r"sk-aisre-(key_[0-9a-f]{12})-[A-Za-z0-9_-]{43}")


@pytest.fixture(autouse=True)
def no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISRE_KEY_SECRET", raising=False)


@pytest.fixture
def keys(db_path: Path):
    ks = KeyStore(db_path)
    yield ks
    ks.close()


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("AISRE_KEY_SECRET", "AISRE_CONFIG")}
    return subprocess.run(
        [PYTHON, "-m", "aisre", "keys", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **(env or {})},
        timeout=60,
    )


def test_create_returns_a_secret_that_verifies_to_the_same_record(keys: KeyStore):
    record, secret = keys.create(
        "alice", models=["gpt-4o"], rpm=60, tpm=10_000, max_concurrent=4, budget_usd=25.0, budget_period="monthly"
    )
    match = SECRET_FORMAT.fullmatch(secret)
    assert match and match[1] == record.id
    assert keys.verify(secret) == record == keys.get(record.id)
    assert (record.rpm, record.tpm, record.max_concurrent, record.budget_usd) == (60, 10_000, 4, 25.0)
    _, other = keys.create("bob")
    assert other != secret and keys.verify(other).name == "bob"


def test_wrong_malformed_and_unknown_secrets_get_one_message(keys: KeyStore):
    record, secret = keys.create("alice")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    unknown_id = secret.replace(record.id, "key_000000000000")
    malformed = ["", "junk", secret + "x", secret[:-1], secret.replace("sk-aisre-", "sk-other-"), "x" * 10_000]
    messages = set()
    for bad in [wrong, unknown_id, *malformed]:
        with pytest.raises(UnknownKeyError) as info:
            keys.verify(bad)
        messages.add(str(info.value))
    assert messages == {"invalid API key"}
    assert keys.verify(secret).id == record.id  # a wrong guess does not lock the real key out


def test_revoked_and_expired_keys_are_refused_with_safe_messages(db_path: Path):
    clock = ManualClock()
    keys = KeyStore(db_path, clock=clock)
    expiring, expiring_secret = keys.create("temp", expires_at=clock.now() + 60)
    revoked, revoked_secret = keys.create("gone")
    assert keys.verify(expiring_secret).id == expiring.id
    clock.advance(60)
    with pytest.raises(ExpiredKeyError) as expired:
        keys.verify(expiring_secret)
    assert keys.revoke("gone").revoked_at == clock.now()
    with pytest.raises(RevokedKeyError) as refused:
        keys.verify(revoked_secret)
    for error, secret, key_id in ((expired, expiring_secret, expiring.id), (refused, revoked_secret, revoked.id)):
        assert key_id in str(error.value) and secret not in str(error.value)
    assert [r.name for r in keys.list()] == ["temp"]  # expired keys are listed, revoked ones only on request
    statuses = {r.name: r.status(clock.now()) for r in keys.list(include_revoked=True)}
    assert statuses == {"temp": "expired", "gone": "revoked"}


def test_no_secret_in_the_database_files_and_the_hash_is_keyed(db_path: Path, tmp_path: Path):
    store = SQLiteStore(db_path)
    keys = KeyStore(store)
    made = [keys.create(f"svc-{i}", models=["m"])[1] for i in range(5)]
    out = cli("create", "--name", "from-cli", "-q", "--store", f"sqlite:///{db_path}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    made.append(out.stdout.strip())
    for secret in made:
        keys.verify(secret)
    raw = b"".join(
        p.read_bytes()
        for p in tmp_path.iterdir()
        if p.name.startswith(db_path.name) and not p.name.endswith(".key-secret")
    )
    assert len(raw) > 0 and (tmp_path / (db_path.name + "-wal")).exists()
    rows = dict(sqlite3.connect(db_path).execute("SELECT id, hash FROM api_keys").fetchall())
    server_key = (tmp_path / (db_path.name + ".key-secret")).read_bytes().strip()
    for secret in made:
        random_part = secret.removeprefix(f"sk-aisre-{SECRET_FORMAT.fullmatch(secret)[1]}-")  # may contain "-"
        assert secret.encode() not in raw and random_part.encode() not in raw
        stored = rows[SECRET_FORMAT.fullmatch(secret)[1]]
        assert stored != hashlib.sha256(secret.encode()).hexdigest()
        assert stored == hmac.new(server_key, secret.encode(), "sha256").hexdigest()
    listing = cli("list", "--all", "--store", f"sqlite:///{db_path}", cwd=tmp_path)
    assert listing.returncode == 0 and "from-cli" in listing.stdout and "svc-4" in listing.stdout
    for secret in made:
        random_part = secret.removeprefix(f"sk-aisre-{SECRET_FORMAT.fullmatch(secret)[1]}-")
        assert secret not in listing.stdout and random_part not in listing.stdout
    assert not any(h in listing.stdout for h in rows.values())


def test_revocation_through_the_cli_is_refused_at_once_by_a_keystore_opened_earlier(keys: KeyStore, tmp_path: Path):
    record, secret = keys.create("alice")
    _, other_secret = keys.create("bob")
    for _ in range(3):  # warm every per-process cache
        assert keys.verify(secret).id == record.id
    out = cli("revoke", record.id, "--store", f"sqlite:///{keys.store.path}", cwd=tmp_path)
    assert out.returncode == 0 and f"revoked {record.id}" in out.stdout, out.stderr
    with pytest.raises(RevokedKeyError):
        keys.verify(secret)
    assert keys.verify(other_secret).name == "bob"
    by_name = cli("revoke", "bob", "--store", f"sqlite:///{keys.store.path}", cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    with pytest.raises(RevokedKeyError):
        keys.verify(other_secret)


def test_models_restriction(keys: KeyStore):
    limited, secret = keys.create("limited", models=["gpt-4o", "llama-3"])
    everything, _ = keys.create("everything")
    assert keys.verify(secret).allows("gpt-4o") and limited.allows("llama-3")
    assert not limited.allows("gpt-4o-mini") and not limited.allows("")
    assert everything.models is None and everything.allows("anything")


def test_keystores_without_the_env_secret_share_a_0600_secret_file(db_path: Path, tmp_path: Path):
    first = KeyStore(db_path)
    record, secret = first.create("alice")
    secret_file = tmp_path / "aisre.db.key-secret"
    assert first.secret_file == secret_file and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(secret_file.read_text().strip())) == 32
    second = KeyStore(SQLiteStore(db_path))
    assert second.verify(secret).id == record.id
    out = cli("create", "--name", "bob", "-q", "--store", f"sqlite:///{db_path}", cwd=tmp_path)
    assert first.verify(out.stdout.strip()).name == "bob"
    # The file's contents, given as the variable instead, is the same server secret.
    assert KeyStore(db_path, server_secret=secret_file.read_text()).verify(secret).id == record.id
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_first_uses_agree_on_one_secret_file(db_path: Path, tmp_path: Path):
    store = f"sqlite:///{db_path}"
    SQLiteStore(db_path).close()
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "aisre", "keys", "create", "--name", f"k{i}", "-q", "--store", store],
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "AISRE_KEY_SECRET"},
        )
        for i in range(4)
    ]
    secrets = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    keys = KeyStore(db_path)
    assert sorted(keys.verify(s).name for s in secrets) == ["k0", "k1", "k2", "k3"]


def test_env_secret_is_used_and_must_match(db_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_KEY_SECRET", "a" * 40)
    keys = KeyStore(db_path)
    _, secret = keys.create("alice")
    assert not keys.secret_file.exists() and keys.server_secret_source == "$AISRE_KEY_SECRET"
    monkeypatch.setenv("AISRE_KEY_SECRET", "b" * 40)
    with pytest.raises(UnknownKeyError):
        KeyStore(db_path).verify(secret)
    monkeypatch.setenv("AISRE_KEY_SECRET", "short")
    with pytest.raises(KeySecretError, match="at least 32 characters"):
        KeyStore(db_path).create("bob")


def test_a_secret_file_others_can_read_is_refused(db_path: Path):
    keys = KeyStore(db_path)
    keys.create("alice")
    keys.secret_file.chmod(0o644)
    with pytest.raises(KeySecretError, match="chmod 600"):
        KeyStore(db_path).create("bob")


def test_names_are_unique_among_active_keys(keys: KeyStore):
    first, _ = keys.create("alice")
    with pytest.raises(DuplicateKeyNameError, match="'alice'"):
        keys.create("alice")
    revoked_at = keys.revoke("alice").revoked_at
    second, secret = keys.create("alice")
    assert second.id != first.id and keys.verify(secret).id == second.id
    assert [r.id for r in keys.list(include_revoked=True)] == [first.id, second.id]
    with pytest.raises(KeyNotFoundError, match="no active API key named 'nobody'"):
        keys.revoke("nobody")
    with pytest.raises(KeyNotFoundError, match="no API key with id 'key_000000000000'"):
        keys.revoke("key_000000000000")
    assert keys.revoke(first.id).revoked_at == revoked_at  # revoking twice keeps the first time


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": " padded"}, "name"),
        ({"name": "key_0123456789ab"}, "name"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": 1.5}, "tpm"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"budget_usd": float("nan")}, "budget_usd"),
        ({"budget_usd": 5, "budget_period": "weekly"}, "budget_period"),
        ({"budget_period": "daily"}, "budget_period"),
        ({"models": []}, "models"),
        ({"models": "gpt-4o"}, "models"),
        ({"expires_at": 0.0}, "expires_at"),
    ],
)
def test_create_names_the_bad_argument(keys: KeyStore, kwargs: dict, field: str):
    with pytest.raises(InvalidKeyOptionError) as info:
        keys.create(**{"name": "ok", **kwargs})
    assert info.value.field == field and str(info.value).startswith(f"{field}: expected ")
    assert keys.list(include_revoked=True) == []


def test_cli_create_list_revoke(tmp_path: Path):
    store = f"sqlite:///{tmp_path / 'new.db'}"  # create makes the store if nothing was recorded yet
    out = cli(
        "create",
        "--name",
        "team-a",
        "--models",
        "gpt-4o, llama-3",
        "--rpm",
        "60",
        "--tpm",
        "5000",
        "--max-concurrent",
        "3",
        "--budget-usd",
        "12.5",
        "--budget-period",
        "daily",
        "--expires",
        "30d",
        "--store",
        store,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "store it now; it cannot be shown again" in out.stdout
    secret = SECRET_FORMAT.search(out.stdout)[0]
    record = KeyStore(tmp_path / "new.db").verify(secret)
    assert record.models == ("gpt-4o", "llama-3") and (record.rpm, record.tpm, record.max_concurrent) == (60, 5000, 3)
    assert (record.budget_usd, record.budget_period) == (12.5, "daily")
    assert record.expires_at == pytest.approx(record.created_at + 30 * 86_400, abs=5)
    listed = cli("list", "--store", store, cwd=tmp_path)
    assert listed.returncode == 0 and record.id in listed.stdout and "team-a" in listed.stdout
    assert "active" in listed.stdout and "$12.5 daily" in listed.stdout
    assert cli("revoke", "team-a", "--store", store, cwd=tmp_path).returncode == 0
    assert record.id not in cli("list", "--store", store, cwd=tmp_path).stdout
    assert "revoked" in cli("list", "--all", "--store", store, cwd=tmp_path).stdout
    again = cli("revoke", record.id, "--store", store, cwd=tmp_path)
    assert again.returncode == 0 and "already revoked" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpm", "0"], "--rpm: expected a whole number from 1 to 100,000,000, got 0"),
        (["--tpm", "-5"], "--tpm: expected a whole number from 1 to 100,000,000, got -5"),
        (["--max-concurrent", "0"], "--max-concurrent: expected a whole number from 1 to 100,000,000, got 0"),
        (["--rpm", "many"], "--rpm"),
        (["--budget-usd", "0"], "--budget-usd: expected a number of US dollars > 0, got 0.0"),
        (
            ["--budget-usd", "5", "--budget-period", "weekly"],
            "--budget-period: expected one of daily, monthly, got 'weekly'",
        ),
        (["--budget-period", "daily"], "--budget-period: expected --budget-usd too"),
        (["--expires", "soon"], "--expires: expected a duration from now like 30d"),
        (["--expires", "2001-01-01"], "got '2001-01-01'"),
        (["--models", "a,,b"], "--models: expected comma-separated model names"),
        (["--name", " "], "--name: expected 1 to 100 characters"),
    ],
)
def test_cli_create_rejects_bad_options_naming_them(tmp_path: Path, args: list[str], message: str):
    name = [] if "--name" in args else ["--name", "x"]
    out = cli("create", *name, *args, "--store", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    assert out.returncode == 2 and message in " ".join(out.stderr.split()), out.stderr
    assert "sk-aisre-" not in out.stdout


def test_cli_errors_for_missing_store_and_unknown_key(tmp_path: Path):
    missing = cli("list", "--store", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert missing.returncode == 2 and "no store at" in missing.stderr
    assert cli("create", "--name", "a", "--store", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path).returncode == 0
    unknown = cli("revoke", "nobody", "--store", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    assert unknown.returncode == 2 and "no active API key named 'nobody'" in unknown.stderr
    no_dir = cli("create", "--name", "a", "--store", f"sqlite:///{tmp_path / 'nope' / 'k.db'}", cwd=tmp_path)
    assert no_dir.returncode == 2 and "--store" in no_dir.stderr and "does not exist" in no_dir.stderr
    weak = cli(
        "create",
        "--name",
        "b",
        "--store",
        f"sqlite:///{tmp_path / 'k.db'}",
        cwd=tmp_path,
        env={"AISRE_KEY_SECRET": "short"},
    )
    assert weak.returncode == 2 and "AISRE_KEY_SECRET" in weak.stderr and "at least 32" in weak.stderr


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", NOW + 30 * 86_400),
        (" 12h ", NOW + 12 * 3600),
        ("1.5h", NOW + 5400),
        ("2w", NOW + 2 * 604_800),
        ("90m", NOW + 5400),
        ("3600s", NOW + 3600),
        ("2027-01-31", dt.datetime(2027, 1, 31, tzinfo=dt.UTC).timestamp()),
        ("20270131", dt.datetime(2027, 1, 31, tzinfo=dt.UTC).timestamp()),
        ("2027-01-31T18:00Z", dt.datetime(2027, 1, 31, 18, tzinfo=dt.UTC).timestamp()),
        ("2027-01-31T18:00+02:00", dt.datetime(2027, 1, 31, 16, tzinfo=dt.UTC).timestamp()),
        (1_900_000_000, 1_900_000_000.0),
        (1_900_000_000.5, 1_900_000_000.5),
        ("1900000000", 1_900_000_000.0),
    ],
)
def test_expiry_forms_shared_by_cli_and_admin_api(value, expected):
    assert parse_expiry(value, NOW) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "expires: expected a duration from now like 30d, 12h"),
        ("30x", "or Unix epoch seconds"),
        ("", "ISO 8601"),
        (True, "got True"),
        (["30d"], "got ['30d']"),
        (float("inf"), "got inf"),
        ("999999999999w", "a duration from now"),
        ("2001-01-01", "expected a time in the future (now is 2027-01-15T08:00:00.000Z; '2001-01-01' is 2001-01-01"),
        (NOW, "expected a time in the future"),
        ("1960-01-01", "is before 1970"),
    ],
)
def test_expiry_errors_name_the_field_and_every_accepted_form(value, message):
    with pytest.raises(InvalidKeyOptionError) as caught:
        parse_expiry(value, NOW)
    assert caught.value.field == "expires" and message in str(caught.value)


def test_create_refuses_models_outside_the_known_ones(keys: KeyStore):
    with pytest.raises(InvalidKeyOptionError) as caught:
        keys.create("a", models=["chat", "nosuch", "ghost"], known_models={"chat", "fraud"})
    assert str(caught.value) == "models: expected models the config serves (chat, fraud), got 'nosuch, ghost'"
    record, _ = keys.create("a", models=["chat"], known_models={"chat", "fraud"})
    assert record.models == ("chat",) and keys.create("b", models=["anything"])[0].models == ("anything",)


def test_cli_create_refuses_models_the_config_does_not_serve(tmp_path: Path):
    (tmp_path / "aisre.yaml").write_text(
        "store: sqlite:///keys.db\n"
        "models:\n"
        "  chat: {protocol: openai, versions: {v1: {replicas: ['http://127.0.0.1:9/v1']}}}\n"
        "  fraud: {protocol: oip, versions: {v1: {replicas: ['http://127.0.0.1:9']}}}\n"
    )
    given = cli("create", "--name", "a", "--models", "chat,nosuchmodel", "-c", "aisre.yaml", cwd=tmp_path)
    assert given.returncode == 2 and len(given.stderr.strip().splitlines()) == 1, given.stderr
    assert "--models: expected models the config serves (chat, fraud), got 'nosuchmodel'" in given.stderr
    found = cli("create", "--name", "a", "--models", "nosuchmodel", cwd=tmp_path)  # ./aisre.yaml is found
    assert found.returncode == 2 and "'nosuchmodel'" in found.stderr and "sk-aisre-" not in found.stdout
    ok = cli("create", "--name", "a", "--models", "chat", "--expires", "32503680000", "-q", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    record = KeyStore(tmp_path / "keys.db").verify(ok.stdout.strip())
    assert record.models == ("chat",) and record.expires_at == 32_503_680_000.0
