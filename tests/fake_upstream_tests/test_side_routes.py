"""The fake backend's side routes: remote compaction, model catalog, /wham/usage and transcription."""

from __future__ import annotations

import time

import aiohttp
import pytest

from server.demo.fake_upstream.client import bearer, post_responses, responses_body, user_message

CODEX_REQUIRED_FIELDS = {
    "slug",
    "display_name",
    "description",
    "default_reasoning_level",
    "supported_reasoning_levels",
    "shell_type",
    "visibility",
    "supported_in_api",
    "priority",
    "upgrade",
    "base_instructions",
    "supports_reasoning_summaries",
    "support_verbosity",
    "default_verbosity",
    "apply_patch_tool_type",
    "truncation_policy",
    "supports_parallel_tool_calls",
    "context_window",
    "experimental_supported_tools",
    "input_modalities",
    "minimal_client_version",
    "prefer_websockets",
}


async def _get_json(session, url, headers):
    async with session.get(url, headers=headers) as answer:
        return answer.status, await answer.json(), answer.headers


async def test_compact_answers_a_compaction_item(fake_upstream, session, auth):
    body = {"model": "gpt-5.4", "instructions": "x", "input": [user_message("summarise me")]}
    result = await post_responses(
        session, fake_upstream.base_url, body, bearer(auth), path="/codex/responses/compact"
    )
    assert result.status == 200
    answer = result.json()
    (item,) = answer["output"]
    assert item["type"] == "compaction" and item["encrypted_content"].startswith("gAAAA")
    assert answer["usage"]["total_tokens"] > 0
    assert "x-codex-primary-used-percent" in result.headers
    bad = await post_responses(
        session,
        fake_upstream.base_url,
        {**body, "temperature": 0},
        bearer(auth),
        path="/codex/responses/compact",
    )
    assert bad.status == 400 and bad.json()["error"]["param"] == "temperature"
    assert (await fake_upstream.account_stats("acc_test"))["statuses"] == {"200": 1, "400": 1}


async def test_models_catalog_has_codex_fields_and_filters_by_client_version(fake_upstream, session, auth):
    status, catalog, headers = await _get_json(
        session, fake_upstream.base_url + "/codex/models?client_version=0.169.0", bearer(auth)
    )
    assert status == 200 and headers["x-models-etag"]
    slugs = [m["slug"] for m in catalog["models"]]
    assert slugs == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.1-codex-mini"]
    for model in catalog["models"]:
        assert set(model) >= CODEX_REQUIRED_FIELDS
        assert model["truncation_policy"] == {"mode": "tokens", "limit": 10000}
    by_slug = {m["slug"]: m for m in catalog["models"]}
    assert by_slug["gpt-5.4"]["prefer_websockets"] is True
    assert by_slug["gpt-5.3-codex"]["prefer_websockets"] is False
    assert [lvl["effort"] for lvl in by_slug["gpt-5.4"]["supported_reasoning_levels"]] == [
        "low",
        "medium",
        "high",
        "xhigh",
    ]
    _, old, _ = await _get_json(
        session, fake_upstream.base_url + "/codex/models?client_version=0.95.0", bearer(auth)
    )
    assert [m["slug"] for m in old["models"]] == ["gpt-5.3-codex", "gpt-5.1-codex-mini"]


async def test_models_depend_on_the_plan(fake_upstream, session):
    pro = await fake_upstream.create_account("acc_pro", plan_type="pro")
    free = await fake_upstream.create_account("acc_free", plan_type="free")
    url = fake_upstream.base_url + "/codex/models?client_version=1.0.0"
    _, pro_catalog, _ = await _get_json(session, url, bearer(pro))
    _, free_catalog, _ = await _get_json(session, url, bearer(free))
    spark = next(m for m in pro_catalog["models"] if m["slug"] == "gpt-5.3-codex-spark")
    assert spark["supported_in_api"] is False
    assert [m["slug"] for m in free_catalog["models"]] == ["gpt-5.4-mini", "gpt-5.1-codex-mini"]
    status, _, _ = await _get_json(session, url, {})
    assert status == 401


