"""docs/cli-reference.md, generated from the click command tree that typer builds for `aisre`.

Every command and subcommand in the order they are registered, with its help, its usage line, and
each argument and option: flags, type (the choices of a choice), default, environment variable and
help. Hidden commands and options are left out, as `--help` leaves them out.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import typer

REGENERATE = "aisre docs cli -o docs/cli-reference.md"


def root_command() -> Any:
    """The `aisre` command as click sees it (typer builds it on its own copy of click; imported here:
    the CLI imports this module)."""
    from aisre.cli.main import app

    return typer.main.get_command(app)


def commands(command: Any = None, path: str = "aisre") -> Iterator[tuple[str, Any]]:
    """(`aisre slo status`, command) for the root and every command under it, depth first."""
    command = command or root_command()
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from commands(sub, f"{path} {name}")


def command_paths() -> list[str]:
    """Every command's full name (`aisre`, `aisre log`, `aisre log tail`, ...)."""
    return [path for path, _ in commands()]


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# aisre command-line reference",
        "",
        f"<!-- generated from the typer app by `{REGENERATE}`; do not edit by hand -->",
        "",
        "Every `aisre` command, its arguments and options, as `aisre COMMAND --help` prints them. Bad",
        "input exits 2 with one line naming the option or key that is wrong; each command's help says",
        "what its other exit codes mean. Every command also takes `--help`.",
        "",
        "## Commands",
        "",
    ]
    entries = list(commands())
    for path, command in entries[1:]:
        depth = path.count(" ") - 1
        out.append(f"{'  ' * depth}- [`{path}`](#{_anchor(path)}): {_summary(command)}")
    for path, command in entries:
        out.extend(["", f"## `{path}`", ""])
        help_text = _help(command)
        if help_text:
            out.extend([help_text, ""])
        out.extend(["```", f"{path} {_usage(command)}".rstrip(), "```"])
        params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
        if hasattr(command, "commands") and path != "aisre":  # the root's are the list above
            subs = [(n, c) for n, c in command.commands.items() if not c.hidden]
            out.extend(["", "| command | what it does |", "| --- | --- |"])
            out.extend(f"| [`{path} {n}`](#{_anchor(f'{path} {n}')}) | {_cell(_summary(c))} |" for n, c in subs)
        if params:
            out.extend(["", "| argument / option | type | default | description |", "| --- | --- | --- | --- |"])
            out.extend(_param_row(command, p) for p in params)
    return "\n".join(out) + "\n"


def _usage(command: Any) -> str:
    pieces = command.collect_usage_pieces(_context(command))
    return " ".join(re.sub(r"^\{(.+)\}$", lambda m: m.group(1).upper(), p) for p in pieces)


def _context(command: Any) -> Any:
    from typer._click.core import Context  # typer's own click: the one its commands are built on

    return Context(command, info_name="x")


def _help(command: Any) -> str:
    text = inspect.cleandoc(command.help or "")
    return text.split("\f", 1)[0].strip()


def _summary(command: Any) -> str:
    text = command.short_help or _help(command)
    first = " ".join(text.split("\n\n", 1)[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", first)
    return match.group(1) if match else first


_TYPES = {"str": "text", "int": "integer", "float": "number", "int range": "integer", "float range": "number"}
_SUFFIX = re.compile(r"\s*\[([^\[\]]+)\]\s*$")


def _param_row(command: Any, param: Any) -> str:
    """One row from the help record `--help` prints: `('-c, --config <str>', 'Help.  [default: x]')`."""
    record = param.get_help_record(_context(command))
    flags, help_text = (record[0], record[1]) if record else (param.name, "")
    kind = ""
    match = re.match(r"^(.*?)\s+<(.+)>$", flags)
    if match:
        flags, kind = match.group(1), match.group(2)
    if "|" in kind:
        kind = "one of " + ", ".join(f"`{c}`" for c in kind.split("|"))
    else:
        kind = re.sub(r"^list\[(.+)\]$", r"\1", kind)  # a repeatable option: typer shows list[str]
        kind = _TYPES.get(kind, kind) if kind else "flag"
    if param.param_type_name == "argument":
        names = f"`{param.name.upper()}`"
        if param.nargs == -1:
            kind += ", one or more"
    else:
        names = ", ".join(f"`{n.strip()}`" for n in flags.split(","))
        if param.multiple:
            kind += ", repeatable"
    default = ""
    while (suffix := _SUFFIX.search(help_text)) is not None:
        text = suffix.group(1)
        help_text = help_text[: suffix.start()]
        if text == "required":
            default = "required"
        elif text.startswith("default: "):
            default = f"`{text.removeprefix('default: ')}`"
        elif text.startswith("env var: "):
            help_text += f" (env: `{text.removeprefix('env var: ')}`)"
        elif "x" in text:
            kind += f" ({text})"
        else:
            help_text += f" [{text}]"
    return "| " + " | ".join(_cell(c) for c in (names, kind, default, help_text)) + " |"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
