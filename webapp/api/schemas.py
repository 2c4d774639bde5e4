"""Marshmallow schemas of the REST API, one per audience and direction.

Every response schema names its fields explicitly and is written for one reader: an HR
client with an API token. None carries rater identity — no rater ids, pseudonyms,
response ids, tokens or submission times — and
``tests/webapp/test_api.py::test_no_response_schema_can_carry_rater_identity`` walks the
served OpenAPI document to keep it that way. Request schemas validate shape and ranges
(422 on failure); the services in ``surveys/`` still check the meaning.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from surveys.cycles import CycleSettingsSchema
from surveys.models import CycleState, NominationStatus, Relationship

_EXTERNAL_ID = validate.Length(min=1, max=64)


class _Strict(Schema):
    """Request bodies refuse unknown fields, so a typo is an error and not a silent no-op."""

    class Meta:
        unknown = RAISE


class _Query(Schema):
    """Query strings ignore unknown parameters (cache busters and the like)."""

    class Meta:
        unknown = EXCLUDE


# -- employees ---------------------------------------------------------------------------


class EmployeeQuerySchema(_Query):
    search = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Part of a name, email, employee id or department."},
    )
    q = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Same as `search` (the console's people search uses `?q=`)."},
    )
    department = fields.String(
        validate=validate.Length(max=120),
        metadata={"description": "Only this department (case-insensitive)."},
    )
    include_inactive = fields.Boolean(load_default=True)


class EmployeeSchema(Schema):
    """A person in the org chart, as HR sees them."""

    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    manager_id = fields.String(allow_none=True, required=True)
    department = fields.String(allow_none=True, required=True)
    active = fields.Boolean(required=True)


class EmployeeImportRowSchema(_Strict):
    """One person to add or update; the same columns as employees.csv.

    Only types are checked here; the import checks the values (empty, too long, bad
    email, unknown manager …) and reports each rejected row by its index.
    """

    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    manager_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The manager's employee_id; null for the top of the chart."},
    )
    department = fields.String(
        allow_none=True,
        metadata={"description": "Absent or null: keep what is stored; an empty string: none."},
    )


class ImportQuerySchema(_Query):
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Only check and return the plan; write nothing."},
    )


class ImportedRowSchema(Schema):
    row = fields.Integer(required=True, metadata={"description": "1-based index in the body."})
    employee_id = fields.String(required=True)


class FieldChangeSchema(Schema):
    field = fields.String(required=True)
    before = fields.Raw(allow_none=True, required=True)
    after = fields.Raw(allow_none=True, required=True)


class ChangedRowSchema(ImportedRowSchema):
    fields = fields.List(fields.Nested(FieldChangeSchema), required=True)


class RejectedRowSchema(Schema):
    row = fields.Integer(allow_none=True, required=True)
    employee_id = fields.String(allow_none=True, required=True)
    message = fields.String(required=True)


class ImportPlanSchema(Schema):
    """What an import would do (``dry_run``) or did; ``rejected`` rows stop it whole."""

    dry_run = fields.Boolean(required=True)
    applied = fields.Boolean(required=True)
    added = fields.List(fields.Nested(ImportedRowSchema), required=True)
    changed = fields.List(fields.Nested(ChangedRowSchema), required=True)
    unchanged = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RejectedRowSchema), required=True)
    absent = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Active employees not in the body; left as they are."},
    )


# -- banks -------------------------------------------------------------------------------


class BankSummarySchema(Schema):
    key = fields.String(required=True)
    version = fields.String(required=True)
    title = fields.String(required=True)
    language = fields.String(required=True)
    languages = fields.List(fields.String(), required=True)
    custom = fields.Boolean(required=True)
    competencies = fields.Integer(required=True)
    items = fields.Integer(required=True)


class BankQuerySchema(_Query):
    lang = fields.String(
        validate=validate.Length(min=2, max=16),
        metadata={"description": "Language of the texts (default: the bank's own)."},
    )


class ScaleSchema(Schema):
    min = fields.Integer(required=True)
    max = fields.Integer(required=True)
    labels = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    na_label = fields.String(required=True)


class BankItemSchema(Schema):
    id = fields.String(required=True)
    self_text = fields.String(required=True)
    others_text = fields.String(required=True)
    required = fields.Boolean(required=True)


class CompetencySchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    items = fields.List(fields.Nested(BankItemSchema), required=True)


class BankDetailSchema(Schema):
    key = fields.String(required=True)
    version = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    language = fields.String(required=True)
    languages = fields.List(fields.String(), required=True)
    custom = fields.Boolean(required=True)
    scale = fields.Nested(ScaleSchema, required=True)
    competencies = fields.List(fields.Nested(CompetencySchema), required=True)
    open_questions = fields.List(fields.Nested(BankItemSchema), required=True)


# -- cycles ------------------------------------------------------------------------------

PARTICIPANT_MODES = ("all", "department", "employees")


class ParticipantsSpecSchema(_Strict):
    """Who is rated: everyone active, one department, or a list of employee ids."""

    mode = fields.String(required=True, validate=validate.OneOf(PARTICIPANT_MODES))
    department = fields.String(validate=validate.Length(min=1, max=120))
    employee_ids = fields.List(
        fields.String(validate=_EXTERNAL_ID), validate=validate.Length(min=1, max=10_000)
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        mode = data.get("mode")
        if mode == "department" and not data.get("department"):
            raise ValidationError("required when mode is department", "department")
        if mode == "employees" and not data.get("employee_ids"):
            raise ValidationError("required when mode is employees", "employee_ids")
        if mode != "department" and "department" in data:
            raise ValidationError("only with mode department", "department")
        if mode != "employees" and "employee_ids" in data:
            raise ValidationError("only with mode employees", "employee_ids")


class CycleSettingsInSchema(CycleSettingsSchema):
    """The cycle settings (the same validation as the CLI and the console)."""

    class Meta:
        unknown = RAISE


class CycleCreateSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    bank = fields.String(required=True, validate=validate.Length(min=1, max=64))
    participants = fields.Nested(ParticipantsSpecSchema, load_default=lambda: {"mode": "all"})
    settings = fields.Nested(CycleSettingsInSchema, load_default=dict)

    @validates_schema
    def _check_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("name", "x").strip():
            raise ValidationError("a cycle needs a name", "name")


class CycleListQuerySchema(_Query):
    state = fields.Enum(CycleState, by_value=True)


class CycleSummarySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    state = fields.Enum(CycleState, by_value=True, required=True)
    bank = fields.String(required=True)
    bank_version = fields.String(required=True)
    participants = fields.Integer(required=True, metadata={"description": "How many."})
    close_date = fields.Date(allow_none=True, required=True)


class CycleSettingsOutSchema(Schema):
    """The settings a cycle runs with, as stored."""

    language = fields.String(required=True)
    nomination_mode = fields.String(required=True)
    approval_required = fields.Boolean(required=True)
    peer_min = fields.Integer(required=True)
    peer_max = fields.Integer(required=True)
    include_self = fields.Boolean(required=True)
    include_manager = fields.Boolean(required=True)
    include_direct_reports = fields.Boolean(required=True)
    show_manager = fields.Boolean(required=True)
    thresholds = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    reminder_interval_days = fields.Integer(required=True)
    max_reminders = fields.Integer(required=True)
    nomination_deadline = fields.Date(allow_none=True, required=True)
    close_date = fields.Date(allow_none=True, required=True)


class ParticipantRefSchema(Schema):
    employee_id = fields.String(required=True)
    name = fields.String(required=True)


class CycleDetailSchema(CycleSummarySchema):
    """One cycle: its settings, state and the cycle's own milestones (never a rater's)."""

    settings = fields.Nested(CycleSettingsOutSchema, required=True)
    created_at = fields.AwareDateTime(required=True)
    launched_at = fields.AwareDateTime(allow_none=True, required=True)
    closed_at = fields.AwareDateTime(allow_none=True, required=True)
    released_at = fields.AwareDateTime(allow_none=True, required=True)
    participant_list = fields.List(fields.Nested(ParticipantRefSchema), required=True)


class ProgressSchema(Schema):
    """Counts of surveys in a group (never who answered what)."""

    invited = fields.Integer(required=True)
    submitted = fields.Integer(required=True)
    in_progress = fields.Integer(required=True)
    declined = fields.Integer(required=True)
    rate = fields.Float(required=True)


def _by_relationship() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf([r.value for r in Relationship])),
        values=fields.Nested(ProgressSchema),
        required=True,
    )


class ParticipantProgressSchema(Schema):
    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    total = fields.Nested(ProgressSchema, required=True)
    by_relationship = _by_relationship()


class CycleStatusSchema(Schema):
    cycle_id = fields.Integer(required=True)
    name = fields.String(required=True)
    state = fields.String(required=True)
    total = fields.Nested(ProgressSchema, required=True)
    by_relationship = _by_relationship()
    participants = fields.List(fields.Nested(ParticipantProgressSchema), required=True)


class LaunchSchema(_Strict):
    allow_short = fields.Boolean(
        load_default=False,
        metadata={"description": "Launch even if someone has fewer peers than the minimum."},
    )


class ActionResultSchema(Schema):
    """The outcome of a state change: the cycle's new state and what was queued."""

    cycle_id = fields.Integer(required=True)
    state = fields.String(required=True)
    surveys = fields.Integer(metadata={"description": "Surveys assigned (launch)."})
    emails = fields.Integer(metadata={"description": "Emails queued."})
    participants = fields.Integer(metadata={"description": "Participants asked to nominate."})
    responses = fields.Integer(metadata={"description": "Responses kept (close)."})
    reports = fields.Integer(metadata={"description": "Reports frozen (release)."})
    held = fields.Integer(
        metadata={"description": "Reports frozen but held back, their links not sent (release)."}
    )
    warnings = fields.List(fields.String())


