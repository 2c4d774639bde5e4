"""Releasing a closed cycle's reports, previewing them, and the CSV exports.

The preview renders the report through the same template and the same values as the
participant's link: before release, :func:`surveys.reports.build_report` with the
cycle scored once (what :func:`surveys.releases.release_cycle` freezes); after release,
the frozen version the participant's link shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager

from surveys import audit, exports, releases
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, Employee, Participant
from surveys.paging import clamp_page
from surveys.releases import (
    abandon_release,
    latest_version,
    latest_versions,
    release_running,
    request_release,
)
from surveys.reports import (
    ReportData,
    build_report,
    report_from_json,
    report_scores_from_json,
)
from webapp import jobs
from webapp.admin import bp
from webapp.admin.cycle_actions import load_cycle, load_participant
from webapp.admin.cycle_forms import ActionForm, ReleaseForm, csrf_failed
from webapp.cycle_scores import closed_cycle_scores
from webapp.extensions import db
from webapp.reports.render import report_html
from webapp.reports.routes import pdf_response, private

#: States in which a participant's report can be previewed (there are raters to show).
#: Not while open: previewing before and after one more rater submits would show what
#: that rater said (the "not answered yet" list says who it was).
PREVIEWABLE = (CycleState.CLOSED, CycleState.RELEASED)


@dataclass(frozen=True)
class ReleaseRow:
    """One participant on the release page: counts and shown groups, as the report has them."""

    participant_id: int
    name: str
    employee_id: str
    invited: int
    responded: int
    self_done: bool
    #: (label, n) of every group the report shows.
    shown: tuple[tuple[str, int], ...]
    #: Why a group is folded into "All others" or hidden.
    merged: tuple[str, ...]
    version: int | None
    #: HR holds the report back: frozen at release, its link sent when HR shares it.
    held: bool


#: Participants per page of the release page (a page builds each of its reports).
RELEASE_PAGE_SIZE = 100


def _page_of_participants(cycle: Cycle, page: int) -> tuple[list[Participant], int, int, int]:
    """One page of the cycle's participants by name: (participants, page, pages, total)."""
    total = db.session.scalar(
        select(func.count()).select_from(Participant).where(Participant.cycle_id == cycle.id)
    )
    page, pages = clamp_page(page, total, RELEASE_PAGE_SIZE)
    participants = db.session.scalars(
        select(Participant)
        .join(Employee, Participant.employee_id == Employee.id)
        .where(Participant.cycle_id == cycle.id)
        .options(contains_eager(Participant.employee))
        .order_by(Employee.name, Participant.id)
        .limit(RELEASE_PAGE_SIZE)
        .offset((page - 1) * RELEASE_PAGE_SIZE)
    ).all()
    return list(participants), page, pages, total


def _rows(cycle: Cycle, participants: list[Participant]) -> list[ReleaseRow]:
    if cycle.state == CycleState.RELEASED:
        versions = latest_versions(db.session, participants)
        reports = []
        for p in participants:
            version = versions.get(p.id)
            data = report_scores_from_json(version.data) if version else None
            reports.append((p, data, version.version if version else None))
    else:
        scored = closed_cycle_scores(db.session, cycle)  # once for everyone, as the release does
        reports = [
            (p, build_report(db.session, p, cycle_scores=scored), None) for p in participants
        ]
    return [
        ReleaseRow(
            participant_id=p.id,
            name=p.employee.name,
            employee_id=p.employee.external_id,
            invited=report.invited if report else 0,
            responded=report.responded if report else 0,
            self_done=report.self_done if report else False,
            shown=tuple((c.label, c.n) for c in report.counts) if report else (),
            merged=report.merged_notes if report else (),
            version=version,
            held=p.report_held,
        )
        for p, report, version in reports
    ]


