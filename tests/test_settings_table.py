"""The settings table is the one copy: the Settings object, the run-time settings, the balancer's words
and docs/configuration.md all agree with it, and every CODEX_LB_* name the docs and deploy files use is
one it knows."""

from __future__ import annotations

import re
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from server.balancer.selection import PLACEMENTS, RESET_FIELDS
from server.balancer.strategies import STRATEGIES
from server.config import NOT_SETTINGS, Settings
from server.runtime_settings import RuntimeSettings, defaults
from server.settings import docs
from server.settings.spec import PREFIX
from server.settings.table import BY_ATTRIBUTE, RUNTIME, SPECS

ROOT = Path(__file__).resolve().parents[1]
BOOKKEEPING = {"unknown_variables", "renamed_variables", "extra"}
TYPO_EXAMPLES = {"CODEX_LB_UPSTREM_BASE_URL"}  # the docs show what a mistyped name answers


def test_the_committed_configuration_page_is_what_the_table_writes():
    page = docs.PAGE.read_text(encoding="utf-8")
    assert docs.render(page) == page, "docs/configuration.md is out of date: run scripts/config-docs"
    assert all(f"`{spec.variable}`" in page for spec in SPECS)


def test_settings_has_one_attribute_per_spec_of_the_kind_it_parses():
    attributes = [f for f in fields(Settings) if f.name not in BOOKKEEPING]
    assert [f.name for f in attributes] == [spec.attribute for spec in SPECS]
    hints = typing.get_type_hints(Settings)
    for spec in SPECS:
        hint = hints[spec.attribute]
        assert (typing.get_origin(hint) or hint) is spec.kind.type, spec.name
    secret = {f.name for f in attributes if not f.repr}
    assert secret == {spec.attribute for spec in SPECS if spec.secret}


def test_names_are_unique_and_follow_one_convention():
    names = [spec.name for spec in SPECS] + [old for spec in SPECS for old in spec.old_names]
    assert len(names) == len(set(names)) and len(BY_ATTRIBUTE) == len(SPECS)
    for spec in SPECS:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", spec.name), spec.name
        assert not spec.name.endswith("_S") and "_WS_" not in spec.name, spec.name
        if getattr(spec.kind, "unit", "") == "seconds":
            assert spec.name.endswith("_SECONDS"), spec.name


def test_the_run_time_settings_are_the_runtime_specs_with_their_defaults(tmp_path):
    assert {f.name for f in fields(RuntimeSettings)} == {spec.attribute for spec in RUNTIME}
    assert defaults(Settings.load({"CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path)) == RuntimeSettings()


def test_the_table_offers_the_words_the_balancer_knows():
    assert set(BY_ATTRIBUTE["routing_strategy"].kind.choices) == set(STRATEGIES)
    assert set(BY_ATTRIBUTE["session_placement"].kind.choices) == set(PLACEMENTS)
    assert set(BY_ATTRIBUTE["prefer_earlier_reset"].kind.choices) == set(RESET_FIELDS)


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))),
        "Dockerfile",
        "Procfile",
        "docker-compose.yml",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "scripts/helm").rglob("*.yaml"))),
    ],
)
def test_every_variable_the_docs_and_deploy_files_name_is_a_setting(path):
    current = {spec.variable for spec in SPECS} | NOT_SETTINGS
    old = {PREFIX + name for spec in SPECS for name in spec.old_names}
    text = (ROOT / path).read_text(encoding="utf-8")
    named = set(re.findall(r"CODEX_LB_[A-Z][A-Z0-9_]*", text)) - TYPO_EXAMPLES
    assert named <= current | old, sorted(named - current - old)
    if path != "docs/configuration.md":  # which lists the old names beside the new ones
        assert not named & old, f"use the new names, not {sorted(named & old)}"
