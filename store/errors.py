"""Errors raised by the storage layer."""


class StoreError(Exception):
    """Something went wrong reading or writing the archive's storage."""


class UnsafeNameError(StoreError):
    """A service or document type cannot be turned into a safe file name."""


class NameCollisionError(StoreError):
    """Two different policies would be stored under the same file name."""


class WriterLockedError(StoreError):
    """Another process holds the writer lock on the data directory."""


class UnknownVersionError(StoreError):
    """A version id does not name a version of the policy."""
