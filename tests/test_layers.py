"""The import layers of ARCHITECTURE.md hold (import-linter's contracts in pyproject.toml), and
they cover every module of the package."""

from __future__ import annotations

import pkgutil
import sys
import tomllib
from pathlib import Path

import trio

import trioweb

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


async def test_import_contracts_are_kept() -> None:
    """``lint-imports`` finds every contract kept."""
    with trio.fail_after(5):
        result = await trio.run_process(
            [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, output
    assert " 0 broken." in output


async def test_layers_name_every_module() -> None:
    """Each module of trioweb is in a layer, so no new module escapes the contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layered = {
        name.strip()
        for contract in config["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.replace(":", "|").split("|")
    }
    modules = {f"trioweb.{info.name}" for info in pkgutil.iter_modules(trioweb.__path__)}
    assert modules - layered == set()
