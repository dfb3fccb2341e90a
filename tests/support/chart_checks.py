"""The chart's rendering helpers of tests/test_chart.py, for the other tests that render the chart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TEST_CHART = Path(__file__).resolve().parent.parent / "test_chart.py"


def chart_checks() -> ModuleType:
    """tests/test_chart.py as a module: the one pytest already imported if there is one (by file path, so
    however pytest names test modules), else a fresh import of the file."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == TEST_CHART:
            return module
    spec = importlib.util.spec_from_file_location("chart_checks", TEST_CHART)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
