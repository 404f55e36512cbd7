"""`aisre docs` (being built in this session by its owner)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Generate reference documentation.", no_args_is_help=True)
