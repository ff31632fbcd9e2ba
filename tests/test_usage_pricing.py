"""Token extraction from terminal events and request cost from the price table and overrides."""

from __future__ import annotations

import re

import pytest

from server.config import ConfigError, Settings
from server.usage.pricing import BUILTIN_PRICES, Price, PriceBook, parse_overrides
from server.usage.records import FinishedRequest, new_request_id
from server.usage.tokens import TokenUsage

BOOK = PriceBook(BUILTIN_PRICES)


def book_with_overrides(tmp_path, raw: str = "") -> PriceBook:
    environ = {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_PRICING_OVERRIDES": raw}
    return PriceBook.from_settings(Settings.load(environ, cwd=tmp_path))


def completed(usage) -> dict:
    return {"id": "resp_1", "status": "completed", "usage": usage}


def test_usage_is_read_from_a_completed_response():
    usage = TokenUsage.from_response(
        completed(
            {
                "input_tokens": 1200,
                "input_tokens_details": {"cached_tokens": 1000},
                "output_tokens": 300,
                "output_tokens_details": {"reasoning_tokens": 120},
                "total_tokens": 1500,
            }
        )
    )
    assert usage == TokenUsage(1200, 1000, 300, 120, 1500)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({}, TokenUsage()),
        ({"input_tokens": None, "output_tokens": "12", "total_tokens": None}, TokenUsage()),
        ({"input_tokens": -5, "output_tokens": 7}, TokenUsage(0, 0, 7, 0, 7)),
        ({"input_tokens": True, "output_tokens": float("nan"), "total_tokens": float("inf")}, TokenUsage()),
        ({"input_tokens": 10.0, "output_tokens": 2, "total_tokens": 12.0}, TokenUsage(10, 0, 2, 0, 12)),
        (
            {"input_tokens": 10, "input_tokens_details": None, "output_tokens_details": [3]},
            TokenUsage(10, 0, 0, 0, 10),
        ),
        (
            {
                "input_tokens_details": {"cached_tokens": "9"},
                "output_tokens_details": {"reasoning_tokens": {}},
            },
            TokenUsage(),
        ),
    ],
)
def test_garbage_usage_fields_count_as_zero(raw, expected):
    assert TokenUsage.from_response(completed(raw)) == expected


@pytest.mark.parametrize("response", [None, "text", [], {}, {"usage": None}, {"usage": [1, 2]}])
def test_a_response_without_a_usage_object_has_no_usage(response):
    assert TokenUsage.from_response(response) is None


def test_usages_add_up_by_kind():
    total = TokenUsage(10, 4, 5, 2, 15) + TokenUsage(1, 1, 1, 1, 2)
    assert total == TokenUsage(11, 5, 6, 3, 17)
    assert sum([TokenUsage(1, 0, 1, 0, 2)] * 3, TokenUsage()) == TokenUsage(3, 0, 3, 0, 6)


def test_cached_input_bills_at_the_cached_rate_and_reasoning_as_output_once():
    usage = TokenUsage(input_tokens=1000, cached_input_tokens=400, output_tokens=500, reasoning_tokens=200)
    # gpt-5.4: 600 fresh x 2.50 + 400 cached x 0.25 + 500 output x 15.00 (reasoning is inside output)
    assert BOOK.cost_usd("gpt-5.4", usage) == pytest.approx((600 * 2.50 + 400 * 0.25 + 500 * 15.00) / 1e6)


@pytest.mark.parametrize(
    "model, dollars_per_million_each_way",
    [
        ("gpt-5.5", 5.00 + 30.00),
        ("gpt-5.4-mini", 0.75 + 4.50),
        ("gpt-5.4-nano", 0.20 + 1.25),
        ("gpt-5.3-codex", 1.75 + 14.00),
        ("gpt-5.2", 1.75 + 14.00),
        ("gpt-5.1-codex-max", 1.25 + 10.00),
        ("gpt-5-codex", 1.25 + 10.00),
        ("gpt-5.1-codex-mini", 0.25 + 2.00),
    ],
)
def test_tokens_cost_the_published_price_per_million(model, dollars_per_million_each_way):
    usage = TokenUsage(input_tokens=200_000, output_tokens=200_000, total_tokens=400_000)
    assert BOOK.cost_usd(model, usage) == pytest.approx(dollars_per_million_each_way * 0.2)


def test_pro_models_bill_cached_input_at_the_input_rate():
    usage = TokenUsage(input_tokens=100_000, cached_input_tokens=80_000, output_tokens=10_000)
    assert BOOK.price_for("gpt-5.5-pro") == Price(30.00, 30.00, 180.00)
    assert BOOK.cost_usd("gpt-5.4-pro", usage) == pytest.approx((100_000 * 30.00 + 10_000 * 180.00) / 1e6)


