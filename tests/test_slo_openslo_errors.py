"""OpenSLO input aisre cannot serve is refused naming the document, the key path and what is supported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aisre.errors import ConfigError
from aisre.slo.openslo import openslo_rules, parse_openslo
from aisre.slo.openslo_aisre import dump_documents, export_openslo, import_slos

from .openslo_helpers import FOREIGN_V1, GETTING_STARTED, variants
from .test_cli import aisre_cli


@pytest.mark.parametrize(
    ("text", "path", "supported"),
    [
        (GETTING_STARTED.replace("queryType: promql", "queryType: sql", 1), "ratioMetrics.good.queryType", "promql"),
        (GETTING_STARTED.replace("[{{.window}}]", "[5m]", 1), "ratioMetrics.good.query", "{{.window}}"),
        (GETTING_STARTED.replace("unit: Day", "unit: Month"), "spec.timeWindows[0]", "Minute, Hour, Day or Week"),
        (GETTING_STARTED.replace("target: 0.999", "target: 99.9"), "spec.objectives[0].target", "(0, 1)"),
        (GETTING_STARTED.replace("openslo/v1alpha", "openslo/v2alpha"), "apiVersion", "openslo/v1"),
        (GETTING_STARTED.replace("  service:", "  budgetingMethod: Timeslices\n  service:"), "budgetingMethod", ""),
        (GETTING_STARTED.replace("      target:", "      targt:"), "spec.objectives[0].targt", "unknown key"),
        (FOREIGN_V1.replace("budgetingMethod: Occurrences", "budgetingMethod: RatioTimeslices"), "budgeting", ""),
        (FOREIGN_V1.replace("isRolling: true", "isRolling: false"), "spec.timeWindow[0]", "isRolling: true"),
        (FOREIGN_V1.replace("ratioMetric:", "thresholdMetric:"), "thresholdMetric", "ratioMetric"),
        (FOREIGN_V1.replace("type: Prometheus", "type: Datadog", 1), "good.metricSource.type", "Prometheus"),
        (FOREIGN_V1.replace("op: gte", "op: lt"), "condition.op", "gt, gte"),
        (FOREIGN_V1.replace("[{targetPercent: 99.5}]", "[{targetPercent: 99.5, op: lt}]"), "[0].op", "gt, gte"),
        (FOREIGN_V1.replace("[{targetPercent: 99.5}]", "[{target: 0.9, op: lt, value: 500}]"), ".value", "ratioMetric"),
        (FOREIGN_V1.replace("kind: burnrate, op: gte", "kind: errorrate, op: gte"), "condition.kind", "burnrate"),
        (FOREIGN_V1.replace("severity: warning", "severity: info"), "spec.severity", "page"),
        (FOREIGN_V1.replace("conditionRef: slow-burn", "conditionRef: nope"), "conditionRef", "no AlertCondition"),
        (FOREIGN_V1.replace("indicatorRef: checkout-errors", "indicatorRef: nope"), "indicatorRef", "no SLI"),
        (FOREIGN_V1.replace("lookbackWindow: 3d", "lookbackWindow: 3 days"), "lookbackWindow", "shorthand"),
        (FOREIGN_V1.replace("lookbackWindow: 3d", "lookbackWindow: 5w"), "lookbackWindow", "longer than"),
        (FOREIGN_V1.replace("  conditions: [", "  alertWhenNoData: true\n  conditions: ["), "alertWhenNoData", ""),
        (
            FOREIGN_V1.replace("objectives: [{targetPercent: 99.5}]", "objectives: [{target: 0.9, indicatorRef: x}]"),
            "indicatorRef",
            "composite",
        ),
    ],
)
def test_unsupported_openslo_is_refused_naming_the_document_the_key_path_and_what_is_supported(
    text: str, path: str, supported: str
):
    with pytest.raises(ConfigError) as info:
        parse_openslo(text)
    [problem] = info.value.problems
    assert problem.startswith("document ")
    assert path in problem and supported in problem


def test_cli_refuses_a_bad_openslo_file_one_line_per_problem_without_traceback(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GETTING_STARTED.replace("queryType: promql", "queryType: sql", 1)
        + "---\n"
        + FOREIGN_V1.replace("op: gte", "op: lt")
    )
    out = aisre_cli("slo", "rules", "--openslo", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "document 1 (SLO 'sloth-slo-my-service')" in lines[0] and "queryType" in lines[0]
    assert "document 3 (SLO 'checkout-availability')" in lines[1] and "op" in lines[1]
    out = aisre_cli("slo", "rules", "--openslo", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    out = aisre_cli("slo", "rules", "--openslo", str(bad), "-l", "no-equals")
    assert out.returncode == 2 and "--label" in out.stderr


def _mutations(node, rng):
    """Copies of a parsed YAML tree with one value replaced or one key dropped."""
    import copy

    paths = []

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                paths.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                paths.append((*path, i))
                walk(v, (*path, i))

    walk(node, ())
    odd = [None, 0, -1, 1.5, True, "", "x", "5m", "{{.window}}", [], {}, {"a": 1}, ["x"], 1e308]
    for path in rng.sample(paths, min(len(paths), 30)):
        for replacement in rng.sample(odd, 2) + ["<drop>"]:
            tree = copy.deepcopy(node)
            parent = tree
            for key in path[:-1]:
                parent = parent[key]
            if replacement == "<drop>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield tree


def test_mutated_openslo_files_are_read_or_refused_with_config_errors_never_a_crash():
    import random

    rng = random.Random(9)
    sources = [
        GETTING_STARTED,
        FOREIGN_V1,
        dump_documents(export_openslo(variants()[1:2])),  # SLI, SLO, 2 x (AlertPolicy, AlertCondition), target
    ]
    checked = 0
    for text in sources:
        docs = [d for d in yaml.safe_load_all(text) if d]
        for i in range(len(docs)):
            for mutated in _mutations(docs[i], rng):
                candidate = yaml.safe_dump_all([*docs[:i], mutated, *docs[i + 1 :]])
                try:
                    slos = parse_openslo(candidate)
                    openslo_rules(slos)
                    import_slos(slos)
                except ConfigError as exc:
                    assert exc.problems and all(p.startswith(("document ", "no SLO document")) for p in exc.problems)
                checked += 1
    assert checked > 300
