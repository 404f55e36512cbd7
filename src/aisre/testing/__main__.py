"""`python -m aisre.testing openai|oip [--port P] [--latency-s S] ...`: run a mock model server (one worker)."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, fields

from aisre.testing.settings import MockSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aisre.testing", description=__doc__)
    parser.add_argument("kind", choices=["openai", "oip"], help="protocol to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--sklearn", metavar="PATH", help="oip: serve this joblib-saved scikit-learn estimator")
    parser.add_argument("--log-level", default="warning")
    hints = typing.get_type_hints(MockSettings)
    for field in fields(MockSettings):
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not MISSING else None
        kinds = [k for k in typing.get_args(hints[field.name]) or (hints[field.name],) if k is not type(None)]
        if kinds == [bool]:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=kinds[0], default=default, help=f"default {default}")
    return parser


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = _parser().parse_args(argv)
    settings = MockSettings(**{f.name: getattr(args, f.name) for f in fields(MockSettings)})
    problems = settings.problems()
    if problems:
        raise SystemExit("; ".join(problems))
    if args.kind == "openai":
        from aisre.testing.openai_server import openai_app

        app = openai_app(settings)
    else:
        from aisre.testing.oip_model import OipModel
        from aisre.testing.oip_server import oip_app

        app = oip_app(settings, OipModel.from_joblib(args.sklearn) if args.sklearn else None)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
