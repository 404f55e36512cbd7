"""`aisre docs config|cli`: the reference documentation, generated from the code.

The committed copies (docs/config-reference.md, docs/aisre.schema.json, docs/cli-reference.md) are
regenerated with these commands and checked against them by tests/test_docs_reference.py.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from aisre.cli.options import output_file, write_text

app = typer.Typer(help="Generate reference documentation from the code.", no_args_is_help=True)


def _emit(text: str, out: str | None) -> None:
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    output_file(out, "--out")
    write_text(out, text, "--out")


@app.command("config")
def config_command(
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write here instead of stdout ('-' = stdout).")] = None,
    json_schema: Annotated[
        bool, typer.Option("--json-schema", help="The JSON Schema of aisre.yaml (for editors) instead of Markdown.")
    ] = False,
) -> None:
    """Every key of aisre.yaml as Markdown (type, default, allowed values, meaning), or its JSON Schema.

    Generated from the config models the loader validates with. Regenerate the committed copies with
    `aisre docs config -o docs/config-reference.md` and `aisre docs config --json-schema -o docs/aisre.schema.json`."""
    if json_schema:
        from aisre.docs_reference.config_schema import schema

        _emit(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n", out)
    else:
        from aisre.docs_reference.config_reference import render

        _emit(render(), out)


@app.command("cli")
def cli_command(
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write here instead of stdout ('-' = stdout).")] = None,
) -> None:
    """Every aisre command, argument and option as Markdown, from the command tree itself.

    Regenerate the committed copy with `aisre docs cli -o docs/cli-reference.md`."""
    from aisre.docs_reference.cli_reference import render

    _emit(render(), out)
