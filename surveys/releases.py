"""Releasing reports: freeze each participant's report and send them their link.

A released report is a :class:`~surveys.models.ReportVersion`, the report's plain values
as JSON, and the participant's link shows the latest version and never a recomputation
(DESIGN §4): otherwise a late response would silently move the published figures, and
anyone who read the report before and after could work out what the late rater said.
A late response HR accepts (:func:`accept_late_response`) goes out as a new version
through :func:`rerelease_participant` (or :func:`rerelease_cycle` for every participant),
which refuses whenever the two versions differ by fewer raters than the anonymity
thresholds protect.

Services flush and never commit: the request or CLI command commits once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from scoring import RELATIONSHIPS
from surveys.anonymity import OTHERS, version_change_refusal
from surveys.cycles import lock_cycle
from surveys.db import utcnow
from surveys.emails import queue_email
from surveys.errors import DomainError
from surveys.models import (
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Participant,
    Relationship,
    ReportVersion,
    Response,
    ResponseComment,
    ResponseItem,
    TokenPurpose,
)
from surveys.models.response import new_response_id
from surveys.reports import (
    GROUP_LABELS,
    UNMATCHED_COMMENTS,
    CycleScores,
    ReportData,
    build_report,
    carried_from,
    published_cells,
    report_from_json,
    report_to_json,
    score_cycle,
)
from surveys.responses import (
    NA,
    SELF_PSEUDONYM,
    Answers,
    cycle_bank,
    missing_required,
    said_anything,
)
from surveys.tokens import issue_token

__all__ = [
    "ReleaseSummary",
    "RereleaseOutcome",
    "abandon_release",
    "accept_late_response",
    "hold_report",
    "latest_version",
    "latest_versions",
    "release_cycle",
    "release_running",
    "request_release",
    "rerelease_cycle",
    "rerelease_participant",
    "rerelease_refusal",
    "share_report",
]


@dataclass(frozen=True)
class ReleaseSummary:
    reports: int
    emails: int
    #: Reports frozen but held back until HR shares them (:func:`share_report`).
    held: int = 0


def release_cycle(
    session: Session, cycle: Cycle, *, base_url: str, now: datetime | None = None
) -> ReleaseSummary:
    """closed → released: freeze every report as version 1 and email each participant a link.

    A report HR holds back (:func:`hold_report`) is frozen with the others, but its link
    goes out only when HR shares it (:func:`share_report`). Destroys the cycle's pseudonym
    key, so responses can never again be linked to a rater (DESIGN §3). The cycle is
    scored once for all participants.
    """
    lock_cycle(session, cycle)
    cycle.check_move(CycleState.RELEASED)
    now = now or utcnow()
    scored = score_cycle(session, cycle)
    counts = _response_counts(session, cycle)
    frozen: list[ReportVersion] = []
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        frozen.append(_freeze(session, participant, report, 1, counts.get(participant.id, {}), now))
        if len(frozen) == 200:
            _write_out(session, frozen)
    _write_out(session, frozen)
    _unlink_responses(session, cycle)
    cycle.move_to(CycleState.RELEASED)
    cycle.released_at = now
    cycle.pseudonym_key = None
    cycle.release_started_at = cycle.release_error = None
    session.flush()
    sent = [p for p in cycle.participants if not p.report_held]
    for participant in sent:
        _send_link(session, participant, base_url=base_url)
    session.flush()
    n = len(cycle.participants)
    return ReleaseSummary(reports=n, emails=len(sent), held=n - len(sent))


def hold_report(session: Session, participant: Participant, held: bool = True) -> None:
    """Hold ``participant``'s report back at release (or stop holding it).

    For a report someone should go through with the participant first. Only before the
    release: a released report's link is out (a held one is sent with :func:`share_report`).
    """
    cycle = participant.cycle
    lock_cycle(session, cycle)
    if cycle.state == CycleState.RELEASED:
        raise DomainError(
            f"the reports of {cycle.name!r} are released; a held report is sent by sharing it"
        )
    if release_running(cycle):
        raise DomainError("the release of this cycle is under way")
    participant.report_held = held
    session.flush()


def share_report(session: Session, participant: Participant, *, base_url: str) -> None:
    """Send a held report's link: the participant reads their latest released version."""
    cycle = participant.cycle
    if cycle.state != CycleState.RELEASED:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; a report is shared after the release"
        )
    if not participant.report_held:
        raise DomainError(f"{participant.employee.name}'s report link has already been sent")
    participant.report_held = False
    _send_link(session, participant, base_url=base_url)
    session.flush()


