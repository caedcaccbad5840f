"""Numbered schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from db.errors import MigrationError
from db.paths import cut_at_home_folder


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    # rebuilds a table others reference: foreign keys off while it runs (SQLite's way to
    # change a constraint), and checked before it commits
    rebuilds: bool = False


_INITIAL = """
CREATE TABLE shops (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    base_url TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE images (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    source_url TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE offers (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    -- identity within the shop: 'sku:<sku>' when the shop shows one (URLs change more often)
    offer_key TEXT NOT NULL,
    url TEXT NOT NULL,
    sku TEXT,
    title TEXT NOT NULL,
    -- latest good price; an unparseable later price never overwrites it
    price INTEGER,
    currency TEXT,
    list_price INTEGER,
    in_stock INTEGER,
    category_raw TEXT,
    image_url TEXT,
    image_sha256 TEXT REFERENCES images(sha256),
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    UNIQUE (shop_id, offer_key)
);
CREATE INDEX offers_url ON offers(url);
CREATE INDEX offers_image ON offers(image_sha256);
CREATE INDEX offers_last_seen ON offers(last_seen_at);

CREATE TABLE pipeline_runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'ok', 'failed', 'interrupted', 'stopped')),
    counts_json TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX pipeline_runs_started ON pipeline_runs(started_at);

