"""Run the ``fusionbus`` command line in-process, as a user would type it, against a
temporary home: a federation made by ``fusionbus federation init`` and ``agency add``."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner, Result

from fusionbus.cli import app

AGENCIES = {
    "customs": ("Pakistan Customs", ("contraband", "narcotics")),
    "anf": ("Anti Narcotics Force", ("narcotics",)),
    "fia": ("Federal Investigation Agency", ("human_trafficking",)),
}
"""The template federation: id -> (name, categories granted in PK)."""

_FOREIGN_ENV = ("FUSIONBUS_", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No FUSIONBUS_* variable of the caller and no forced colours; the default home in
    ``tmp_path`` and relative paths under it; logging restored afterwards (the CLI
    configures it on the runner's temporary streams)."""
    for name in [n for n in os.environ if n.startswith(_FOREIGN_ENV)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FUSIONBUS_HOME", str(tmp_path / "default-home"))
    monkeypatch.chdir(tmp_path)
    with logging_restored():
        yield


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Put structlog and the standard library's logging back as they were."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    aiokafka = logging.getLogger("aiokafka").level
    try:
        yield
    finally:
        structlog.configure(**config)
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("aiokafka").setLevel(aiokafka)


def cli(*args: str, stdin: str | None = None) -> Result:
    """``fusionbus ARGS`` in-process: exit code, stdout and stderr apart, never raising."""
    return CliRunner().invoke(app, list(args), input=stdin)


def ok(*args: str, stdin: str | None = None) -> str:
    """``fusionbus ARGS``, which must succeed; its standard output."""
    result = cli(*args, stdin=stdin)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("template") / "home"
    with logging_restored():
        ok("federation", "init", "--home", str(home))
        for agency, (name, categories) in AGENCIES.items():
            ok("agency", "add", agency, "--name", name, "--home", str(home))
            grants = [arg for c in categories for arg in ("--category", c)]
            ok("agency", "grant", agency, *grants, "--jurisdiction", "PK", "--home", str(home))
    return home


@pytest.fixture
def new_home(template_home: Path, tmp_path: Path) -> Callable[[], Path]:
    """Makes a fresh copy of the template federation's home at each call."""
    homes = iter(range(1, 1_000_000))

    def make() -> Path:
        return Path(shutil.copytree(template_home, tmp_path / f"home-{next(homes)}"))

    return make


@pytest.fixture
def home(new_home: Callable[[], Path]) -> Path:
    """A fresh copy of the template federation: customs, anf and fia with grants in PK."""
    return new_home()
