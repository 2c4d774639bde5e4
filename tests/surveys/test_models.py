import pytest
import sqlalchemy as sa

import surveys.db  # noqa: F401 - registers the SQLite connection settings
from surveys.errors import IllegalTransition
from surveys.models import Cycle, CycleState, Employee


def make_cycle(**kw):
    return Cycle(name="Q1", bank_key="pulse", bank_version="1", bank_snapshot={}, **kw)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (CycleState.DRAFT, CycleState.CLOSED),
        (CycleState.DRAFT, CycleState.RELEASED),
        (CycleState.NOMINATING, CycleState.CLOSED),
        (CycleState.OPEN, CycleState.RELEASED),
        (CycleState.OPEN, CycleState.DRAFT),
        (CycleState.RELEASED, CycleState.OPEN),
    ],
)
def test_illegal_cycle_moves_are_refused(start, target):
    cycle = make_cycle(state=start)
    with pytest.raises(IllegalTransition, match=f"is {start.value}; it cannot move to"):
        cycle.move_to(target)
    assert cycle.state == start


def test_cycle_walks_the_whole_state_machine():
    cycle = make_cycle(state=CycleState.DRAFT)
    for target in ("nominating", "open", "closed", "released"):
        cycle.move_to(CycleState(target))
        assert cycle.state == target


def test_models_round_trip_with_aware_utc_times(session):
    boss = Employee(external_id="E1", name="Ada", email="ada@example.com")
    session.add(Employee(external_id="E2", name="Bob", email="bob@example.com", manager=boss))
    session.commit()
    session.expire_all()
    bob = session.query(Employee).filter_by(external_id="E2").one()
    assert bob.manager.name == "Ada"
    assert bob.created_at.tzinfo is not None


def test_sqlite_zeroes_what_it_deletes(tmp_path):
    """Pseudonyms replaced at release and deleted drafts must not linger in free pages."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.parametrize(
    ("start", "target", "hint"),
    [
        (CycleState.OPEN, CycleState.RELEASED, "(close it first)"),
        (CycleState.CLOSED, CycleState.CLOSED, "(it is already closed)"),
        (CycleState.DRAFT, CycleState.CLOSED, "(it was never launched)"),
    ],
)
def test_a_refused_move_says_what_to_do_instead(start, target, hint):
    with pytest.raises(IllegalTransition) as refused:
        make_cycle(state=start).move_to(target)
    assert str(refused.value).endswith(hint)
