"""Background work on one Huey job queue (SQLite on the embedded default, Redis in production)."""
