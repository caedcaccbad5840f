"""Fixtures for the store tests: a real SQLite file per test, and record builders."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from db.records import Image, Offer
from db.store import Store

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "pricelens.db"


@pytest.fixture
def store(db_path):
    with Store(db_path) as opened:
        yield opened


def make_offer(**changes) -> Offer:
    values = {
        "shop": "classic",
        "url": "http://shop.test/p/1",
        "title": "Striped tee",
        "price": 12900,
        "currency": "KRW",
        "price_raw": "12,900원",
        "scraped_at": T0,
    }
    values.update(changes)
    return Offer(**values)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_image(seed: str = "a") -> Image:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return Image(
        digest,
        f"/images/{digest[:2]}/{digest}.png",
        28,
        28,
        "PNG",
        123,
        f"http://shop.test/img/{seed}.png",
    )


def rows(store: Store, sql: str, params: tuple = ()) -> list[tuple]:
    return store.db.conn.execute(sql, params).fetchall()