def test_long_context_doubles_every_rate_above_272k_input_for_gpt_5_5_and_5_4():
    usage = TokenUsage(input_tokens=300_000, cached_input_tokens=100_000, output_tokens=2_000)
    base = (200_000 * 2.50 + 100_000 * 0.25 + 2_000 * 15.00) / 1e6
    assert BOOK.cost_usd("gpt-5.4", usage) == pytest.approx(2 * base)
    base_5_5 = (200_000 * 5.00 + 100_000 * 0.50 + 2_000 * 30.00) / 1e6
    assert BOOK.cost_usd("gpt-5.5", usage) == pytest.approx(2 * base_5_5)
    at_threshold = TokenUsage(input_tokens=272_000, output_tokens=2_000)
    assert BOOK.cost_usd("gpt-5.4", at_threshold) == pytest.approx((272_000 * 2.50 + 2_000 * 15.00) / 1e6)
    # Other models have no long-context tariff.
    assert BOOK.cost_usd("gpt-5.2", usage) == pytest.approx(
        (200_000 * 1.75 + 100_000 * 0.175 + 2_000 * 14.00) / 1e6
    )


def test_dated_snapshots_price_as_their_base_model_and_nothing_else_is_guessed():
    assert BOOK.price_for("gpt-5.4-2026-03-05") == BOOK.price_for("gpt-5.4")
    assert BOOK.price_for("gpt-5.4-mini-2026-03-17") == BOOK.price_for("gpt-5.4-mini")
    assert BOOK.price_for("GPT-5.4") == BOOK.price_for("gpt-5.4")
    assert BOOK.price_for("gpt-5.4-pro") != BOOK.price_for("gpt-5.4")
    for unknown in ("gpt-5.4-turbo", "gpt-5.4-2026", "gpt-4o", "o3", "", "codex-mini-latest"):
        assert BOOK.price_for(unknown) is None
        assert BOOK.cost_usd(unknown, TokenUsage(10, 0, 10, 0, 20)) is None


def test_no_usage_has_no_cost():
    assert BOOK.cost_usd("gpt-5.4", None) is None
    assert BOOK.cost_usd("gpt-5.4", TokenUsage()) == 0.0


def test_the_book_from_default_settings_is_the_published_table(tmp_path):
    book = book_with_overrides(tmp_path)
    assert all(book.price_for(model) == price for model, price in BUILTIN_PRICES.items())
    assert set(BUILTIN_PRICES) == {
        *("gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.1-codex-mini", "gpt-5.5-pro"),
        *("gpt-5.3-codex", "gpt-5.3", "gpt-5.2", "gpt-5.2-codex", "gpt-5.4-pro"),
        *("gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max", "gpt-5", "gpt-5-codex"),
    }


def test_overrides_replace_and_add_models(tmp_path):
    overrides = (
        '{"gpt-5.4": {"input": 1.0, "cached_input": 0.1, "output": 2.0},'
        ' "my-finetune": {"input": 3, "output": 6}}'
    )
    book = book_with_overrides(tmp_path, overrides)
    assert book.price_for("gpt-5.4") == Price(1.0, 0.1, 2.0)
    assert book.price_for("my-finetune") == Price(3.0, 3.0, 6.0)  # no cached price: billed as input
    assert book.price_for("gpt-5.5") == BUILTIN_PRICES["gpt-5.5"]
    usage = TokenUsage(input_tokens=300_000, output_tokens=1_000)
    assert book.cost_usd("gpt-5.4", usage) == pytest.approx(2 * (300_000 * 1.0 + 1_000 * 2.0) / 1e6)


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        '"gpt-5.4"',
        '{"gpt-5.4": 2.5}',
        '{"gpt-5.4": {"input": 2.5}}',
        '{"gpt-5.4": {"output": 2.5}}',
        '{"gpt-5.4": {"input": -1, "output": 2}}',
        '{"gpt-5.4": {"input": "2.5", "output": 2}}',
        '{"gpt-5.4": {"input": true, "output": 2}}',
        '{"gpt-5.4": {"input": NaN, "output": 2}}',
        '{"gpt-5.4": {"input": 1, "output": 2, "cached_input": null}}',
        '{"gpt-5.4": {"input": 1, "output": 2, "cache": 0.1}}',
        '{" ": {"input": 1, "output": 2}}',
    ],
)
def test_bad_overrides_name_the_variable(tmp_path, raw):
    with pytest.raises(ConfigError, match="CODEX_LB_PRICING_OVERRIDES"):
        book_with_overrides(tmp_path, raw)


def test_blank_overrides_mean_none():
    assert parse_overrides("") == {} and parse_overrides("  \n") == {}


def test_request_ids_are_unique_and_recognisable():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ids)


def test_a_request_record_is_frozen_and_defaults_to_no_usage():
    record = FinishedRequest(
        request_id="req_1", started_at=1.0, route="/v1/responses", transport="http", status=200
    )
    assert record.usage is None and record.cost_usd is None and record.attempts == 1
    with pytest.raises(AttributeError):
        record.status = 500  # type: ignore[misc]
