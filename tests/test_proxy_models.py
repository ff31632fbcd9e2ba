"""The model registry: synced from upstream by one job, merged over plans, stored for every worker;
the catalog routes; unknown models refused and plan-only models routed to their plans."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from server.models.bundled import bundled_catalog
from server.models.catalog import Catalog, ModelRow
from server.models.sync import SYNC_CLIENT_VERSION, merge
from tests.support.live_server import serve_in_process
from tests.support.polling import eventually
from tests.support.proxy import ProxyHarness, codex_body, proxy_settings, serve_proxy

SYNCED_MARK = "fake upstream"  # the fake's base_instructions say so; the bundled list's do not


@pytest.fixture
async def syncing_proxy(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(tmp_path, database_url, fake_upstream, models_sync_interval_seconds="1")
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def _get(url: str) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.json()


async def _wait_for_synced_catalog(proxy: ProxyHarness, timeout: float = 10.0) -> list[dict]:
    async def models() -> list[dict]:
        return (await _get(proxy.url + "/backend-api/codex/models"))[2]["models"]

    return await eventually(
        models,
        lambda models: models and SYNCED_MARK in models[0]["base_instructions"],
        timeout=timeout,
        interval=0.1,
        what="the catalog is synced",
    )


async def test_bundled_catalog_serves_before_the_first_sync(proxy):
    status, headers, body = await _get(proxy.url + "/backend-api/codex/models?client_version=0.169.0")
    assert status == 200 and headers.get("x-models-etag")
    slugs = [m["slug"] for m in body["models"]]
    assert slugs[:2] == ["gpt-5.5", "gpt-5.4"]
    required = {
        "slug",
        "display_name",
        "supported_reasoning_levels",
        "shell_type",
        "visibility",
        "supported_in_api",
        "priority",
        "base_instructions",
        "support_verbosity",
        "truncation_policy",
        "experimental_supported_tools",
    }  # the Codex CLI discards the catalog without them
    assert all(required <= set(m) for m in body["models"])
    _, _, listed = await _get(proxy.url + "/v1/models")
    assert listed["object"] == "list" and {"id", "object", "created", "owned_by"} <= set(listed["data"][0])


async def test_sync_merges_plans_and_stores_the_catalog(syncing_proxy):
    proxy = syncing_proxy
    await proxy.add_accounts("acc_plus", plan_type="plus")
    await proxy.add_accounts("acc_pro", plan_type="pro")
    await proxy.add_accounts("acc_free", plan_type="free")
    models = {m["slug"]: m for m in await _wait_for_synced_catalog(proxy)}
    assert "gpt-5.3-codex-spark" in models  # only the Pro account's catalog lists it
    fetched = await proxy.fake.requests(path="/backend-api/codex/models")
    assert {r["account"] for r in fetched} >= {"acc_plus", "acc_pro", "acc_free"}
    assert {r["query"]["client_version"] for r in fetched} == {SYNC_CLIENT_VERSION}  # nothing filtered out
    # Stored in the database for every worker and replica: a second server on it serves the same catalog.
    async with serve_in_process(proxy.settings.with_overrides(models_sync_interval_s=3600)) as second:
        await asyncio.sleep(0)  # its start-up reload has already read the stored rows
        _, _, body = await _get(second.url + "/backend-api/codex/models")
        assert [m["slug"] for m in body["models"]] == list(models)


async def test_client_version_filters_the_codex_catalog(syncing_proxy):
    proxy = syncing_proxy
    await proxy.add_accounts("acc_plus", plan_type="plus")
    await _wait_for_synced_catalog(proxy)
    _, _, old = await _get(proxy.url + "/backend-api/codex/models?client_version=0.95.0")
    slugs = [m["slug"] for m in old["models"]]
    assert "gpt-5.5" not in slugs and "gpt-5.4" not in slugs and "gpt-5.3-codex" in slugs
    _, _, via_v1 = await _get(
        proxy.url + "/v1/models?client_version=0.95.0"
    )  # Codex CLI with openai_base_url
    assert via_v1 == old


async def test_plan_only_models_route_to_accounts_of_those_plans(syncing_proxy):
    proxy = syncing_proxy
    await proxy.add_accounts("acc_plus_1", "acc_plus_2", plan_type="plus")
    await proxy.add_accounts("acc_pro", plan_type="pro")
    await _wait_for_synced_catalog(proxy)
    for _ in range(4):
        answer = await proxy.post(
            "/backend-api/codex/responses", codex_body("hi", model="gpt-5.3-codex-spark")
        )
        assert answer.status == 200, answer.raw
    assert set(await proxy.served_by()) == {"acc_pro"}


async def test_a_pool_without_the_plan_gets_a_clear_400_and_no_upstream_call(syncing_proxy):
    proxy = syncing_proxy
    await proxy.add_accounts("acc_plus", plan_type="plus")
    await proxy.add_accounts("acc_pro", plan_type="pro")
    await _wait_for_synced_catalog(proxy)
    await _remove_account(proxy, "acc_pro")  # the catalog still knows the Pro-only model
    answer = await eventually(  # while 200, the worker has not reloaded the roster yet
        lambda: proxy.post("/backend-api/codex/responses", codex_body("hi", model="gpt-5.3-codex-spark")),
        lambda answer: answer.status != 200,
        timeout=10,
        interval=0.1,
    )
    assert answer.status == 400, answer.raw
    assert answer.json()["error"]["code"] == "model_not_supported"
    served = await proxy.served_by()
    assert "acc_plus" not in served


async def _remove_account(proxy: ProxyHarness, chatgpt_account_id: str) -> None:
    from pony import orm

    from server.accounts.store import bump_roster_version
    from server.db import Database

    @orm.db_session
    def remove(db):
        db.Account.get(chatgpt_account_id=chatgpt_account_id).delete()
        bump_roster_version(db)

    database = Database(proxy.settings)
    await asyncio.get_running_loop().run_in_executor(None, database.open)
    try:
        await database.run(remove)
    finally:
        database.close()


def test_merge_keeps_models_of_plans_whose_fetch_failed():
    previous = (ModelRow("only-team", {"slug": "only-team", "priority": 9}, ("team",)),)
    fetched = {
        "plus": [{"slug": "b", "priority": 2}, {"slug": "a", "priority": 1}],
        "pro": [
            {"slug": "a", "priority": 1},
            {"slug": "p", "priority": 3, "available_in_plans": ["enterprise"]},
        ],
    }
    rows = merge(fetched, previous, failed={"team"})
    assert [r.slug for r in rows] == ["a", "b", "p", "only-team"]
    plans = {r.slug: r.plans for r in rows}
    assert plans == {"a": ("plus", "pro"), "b": ("plus",), "p": ("enterprise", "pro"), "only-team": ("team",)}
    assert merge(fetched, previous, failed=set())[-1].slug == "p"  # a plan that answered drops it


def test_catalog_lookups():
    catalog = Catalog((ModelRow("x", {"slug": "x"}, ("pro",)), ModelRow("y", {"slug": "y"}, ())), "synced")
    assert catalog.require("x") == frozenset({"pro"})
    assert catalog.require("y") is None  # no plan known: any account may try
    assert catalog.require("gpt-5.1-codex") is None  # served unlisted by the backend
    with pytest.raises(Exception) as caught:
        catalog.require("nope")
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert bundled_catalog().knows("gpt-5.4")


async def test_one_syncer_for_all_servers_on_one_database(syncing_proxy):
    proxy = syncing_proxy
    await proxy.add_accounts("acc_plus", plan_type="plus")
    async with serve_in_process(proxy.settings) as second:  # another worker/replica, same database
        first_jobs, second_jobs = proxy.server.app.ctx.proxy.jobs, second.app.ctx.proxy.jobs
        await eventually(  # the model sync job runs
            lambda: sum(j.runs.get("models-sync", 0) for j in (first_jobs, second_jobs)),
            lambda runs: runs >= 3,
            timeout=10,
            interval=0.1,
        )
        runs = sorted(j.runs.get("models-sync", 0) for j in (first_jobs, second_jobs))
        assert runs[0] == 0, runs  # the lease holder keeps the job; the other never fetched
        fetches = len(await proxy.fake.requests(path="/backend-api/codex/models"))
        assert fetches <= runs[1] + 1  # one fetch per plan per run (plus one in flight)


async def test_a_new_plan_in_the_pool_is_synced_without_waiting_for_the_interval(
    tmp_path, database_url, fake_upstream, monkeypatch
):
    from server.models.sync import ModelSyncer

    monkeypatch.setattr(ModelSyncer, "CHECK_S", 0.2)
    settings = proxy_settings(tmp_path, database_url, fake_upstream, models_sync_interval_seconds="3600")
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_plus", plan_type="plus")
        models = await _wait_for_synced_catalog(proxy)  # the first account: synced at once
        assert "gpt-5.3-codex-spark" not in [m["slug"] for m in models]
        fetches = len(await fake_upstream.requests(path="/backend-api/codex/models"))
        await proxy.add_accounts("acc_pro", plan_type="pro")  # a plan the last sync did not ask with
        await eventually(  # the new plan's models arrive
            lambda: _get(proxy.url + "/backend-api/codex/models"),
            lambda answer: "gpt-5.3-codex-spark" in [m["slug"] for m in answer[2]["models"]],
            timeout=10,
            interval=0.1,
        )
        await asyncio.sleep(0.5)  # several checks later: nothing new, nothing fetched
        assert len(await fake_upstream.requests(path="/backend-api/codex/models")) == fetches + 2
