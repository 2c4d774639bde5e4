"""The survey form, built at run time from the cycle's question bank.

Validation lives in ``surveys.responses.clean_answers`` (shared with autosave and the
API); the form class here carries the CSRF token, and ``survey_sections`` turns the bank
into plain values the templates render through ``macros/_forms.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from surveys.banks import Bank
from surveys.models import Assignment
from surveys.responses import Answers, role_of

RATING_PREFIX = "r:"
COMMENT_PREFIX = "c:"


class SurveyForm(FlaskForm):
    """CSRF protection for every survey POST; the questions come from the bank."""


@dataclass(frozen=True)
class ItemView:
    id: str
    field: str
    text: str
    required: bool
    value: object


@dataclass(frozen=True)
class QuestionView:
    id: str
    field: str
    text: str
    required: bool
    value: str


@dataclass(frozen=True)
class Section:
    index: int
    title: str
    description: str
    items: list[ItemView]
    questions: list[QuestionView] = field(default_factory=list)
    is_final: bool = False

    @property
    def answered(self) -> int:
        return sum(1 for item in self.items if item.value is not None)

    @property
    def required_missing(self) -> int:
        return sum(1 for item in self.items if item.required and item.value is None)

    @property
    def field_ids(self) -> set[str]:
        return {i.id for i in self.items} | {q.id for q in self.questions}


def survey_sections(bank: Bank, assignment: Assignment, answers: Answers) -> list[Section]:
    """One section per competency, then a final one with open questions and submit."""
    role = role_of(assignment)
    name = assignment.participant.employee.name
    sections = [
        Section(
            index=i,
            title=competency.title,
            description=competency.description or "",
            items=[
                ItemView(
                    id=item.id,
                    field=RATING_PREFIX + item.id,
                    text=item.text(role, name),
                    required=item.required,
                    value=answers.ratings.get(item.id),
                )
                for item in competency.items
            ],
        )
        for i, competency in enumerate(bank.competencies)
    ]
    sections.append(
        Section(
            index=len(sections),
            title="Comments and submit",
            description="",
            items=[],
            questions=[
                QuestionView(
                    id=q.id,
                    field=COMMENT_PREFIX + q.id,
                    text=q.text(role, name),
                    required=q.required,
                    value=answers.comments.get(q.id, ""),
                )
                for q in bank.open_questions
            ],
            is_final=True,
        )
    )
    return sections


def posted_answers(form: MultiDict) -> tuple[dict[str, str], dict[str, str]]:
    """Split posted fields into (ratings, comments) keyed by item / question id."""
    ratings = {k[len(RATING_PREFIX) :]: v for k, v in form.items() if k.startswith(RATING_PREFIX)}
    comments = {
        k[len(COMMENT_PREFIX) :]: v for k, v in form.items() if k.startswith(COMMENT_PREFIX)
    }
    return ratings, comments
