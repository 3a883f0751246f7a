"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for tests.

Usage::

    def test_mail(smtp_server, make_config):
        config = make_config(smtp={"host": smtp_server.host, "port": smtp_server.port,
                                   "security": "none"})
        ...
        [message] = smtp_server.wait_for(1)
        assert message["Subject"] == "..."

``SmtpServer(tls=True)`` offers (and requires) STARTTLS with a self-signed certificate made by
``openssl`` for 127.0.0.1; point ``SSL_CERT_FILE`` at ``server.cafile`` so the client trusts it.
A user/password pair makes the server require AUTH (after STARTTLS).
"""

from __future__ import annotations

import email
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One email as delivered: envelope and parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI); returns (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        self.server._receive(envelope)
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a background thread; ``received`` grows as mail arrives."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        folder: Path | None = None,
        tls: bool = False,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self.cafile: Path | None = None
        kwargs: dict[str, object] = {}
        if tls:
            assert folder is not None, "a TLS server needs a folder for its certificate"
            cert, key = make_certificate(folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.cafile = cert
            kwargs |= {"tls_context": context, "require_starttls": True}
        if user is not None:

            def authenticate(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode(),
                    data.password.decode(),
                ) == (user, password)
                return AuthResult(success=ok, handled=False)  # False: answer 535 on failure

            kwargs |= {"authenticator": authenticate, "auth_require_tls": tls}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)

    def _receive(self, envelope: Envelope) -> None:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        with self._cond:
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), message, raw)
            )
            self._cond.notify_all()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._cond:
            return [r.message for r in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``count`` emails arrived (fail after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} email(s), got {len(self.received)} in {timeout} s"
                    )
                self._cond.wait(left)
            return [r.message for r in self.received]

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """A plain (no TLS, no AUTH) SMTP server on 127.0.0.1."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def body_text(message: EmailMessage, subtype: str) -> str:
    """The text/plain or text/html part of a received email."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content
