"""The cycle set-up wizard (issue #5 §4): a draft cycle, edited step by step, launched once.

Step 1 creates a *draft* cycle; every later step saves into it, so nothing typed is lost
between steps and HR can leave and come back (drafts are listed on the first page). Each
step validates its form, calls one service and commits once with its audit event. Only a
draft can be edited; the review step lists every problem and warning, and one confirmed
POST opens nominations (participants nominate) or launches the cycle (peers from the org
chart), then hands over to the cycle's progress page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from surveys import audit, bank_store, cycle_setup, cycles
from surveys.banks import Bank, BankError, UnknownBankError
from surveys.cycles import SettingsError
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, NominationMode, User
from webapp.admin import bp
from webapp.admin.setup_forms import (
    THRESHOLD_GROUPS,
    AnonymityForm,
    BasicsForm,
    DatesForm,
    EmailForm,
    LaunchForm,
    NominationsForm,
    ParticipantsForm,
    language_label,
    today,
)
from webapp.extensions import db

#: The wizard's steps in order: URL segment and title.
STEPS: list[tuple[str, str]] = [
    ("basics", "Basics"),
    ("participants", "Participants"),
    ("nominations", "Nominations"),
    ("anonymity", "Anonymity"),
    ("dates", "Dates and reminders"),
    ("emails", "Email texts"),
    ("review", "Review and launch"),
]
STEP_KEYS = [key for key, _ in STEPS]


def _me() -> User:
    """The signed-in account itself (not the proxy), for the audit log."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _target(cycle: Cycle) -> str:
    return f"cycle {cycle.id} {cycle.name}"


# -- shared plumbing --------------------------------------------------------------------


def _render(step: str, form: FlaskForm, cycle: Cycle | None, status: int = 200, **extra: Any):
    return (
        render_template(
            f"admin/setup_{step}.html",
            step=step,
            steps=STEPS,
            cycle=cycle,
            form=form,
            **extra,
        ),
        status,
    )


def _invalid(step: str, form: FlaskForm, cycle: Cycle | None, **extra: Any):
    """Re-show a step with its errors and everything typed (422: nothing was saved)."""
    db.session.rollback()
    return _render(step, form, cycle, 422, **extra)


def _show_error(form: FlaskForm, error: DomainError) -> None:
    """Put a service's refusal next to the input it is about, or above the form."""
    messages = error.messages if isinstance(error, SettingsError) else {"": [str(error)]}
    for key, problems in messages.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            text = str(problem)
            field = form._fields.get(key)
            if key == "thresholds":
                # The schema names the group first ("peer threshold below 2 would …"); the
                # group's own field is labelled with it.
                group, text = text.split(" ", 1)
                field = form._fields.get(f"threshold_{group}")
            text = _sentence(text)
            if field is not None:
                field.errors = [*field.errors, text]
            else:
                form.form_errors.append(text)


#: The schema's wording where the console names the fields differently.
CONSOLE_WORDING = {
    "peer_max must be at least peer_min": "Must be at least the fewest peers per participant.",
}


def _sentence(text: str) -> str:
    text = CONSOLE_WORDING.get(text, text)
    return text[:1].upper() + text[1:]


def _save(cycle: Cycle, step: str, changed: list[str]) -> Response:
    """Audit what changed, commit, and go where the pressed button asked."""
    if changed:
        audit.record(
            db.session, _me(), "cycle.edit", _target(cycle), {"step": step, "changed": changed}
        )
    db.session.commit()
    action = request.form.get("action", "next")
    index = STEP_KEYS.index(step)
    index += {"next": 1, "back": -1}.get(action, 0)
    index = max(0, min(index, len(STEP_KEYS) - 1))
    if action == "save":
        flash("Saved." if changed else "Nothing had changed.", "info")
    return redirect(url_for(".setup_step", cycle_id=cycle.id, step=STEP_KEYS[index]))


def _load_draft(cycle_id: int) -> Cycle | Response:
    """The draft cycle, or a redirect to its progress page once it is no longer a draft."""
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        abort(404)
    if cycle.state != CycleState.DRAFT:
        flash(f"“{cycle.name}” is {cycle.state.value}: only draft cycles can be edited.", "error")
        return redirect(url_for(".cycle", cycle_id=cycle.id))
    return cycle


