"""Errors raised by the store, each carrying the database file it concerns."""


class StoreError(Exception):
    """A database operation failed."""


class MigrationError(StoreError):
    """A schema migration could not be applied; the file is left at its previous version."""


class QueryRefused(StoreError):
    """A read-only query tried to change something or is not a single statement."""


class QueryTimeout(StoreError):
    """A read-only query ran past its time limit and was interrupted."""
