"""SMTP transport for the outbox, configured by MAIL_URL.

``smtp://user:pass@host:587`` uses STARTTLS (required when a password is given, so it
never crosses the network in clear; opportunistic otherwise), ``smtps://host:465``
implicit TLS, ``smtp://host:1025?tls=off`` plain (local test servers). Other query
options: ``tls=on`` (always require STARTTLS), ``timeout=SECONDS`` (default 30).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from surveys.models import OutboxMessage
from surveys.outbox import TransportUnavailable

TLS_MODES = ("auto", "on", "off")

#: Refusals of one message. Every other OSError (smtplib's errors are OSErrors too:
#: refused, timeouts, TLS, login, sender refused, disconnects) means the server can't
#: take any mail now.
_MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _one_line(text: str) -> str:
    # Names and subjects come from imported data; a newline there must not become a header.
    return " ".join(text.split())


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    sender: str
    timeout: float = 30.0
    #: Refuse to continue without STARTTLS (``tls=on``, or a password is given).
    require_tls: bool = False

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpTransport:
        """Parse MAIL_URL; raises ValueError with a message naming the problem."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MAIL_URL must start with smtp:// or smtps://, not {redact(url)!r}")
        query = parse_qs(parts.query)
        tls = query.get("tls", ["auto"])[0].lower()
        if tls not in TLS_MODES:
            raise ValueError(f"MAIL_URL: tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        try:
            port = parts.port
            timeout = float(query.get("timeout", ["30"])[0])
        except ValueError as error:
            raise ValueError(f"MAIL_URL {redact(url)!r}: {error}") from None
        implicit = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        return cls(
            host=parts.hostname or "localhost",
            port=port or (465 if implicit else 587),
            username=username,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=not implicit and tls != "off",
            sender=sender,
            timeout=timeout,
            require_tls=not implicit and (tls == "on" or (tls == "auto" and bool(username))),
        )

    def build(self, message: OutboxMessage) -> EmailMessage:
        email = EmailMessage()
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "feedback360.local"
        email["From"] = self.sender
        email["To"] = formataddr((_one_line(message.to_name), message.to_address))
        email["Subject"] = _one_line(message.subject)
        email["Date"] = formatdate(usegmt=True)
        # Stable per row: if a crash makes us send a row twice, receivers can drop the copy.
        stamp = int(message.created_at.timestamp()) if message.created_at else 0
        email["Message-ID"] = f"<feedback360.{message.id}.{stamp}@{domain}>"
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        email.set_content(message.body or "")
        return email

    @contextmanager
    def connect(self) -> Iterator[Callable[[OutboxMessage], None]]:
        """One SMTP connection for a batch of messages; yields a ``send(message)``.

        Connecting happens on the first send. Server-level failures raise
        :class:`~surveys.outbox.TransportUnavailable`; a refused recipient or message
        raises the ``smtplib`` error for that message only.
        """
        connection = _Connection(self)
        try:
            yield connection.send
        finally:
            connection.close()

    def __call__(self, message: OutboxMessage) -> None:
        with self.connect() as send:
            send(message)

    def open(self) -> smtplib.SMTP:
        """A connected, greeted, secured and logged-in client (smtplib errors pass through)."""
        context = ssl.create_default_context()
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            client.ehlo()
            if self.starttls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif self.require_tls:
                raise smtplib.SMTPNotSupportedError(
                    "the server does not offer STARTTLS; refusing to send the password in"
                    " clear (add ?tls=off to MAIL_URL only on a trusted network)"
                )
            if self.username:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()
            raise
        return client


class _Connection:
    """A lazily opened SMTP client that reconnects when the server has hung up."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self.client: smtplib.SMTP | None = None

    def send(self, message: OutboxMessage) -> None:
        email = self.transport.build(message)
        if self.client is not None and not self._alive():
            self.close()
        try:
            if self.client is None:
                self.client = self.transport.open()
            self.client.send_message(email)
        except _MESSAGE_ERRORS:
            self.close()  # the session's state is unknown; start clean for the next one
            raise
        except OSError as error:
            self.close()
            where = f"{self.transport.host}:{self.transport.port}"
            raise TransportUnavailable(f"SMTP server {where}: {error}") from error

    def _alive(self) -> bool:
        # Servers drop idle connections; find out before sending, when a retry is safe.
        assert self.client is not None
        try:
            return self.client.noop()[0] == 250
        except OSError:
            return False

    def close(self) -> None:
        if self.client is None:
            return
        client, self.client = self.client, None
        try:
            client.quit()
        except OSError:
            client.close()
