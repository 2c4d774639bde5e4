"""Project-wide checks: import direction and migrations that match the models."""

import subprocess
import sys
from pathlib import Path

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from surveys.db import Base
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_imports_flow_webapp_to_surveys_to_scoring():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_migrations_round_trip_and_match_the_models(app):
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ; run feedback360 db migrate: {diff}"


def test_one_migration_head():
    heads = subprocess.run(
        [str(Path(sys.executable).with_name("feedback360")), "db", "heads"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert heads.returncode == 0, heads.stderr
    assert len([line for line in heads.stdout.splitlines() if "(head)" in line]) == 1
