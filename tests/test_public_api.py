"""The public surface: what `import aisre` costs and exposes, the monitor catalogue, one error tree."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aisre
import aisre.errors

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["numpy", "scipy", "pyarrow", "pandas", "sklearn", "starlette", "aiohttp", "opentelemetry", "redis"]


def test_import_aisre_loads_no_heavy_dependency():
    code = f"import sys, aisre; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_exported_name_resolves():
    for name in aisre.__all__:
        assert getattr(aisre, name) is not None, name
    assert set(aisre.__all__) <= set(dir(aisre))


def test_cbpe_is_found_where_the_readme_says():
    assert aisre.monitor.CBPE is aisre.CBPE


def test_plumbing_is_no_longer_exported_at_the_top():
    for name in ["BatchingWriter", "JsonlSink", "SQLiteStore", "RecordFilter", "SystemClock", "Metrics"]:
        assert name not in aisre.__all__
        with pytest.raises(AttributeError, match=name):
            getattr(aisre, name)


def _monitor_packages():
    import aisre.monitor

    return [aisre.monitor] + [
        importlib.import_module(f"aisre.monitor.{info.name}")
        for info in pkgutil.iter_modules(aisre.monitor.__path__)
        if info.ispkg
    ]


@pytest.mark.parametrize("package", _monitor_packages(), ids=lambda p: p.__name__)
def test_each_monitor_package_is_a_catalogue(package):
    assert package.__doc__ and package.__doc__.strip(), f"{package.__name__} needs a docstring"
    assert package.__all__, f"{package.__name__} needs __all__"
    for name in package.__all__:
        assert hasattr(package, name), f"{package.__name__}.{name}"


def test_every_aisre_name_in_the_readme_resolves():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    names = set()
    for chunk in [*blocks, prose]:
        names |= set(re.findall(r"\baisre\.(?:monitor\.)?([A-Za-z_]\w*)\b", chunk))
    names -= {"yaml", "db", "monitor"}  # file names and the package itself
    import aisre.monitor

    subpackages = {n for n in names if importlib.util.find_spec(f"aisre.{n}") is not None}  # `python -m aisre.testing`
    missing = [n for n in sorted(names - subpackages) if not (hasattr(aisre, n) or hasattr(aisre.monitor, n))]
    assert not missing, f"README names that do not resolve: {missing}"


def _all_modules():
    skip = {"aisre.monitor.multivariate.text"}  # imports fine, but walking it is not needed
    for info in pkgutil.walk_packages(aisre.__path__, "aisre."):
        if info.name.endswith("__main__") or info.name in skip:
            continue
        yield importlib.import_module(info.name)


def test_every_exception_aisre_defines_is_an_aisre_error():
    outside = []
    for module in _all_modules():
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not issubclass(obj, aisre.AisreError)
                and not name.startswith("_")
                and not module.__name__.startswith("aisre.testing")
            ):
                outside.append(f"{module.__name__}.{name}")
    assert not outside, f"exceptions outside the AisreError tree: {outside}"


def test_the_error_tree_keeps_the_standard_meanings():
    assert issubclass(aisre.errors.InvalidParameterError, ValueError)
    assert issubclass(aisre.errors.MethodError, aisre.errors.InvalidParameterError)
    assert issubclass(aisre.errors.DataError, ValueError)
    assert issubclass(aisre.errors.MissingDependencyError, ImportError)
    assert issubclass(aisre.errors.UnknownRecordError, KeyError)
    assert issubclass(aisre.errors.ConnectFailed, aisre.errors.UpstreamError)
    err = aisre.errors.MissingDependencyError("scikit-learn", "sklearn", "CBPE")
    assert "pip install 'aisre[sklearn]'" in str(err) and err.name == "scikit-learn"


def test_require_names_the_extra_of_a_missing_module():
    with pytest.raises(aisre.MissingDependencyError, match=r"aisre\[nothing\]"):
        aisre.errors.require("no_such_module_for_aisre", "nothing", "a test feature")