# -- step 1: basics (also the entry point) ----------------------------------------------


def _basics_form(data: dict[str, Any] | None = None) -> BasicsForm:
    form = BasicsForm(data=data or {})
    entries = bank_store.list_banks(db.session)
    form.bank.choices = [SelectChoice("", "Choose a bank…")] + [
        SelectChoice(
            e.key,
            f"{e.bank.title} — {e.key} v{e.bank.version}"
            + (" (custom)" if e.custom else "")
            + f" · {', '.join(e.bank.languages)}",
        )
        for e in entries
    ]
    languages = sorted({lang for e in entries for lang in e.bank.languages})
    form.language.choices = [SelectChoice(code, language_label(code)) for code in languages]
    return form


def _chosen_bank(form: BasicsForm) -> Bank | None:
    """The bank and language the form names, or ``None`` with the error on the field."""
    try:
        bank = bank_store.get_bank(db.session, form.bank.data)
    except (UnknownBankError, BankError) as error:
        form.bank.errors = [*form.bank.errors, f"That bank cannot be used: {error}"]
        return None
    if form.language.data not in bank.languages:
        form.language.errors = [
            *form.language.errors,
            f"{bank.title} has no texts in {language_label(form.language.data)};"
            f" choose one of: {', '.join(language_label(x) for x in bank.languages)}.",
        ]
        return None
    return bank


def _drafts() -> list[Cycle]:
    return list(
        db.session.scalars(
            select(Cycle)
            .where(Cycle.state == CycleState.DRAFT)
            .order_by(Cycle.created_at.desc(), Cycle.id.desc())
        )
    )


# The first rule registered is the one url_for builds: decorators apply bottom-up, so the
# old /new-cycle address (kept for bookmarks) goes on top.
@bp.route("/new-cycle", methods=["GET", "POST"])
@bp.route("/cycles/new", methods=["GET", "POST"])
def new_cycle():
    """Start a cycle: the basics create the draft that the other steps fill in."""
    form = _basics_form({"language": "en"})
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return _render("basics", form, None, status, drafts=_drafts())
    bank = _chosen_bank(form)
    if bank is None:
        return _invalid("basics", form, None, drafts=_drafts())
    try:
        cycle = cycles.create_cycle(
            db.session, name=form.name.data, bank=bank, settings={"language": form.language.data}
        )
    except DomainError as error:
        _show_error(form, error)
        return _invalid("basics", form, None, drafts=_drafts())
    audit.record(
        db.session,
        _me(),
        "cycle.create",
        _target(cycle),
        {"bank": bank.key, "version": bank.version, "language": cycle.language},
    )
    db.session.commit()
    return redirect(url_for(".setup_step", cycle_id=cycle.id, step="participants"))


def _basics(cycle: Cycle):
    form = _basics_form({"name": cycle.name, "bank": cycle.bank_key, "language": cycle.language})
    if not form.validate_on_submit():
        return _render("basics", form, cycle, 422 if request.method == "POST" else 200)
    bank = _chosen_bank(form)
    if bank is None:
        return _invalid("basics", form, cycle)
    try:
        changed = cycles.update_cycle_settings(db.session, cycle, {"name": form.name.data})
        changed += cycle_setup.change_bank(db.session, cycle, bank, form.language.data)
    except DomainError as error:
        _show_error(form, error)
        return _invalid("basics", form, cycle)
    return _save(cycle, "basics", changed)


# -- step 2: participants ---------------------------------------------------------------


