from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from surveys.db import Base, utcnow


class Employee(Base):
    """A person in the org chart, imported from CSV by external id."""

    __tablename__ = "employees"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id used by the customer's HR system; the key for idempotent imports.
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), index=True)
    department: Mapped[str | None] = mapped_column(String(120))
    #: Deactivated people keep their history but are not offered for new cycles.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    manager: Mapped[Employee | None] = relationship(remote_side=[id], back_populates="reports")
    reports: Mapped[list[Employee]] = relationship(back_populates="manager")

    def __repr__(self) -> str:
        return f"<Employee {self.external_id} {self.name!r}>"
