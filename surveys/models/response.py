from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import ForeignKey, SmallInteger, String, Text, UniqueConstraint, orm
from sqlalchemy.orm import Mapped, mapped_column

from surveys.db import Base, str_enum
from surveys.models.enums import Relationship


def new_response_id() -> str:
    # Random, not sequential: an autoincrement id would order responses by submission
    # and let anyone match them to the assignments' status changes.
    return uuid.uuid4().hex


class Response(Base):
    """A submitted survey, stored against a rater pseudonym, never the rater (DESIGN §3)."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("participant_id", "rater_pseudonym"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_response_id)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    relationship: Mapped[Relationship] = mapped_column(str_enum(Relationship))
    #: HMAC(cycle key, rater id): the same rater across participants, but not who.
    rater_pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    #: Coarsened to the day, so times cannot be matched to link clicks or logs.
    submitted_on: Mapped[date]

    items: Mapped[list[ResponseItem]] = orm.relationship(cascade="all, delete-orphan")
    comments: Mapped[list[ResponseComment]] = orm.relationship(cascade="all, delete-orphan")


class ResponseItem(Base):
    __tablename__ = "response_items"

    response_id: Mapped[str] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: The scale value; NULL means the rater chose "not applicable".
    value: Mapped[int | None] = mapped_column(SmallInteger)


class ResponseComment(Base):
    __tablename__ = "response_comments"

    response_id: Mapped[str] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