def _release_page(cycle: Cycle, form: ReleaseForm | None = None, status_code: int = 200):
    if cycle.state not in (CycleState.CLOSED, CycleState.RELEASED):
        abort(403)
    participants, page, pages, total = _page_of_participants(
        cycle, request.args.get("page", 1, type=int) or 1
    )
    html = render_template(
        "admin/release.html",
        cycle=cycle,
        rows=_rows(cycle, participants),
        page=page,
        pages=pages,
        page_size=RELEASE_PAGE_SIZE,
        total=total,
        held=db.session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.cycle_id == cycle.id, Participant.report_held)
        ),
        form=form or ReleaseForm(formdata=None),
        action_form=ActionForm(),
        running=release_running(cycle),
    )
    return html, status_code


@bp.get("/cycles/<int:cycle_id>/release")
def release(cycle_id: int):
    return _release_page(load_cycle(cycle_id))


@bp.post("/cycles/<int:cycle_id>/release")
def release_all(cycle_id: int):
    found = load_cycle(cycle_id)
    form = ReleaseForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            abort(400)
        return _release_page(found, form, 422)
    try:
        request_release(db.session, found)
    except DomainError as error:
        db.session.rollback()
        form.confirm.errors = [str(error)]
        return _release_page(found, form, 422)
    db.session.commit()
    reports = _count(len(found.participants), "report")
    try:
        # A large cycle takes minutes; with QUEUE_URL=memory:// this runs right here.
        jobs.release_reports(found.id, current_user.id)
    except Exception:
        current_app.logger.exception("could not start the release of cycle %s", found.id)
        _not_started(found)
        return redirect(url_for(".release", cycle_id=found.id))
    db.session.expire(found)
    if found.state == CycleState.RELEASED:
        held = sum(p.report_held for p in found.participants)
        emails = _count(len(found.participants) - held, "email")
        kept = f" {_count(held, 'report')} held back until you send them." if held else ""
        flash(f"Released {reports}; {emails} with report links queued.{kept}", "info")
    elif found.release_error is None:
        flash(
            f"Releasing {reports} in the background. Reload this page to see when they are out.",
            "info",
        )
    return redirect(url_for(".release", cycle_id=found.id))


def _not_started(cycle: Cycle) -> None:
    """Undo the release request when its job could not be queued (or died inline)."""
    db.session.rollback()
    abandon_release(db.session, cycle.id, NOT_STARTED)
    db.session.commit()


#: What HR reads when the release job could not be queued.
NOT_STARTED = (
    "The release could not be started (the job queue did not answer); nothing was"
    " released. Try again in a moment."
)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@bp.post("/cycles/<int:cycle_id>/participants/<int:participant_id>/hold")
def hold_report(cycle_id: int, participant_id: int):
    """Hold a report back at release (``held=1``) or release it with the others (``held=0``)."""
    return _report_link_action(cycle_id, participant_id, "hold")


@bp.post("/cycles/<int:cycle_id>/participants/<int:participant_id>/share")
def share_report(cycle_id: int, participant_id: int):
    """Email a held report's link to its participant."""
    return _report_link_action(cycle_id, participant_id, "share")