async def test_wham_usage_reflects_consumption_and_windows(fake_upstream, session, auth):
    await fake_upstream.configure_account(
        "acc_test",
        primary_budget_tokens=1000,
        secondary_budget_tokens=10000,
        credits_has_credits=True,
        credits_balance="5",
    )
    result = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    spent = result.usage["total_tokens"]
    status, usage, headers = await _get_json(session, fake_upstream.base_url + "/wham/usage", bearer(auth))
    assert status == 200 and "x-codex-primary-used-percent" in headers
    assert usage["plan_type"] == "plus"
    limits = usage["rate_limit"]
    assert limits["allowed"] is True and limits["limit_reached"] is False
    primary, secondary = limits["primary_window"], limits["secondary_window"]
    assert primary["used_percent"] == -(-spent * 100 // 1000)  # ceil
    assert primary["limit_window_seconds"] == 18000 and secondary["limit_window_seconds"] == 604800
    assert primary["reset_at"] - time.time() == pytest.approx(primary["reset_after_seconds"], abs=2)
    assert usage["credits"] == {"has_credits": True, "unlimited": False, "balance": "5"}
    await fake_upstream.consume("acc_test", 1000)
    _, spent_usage, _ = await _get_json(session, fake_upstream.base_url + "/wham/usage", bearer(auth))
    assert spent_usage["rate_limit"]["limit_reached"] is True
    assert spent_usage["rate_limit"]["primary_window"]["used_percent"] == 100


async def test_free_plan_lone_monthly_window(fake_upstream, session):
    free = await fake_upstream.create_account(
        "acc_month", plan_type="free", primary_window_minutes=43200, secondary_window_minutes=0
    )
    _, usage, _ = await _get_json(session, fake_upstream.base_url + "/wham/usage", bearer(free))
    assert usage["plan_type"] == "free"
    assert usage["rate_limit"]["primary_window"]["limit_window_seconds"] == 2592000
    assert usage["rate_limit"]["secondary_window"] is None


async def test_transcribe_answers_deterministic_text(fake_upstream, session, auth):
    form = aiohttp.FormData()
    form.add_field("file", b"\x00" * 1234, filename="voice.wav", content_type="audio/wav")
    form.add_field("prompt", "codex")
    async with session.post(
        fake_upstream.base_url + "/transcribe", data=form, headers=bearer(auth)
    ) as answer:
        assert answer.status == 200
        assert await answer.json() == {"text": "Fake transcription of 1234 bytes from voice.wav."}
    logged = (await fake_upstream.requests(path="/backend-api/transcribe"))[-1]
    assert logged["body"] == {"fields": {"prompt": "codex"}, "file": {"filename": "voice.wav", "bytes": 1234}}
    form = aiohttp.FormData()
    form.add_field("prompt", "no audio")
    async with session.post(
        fake_upstream.base_url + "/transcribe", data=form, headers=bearer(auth)
    ) as answer:
        assert answer.status == 400


async def test_transcribe_honours_failure_behaviours(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_tr_fail", failure_rate=1.0, failure_status=503)
    form = aiohttp.FormData()
    form.add_field("file", b"\x00" * 10, filename="voice.wav", content_type="audio/wav")
    url = fake_upstream.base_url + "/transcribe"
    async with session.post(url, data=form, headers=bearer(auth)) as answer:
        assert answer.status == 503
    await fake_upstream.configure_account("acc_tr_fail", failure_rate=0.0, rate_limited=True)
    form = aiohttp.FormData()
    form.add_field("file", b"\x00" * 10, filename="voice.wav", content_type="audio/wav")
    url = fake_upstream.base_url + "/transcribe"
    async with session.post(url, data=form, headers=bearer(auth)) as answer:
        assert answer.status == 429
