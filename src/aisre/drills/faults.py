"""Faults a drill injects: changes to the data (covariate drift, concept drift, a bias spike on one group) and
to the serving world (latency, errors, a killed replica, an LLM refusal storm), each from `at` for `duration`.

Data faults transform each step's rows and labels before they are sent; serving faults turn the real mock
servers' knobs (`MockSettings`) or stop a real replica at the step their window opens, and turn them back
when it closes (a killed replica stays dead: that is what killing means).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.drills.scenario import FaultSpec
from aisre.drills.traffic import GROUP, Batch, ReferenceData


@dataclass
class Replicas:
    """The running mock servers of one served endpoint (`serve_in_thread` servers and their apps)."""

    servers: list[Any] = field(default_factory=list)
    apps: list[Any] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)

    def add(self, server: Any, app: Any) -> None:
        self.servers.append(server)
        self.apps.append(app)

    def update(self, changes: dict[str, Any]) -> None:
        for app in self.apps:
            app.state.mock.update(changes)

    def kill_one(self) -> str | None:
        for i, server in enumerate(self.servers):
            if i not in self.killed:
                self.killed.add(i)
                server.stop()
                return str(server.url)
        return None

    def stop(self) -> None:
        for i, server in enumerate(self.servers):
            if i not in self.killed:
                self.killed.add(i)
                server.stop()


def apply_data_faults(faults: list[FaultSpec], t: float, batch: Batch, data: ReferenceData) -> Batch:
    """The batch as the world sends it at drill time `t`: inputs shifted, labels flipped, one group skewed."""
    X, y = batch.X.copy(), batch.y.copy()
    for f in faults:
        if not f.active(t):
            continue
        if f.kind == "covariate_drift":
            for feature in f.features:
                X[feature] = X[feature] + f.shift_std * float(data.std[feature])
        elif f.kind == "concept_drift":  # the world changed its mind: the same inputs, other labels
            flip = data.rng.random(len(y)) < f.flip
            y = np.where(flip, 1 - y, y)
        elif f.kind == "bias_spike":
            # Rows of the group look, to the model, like cases of the other class while their truth stays:
            # its predictions for that group shift (a parity gap) and its accuracy there falls.
            members = np.flatnonzero((X[GROUP].to_numpy() == f.group) & (data.rng.random(len(y)) < f.flip))
            if members.size:
                for i, row in zip(members, data.rows_of_class(0, members.size).to_dict("records"), strict=True):
                    for k, v in row.items():
                        if k != GROUP:
                            X.at[i, k] = v
                y[members] = 1
    return Batch(X, y)


class ServingFaults:
    """Turns the mocks' knobs as the faults' windows open and close; `changes(t)` returns what it did."""

    def __init__(self, faults: list[FaultSpec], replicas: dict[str, Replicas], llm: Replicas | None, stable: str):
        self.faults = [
            f for f in faults if f.kind in ("latency_spike", "error_burst", "replica_killed", "refusal_storm")
        ]
        self.replicas = replicas
        self.llm = llm
        self.stable = stable
        self._on: set[str] = set()

    def step(self, t: float) -> list[str]:
        out = []
        for f in self.faults:
            active = f.active(t)
            if active == (f.name in self._on):
                continue
            target = self.llm if f.kind == "refusal_storm" else self.replicas[f.version or self.stable]
            assert target is not None  # the scenario refuses a refusal storm without an llm
            if active:
                self._on.add(f.name)
                out.append(self._start(f, target))
            else:
                self._on.discard(f.name)
                out.append(self._stop(f, target))
        return out

    @staticmethod
    def _start(f: FaultSpec, target: Replicas) -> str:
        if f.kind == "latency_spike":
            target.update({"latency_s": f.latency_s})
            return f"{f.name}: replicas answer after {f.latency_s} s"
        if f.kind == "error_burst":
            target.update({"fail_rate": f.fail_rate, "fail_status": 503})
            return f"{f.name}: replicas fail {f.fail_rate:.0%} of requests (503)"
        if f.kind == "refusal_storm":
            target.update({"refusal_rate": f.refusal_rate})
            return f"{f.name}: the LLM refuses {f.refusal_rate:.0%} of requests"
        url = target.kill_one()
        return f"{f.name}: killed replica {url}"

    @staticmethod
    def _stop(f: FaultSpec, target: Replicas) -> str:
        if f.kind == "latency_spike":
            target.update({"latency_s": 0.0})
        elif f.kind == "error_burst":
            target.update({"fail_rate": 0.0})
        elif f.kind == "refusal_storm":
            target.update({"refusal_rate": 0.0})
        else:
            return f"{f.name}: the killed replica stays down"
        return f"{f.name}: ended"
