"""The survey page: opened from the emailed link, no login, works without JavaScript.

GET shows one section (a competency, or the final comments-and-submit page); POST saves
the section into the server-side draft and redirects (post/redirect/get). JavaScript only
adds autosave through ``/autosave``.
"""

from __future__ import annotations

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from surveys import responses
from surveys.errors import DomainError, LinkClosed, NotFound
from surveys.models import AssignmentStatus
from webapp.extensions import db
from webapp.rater import bp
from webapp.rater.forms import SurveyForm, posted_answers, survey_sections


def _assignment(token: str):
    try:
        return responses.open_assignment(db.session, token)
    except LinkClosed as closed:
        abort(_closed_page(closed))
    except NotFound:
        abort(404)


def _closed_page(closed: LinkClosed) -> Response:
    """A real rating link after its cycle closed: say so (410), and whether the answers
    made it (only the rater holds the link), instead of "not valid" like a typo."""
    message = "This review has closed; answers can no longer be changed."
    if request.endpoint == "rater.autosave":
        return make_response(jsonify(error=message), 410)
    page = render_template("rater/closed.html", cycle=closed.cycle, assignment=closed.assignment)
    return make_response(page, 410)


@bp.get("/s/<token>")
def survey(token: str):
    assignment = _assignment(token)
    if assignment.status == AssignmentStatus.SUBMITTED:
        return render_template(
            "rater/thanks.html",
            assignment=assignment,
            left=responses.surveys_left(db.session, assignment),
        )
    if assignment.status == AssignmentStatus.DECLINED:
        return render_template(
            "rater/declined.html", assignment=assignment, token=token, form=SurveyForm()
        )
    bank = responses.cycle_bank(assignment.cycle)
    answers = responses.load_draft(db.session, assignment)
    sections = survey_sections(bank, assignment, answers)
    index = request.args.get("section", type=int)
    if index is None or not 0 <= index < len(sections):
        index = _resume_at(sections)
    errors = {}
    if request.args.get("check"):
        missing = set(responses.missing_required(bank, answers))
        errors = dict.fromkeys(missing, "This question needs an answer.")
    return _render(token, assignment, sections, index, answers, errors)


def _resume_at(sections) -> int:
    """Resume at the first section with unanswered items (the last one when all done)."""
    for section in sections[:-1]:
        if section.answered < len(section.items):
            return section.index
    return sections[-1].index


def _render(token, assignment, sections, index, answers, errors, status=200, form=None):
    return (
        render_template(
            "rater/survey.html",
            token=token,
            assignment=assignment,
            sections=sections,
            section=sections[index],
            answers=answers,
            errors=errors,
            form=form or SurveyForm(),
            scale=responses.cycle_bank(assignment.cycle).scale,
            max_comment=responses.MAX_COMMENT_CHARS,
        ),
        status,
    )


@bp.post("/s/<token>")
def save_section(token: str):
    assignment = _assignment(token)
    if assignment.status == AssignmentStatus.SUBMITTED:
        return _submitted_elsewhere(token)
    form = SurveyForm()
    if not form.validate_on_submit():
        abort(400)
    bank = responses.cycle_bank(assignment.cycle)
    sections = survey_sections(bank, assignment, responses.Answers())
    index = min(max(request.form.get("section", 0, type=int), 0), len(sections) - 1)
    checked = responses.clean_answers(bank, *posted_answers(request.form))
    action = request.form.get("action", "next")
    if action == "submit" and not checked.errors:
        return _submit(token, assignment, checked.answers)
    try:
        answers = responses.save_draft(db.session, assignment, checked.answers)
        db.session.commit()
    except responses.AlreadySubmitted:
        db.session.rollback()
        return _submitted_elsewhere(token)
    except responses.Declined:
        db.session.rollback()
        return redirect(url_for(".survey", token=token))
    except OperationalError:
        db.session.rollback()
        return _unavailable(token)
    if checked.errors:
        # Keep what the rater typed, even the refused text, so nothing is lost.
        shown = responses.Answers(
            ratings={**answers.ratings}, comments={**answers.comments, **_raw_comments()}
        )
        sections = survey_sections(bank, assignment, answers)
        return _render(token, assignment, sections, index, shown, checked.errors, 422, form)
    if action == "save":
        flash(
            "Saved. Open the link in your email any time to carry on where you left off.",
            "info",
        )
    elif action == "back":
        index -= 1
    elif action == "next":
        index += 1
    elif action.startswith("goto-"):
        target = action.removeprefix("goto-")
        # isdigit() alone accepts "²", which int() refuses: a forged button must not 500.
        index = int(target) if target.isascii() and target.isdigit() else index
    index = min(max(index, 0), len(sections) - 1)
    return redirect(url_for(".survey", token=token, section=index, _anchor="section-title"))


def _submitted_elsewhere(token: str):
    """A page posted after the survey was submitted (a double click, or another tab or
    device): its answers were not kept, and the thank-you page must not suggest they were."""
    flash(
        "This survey had already been submitted, so the answers on that page were not saved"
        " again: your feedback stands as first submitted.",
        "info",
    )
    return redirect(url_for(".survey", token=token))


