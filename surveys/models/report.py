from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint, orm
from sqlalchemy.orm import Mapped, mapped_column

from surveys.db import Base, utcnow
from surveys.models.cycle import Participant


class ReportVersion(Base):
    """A released report, frozen: what the participant's link shows, never recomputed.

    A late response makes a new version instead of changing this one (DESIGN §4), so a
    reader can never watch a figure move and attribute the move to one rater.
    """

    __tablename__ = "report_versions"
    __table_args__ = (
        UniqueConstraint("participant_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    #: 1 at release, +1 for every accepted re-release.
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The report's plain values (``surveys.reports.report_to_json``), as released.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: SHA-256 of the canonical JSON of ``data``.
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Responses per relationship the version was built from, suppressed groups included
    #: (HR-side only; the re-release rule compares them).
    response_counts: Mapped[dict[str, int]] = mapped_column(JSON)

    participant: Mapped[Participant] = orm.relationship()

    def __repr__(self) -> str:
        return f"<ReportVersion participant={self.participant_id} v{self.version}>"
