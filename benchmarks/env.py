"""What the figures were measured on (machine, Python, package versions), and writing the
results document that carries them."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "microasgi",
    "starlette",
    "blacksheep",
    "falcon",
    "uvicorn",
    "granian",
    "uvloop",
    "httptools",
    "anyio",
    "multidict",
    "yarl",
    "python-multipart",
    "orjson",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    line = (out.stdout or out.stderr).strip().splitlines()
    return line[0] if line else "unknown"


def _revision() -> str | None:
    """The commit measured, marked when microasgi/ had uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "microasgi"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def describe(with_wrk: bool = False) -> dict[str, Any]:
    """Machine, interpreter and the installed versions of every package that matters here."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(platform.python_build()),
        "executable": sys.executable,
        "packages": versions,
        "revision": _revision(),
    }
    if with_wrk:
        info["wrk"] = _wrk_version()
    return info


def write_results(path: Path | None, data: dict[str, Any]) -> None:
    """Write a run's results document (JSON) to ``path``, where ``report`` reads it; no
    path, no file (the run printed its tables)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