def _raw_comments() -> dict[str, str]:
    return posted_answers(request.form)[1]


def _submit(token: str, assignment, posted: responses.Answers):
    """Submit the draft with this page's answers over it, in one transaction.

    When it does not go through (questions left, the database gone for a moment) the
    page's answers are saved as the draft instead, so nothing typed is lost.
    """
    try:
        responses.submit(db.session, assignment, posted)
        db.session.commit()
    except (responses.AlreadySubmitted, responses.Declined):
        db.session.rollback()
    except responses.Incomplete as error:
        db.session.rollback()
        if not _keep_draft(assignment, posted):
            return _unavailable(token)
        flash(str(error), "error")
        bank = responses.cycle_bank(assignment.cycle)
        missing = set(
            responses.missing_required(bank, responses.load_draft(db.session, assignment))
        )
        sections = survey_sections(bank, assignment, responses.Answers())
        first = next((s.index for s in sections if missing & s.field_ids), sections[-1].index)
        return redirect(url_for(".survey", token=token, section=first, check=1))
    except OperationalError:
        db.session.rollback()
        _keep_draft(assignment, posted)
        return _unavailable(token)
    except DomainError as error:  # the cycle closed a moment ago
        db.session.rollback()
        flash(str(error), "error")
    return redirect(url_for(".survey", token=token))


def _keep_draft(assignment, posted: responses.Answers) -> bool:
    """Save ``posted`` as the draft after a submit that did not go through; False when the
    database is still unreachable (what was saved before stays)."""
    try:
        responses.save_draft(db.session, assignment, posted)
        db.session.commit()
    except DomainError:  # submitted, declined, or the cycle closed in the meantime
        db.session.rollback()
    except OperationalError:
        db.session.rollback()
        return False
    return True


def _unavailable(token: str):
    return (
        render_template("rater/retry.html", token=token),
        503,
        {"Retry-After": "5"},
    )


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """survey.js reads JSON from autosave; every page gets the plain 400 page."""
    if request.endpoint == "rater.autosave":
        return jsonify(error="Your session expired; reload the page."), 400
    if request.endpoint == "rater.save_section":
        return _unsaved_section(request.view_args["token"])
    return render_template("error.html", code=400, title="Bad request"), 400


def _unsaved_section(token: str):
    """The session cookie was lost (a phone restored the tab): nothing was saved, but show
    the posted answers again with a fresh CSRF token so one more click saves them."""
    assignment = _assignment(token)
    if assignment.status != AssignmentStatus.IN_PROGRESS and assignment.is_done:
        return redirect(url_for(".survey", token=token))
    bank = responses.cycle_bank(assignment.cycle)
    draft = responses.load_draft(db.session, assignment)
    posted = responses.clean_answers(bank, *posted_answers(request.form)).answers
    shown = responses.Answers(
        ratings={**draft.ratings, **posted.ratings},
        comments={**draft.comments, **_raw_comments()},
    )
    sections = survey_sections(bank, assignment, shown)
    index = min(max(request.form.get("section", 0, type=int), 0), len(sections) - 1)
    flash(
        "Your session had expired, so this page was not saved yet. Your answers are still"
        " here: press the button again to save them.",
        "error",
    )
    return _render(token, assignment, sections, index, shown, {}, 400)


@bp.post("/s/<token>/autosave")
def autosave(token: str):
    """JavaScript autosave: saves whatever is valid, reports per-field errors as JSON."""
    assignment = _assignment(token)
    form = SurveyForm()
    if not form.validate_on_submit():
        return jsonify(error="Your session expired; reload the page."), 400
    bank = responses.cycle_bank(assignment.cycle)
    checked = responses.clean_answers(bank, *posted_answers(request.form))
    try:
        responses.save_draft(db.session, assignment, checked.answers)
        db.session.commit()
    except (responses.AlreadySubmitted, responses.Declined) as error:
        db.session.rollback()
        return jsonify(error=str(error)), 409
    except OperationalError:
        db.session.rollback()
        return jsonify(error="Could not save just now; we will try again."), 503
    return jsonify(saved=True, errors=checked.errors)


@bp.route("/s/<token>/decline", methods=["GET", "POST"])
def decline(token: str):
    assignment = _assignment(token)
    form = SurveyForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            responses.decline(db.session, assignment)
            db.session.commit()
        except (responses.AlreadySubmitted, responses.Declined):
            db.session.rollback()
        return redirect(url_for(".survey", token=token))
    if assignment.status == AssignmentStatus.SUBMITTED:
        return redirect(url_for(".survey", token=token))
    return render_template("rater/decline.html", assignment=assignment, token=token, form=form)


@bp.post("/s/<token>/resume")
def resume(token: str):
    assignment = _assignment(token)
    if not SurveyForm().validate_on_submit():
        abort(400)
    responses.reopen_declined(db.session, assignment)
    db.session.commit()
    return redirect(url_for(".survey", token=token))


@bp.get("/")
def index():
    """Nobody needs an account: people arrive through the links in their emails."""
    return render_template("index.html")
