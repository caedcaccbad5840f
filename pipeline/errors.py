"""The errors the CLI turns into a one-line message and a non-zero exit status."""

from __future__ import annotations

from classifier.errors import ClassifierError
from crawler.errors import CrawlerError
from db.errors import StoreError


class PipelineError(Exception):
    """A pipeline stage could not run."""


class TrainingStopped(Exception):
    """A stop request (SIGTERM) arrived during training; nothing half-trained is registered."""


# Every failure a user can cause or meet; anything else is a bug and shows a traceback hint.
EXPECTED_ERRORS = (PipelineError, StoreError, CrawlerError, ClassifierError, OSError)