def _write_out(session: Session, rows: list[ReportVersion]) -> None:
    """Write ``rows`` and let the session forget them: kept until the commit, a large
    cycle's frozen reports took a gigabyte."""
    session.flush()
    for row in rows:
        session.expunge(row)
    rows.clear()


#: A release still marked as running after this long died with its worker. It is one
#: transaction, so nothing of it was kept, and HR may start it again.
RELEASE_STALE_AFTER = timedelta(minutes=30)


def release_running(cycle: Cycle, now: datetime | None = None) -> bool:
    """Whether a release HR started (:func:`request_release`) is waiting or running."""
    started = cycle.release_started_at
    if started is None or cycle.state != CycleState.CLOSED:
        return False
    return (now or utcnow()) - started < RELEASE_STALE_AFTER


def request_release(session: Session, cycle: Cycle, now: datetime | None = None) -> None:
    """Mark ``cycle``'s release as started, for a background job to carry out.

    Releasing a large cycle builds every report (tens of milliseconds each), too long for
    a web request. Raises DomainError when the cycle can't be released or a release of
    it is already under way.
    """
    lock_cycle(session, cycle)
    cycle.check_move(CycleState.RELEASED)
    if release_running(cycle, now):
        raise DomainError("the release of this cycle is already under way")
    cycle.release_started_at = now or utcnow()
    cycle.release_error = None
    session.flush()


def abandon_release(session: Session, cycle_id: int, reason: str) -> None:
    """Record that the release HR asked for did not happen, and why, for HR's page.

    Only while the request still stands: a release finished meanwhile (or a reason
    written already) is left as it is. The caller rolls back the failed attempt first
    and commits after.
    """
    session.execute(
        update(Cycle)
        .where(Cycle.id == cycle_id, Cycle.release_started_at.is_not(None))
        .values(release_started_at=None, release_error=reason)
        .execution_options(synchronize_session=False)
    )


#: Prefix of the pseudonym a response carries while its re-inserted copy replaces it.
STEPPED_ASIDE = "old:"


