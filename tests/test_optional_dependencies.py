"""Optional extras stay optional: without scikit-learn (or jsonschema) `import aisre.monitor` and every
module under it work, and only the features that need the package raise MissingDependencyError
naming the extra. Each check runs in a fresh interpreter whose import system hides the package."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HIDE = """
import sys

class HidePackages:
    '''A meta path finder that makes `import sklearn` fail as if it were not installed.'''

    def __init__(self, *names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HidePackages(HIDDEN))
"""


def run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    script = HIDE.replace("HIDDEN", ", ".join(repr(p) for p in packages)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)


def test_the_hider_really_hides_scikit_learn():
    result = run_without(("sklearn",), "import sklearn")
    assert result.returncode != 0 and "No module named 'sklearn'" in result.stderr


def test_import_aisre_monitor_and_cbpe_work_without_scikit_learn():
    result = run_without(
        ("sklearn",),
        """
        import aisre, aisre.monitor
        aisre.monitor.CBPE
        assert "sklearn" not in sys.modules
        print("imported")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_every_monitor_module_imports_without_scikit_learn_or_jsonschema():
    result = run_without(
        ("sklearn", "jsonschema"),
        """
        import importlib, pkgutil
        import aisre.monitor
        names = [m.name for m in pkgutil.walk_packages(aisre.monitor.__path__, "aisre.monitor.")]
        for name in names:
            importlib.import_module(name)
        assert "sklearn" not in sys.modules and "jsonschema" not in sys.modules
        print(len(names))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 50  # every module of every subpackage was imported


def test_features_that_need_scikit_learn_name_the_extra_when_used():
    result = run_without(
        ("sklearn",),
        """
        import numpy as np
        import aisre
        from aisre.errors import MissingDependencyError

        def message(call):
            try:
                call()
            except MissingDependencyError as exc:
                return str(exc)
            return "no error"

        rng = np.random.default_rng(0)
        score = rng.random(400)
        truth = rng.random(400) < score
        x = rng.normal(size=(50, 2))
        print(message(lambda: aisre.CBPE().fit(truth, score)))
        scored = type("Model", (), {"score": lambda self, X, y: 1.0})()
        print(message(lambda: aisre.window_importance(scored, x, x[:, 0])))
        print(message(lambda: aisre.multivariate_drift({"a": x[:, 0]}, {"a": x[:, 1]})))
        print(aisre.CBPE(calibration="never").fit(truth, score).estimate(score).n)  # no sklearn needed
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for line, feature in zip(
        lines, ("CBPE calibration", "permutation importance", "the domain classifier"), strict=False
    ):
        assert line.startswith(feature) and "pip install 'aisre[sklearn]'" in line, line
    assert lines[3] == "400"
