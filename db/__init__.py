"""The SQLite store. Kept import-light so `db.records` can be used without sqlite-utils."""
