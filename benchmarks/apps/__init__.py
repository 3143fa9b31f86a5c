"""One module per framework, each building the app of every scenario it can serve.

A module exposes ``APPS``: scenario id -> ``build(fixtures) -> ASGI app``, and ``e2e_app()``, the
plaintext + JSON app that ``benchmarks.e2e`` serves. A builder raises ``Unavailable`` when the
framework lacks the scenario's feature; importing the module raises ``ImportError`` when the
framework is not installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FRAMEWORKS = ("raw", "microasgi", "starlette", "blacksheep", "falcon")
PEERS = ("starlette", "blacksheep", "falcon")


def load(framework: str) -> ModuleType:
    """Import the app module of one framework (ImportError when the framework is missing)."""
    return importlib.import_module(f"benchmarks.apps.{framework}_app")


def e2e_target(framework: str) -> str:
    """The ``module:factory`` string a server is given for the end-to-end app."""
    return f"benchmarks.apps.{framework}_app:e2e_app"
