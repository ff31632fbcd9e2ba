"""Placeholder for issue 7's v0004 (account lifecycle) so this branch migrates without a gap.

At merge, take issue 7's file of the same name instead of this one.
"""


def statements(dialect: str) -> list[str]:
    return []
