"""The scenario registry: the ``@scenario`` decorator and discovery of built-in and user files."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios.context import ScenarioContext

ScenarioFunction = Callable[["ScenarioContext"], None]


@dataclass
class Scenario:
    name: str
    description: str
    function: ScenarioFunction
    module: str

    def __call__(self, ctx: ScenarioContext) -> None:
        self.function(ctx)


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, description: str | None = None) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register ``def run(ctx)`` as the scenario ``name`` (description: the argument or the docstring)."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        text = description or (function.__doc__ or "").strip().split("\n")[0]
        REGISTRY[name] = Scenario(name, text, function, function.__module__)
        return function

    return register


BUILTIN_MODULES = "scenarios.builtin"


def load_builtin() -> dict[str, Scenario]:
    """Import every module of :mod:`scenarios.builtin` so their scenarios register."""
    package = importlib.import_module(BUILTIN_MODULES)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{BUILTIN_MODULES}.{info.name}")
    return REGISTRY


def load_file(path: Path) -> list[Scenario]:
    """Import a user's scenario file; returns the scenarios it registered."""
    before = set(REGISTRY)
    module_name = f"user_scenarios_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return [REGISTRY[name] for name in REGISTRY if name not in before or REGISTRY[name].module == module_name]