def _participants(cycle: Cycle):
    employees = cycle_setup.active_employees(db.session)
    scope, department = cycle_setup.participant_scope(db.session, cycle)
    saved = [p.employee_id for p in cycle.participants]
    form = ParticipantsForm(data={"scope": scope, "department": department, "employees": saved})
    sizes = Counter(e.department for e in employees)
    form.department.choices = [SelectChoice("", "Choose a department…")] + [
        SelectChoice(name, f"{name} ({sizes[name]})")
        for name in cycle_setup.departments(db.session)
    ]

    def page(status: int = 200):
        return _render(
            "participants",
            form,
            cycle,
            status,
            **_picker(employees, form),
            everyone=len(employees),
        )

    if request.method == "POST" and request.form.get("action") == "filter":
        return page()  # narrows the list, keeps every tick, saves nothing
    if not form.validate_on_submit():
        return page(422 if request.method == "POST" else 200)
    chosen = _chosen_people(form, employees)
    if not chosen:
        form.scope.errors = [
            *form.scope.errors,
            "Nobody active matches this choice: pick other people."
            if employees
            else "Nobody active to choose from: import the org chart first (People).",
        ]
        return _invalid(
            "participants", form, cycle, **_picker(employees, form), everyone=len(employees)
        )
    try:
        cycle_setup.set_participants(db.session, cycle, chosen)
    except DomainError as error:
        _show_error(form, error)
        return _invalid("participants", form, cycle, **_picker(employees, form), everyone=0)
    now = [p.employee_id for p in cycle.participants]
    return _save(cycle, "participants", ["participants"] if set(now) != set(saved) else [])


def _chosen_people(form: ParticipantsForm, employees: list) -> list:
    if form.scope.data == "department":
        return [e for e in employees if e.department == form.department.data]
    if form.scope.data == "list":
        wanted = set(form.employees.data or [])
        return [e for e in employees if e.id in wanted]
    return employees


def _picker(employees: list, form: ParticipantsForm) -> dict[str, Any]:
    """The checkboxes to show (matching the filter) and the ticked ones it hides."""
    selected = set(form.employees.data or [])
    needle = (form.q.data or "").strip().lower()

    def matches(e) -> bool:
        haystack = f"{e.name} {e.external_id} {e.email} {e.department or ''}".lower()
        return not needle or needle in haystack

    shown = [e for e in employees if matches(e)]
    shown_ids = {e.id for e in shown}
    return {
        "shown": shown,
        "selected": selected,
        "hidden_selected": sorted(selected - shown_ids),
    }


# -- steps 3 to 6: settings -------------------------------------------------------------


def _settings_step(
    cycle: Cycle,
    step: str,
    form: FlaskForm,
    values: Callable[[], dict[str, Any]],
    **extra: Any,
):
    """The shape of every settings step: validate, save through the schema, go on."""
    if not form.validate_on_submit():
        return _render(step, form, cycle, 422 if request.method == "POST" else 200, **extra)
    try:
        changed = cycles.update_cycle_settings(db.session, cycle, values())
    except DomainError as error:
        _show_error(form, error)
        return _invalid(step, form, cycle, **extra)
    return _save(cycle, step, changed)


_NOMINATION_FIELDS = (
    "approval_required",
    "peer_min",
    "peer_max",
    "include_self",
    "include_manager",
    "include_direct_reports",
    "show_manager",
)


def _nominations(cycle: Cycle):
    data: dict[str, Any] = {key: getattr(cycle, key) for key in _NOMINATION_FIELDS}
    data["nomination_mode"] = cycle.nomination_mode.value
    form = NominationsForm(data=data)

    def values() -> dict[str, Any]:
        picked = {key: form[key].data for key in _NOMINATION_FIELDS}
        return {**picked, "nomination_mode": form.nomination_mode.data}

    return _settings_step(cycle, "nominations", form, values)


def _anonymity(cycle: Cycle):
    form = AnonymityForm(
        data={f"threshold_{group}": cycle.threshold(group) for group in THRESHOLD_GROUPS}
    )
    return _settings_step(
        cycle,
        "anonymity",
        form,
        lambda: {"thresholds": form.thresholds()},
        groups=THRESHOLD_GROUPS,
        defaults=cycles.DEFAULT_THRESHOLDS,
    )


_DATE_FIELDS = ("nomination_deadline", "close_date", "reminder_interval_days", "max_reminders")


