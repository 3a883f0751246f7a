"""Errors of the accounts feature; the CLI and the web turn them into one message."""

from __future__ import annotations

from archive.errors import ArchiveError


class AccountError(ArchiveError):
    """Base class of the account errors."""


class InvalidNameError(AccountError):
    """A user or token name that is empty, too long or not printable."""


class InvalidRoleError(AccountError):
    """A role that is not viewer, editor or admin."""


class WeakPasswordError(AccountError):
    """A password shorter than the minimum."""


class DuplicateNameError(AccountError):
    """A user (or token) of that name exists already."""


class UnknownNameError(AccountError):
    """No user (or token) of that name."""


class LoginRefusedError(AccountError):
    """Wrong user name or password, or the account is locked for now (one message for all,
    so a login form does not tell which accounts exist)."""
