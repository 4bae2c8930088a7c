"""The docs' examples (docs/examples/*.py), loaded the way a reader would import them.

Each example is imported from its file under its own name (``notes``, ``routing``, ...), so that
``from notes import app`` in another example works, and loaded once per test run: tests in
several modules share the same module object.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"


def load_example(name: str) -> ModuleType:
    """Import docs/examples/{name}.py as module ``name``, or return it if already imported."""
    path = EXAMPLES / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        assert Path(str(loaded.__file__)) == path, f"module {name!r} is already {loaded!r}"
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