CREATE TABLE crawl_runs (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    pipeline_run_id INTEGER REFERENCES pipeline_runs(id),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted', 'stopped')),
    pages INTEGER NOT NULL DEFAULT 0,
    offers INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX crawl_runs_shop ON crawl_runs(shop_id, started_at);

CREATE TABLE crawl_errors (
    id INTEGER PRIMARY KEY,
    crawl_run_id INTEGER NOT NULL REFERENCES crawl_runs(id),
    url TEXT,
    step TEXT,
    message TEXT NOT NULL,
    screenshot_path TEXT,
    html_path TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX crawl_errors_run ON crawl_errors(crawl_run_id);

CREATE TABLE price_observations (
    id INTEGER PRIMARY KEY,
    offer_id INTEGER NOT NULL REFERENCES offers(id),
    crawl_run_id INTEGER NOT NULL REFERENCES crawl_runs(id),
    price INTEGER,
    currency TEXT,
    list_price INTEGER,
    in_stock INTEGER,
    price_raw TEXT,
    price_error TEXT,
    observed_at TEXT NOT NULL,
    UNIQUE (offer_id, crawl_run_id),
    CHECK (price IS NOT NULL OR price_error IS NOT NULL)
);
CREATE INDEX price_observations_offer ON price_observations(offer_id, observed_at);

-- History is evidence: it is appended to, never rewritten.
CREATE TRIGGER price_observations_no_update BEFORE UPDATE ON price_observations
BEGIN SELECT RAISE(ABORT, 'price_observations is append-only'); END;
CREATE TRIGGER price_observations_no_delete BEFORE DELETE ON price_observations
BEGIN SELECT RAISE(ABORT, 'price_observations is append-only'); END;

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL UNIQUE,
    architecture TEXT NOT NULL,
    path TEXT NOT NULL,
    metrics_json TEXT NOT NULL DEFAULT '{}',
    data_json TEXT NOT NULL DEFAULT '{}',
    is_current INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX models_one_current ON models(is_current) WHERE is_current = 1;

CREATE TABLE predictions (
    image_sha256 TEXT NOT NULL REFERENCES images(sha256),
    model_id INTEGER NOT NULL REFERENCES models(id),
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    embedding BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (image_sha256, model_id)
);
CREATE INDEX predictions_model ON predictions(model_id);

CREATE TABLE labels (
    image_sha256 TEXT NOT NULL REFERENCES images(sha256),
    label TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('shop', 'user')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (image_sha256, source)
);

CREATE TABLE product_groups (
    id INTEGER PRIMARY KEY,
    label TEXT,
    canonical_title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX product_groups_label ON product_groups(label);

CREATE TABLE group_members (
    offer_id INTEGER PRIMARY KEY REFERENCES offers(id),
    group_id INTEGER NOT NULL REFERENCES product_groups(id) ON DELETE CASCADE,
    score REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'model' CHECK (source IN ('model', 'user'))
);
CREATE INDEX group_members_group ON group_members(group_id);
"""

_MATCH_CORRECTIONS = """
-- A user's word on two offers: same = 1 (`pricelens match link`), 0 (`unlink`). Append-only;
-- the latest row for a pair wins. Kept as training signal for the matcher (see match_feedback).
CREATE TABLE match_corrections (
    id INTEGER PRIMARY KEY,
    offer_id INTEGER NOT NULL REFERENCES offers(id),
    other_offer_id INTEGER NOT NULL REFERENCES offers(id),
    same INTEGER NOT NULL CHECK (same IN (0, 1)),
    created_at TEXT NOT NULL,
    CHECK (offer_id < other_offer_id)
);
CREATE INDEX match_corrections_pair ON match_corrections(offer_id, other_offer_id, id);

-- What an offer looked like when it was matched (title, photo, category, model); an offer
-- whose fingerprint is unchanged keeps its group on the next `pricelens match`.
ALTER TABLE group_members ADD COLUMN fingerprint TEXT;

-- The corrections in force, one row per pair, with what a trainer needs.
CREATE VIEW match_feedback AS
SELECT c.offer_id, c.other_offer_id, c.same, c.created_at,
       a.title AS title, b.title AS other_title,
       a.image_sha256 AS image_sha256, b.image_sha256 AS other_image_sha256
FROM match_corrections c
JOIN offers a ON a.id = c.offer_id
JOIN offers b ON b.id = c.other_offer_id
WHERE c.id = (SELECT MAX(id) FROM match_corrections l
              WHERE l.offer_id = c.offer_id AND l.other_offer_id = c.other_offer_id);
"""

# The model's runner-up category, so matching can block on the top two (a photo the model
# is unsure about still meets its product in the other likely category). NULL in rows
# written before this migration: those block on their top label only.
_SECOND_LABEL = """
ALTER TABLE predictions ADD COLUMN second_label TEXT;
ALTER TABLE predictions ADD COLUMN second_confidence REAL;
"""

# What each photo URL answered last: its image and the HTTP validators (ETag, Last-Modified)
# a re-crawl sends, so an unchanged photo costs a 304 instead of a download, a check and a file.
_PHOTO_SOURCES = """
CREATE TABLE photo_sources (
    url TEXT PRIMARY KEY,
    image_sha256 TEXT NOT NULL REFERENCES images(sha256),
    etag TEXT,
    last_modified TEXT,
    checked_at TEXT NOT NULL
);
CREATE INDEX photo_sources_image ON photo_sources(image_sha256);
"""

# "from 9,900": the price is the lowest of several variants (sizes), not the price of each
_PRICE_IS_FROM = """
ALTER TABLE offers ADD COLUMN price_is_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE price_observations ADD COLUMN price_is_from INTEGER NOT NULL DEFAULT 0;
"""

# Paths of files in the home are kept relative to it (the database file's folder), so a moved
# home keeps its photos and models; absolute ones written before are cut at their last home
# folder (db/paths.py). A photo the classifier could not decode is recorded, with the size and
# modification time of its file, and not decoded again until that file changes (a re-crawl
# writes it anew); a missing file is not recorded: it may come back.
_HOME_RELATIVE_PATHS = """
UPDATE images SET path = pricelens_cut_path(path, 'images');
UPDATE models SET path = pricelens_cut_path(path, 'models');
UPDATE crawl_errors SET screenshot_path = pricelens_cut_path(screenshot_path, 'crawl-errors'),
                        html_path = pricelens_cut_path(html_path, 'crawl-errors');
ALTER TABLE images ADD COLUMN unreadable_reason TEXT;
ALTER TABLE images ADD COLUMN unreadable_file TEXT;
"""

# A pipeline run that went on past failed or partly crawled shops ends 'partial', as their
# crawl_runs do, rather than 'ok' with an error. SQLite cannot change a CHECK in place.
_PARTIAL_PIPELINE_RUNS = """
CREATE TABLE pipeline_runs_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted', 'stopped')),
    counts_json TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
INSERT INTO pipeline_runs_new (id, kind, started_at, finished_at, status, counts_json, error)
    SELECT id, kind, started_at, finished_at,
           CASE WHEN status = 'ok' AND error IS NOT NULL AND error LIKE 'crawl: %'
                THEN 'partial' ELSE status END,
           counts_json, error
    FROM pipeline_runs;
DROP TABLE pipeline_runs;
ALTER TABLE pipeline_runs_new RENAME TO pipeline_runs;
CREATE INDEX pipeline_runs_started ON pipeline_runs(started_at);
"""

# A crawl whose listing stopped at its page cap (`--max-pages`, pagination.max_pages) with more
# to read: the report must not take the offers it did not reach for offers no longer listed.
_CAPPED_CRAWLS = """
ALTER TABLE crawl_runs ADD COLUMN capped INTEGER NOT NULL DEFAULT 0;
"""

# The scraped photos each model was trained, validated or judged on, with the label it was
# given: which models learned a photo, or a label since changed, can be asked by SQL.
_MODEL_PHOTOS = """
CREATE TABLE model_photos (
    model_id INTEGER NOT NULL REFERENCES models(id),
    image_sha256 TEXT NOT NULL REFERENCES images(sha256),
    label TEXT NOT NULL,
    split TEXT NOT NULL CHECK (split IN ('train', 'validation', 'held_out')),
    PRIMARY KEY (model_id, image_sha256)
);
CREATE INDEX model_photos_image ON model_photos(image_sha256);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "match corrections and fingerprints", _MATCH_CORRECTIONS),
    Migration(3, "second-best predicted label", _SECOND_LABEL),
    Migration(4, "photo sources and their HTTP validators", _PHOTO_SOURCES),
    Migration(5, "'from' prices", _PRICE_IS_FROM),
    Migration(6, "paths relative to the home; unreadable photos", _HOME_RELATIVE_PATHS),
    Migration(7, "'partial' pipeline runs", _PARTIAL_PIPELINE_RUNS, rebuilds=True),
    Migration(8, "crawls stopped at their page cap", _CAPPED_CRAWLS),
    Migration(9, "the photos each model saw", _MODEL_PHOTOS),
)


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection, path: str = ":memory:") -> int:
    """Bring the schema to the newest version, each migration in its own transaction.

    Safe to call on every open: applied migrations are skipped. Returns the version reached.
    """
    version = current_version(conn)
    conn.commit()
    # migration 6 cuts old absolute paths with it
    conn.create_function("pricelens_cut_path", 2, cut_at_home_folder, deterministic=True)
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        quoted_name = migration.name.replace("'", "''")
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{migration.sql}\n"
            "INSERT INTO schema_version (version, name, applied_at) "
            f"VALUES ({migration.version}, '{quoted_name}', strftime('%Y-%m-%dT%H:%M:%SZ'));\n"
        )
        enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
        if migration.rebuilds:
            conn.execute("PRAGMA foreign_keys = OFF")  # between transactions: ignored in one
        try:
            conn.executescript(script)
            if migration.rebuilds and conn.execute("PRAGMA foreign_key_check").fetchone():
                raise sqlite3.IntegrityError("foreign keys broken by the rebuild")
            conn.commit()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            if current_version(conn) >= migration.version:
                continue  # another process applied it first
            raise MigrationError(
                f"{path}: migration {migration.version} ({migration.name}) failed: {exc}"
            ) from exc
        finally:
            conn.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")
        version = migration.version
    return current_version(conn)
