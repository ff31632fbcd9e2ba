"""The settings' table and what reads it: each CODEX_LB_* setting's spec (table.py), the kinds of value
(kinds.py), and the docs page written from them (docs.py). server/config.py builds Settings from it."""