def _unlink_responses(session: Session, cycle: Cycle) -> dict[str, str]:
    """Cut every remaining link between a response and its rater (DESIGN §3).

    Destroying the key is not enough on its own: a rater's pseudonym still joins their
    responses across participants, row order mirrors submission order (SQLite's rowid),
    on PostgreSQL a response and its assignment were written by one transaction, and the
    day of a response narrows down whose it is (HR watched who was still waiting).
    So the cycle's responses are re-inserted in random order with new random ids, a
    random pseudonym each and the close date as their day (the counts per day are kept
    on the cycle for its progress chart), and the assignments are touched in this same
    transaction.
    Re-released versions are therefore scored without cross-participant rater links.
    A late response accepted after release is shuffled in the same way. Returns the new id
    of each response by its old one.
    """
    rows = session.execute(select(Response.__table__).where(Response.cycle_id == cycle.id))
    responses = [dict(r) for r in rows.mappings()]
    if not responses:
        return {}
    old_ids = [r["id"] for r in responses]
    # The old rows step aside (a participant has one self response) until deleted below.
    session.execute(
        update(Response)
        .where(Response.cycle_id == cycle.id)
        .values(rater_pseudonym=STEPPED_ASIDE + Response.id)
        .execution_options(synchronize_session=False)
    )
    if cycle.daily_responses is None:
        cycle.daily_responses = {
            day.isoformat(): n
            for day, n in sorted(Counter(r["submitted_on"] for r in responses).items())
        }
    closed_on = (cycle.closed_at or utcnow()).date()
    new_ids = {old: new_response_id() for old in old_ids}
    shuffle = secrets.SystemRandom().shuffle
    for r in responses:
        r["id"] = new_ids[r["id"]]
        r["submitted_on"] = closed_on
        if r["rater_pseudonym"] != SELF_PSEUDONYM:
            r["rater_pseudonym"] = secrets.token_hex(32)
    shuffle(responses)
    session.execute(insert(Response), responses)
    # Answers and comments follow their responses' new order, a slice of responses at a
    # time (a large cycle has millions of answers), shuffled within each slice.
    old_of = {new: old for old, new in new_ids.items()}
    for start in range(0, len(responses), 2000):
        old_slice = [old_of[r["id"]] for r in responses[start : start + 2000]]
        for model in (ResponseItem, ResponseComment):
            moved = [
                dict(row, response_id=new_ids[row["response_id"]])
                for row in session.execute(
                    select(model.__table__).where(model.response_id.in_(old_slice))
                ).mappings()
            ]
            shuffle(moved)
            if moved:
                session.execute(insert(model), moved)
    stepped_aside = select(Response.id).where(
        Response.cycle_id == cycle.id, Response.rater_pseudonym.startswith(STEPPED_ASIDE)
    )
    session.execute(delete(ResponseComment).where(ResponseComment.response_id.in_(stepped_aside)))
    session.execute(delete(ResponseItem).where(ResponseItem.response_id.in_(stepped_aside)))
    session.execute(
        delete(Response).where(
            Response.cycle_id == cycle.id, Response.rater_pseudonym.startswith(STEPPED_ASIDE)
        )
    )
    session.execute(
        update(Assignment)
        .where(Assignment.cycle_id == cycle.id)
        .values(status=Assignment.status)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return new_ids


def accept_late_response(
    session: Session, assignment: Assignment, answers: Answers, *, now: datetime | None = None
) -> str:
    """Store answers a rater gave after the cycle closed, which HR has decided to accept.

    The rating link stops working at close, so a late rater returns their answers another
    way (e.g. the survey as a file) and HR records them here for that one assignment: the
    cycle must be released, the assignment not yet submitted (a declined rater may have
    changed their mind), the required questions answered.

    Only after release, because before it HR can preview and export live figures, and
    two previews around one accepted response would show that rater's answers. After
    release every published figure is frozen or guarded: a new report version comes only
    from :func:`rerelease_participant`, which refuses when the late raters would stand out,
    and exports show the released versions' figures. The response gets a
    random pseudonym and the close date, like every released response, so nothing in the
    row tells it from the others. Returns the new response id.
    """
    cycle = assignment.cycle
    lock_cycle(session, cycle)  # two accepts at once would each re-insert the other's rows
    session.refresh(assignment, ["status"])
    if cycle.state != CycleState.RELEASED:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; late responses are accepted once it"
            " is released (while open, the rater answers through their link)"
        )
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise DomainError("this rater has already submitted; a rater answers once")
    bank = cycle_bank(cycle)
    missing = missing_required(bank, answers)
    if missing:
        raise DomainError(f"{len(missing)} required question(s) have no answer: {missing}")
    if not said_anything(answers):
        raise DomainError("nothing is answered: every statement “not able to judge”, no comment")
    known = {item.id for item in bank.items}
    unknown = sorted(
        (set(answers.ratings) - known)
        | (set(answers.comments) - {q.id for q in bank.open_questions})
    )
    if unknown:
        raise DomainError(f"unknown questions: {', '.join(unknown)}")
    rater = (
        SELF_PSEUDONYM if assignment.relationship == Relationship.SELF else secrets.token_hex(32)
    )
    response_id = new_response_id()
    session.add(
        Response(
            id=response_id,
            cycle_id=cycle.id,
            participant_id=assignment.participant_id,
            relationship=assignment.relationship,
            rater_pseudonym=rater,
            submitted_on=(cycle.closed_at or now or utcnow()).date(),
            items=[
                ResponseItem(item_id=item_id, value=None if value == NA else int(value))
                for item_id, value in answers.ratings.items()
            ],
            comments=[
                ResponseComment(question_id=qid, text=text)
                for qid, text in answers.comments.items()
                if text
            ],
        )
    )
    assignment.status = AssignmentStatus.SUBMITTED
    session.flush()
    # Inserted last, it would be its participant's newest row, and HR knows whose it is.
    return _unlink_responses(session, cycle)[response_id]


@dataclass(frozen=True)
class RereleaseOutcome:
    """One participant's re-release: the new version, or why there is none."""

    participant_id: int
    name: str
    version: int | None
    refusal: str | None


def rerelease_cycle(
    session: Session,
    cycle: Cycle,
    *,
    base_url: str,
    participant_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> list[RereleaseOutcome]:
    """Re-release every report of ``cycle`` (or of ``participant_ids``) where it is safe.

    The cycle is scored once; each participant gets a new version or the reason it was
    refused (:func:`next_version`), and one refusal never stops the others.
    """
    if cycle.state != CycleState.RELEASED:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; only released reports can be re-released"
        )
    chosen = [p for p in cycle.participants if participant_ids is None or p.id in participant_ids]
    if participant_ids is not None:
        unknown = set(participant_ids) - {p.id for p in chosen}
        if unknown:
            raise DomainError(
                f"not participants of cycle {cycle.name!r}: {', '.join(map(str, sorted(unknown)))}"
            )
    scored = score_cycle(session, cycle)
    outcomes = []
    for participant in sorted(chosen, key=lambda p: p.id):
        name = participant.employee.name
        try:
            version = rerelease_participant(
                session, participant, base_url=base_url, now=now, cycle_scores=scored
            )
        except DomainError as refused:
            outcomes.append(RereleaseOutcome(participant.id, name, None, str(refused)))
        else:
            outcomes.append(RereleaseOutcome(participant.id, name, version.version, None))
    return outcomes