def _dates(cycle: Cycle):
    form = DatesForm(data={key: getattr(cycle, key) for key in _DATE_FIELDS})
    return _settings_step(
        cycle,
        "dates",
        form,
        lambda: {key: form[key].data for key in _DATE_FIELDS},
        nominating=cycle.nomination_mode == NominationMode.PARTICIPANT,
    )


def _emails(cycle: Cycle):
    form = EmailForm(data={"email_message": cycle.email_message or ""})
    if request.method == "POST" and request.form.get("action") == "preview":
        valid = form.validate_on_submit()
        text = form.email_message.data if valid else None
        return _render(
            "emails",
            form,
            cycle,
            200 if valid else 422,
            previews=cycle_setup.preview_emails(cycle, text),
        )
    return _settings_step(
        cycle,
        "emails",
        form,
        lambda: {"email_message": form.email_message.data or None},
        previews=cycle_setup.preview_emails(cycle),
    )


# -- step 7: review and launch ----------------------------------------------------------


def _review_page(cycle: Cycle, form: LaunchForm, status: int = 200):
    review = cycle_setup.review_cycle(db.session, cycle, today=today())
    return _render(
        "review",
        form,
        cycle,
        status,
        review=review,
        error_heading="Nothing was sent",
        groups=THRESHOLD_GROUPS,
        language=language_label(cycle.language),
        nominating=cycle.nomination_mode == NominationMode.PARTICIPANT,
        participants=sorted((p.employee for p in cycle.participants), key=lambda e: e.name),
    )


def _review(cycle: Cycle):
    if request.method == "POST":
        abort(405)
    return _review_page(cycle, LaunchForm())


STEP_VIEWS: dict[str, Callable[[Cycle], Any]] = {
    "basics": _basics,
    "participants": _participants,
    "nominations": _nominations,
    "anonymity": _anonymity,
    "dates": _dates,
    "emails": _emails,
    "review": _review,
}


@bp.route("/cycles/new/<int:cycle_id>/<step>", methods=["GET", "POST"])
def setup_step(cycle_id: int, step: str):
    view = STEP_VIEWS.get(step)
    if view is None:
        abort(404)
    cycle = _load_draft(cycle_id)
    if isinstance(cycle, Response):
        return cycle
    return view(cycle)


@bp.post("/cycles/new/<int:cycle_id>/launch")
def setup_launch(cycle_id: int):
    """The one confirmed action: open nominations or launch, then show progress."""
    cycle = _load_draft(cycle_id)
    if isinstance(cycle, Response):
        return cycle
    form = LaunchForm()
    review = cycle_setup.review_cycle(db.session, cycle, today=today())
    if not form.validate_on_submit() or not review.ok:
        return _review_page(cycle, form, 422)
    if review.short and not form.allow_short.data:
        form.allow_short.errors = [
            "Some participants have fewer possible peers than the minimum: tick this to"
            " launch anyway (you can add raters later), or change the settings."
        ]
        return _review_page(cycle, form, 422)
    try:
        message = _open(cycle, allow_short=bool(review.short))
    except DomainError as error:
        db.session.rollback()
        form.form_errors.append(str(error))
        return _review_page(cycle, form, 422)
    db.session.commit()
    flash(message, "info")
    return redirect(url_for(".cycle", cycle_id=cycle.id))


def _open(cycle: Cycle, *, allow_short: bool) -> str:
    """Start nominations or launch, with its audit event; returns the message for HR."""
    base_url = current_app.config["BASE_URL"]
    if cycle.nomination_mode == NominationMode.PARTICIPANT:
        sent = cycles.start_nominations(db.session, cycle, base_url=base_url)
        audit.record(
            db.session, _me(), "cycle.open_nominations", _target(cycle), {"participants": sent}
        )
        who = "1 participant was" if sent == 1 else f"{sent} participants were"
        return f"Nominations are open: {who} emailed their link."
    report = cycles.launch_cycle(db.session, cycle, base_url=base_url, allow_short=allow_short)
    audit.record(
        db.session,
        _me(),
        "cycle.launch",
        _target(cycle),
        {"assignments": report.assignments, "emails": report.emails},
    )
    return f"The cycle is open: {report.assignments} surveys, {report.emails} emails queued."
