"""Outgoing e-mail through the organisation's SMTP server (``smtp_*`` settings).

The standard library's ``smtplib`` does the SMTP exchange in a worker thread (no dependency, and
an exchange is a handful of round trips), with STARTTLS (submission, port 587), implicit TLS
(port 465) or, towards a server on loopback, plain SMTP. Certificates are checked against the
system's CAs and ``tls_ca_file``. Messages are plain text; headers are built by
``email.message.EmailMessage``, which refuses line breaks in them (no header injection).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import anyio.to_thread

from rhenus.config import Settings
from rhenus.core.db import utcnow


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def configured(settings: Settings) -> bool:
    """Whether the node can send e-mail."""
    return bool(settings.smtp_host and settings.smtp_from)


def _message(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(mail.body)
    return message


def _tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.tls_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.tls_ca_file))
    return context


def _send(settings: Settings, message: EmailMessage) -> None:
    timeout = settings.smtp_timeout_seconds
    client: smtplib.SMTP
    if settings.smtp_security == "tls":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=_tls_context(settings)
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=_tls_context(settings))
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        client.send_message(message)


async def send(settings: Settings, mail: Mail) -> None:
    """Hand ``mail`` to the SMTP server; :class:`MailError` if that fails."""
    if not configured(settings):
        raise MailError("no SMTP server is configured (RHENUS_SMTP_HOST, RHENUS_SMTP_FROM)")
    try:
        message = _message(settings, mail)
    except ValueError as exc:  # a line break in a header
        raise MailError(f"invalid message: {exc}") from exc
    try:
        await anyio.to_thread.run_sync(_send, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"the SMTP server {settings.smtp_host} refused or failed: {exc}") from exc