def rerelease_participant(
    session: Session,
    participant: Participant,
    *,
    base_url: str,
    now: datetime | None = None,
    cycle_scores: CycleScores | None = None,
) -> ReportVersion:
    """Release a new version of one report after HR accepted late responses.

    The new version is :func:`next_version` of the ones released before; refused
    (:class:`DomainError`, with the reason) when comparing them could isolate a rater's
    answers.
    """
    cycle = participant.cycle
    if cycle.state != CycleState.RELEASED:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; only released reports can be re-released"
        )
    earlier = session.scalars(
        select(ReportVersion)
        .where(ReportVersion.participant_id == participant.id)
        .order_by(ReportVersion.version)
    ).all()
    if not earlier:
        raise DomainError(f"{participant.employee.name} has no released report yet")
    frozen = [Frozen(v.version, report_from_json(v.data), v.response_counts) for v in earlier]
    counts = _response_counts(session, cycle, participant).get(participant.id, {})
    report = next_version(session, participant, frozen, counts, cycle_scores=cycle_scores)
    version = _freeze(
        session, participant, report, earlier[-1].version + 1, counts, now or utcnow()
    )
    session.flush()
    if not participant.report_held:  # a held report's link goes out when HR shares it
        _send_link(session, participant, base_url=base_url, version=version.version)
        session.flush()
    return version


@dataclass(frozen=True)
class Frozen:
    """A released version of a report: its number, contents and raters per group."""

    version: int
    report: ReportData
    response_counts: Mapping[str, int]


def next_version(
    session: Session,
    participant: Participant,
    earlier: Sequence[Frozen],
    response_counts: Mapping[str, int],
    *,
    cycle_scores: CycleScores | None = None,
) -> ReportData:
    """The report a re-release would freeze after ``earlier`` (oldest first), built from
    the responses now stored (``response_counts`` of them per group), or DomainError.

    It keeps hidden whatever the latest version hid (:func:`surveys.reports.carried_from`)
    and is refused when comparing it with any earlier version could isolate a rater's
    answers: the response counts (:func:`rerelease_refusal`), then every cell published
    in both (:func:`surveys.anonymity.version_change_refusal`).
    """
    cycle = participant.cycle
    name = participant.employee.name
    latest = earlier[-1]
    reason = rerelease_refusal(cycle, latest.response_counts, response_counts)
    if reason:
        raise DomainError(f"cannot re-release {name}'s report (version {latest.version}): {reason}")
    carry = carried_from(latest.report, latest.response_counts, participant)
    report = build_report(session, participant, cycle_scores=cycle_scores, carry=carry)
    after, labels = published_cells(report, participant)
    thresholds = {g: cycle.threshold(g) for g in (*RELATIONSHIPS, OTHERS)}
    for old in earlier:
        before = published_cells(old.report, participant)[0]
        if UNMATCHED_COMMENTS in before:
            raise DomainError(
                f"cannot re-release {name}'s report: the comments of version {old.version}"
                " can't be matched to their questions any more (was the participant renamed?),"
                " so a new version could show a late comment by comparison"
            )
        reason = version_change_refusal(
            before,
            after,
            thresholds,
            show_manager=cycle.show_manager,
            labels=labels,
        )
        if reason:
            raise DomainError(
                f"cannot re-release {name}'s report: comparing it with version {old.version}"
                f" would show late raters' answers; {reason}"
            )
    return report


