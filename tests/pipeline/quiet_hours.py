"""Daily crons for tests that start a real service, at hours the suite never reaches while it
runs: a fixed "0 6 * * *" fired in a CI run that reached such a test at 06:00 UTC, and the run
it added failed the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Twelve hours from the suite's start, in UTC; an hour later and a zone up to +/-11 hours off
# still leave the suite's half hour or so clear.
QUIET_HOUR = (datetime.now(UTC) + timedelta(hours=12)).hour


def quiet_daily(later: int = 0, minute: int = 0) -> str:
    """A crontab line firing once a day *later* hours after the quiet hour."""
    return f"{minute} {(QUIET_HOUR + later) % 24} * * *"
