"""Sending email through SMTP (stdlib ``smtplib``): STARTTLS, implicit TLS or plain.

One connection is opened on first use and reused for every email of a delivery run (1,000
alerts do not open 1,000 connections); any SMTP error drops it, and the next email reconnects.
The password comes from ``[smtp] password`` or, when that is empty, from
``$POLICY_ARCHIVE_SMTP_PASSWORD`` (the documented way to keep it out of config.toml).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

from archive.config import SmtpSettings
from archive.notify.errors import DeliveryError

ENV_PASSWORD = "POLICY_ARCHIVE_SMTP_PASSWORD"  # noqa: S105 - a variable name
SECURITY = ("starttls", "ssl", "none")


class SmtpSender:
    """Sends :class:`EmailMessage` objects; raises :class:`DeliveryError` on failure."""

    def __init__(self, settings: SmtpSettings, environ: Mapping[str, str] | None = None) -> None:
        if not settings.host:
            raise DeliveryError(
                "email alerts need an SMTP server: set [smtp] host in config.toml",
                transient=True,
            )
        if settings.security not in SECURITY:
            raise DeliveryError(
                f"[smtp] security = {settings.security!r}: use 'starttls', 'ssl' or 'none'",
                transient=False,
            )
        env = os.environ if environ is None else environ
        self.settings = settings
        self._password = settings.password or env.get(ENV_PASSWORD, "")
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=context)
            if s.user:
                smtp.login(s.user, self._password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            raise DeliveryError(
                f"the SMTP server refused the recipient: {exc.recipients}", transient=False
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise DeliveryError(
                f"SMTP login failed ({exc.smtp_code}): check [smtp] user and password",
                transient=True,
                status=exc.smtp_code,
            ) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"SMTP error {exc.smtp_code}: {exc.smtp_error.decode('utf-8', 'replace')}",
                transient=not permanent,
                status=exc.smtp_code,
            ) from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            self.close()
            raise DeliveryError(
                f"could not send through {self.settings.host}:{self.settings.port}: {exc}",
                transient=True,
            ) from None
        if refused:
            raise DeliveryError(f"the SMTP server refused {', '.join(refused)}", transient=False)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
