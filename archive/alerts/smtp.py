"""Sending email through SMTP (stdlib ``smtplib``): STARTTLS, implicit TLS or plain.

One connection is opened on first use and reused for every email of a delivery run (1,000
alerts do not open 1,000 connections); any SMTP error drops it, and the next email reconnects.
The password is ``[smtp] password``, which the config loader fills from
``$POLICY_ARCHIVE_SMTP_PASSWORD`` when the file leaves it empty.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from archive.alerts.errors import DeliveryError
from archive.config import SmtpSettings

SECURITY = ("starttls", "ssl", "none")


class SmtpSender:
    """Sends :class:`EmailMessage` objects; raises :class:`DeliveryError` on failure."""

    def __init__(self, settings: SmtpSettings) -> None:
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
        self.settings = settings
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
                smtp.login(s.user, s.password)
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
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
            raise DeliveryError(
                f"SMTP error {exc.smtp_code}: {text}",
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
