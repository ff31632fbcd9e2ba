"""The database schema: Pony entities (schema.entities) and numbered migrations (schema.migrations).

`define_database()` returns a fresh, unbound Pony Database with every entity defined on it, so one
process (the test suite) can bind several databases, SQLite and PostgreSQL, side by side.
"""

from schema.entities import define_database

__all__ = ["define_database"]
