"""One virtual environment per real producer (dbt, Airflow, ...), built from its pins and cached.

A producer's pins live in ``tests/producers/requirements-<name>.txt``, and everything pip resolved from them in
``requirements-<name>.lock`` (used as constraints, as ``requirements.lock`` is for the project). Its venv is
``${XDG_CACHE_HOME:-~/.cache}/lineage-intake/producers/<name>-<hash of both files and the Python version>``:
created when missing (a fresh machine), reused when present, and replaced when the pins change because the hash
changes. A half-built venv never counts: ``.complete`` is written last. Stdlib only, so that it also runs as a
script (``python tests/helpers/producer_venv.py dbt``) to build a venv ahead of a test run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PRODUCERS_DIR = Path(__file__).resolve().parents[1] / "producers"
_COMPLETE = ".complete"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lineage-intake" / "producers"


def pins_file(name: str) -> Path:
    return PRODUCERS_DIR / f"requirements-{name}.txt"


def lock_file(name: str) -> Path:
    return PRODUCERS_DIR / f"requirements-{name}.lock"


@dataclass(frozen=True)
class ProducerVenv:
    name: str
    path: Path
    #: Seconds the install took in this process, or None when the venv was reused from the cache.
    install_seconds: float | None

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def exe(self, command: str) -> str:
        return str(self.bin / command)


def venv_path(name: str) -> Path:
    pins = pins_file(name).read_bytes() + lock_file(name).read_bytes()
    digest = hashlib.sha256(pins + f"\npython {sys.version_info[0]}.{sys.version_info[1]}".encode()).hexdigest()
    return cache_root() / f"{name}-{digest[:12]}"


def ensure_venv(name: str, timeout: float = 1800.0) -> ProducerVenv:
    """The producer's venv, installed from its pins if the cache has none. Raises ``RuntimeError`` with pip's
    output if the install fails (no network, a pin that no longer resolves)."""
    path = venv_path(name)
    if (path / _COMPLETE).exists():
        return ProducerVenv(name, path, None)
    started = time.monotonic()
    # A venv's scripts carry its absolute path in their shebang lines, so it is built where it stays; a
    # directory without ``.complete`` is a build that was interrupted, and is started over.
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=120)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
        result = subprocess.run(
            [*pip, "-r", str(pins_file(name)), "-c", str(lock_file(name))],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"cannot create the {name} venv at {path}: {exc}") from exc
    if result.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise RuntimeError(f"pip could not install {pins_file(name).name}:\n{output}")
    (path / _COMPLETE).write_text(f"{time.monotonic() - started:.1f}\n", encoding="utf-8")
    return ProducerVenv(name, path, time.monotonic() - started)


if __name__ == "__main__":
    for producer in sys.argv[1:]:
        venv = ensure_venv(producer)
        took = "reused" if venv.install_seconds is None else f"installed in {venv.install_seconds:.0f} s"
        print(f"{producer}: {venv.path} ({took})")