def _report_link_action(cycle_id: int, participant_id: int, action: str):
    found = load_cycle(cycle_id)
    participant = load_participant(found, participant_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = participant.employee.name
    try:
        if action == "share":
            releases.share_report(db.session, participant, base_url=current_app.config["BASE_URL"])
            done, message = "report.share", f"{name}'s report link is queued."
        else:
            held = request.form.get("held") == "1"
            releases.hold_report(db.session, participant, held)
            done = "report.hold" if held else "report.unhold"
            message = (
                f"{name}'s report will be frozen with the others but not sent; send it from "
                "this page after the release."
                if held
                else f"{name}'s report will be sent with the others."
            )
    except DomainError as error:
        db.session.rollback()
        flash(f"Not done: {error}.", "error")
        return redirect(url_for(".release", cycle_id=found.id, _anchor=f"p-{participant.id}"))
    audit.record(
        db.session,
        current_user,
        done,
        f"cycle {found.id} {found.name}",
        {"participant": participant.employee.external_id},
    )
    db.session.commit()
    flash(message, "info")
    # Back at the participant's row (focusable), where HR was working down the list.
    return redirect(
        url_for(
            ".release",
            cycle_id=found.id,
            page=request.args.get("page"),
            _anchor=f"p-{participant.id}",
        )
    )


# -- preview --------------------------------------------------------------------------------


def _preview_report(cycle_id: int, participant_id: int) -> tuple[Participant, ReportData]:
    """The report exactly as the participant sees (or will see) it; audited."""
    found = load_cycle(cycle_id)
    if found.state not in PREVIEWABLE:
        abort(404)
    participant = load_participant(found, participant_id)
    if found.state == CycleState.RELEASED:
        version = latest_version(db.session, participant)
        if version is None:
            abort(404)
        report = report_from_json(version.data)
    else:
        report = build_report(
            db.session, participant, cycle_scores=closed_cycle_scores(db.session, found)
        )
    audit.record(
        db.session,
        current_user,
        "report.preview",
        f"cycle {found.id} {found.name}",
        {"participant": participant.employee.external_id},
    )
    db.session.commit()
    return participant, report


@bp.get("/cycles/<int:cycle_id>/participants/<int:participant_id>/report")
def preview_report(cycle_id: int, participant_id: int) -> Response:
    participant, report = _preview_report(cycle_id, participant_id)
    pdf_url = url_for(".preview_report_pdf", cycle_id=cycle_id, participant_id=participant.id)
    return private(Response(report_html(report, pdf_url=pdf_url), mimetype="text/html"))


@bp.get("/cycles/<int:cycle_id>/participants/<int:participant_id>/report.pdf")
def preview_report_pdf(cycle_id: int, participant_id: int) -> Response:
    participant, report = _preview_report(cycle_id, participant_id)
    return private(pdf_response(report, f"feedback-report-{participant.employee.external_id}.pdf"))


# -- exports --------------------------------------------------------------------------------


def _csv(body: str | Iterator[str], filename: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export(
    cycle_id: int, action: str, build: Callable[[Cycle], str | Iterator[str]], suffix: str
) -> Response:
    """An export as a CSV download: the cycle, the form's CSRF token, ``build(cycle)``
    (403 on DomainError), an audit record, the file."""
    found = load_cycle(cycle_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        body = build(found)
    except DomainError:
        abort(403)
    audit.record(db.session, current_user, action, f"cycle {found.id} {found.name}")
    db.session.commit()
    return _csv(body, f"cycle-{found.id}-{suffix}.csv")


@bp.post("/cycles/<int:cycle_id>/export/response-rates.csv")
def export_response_rates(cycle_id: int) -> Response:
    def build(cycle: Cycle) -> str:
        return exports.response_rates_csv(db.session, cycle)

    return _export(cycle_id, "export.response_rates", build, "response-rates")


@bp.post("/cycles/<int:cycle_id>/export/scores.csv")
def export_scores(cycle_id: int) -> Response:
    """Streamed: the header at once, the rows as they are made (a 10,000-person cycle's
    take a minute or so)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def build(cycle: Cycle) -> Iterator[str]:
        exports.require_scores(cycle)
        return _scores_pieces(app, cycle.id)

    return _export(cycle_id, "export.scores", build, "scores")


def _scores_pieces(app: Flask, cycle_id: int) -> Iterator[str]:
    """The scores file a piece at a time, read in an app context of its own: opened at
    the first piece and closed with the response, not the request's (which is gone by
    then, or would stay open behind a response nobody reads)."""
    with app.app_context():
        cycle = db.session.get(Cycle, cycle_id)
        yield from exports.scores_csv_chunks(db.session, cycle, score=closed_cycle_scores)