def rerelease_refusal(
    cycle: Cycle, before: Mapping[str, int], after: Mapping[str, int]
) -> str | None:
    """Why releasing a report built from ``after`` next to one from ``before`` is unsafe.

    ``before`` and ``after`` count responses per relationship. Subtracting the two versions'
    figures gives the answers of exactly the raters who were added (or removed), so that
    difference must itself pass the anonymity thresholds (DESIGN §4):

    - every relationship group that changed must change by at least its threshold
      (e.g. one late peer would show up as "peers" moving by one rater);
    - all anonymous changes together must reach the "all others" threshold, because they
      all move "All others" (groups hidden in both versions included).

    Self is the participant's own answer and a manager shown as their own group (the
    cycle's ``show_manager`` with threshold 1) is not anonymous by design; their changes
    are allowed. Returns ``None`` when the release is safe, and refuses a release that
    would change nothing.
    """
    change = {g: int(after.get(g, 0)) - int(before.get(g, 0)) for g in RELATIONSHIPS}
    if not any(change.values()):
        return "no responses were added since it was released"
    anonymous = 0
    for group in RELATIONSHIPS:
        if group == "self" or not change[group] or _named(cycle, group):
            continue
        moved, needed = abs(change[group]), cycle.threshold(group)
        if moved < needed:
            return (
                f"{GROUP_LABELS[group]} changed by {_raters(moved)}; comparing the two versions"
                f" would show {'that rater' if moved == 1 else 'those raters'}' answers"
                f" (at least {needed} needed)"
            )
        anonymous += moved
    needed = cycle.threshold("others")
    if 0 < anonymous < needed:
        return (
            f"All others changed by {_raters(anonymous)}; comparing the two versions would"
            f" show {'that rater' if anonymous == 1 else 'those raters'}' answers"
            f" (at least {needed} needed)"
        )
    return None


def latest_version(session: Session, participant: Participant | int) -> ReportVersion | None:
    """The participant's newest released report, or ``None`` before release."""
    pid = participant if isinstance(participant, int) else participant.id
    return session.scalar(
        select(ReportVersion)
        .where(ReportVersion.participant_id == pid)
        .order_by(ReportVersion.version.desc())
        .limit(1)
    )


#: Ids in one ``IN (…)`` list (SQLite allows 32,766 bound values a statement).
IDS_PER_QUERY = 500


def latest_versions(
    session: Session, participants: Sequence[Participant]
) -> dict[int, ReportVersion]:
    """:func:`latest_version` of many participants, a query per :data:`IDS_PER_QUERY`:
    participant id → version (participants without one are left out)."""
    out: dict[int, ReportVersion] = {}
    for start in range(0, len(participants), IDS_PER_QUERY):
        ids = [p.id for p in participants[start : start + IDS_PER_QUERY]]
        newest = (
            select(ReportVersion.participant_id, func.max(ReportVersion.version).label("version"))
            .where(ReportVersion.participant_id.in_(ids))
            .group_by(ReportVersion.participant_id)
            .subquery()
        )
        rows = session.scalars(
            select(ReportVersion).join(
                newest,
                (ReportVersion.participant_id == newest.c.participant_id)
                & (ReportVersion.version == newest.c.version),
            )
        )
        out.update((row.participant_id, row) for row in rows)
    return out


def _named(cycle: Cycle, group: str) -> bool:
    """Whether the group's answers are published individually by design (the manager)."""
    return group == "manager" and cycle.show_manager and cycle.threshold("manager") <= 1


def _raters(n: int) -> str:
    return f"{n} rater" if n == 1 else f"{n} raters"


def _response_counts(
    session: Session, cycle: Cycle, participant: Participant | None = None
) -> dict[int, dict[str, int]]:
    """participant id -> responses per relationship (one query for the whole cycle)."""
    query = (
        select(Response.participant_id, Response.relationship, func.count())
        .where(Response.cycle_id == cycle.id)
        .group_by(Response.participant_id, Response.relationship)
    )
    if participant is not None:
        query = query.where(Response.participant_id == participant.id)
    counts: dict[int, dict[str, int]] = {}
    for pid, relationship, n in session.execute(query):
        counts.setdefault(pid, {})[Relationship(relationship).value] = int(n)
    return counts


def _freeze(
    session: Session,
    participant: Participant,
    report: ReportData,
    version: int,
    counts: Mapping[str, int],
    now: datetime,
) -> ReportVersion:
    # The page says which version it is and when it came out ("Version 2, released …").
    report = dataclasses.replace(report, version=version, released_on=now.date().isoformat())
    data = report_to_json(report)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    row = ReportVersion(
        participant=participant,
        version=version,
        created_at=now,
        data=data,
        content_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        response_counts={g: int(counts.get(g, 0)) for g in RELATIONSHIPS},
    )
    session.add(row)
    return row


def _send_link(
    session: Session, participant: Participant, *, base_url: str, version: int | None = None
) -> None:
    """Mint a report link that opens this participant's report only, and email it."""
    cycle = participant.cycle
    raw = issue_token(session, TokenPurpose.REPORT, cycle_id=cycle.id, participant=participant)
    queue_email(
        session,
        "report",
        participant.employee,
        cycle_id=cycle.id,
        cycle=cycle.name,
        link=f"{base_url}/r/{raw}",
        update=f" (updated: version {version})" if version else "",
    )
