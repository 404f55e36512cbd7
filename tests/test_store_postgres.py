"""PostgreSQL store specifics the shared contract does not cover: the optional dependency, URL redaction."""

from __future__ import annotations

import subprocess
import textwrap

from aisre.store.postgres import redact

from .conftest import PYTHON


def test_a_postgresql_url_without_psycopg_names_the_extra_to_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if aisre[postgres] were not installed
        from aisre import open_store
        from aisre.errors import MissingDependencyError
        try:
            open_store("postgresql://aisre@127.0.0.1:5432/aisre")
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "the PostgreSQL store needs the optional package 'psycopg'" in out.stdout
    assert "pip install 'aisre[postgres]'" in out.stdout


def test_redaction_hides_only_the_password() -> None:
    assert redact("postgresql://u:pw@db.example:5432/x?sslmode=require") == (
        "postgresql://u:***@db.example:5432/x?sslmode=require"
    )
    assert redact("postgresql://u@db/x") == "postgresql://u@db/x"
    assert redact("postgresql://u:p%40ss@[::1]:5432/x") == "postgresql://u:***@[::1]:5432/x"
