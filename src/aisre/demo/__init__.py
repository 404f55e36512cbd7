"""`aisre demo`: the whole loop in about two minutes, on embedded defaults only.

    from aisre.demo import DemoOptions, run_demo
    result = run_demo(DemoOptions(fast=True, exit_after=True, port=0, workdir=tmp))

The story (`story.yaml`, package data) is a drill scenario run by the drill engine (`aisre.drills`): a real
model trained on scikit-learn's bundled breast-cancer data (stable v1, canary v2, a rule as fallback) and an
LLM over the OpenAI API, served by the real gateway on an accelerated clock, with late labels, a feature
service bug that drifts v2's inputs and an LLM refusal storm. `runner.DemoHooks` paces it, draws it live in
the terminal and serves the same app (gateway + dashboard) on a real port; `real_llm` routes the LLM to a
llama.cpp server when asked to (`--real-llm`). See docs/demo.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from aisre.demo.options import DemoOptions, DemoResult, bind

if TYPE_CHECKING:
    from rich.console import Console

    from aisre.demo.story import Story

__all__ = ["DemoOptions", "DemoResult", "bind", "load_story", "run_demo"]


def load_story(seed: int | None = None, text: str | None = None) -> Story:
    """The shipped story (see `aisre.demo.story.load_story`)."""
    from aisre.demo.story import load_story as load

    return load(seed, text)


def run_demo(
    options: DemoOptions, story: Story | None = None, console: Console | None = None, seed: int | None = None
) -> DemoResult:
    """Run the story (the shipped one by default) to its end, then serve until Ctrl-C unless
    `options.exit_after`. InvalidParameterError (naming --port) when the port is taken; ConfigError for a bad
    story. `options.port` 0 picks a free port (written back into `options.port`)."""
    from rich.console import Console

    from aisre.demo.runner import DemoHooks
    from aisre.demo.story import story_start, with_real_llm
    from aisre.drills import Drill

    story = story or load_story(seed)
    if options.llm_url is not None:
        story = with_real_llm(story)
    story.scenario = story_start(story.scenario, time.time())
    console = console or Console()
    sock = bind(options.host, options.port)
    options.port = sock.getsockname()[1]
    Path(options.workdir).mkdir(parents=True, exist_ok=True)
    hooks = DemoHooks(story, options, sock, console)
    started = time.perf_counter()
    try:
        run = Drill(story.scenario, Path(options.workdir), hooks).run()
    finally:
        hooks.close()
        sock.close()
    return DemoResult(run, time.perf_counter() - started, getattr(hooks, "totals", {}))
