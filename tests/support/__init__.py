"""Test support: databases, in-process and subprocess servers."""