# -- nominations -------------------------------------------------------------------------


class NomineeSchema(Schema):
    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.Enum(NominationStatus, by_value=True, required=True)
    source = fields.String(required=True)


class ParticipantNominationsSchema(Schema):
    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    nominations_submitted = fields.Boolean(required=True)
    nominations_approved = fields.Boolean(required=True)
    nominees = fields.List(fields.Nested(NomineeSchema), required=True)


class NominationsOverrideSchema(_Strict):
    """HR's final list of peers for one participant (replaces what was proposed)."""

    employee_ids = fields.List(
        fields.String(validate=_EXTERNAL_ID),
        required=True,
        validate=validate.Length(max=30),
    )


# -- scores ------------------------------------------------------------------------------


class ScoresQuerySchema(_Query):
    employee_id = fields.String(
        validate=_EXTERNAL_ID, metadata={"description": "Only this participant."}
    )


class ScoreRowSchema(Schema):
    """One aggregated score, as in scores.csv; suppressed groups are never listed."""

    employee_id = fields.String(required=True)
    name = fields.String(required=True)
    competency = fields.String(required=True)
    relationship = fields.String(required=True)
    n_raters = fields.Integer(
        required=True, metadata={"description": "Raters who answered any of its items."}
    )
    raw_mean = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "Mean of all the group's answers to its items, as in the report."},
    )
    adjusted = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "Score adjusted for rater leniency (others rows only)."},
    )
    se = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "Standard error of the headline score (others rows only)."},
    )
    ci_low = fields.Float(allow_none=True, required=True)
    ci_high = fields.Float(allow_none=True, required=True)


class CycleScoresSchema(Schema):
    cycle_id = fields.Integer(required=True)
    state = fields.String(required=True)
    min_group_size = fields.Integer(
        required=True,
        metadata={"description": "Groups (self excepted) with fewer raters are left out."},
    )
    method = fields.String(allow_none=True, required=True)
    scores = fields.List(fields.Nested(ScoreRowSchema), required=True)
