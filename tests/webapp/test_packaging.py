"""What ``pip install .`` ships: everything the installed app reads from its own folder
(templates, static files, the Alembic migrations ``feedback360 db upgrade`` runs)."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

import webapp

ROOT = Path(__file__).resolve().parents[2]


def test_package_data_covers_every_file_the_app_reads_from_its_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["webapp"]
    package = Path(webapp.__file__).parent
    assert webapp.MIGRATIONS.is_relative_to(package)
    needed = [
        p.relative_to(package).as_posix()
        for folder in ("templates", "static", "migrations")
        for p in (package / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert any(n.startswith("migrations/versions/") for n in needed)
    # setuptools expands the patterns as recursive globs from the package folder.
    shipped = {
        Path(found).as_posix()
        for pattern in patterns
        for found in glob.glob(pattern, root_dir=package, recursive=True)
    }
    assert sorted(set(needed) - shipped) == []
