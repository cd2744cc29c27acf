"""The HTTP API against a real store (SQLite and PostgreSQL): every endpoint, every
scope, the error shape, limits, the audit trail with the token's name."""

from __future__ import annotations

import base64
import json

import pytest
from helpers.dsn import make_dsn, soft
from helpers.http import SCOPES, Api

from bounced.sending.log import SendingLog

#: Every route with a request that reaches it, and the scope it needs.
ROUTES = [
    ("GET", "/v1/suppressions/a@example.com", None, "check"),
    ("POST", "/v1/check", ["a@example.com"], "check"),
    ("GET", "/v1/suppressions", None, "read"),
    ("GET", "/v1/suppressions/a@example.com/history", None, "read"),
    ("POST", "/v1/suppressions", {"addresses": ["a@example.com"]}, "admin"),
    ("DELETE", "/v1/suppressions/a@example.com", None, "admin"),
    ("POST", "/v1/former-employees", {"addresses": ["a@example.com"]}, "admin"),
    ("DELETE", "/v1/former-employees/a@example.com", None, "admin"),
    ("DELETE", "/v1/addresses/a@example.com", None, "admin"),
    ("GET", "/v1/allow", None, "read"),
    ("POST", "/v1/allow", {"entries": ["@example.org"]}, "admin"),
    ("DELETE", "/v1/allow/@example.org", None, "admin"),
    ("GET", "/v1/selections", None, "read"),
    ("POST", "/v1/selections/s/members", {"addresses": ["a@example.com"]}, "admin"),
    ("POST", "/v1/selections/s/remove", {"addresses": ["a@example.com"]}, "admin"),
    ("GET", "/v1/selections/s/members", None, "read"),
    ("GET", "/v1/stats", None, "read"),
    ("GET", "/v1/deliverability", None, "read"),
    ("POST", "/v1/bounces", "raw", "ingest"),
    ("POST", "/v1/sent", {"recipient": "a@example.com", "message_id": "<m@x>"}, "ingest"),
    ("GET", "/v1/retries", None, "read"),
    ("GET", "/v1/retries/1", None, "read"),
    ("POST", "/v1/retries/claim", {}, "ingest"),
    ("POST", "/v1/retries/cancel", {"plan_ids": [1]}, "admin"),
    ("GET", "/v1/inbox", None, "read"),
    ("GET", "/v1/inbox/1", None, "read"),
    ("POST", "/v1/inbox/1/assign", {"address": "a@example.com"}, "admin"),
    ("DELETE", "/v1/inbox/1", None, "admin"),
    ("POST", "/v1/clean", None, "read"),  # an empty list: no row, so no DNS
    ("POST", "/v1/imports/ses", None, "admin"),
]
#: Routes authenticated by someone else's credentials (a sending provider's signature;
#: tests/test_http_webhooks.py), not by bounced's tokens.
NOT_TOKEN_ROUTES = {("POST", "/v1/webhooks/{provider}")}


@pytest.fixture
def api(database_url):
    api = Api.start(database_url)
    yield api
    api.close()


def call(api, method, path, body, headers):
    if body == "raw":
        return api.client.request(
            method,
            path,
            content=make_dsn("a@example.com"),
            headers=headers | {"Content-Type": "message/rfc822"},
        )
    return api.client.request(method, path, json=body, headers=headers)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.json() == {
        "error": {"code": code, "message": response.json()["error"]["message"]}
    }
    assert response.json()["error"]["message"]


def test_every_route_needs_a_token_and_its_scope(api):
    for method, path, body, scope in ROUTES:
        assert_error(call(api, method, path, body, {}), 401, "unauthorized")
        bad = {"Authorization": "Bearer bnc_nothing_here"}
        assert_error(call(api, method, path, body, bad), 401, "unauthorized")
        for other in SCOPES:
            got = call(api, method, path, body, api.auth(other))
            if other == scope or other == "admin":
                assert got.status_code not in (401, 403), (method, path, other, got.text)
            else:
                assert_error(got, 403, "forbidden")


def test_the_documented_routes_are_the_tested_ones(api):
    spec = api.client.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith("/v1/")
    }
    tested = set()
    for method, path, _, _ in ROUTES:
        for template in (p for m, p in documented if m == method):
            parts, want = template.split("/"), path.split("/")
            if len(parts) == len(want) and all(
                a == b or a.startswith("{") for a, b in zip(parts, want, strict=True)
            ):
                tested.add((method, template))
    assert tested == documented - NOT_TOKEN_ROUTES


def test_a_revoked_token_is_refused_at_once_without_a_cache(database_url):
    from bounced.db.tokens import Tokens

    api = Api.start(database_url, **{"api.token_cache": 0})
    try:
        assert api.client.get("/v1/stats", headers=api.auth("read")).status_code == 200
        Tokens(api.sup.store).revoke("read-token")
        assert_error(api.client.get("/v1/stats", headers=api.auth("read")), 401, "unauthorized")
    finally:
        api.close()


def test_the_token_cache_trusts_a_verified_token_for_its_time_only(api):
    import asyncio

    from bounced.db.tokens import Tokens
    from bounced.http.auth import TokenCache

    now = [0.0]
    cache = TokenCache(Tokens(api.sup.store), 5, clock=lambda: now[0])
    token = api.tokens["read"]
    assert asyncio.run(cache.verify(token)).name == "read-token"
    Tokens(api.sup.store).revoke("read-token")
    now[0] = 4.9
    assert asyncio.run(cache.verify(token)).name == "read-token"
    now[0] = 5.1
    assert asyncio.run(cache.verify(token)) is None


def test_a_token_with_the_right_key_but_a_wrong_secret_is_refused(api):
    token = api.tokens["admin"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    got = api.client.get("/v1/stats", headers={"Authorization": f"Bearer {forged}"})
    assert_error(got, 401, "unauthorized")


def test_anonymous_checks_only_when_configured(database_url):
    api = Api.start(database_url, **{"api.allow_anonymous_check": True})
    try:
        assert api.client.get("/v1/suppressions/a@example.com").json()["sendable"] is True
        assert_error(api.client.get("/v1/stats"), 401, "unauthorized")
    finally:
        api.close()


def test_admin_actions_are_audited_with_the_token_name(api):
    admin = api.auth("admin")
    got = api.client.post(
        "/v1/suppressions", json={"addresses": ["X@Example.com"], "note": "asked"}, headers=admin
    )
    assert got.json() == {"done": ["x@example.com"], "unknown": []}
    assert api.sup.check("x@example.com").sendable is False
    unmarked = api.client.delete("/v1/suppressions/x@example.com", headers=admin)
    assert unmarked.json()["done"] == ["x@example.com"]
    assert api.sup.check("x@example.com").sendable is True
    history = api.client.get("/v1/suppressions/x@example.com/history", headers=api.auth("read"))
    actions = [(a["action"], a["actor"]) for a in history.json()["audit"]]
    assert actions == [("block", "admin-token"), ("unmark", "admin-token")]


def test_unmark_of_an_unknown_address_is_a_404(api):
    got = api.client.delete("/v1/suppressions/never@example.com", headers=api.auth("admin"))
    assert_error(got, 404, "unknown_address")
    got = api.client.get("/v1/suppressions/never@example.com/history", headers=api.auth("read"))
    assert_error(got, 404, "unknown_address")


def test_former_employee_and_undo_and_erase(api):
    admin = api.auth("admin")
    api.client.post("/v1/former-employees", json={"addresses": ["left@example.com"]}, headers=admin)
    assert api.sup.check("left@example.com").state == "former_employee"
    api.client.delete("/v1/former-employees/left@example.com", headers=admin)
    assert api.sup.check("left@example.com").sendable is True
    erased = api.client.delete("/v1/addresses/left@example.com", headers=admin)
    assert erased.json()["done"] == ["left@example.com"]
    assert api.sup.check("left@example.com").state == ""


def test_the_allow_list(api):
    admin = api.auth("admin")
    added = api.client.post("/v1/allow", json={"entries": ["@Example.org"]}, headers=admin)
    assert added.json() == {"entries": ["@example.org"]}
    listed = api.client.get("/v1/allow", headers=api.auth("read")).json()
    assert [(e["entry"], e["actor"]) for e in listed] == [("@example.org", "admin-token")]
    removed = api.client.delete("/v1/allow/@example.org", headers=admin)
    assert removed.json() == {"entries": ["@example.org"]}
    assert api.client.get("/v1/allow", headers=api.auth("read")).json() == []


def test_listing_pages_through_every_address_once_while_rows_are_added(api):
    api.sup.block([f"p{i:03}@example.com" for i in range(25)])
    seen, cursor = [], None
    while True:
        params = {"limit": 10, "status": ["blocked"]} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/suppressions", params=params, headers=api.auth("read")).json()
        seen += [row["address"] for row in page["items"]]
        if len(seen) == 10:
            api.sup.block(["a-first@example.com", "zz-last@example.com"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted([f"p{i:03}@example.com" for i in range(25)] + ["zz-last@example.com"])
    assert seen == expected


@pytest.mark.parametrize("accept", ["text/csv", "application/x-ndjson"])
def test_export_streams_the_whole_list(api, accept):
    api.sup.block([f"e{i:04}@example.com" for i in range(2300)])
    got = api.client.get("/v1/suppressions", headers=api.auth("read") | {"Accept": accept})
    assert got.headers["content-type"].startswith(accept)
    lines = got.text.splitlines()
    if accept == "text/csv":
        assert lines[0].startswith("address,state,blocked_reason")
        addresses = [line.split(",")[0] for line in lines[1:]]
    else:
        addresses = [json.loads(line)["address"] for line in lines]
    assert addresses == [f"e{i:04}@example.com" for i in range(2300)]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"status": "gone"}, 422, "invalid_request"),
        ({"colour": "red"}, 422, "invalid_request"),
        ({"selection": "none"}, 404, "unknown_selection"),
        ({"cursor": "%%%"}, 422, "invalid_request"),
    ],
)
def test_filters_are_checked_and_unknown_parameters_refused(api, params, status, code):
    got = api.client.get("/v1/suppressions", params=params, headers=api.auth("read"))
    assert_error(got, status, code)


def test_unknown_fields_in_a_body_are_refused(api):
    got = api.client.post(
        "/v1/suppressions",
        json={"addresses": ["a@example.com"], "notes": "typo"},
        headers=api.auth("admin"),
    )
    assert_error(got, 422, "invalid_request")
    assert "notes" in got.json()["error"]["message"]


def test_selections_by_list_and_by_filter_and_their_export(api):
    admin, read = api.auth("admin"), api.auth("read")
    api.sup.block(["b1@example.com", "b2@example.com"])
    by_list = api.client.post(
        "/v1/selections/camp/members", json={"addresses": ["n@example.com"]}, headers=admin
    )
    assert by_list.json() == {"count": 1}
    by_filter = api.client.post(
        "/v1/selections/camp/members", json={"filter": {"status": ["blocked"]}}, headers=admin
    )
    assert by_filter.json() == {"count": 2}
    both = api.client.post(
        "/v1/selections/camp/members",
        json={"addresses": ["x@example.com"], "filter": {}},
        headers=admin,
    )
    assert_error(both, 422, "invalid_request")
    listed = api.client.get("/v1/selections", headers=read).json()
    assert [(s["name"], s["members"]) for s in listed] == [("camp", 3)]
    removed = api.client.post(
        "/v1/selections/camp/remove", json={"addresses": ["b1@example.com"]}, headers=admin
    )
    assert removed.json() == {"count": 1}
    export = api.client.get(
        "/v1/selections/camp/members", headers=read | {"Accept": "text/csv"}
    ).text.splitlines()
    assert [line.split(",")[0] for line in export[1:]] == ["b2@example.com", "n@example.com"]
    missing = api.client.get("/v1/selections/nope/members", headers=read)
    assert_error(missing, 404, "unknown_selection")


def test_stats_and_deliverability(api):
    from helpers.dsn import sender_side

    api.sup.ingest(make_dsn("hard@example.com"))
    api.sup.ingest(make_dsn(sender_side("me@example.net"), message_id="<d2@x>"))
    read = api.auth("read")
    stats = api.client.get("/v1/stats", params={"days": 36500 // 10}, headers=read).json()
    assert stats["state"]["blocked"] == 1
    rows = api.client.get("/v1/deliverability", headers=read).json()
    assert [(r["domain"], r["messages"]) for r in rows] == [("example.net", 1)]


def test_a_bounce_posted_raw_is_parsed_and_recorded(api):
    got = api.client.post(
        "/v1/bounces",
        content=make_dsn("gone@example.com"),
        headers=api.auth("ingest") | {"Content-Type": "message/rfc822"},
    )
    body = got.json()
    assert (body["outcome"], body["new_blocks"]) == ("recorded", ["gone@example.com"])
    assert body["rows"][0]["reason"] == "user_unknown"
    assert body["source"] == "api:ingest-token"
    assert api.sup.check("gone@example.com").sendable is False
    again = api.client.post(
        "/v1/bounces", content=make_dsn("gone@example.com"), headers=api.auth("ingest")
    )
    assert again.json()["outcome"] == "duplicate"
    person = api.client.post(
        "/v1/bounces",
        content=b"From: a@b.example\nSubject: hi\n\nthanks!\n",
        headers=api.auth("ingest"),
    )
    assert person.json()["outcome"] == "not_bounce"
    assert_error(
        api.client.post("/v1/bounces", content=b"", headers=api.auth("ingest")),
        422,
        "invalid_request",
    )


def test_sent_messages_get_signed_return_paths(database_url):
    from bounced import verp

    api = Api.start(database_url, **{"verp.secret": "s3cret", "verp.domain": "b.example"})
    try:
        one = api.client.post(
            "/v1/sent",
            json={"recipient": "To@Example.com", "message_id": "<m1@x>", "subject": "Hi"},
            headers=api.auth("ingest"),
        ).json()["messages"]
        batch = api.client.post(
            "/v1/sent",
            json={
                "messages": [
                    {"recipient": f"r{i}@example.com", "message_id": "<m2@x>"} for i in range(3)
                ]
            },
            headers=api.auth("ingest"),
        ).json()["messages"]
    finally:
        api.close()
    assert [m["address"] for m in one + batch] == [
        "to@example.com",
        "r0@example.com",
        "r1@example.com",
        "r2@example.com",
    ]
    token = verp.decode(one[0]["return_path"], secret="s3cret", prefix="bounces")
    assert token.valid and (token.recipient, token.message_key) == ("to@example.com", "m1@x")
    assert one[0]["return_path"].endswith("@b.example")


def test_sent_without_verp_settings_has_no_return_path(api):
    got = api.client.post(
        "/v1/sent",
        json={"recipient": "a@example.com", "message_id": "<m@x>", "raw_base64": "aGk="},
        headers=api.auth("ingest"),
    )
    assert got.json()["messages"][0]["return_path"] is None
    bad = api.client.post(
        "/v1/sent",
        json={"recipient": "a@example.com", "message_id": "<m@x>", "raw_base64": "%%"},
        headers=api.auth("ingest"),
    )
    assert_error(bad, 422, "invalid_request")


def _soft_bounced_plan(api) -> int:
    log = SendingLog(api.sup)
    log.record("full@example.com", "<orig-1@sender.example.com>", subject="Hi")
    api.sup.ingest(make_dsn(soft("full@example.com")))
    log.sync()
    (plan,) = log.plans()
    return plan["id"]


def test_retries_listed_claimed_once_and_cancelled(api):
    plan_id = _soft_bounced_plan(api)
    read = api.auth("read")
    listed = api.client.get("/v1/retries", headers=read).json()
    assert [(p["id"], p["address"]) for p in listed] == [(plan_id, "full@example.com")]
    shown = api.client.get(f"/v1/retries/{plan_id}", headers=read).json()
    assert shown["sent"]["subject"] == "Hi"
    assert_error(api.client.get("/v1/retries/999999", headers=read), 404, "unknown_plan")
    from datetime import timedelta

    later = api.sup.store.clock() + timedelta(days=1)
    api.sup.store.database.clock = lambda: later  # the plan falls due (the app shares it)
    first = api.client.post("/v1/retries/claim", json={"worker": "a"}, headers=api.auth("ingest"))
    second = api.client.post("/v1/retries/claim", json={"worker": "b"}, headers=api.auth("ingest"))
    assert [d["plan_id"] for d in first.json()] == [plan_id]
    assert second.json() == []
    cancel = api.client.post(
        "/v1/retries/cancel", json={"plan_ids": [plan_id, 424242]}, headers=api.auth("admin")
    )
    assert cancel.json() == {"cancelled": [plan_id], "not_open": [424242]}


def test_the_inbox_list_show_assign_delete(api):
    from bounced.listener.inbox import Inbox
    from bounced.listener.spool import Envelope

    inbox = Inbox(api.sup)
    raw = b"From: p@example.com\nSubject: take me off\n\nplease\n"
    envelope = Envelope("p@example.com", ("bounces@b.example",), "127.0.0.1")
    inbox.add("s1", envelope, raw, subject="take me off", reason="not a bounce")
    inbox.add("s2", envelope, raw, subject="again", reason="not a bounce")
    read, admin = api.auth("read"), api.auth("admin")
    first, second = (m["id"] for m in api.client.get("/v1/inbox", headers=read).json())
    shown = api.client.get(f"/v1/inbox/{first}", headers=read).json()
    assert base64.b64decode(shown["raw_base64"]) == raw
    assigned = api.client.post(
        f"/v1/inbox/{first}/assign", json={"address": "p@example.com"}, headers=admin
    )
    assert assigned.json()["rows"][0]["address"] == "p@example.com"
    assert [m["id"] for m in api.client.get("/v1/inbox", headers=read).json()] == [second]
    assert api.client.delete(f"/v1/inbox/{second}", headers=admin).json() == {"deleted": [second]}
    assert_error(api.client.delete(f"/v1/inbox/{second}", headers=admin), 404, "unknown_message")


def test_too_large_bodies_and_batches_are_a_413(database_url):
    api = Api.start(database_url, **{"api.max_body_size": 1000, "api.max_batch": 3})
    try:
        check = api.auth("check")
        many = api.client.post("/v1/check", json=["a@example.com"] * 4, headers=check)
        assert_error(many, 413, "too_many")
        big = api.client.post("/v1/check", json=["a@example.com"] * 100, headers=check)
        assert_error(big, 413, "too_large")

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"x" * 500

        streamed = api.client.post("/v1/bounces", content=chunks(), headers=api.auth("ingest"))
        assert_error(streamed, 413, "too_large")
    finally:
        api.close()


def test_errors_are_json_for_unknown_routes_and_methods(api):
    assert_error(api.client.get("/v2/nothing"), 404, "not_found")
    assert_error(api.client.put("/v1/check", headers=api.auth("check")), 405, "method_not_allowed")
    bad_json = api.client.post(
        "/v1/check",
        content=b"[1, 2",
        headers=api.auth("check") | {"Content-Type": "application/json"},
    )
    assert_error(bad_json, 422, "invalid_request")
    wrong_type = api.client.post(
        "/v1/check", content=b"<x/>", headers=api.auth("check") | {"Content-Type": "text/xml"}
    )
    assert_error(wrong_type, 415, "unsupported_media_type")


def test_a_database_that_went_away_is_a_503_and_not_ready(api, tmp_path):
    from sqlalchemy import create_engine

    store = api.client.app.state.store
    url = store.engine.url
    store.engine.dispose()
    if url.get_backend_name() == "sqlite":
        gone = url.set(database=str(tmp_path / "no-such-dir" / "bounced.db"))
    else:
        gone = url.set(port=1)  # nothing listens there
    store.database.engine = create_engine(gone)
    got = api.client.get("/v1/suppressions/a@example.com", headers=api.auth("check"))
    assert got.status_code == 503
    assert got.json()["error"]["code"] == "database_unavailable"
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert api.client.get("/healthz").status_code == 200


def test_text_the_database_cannot_store_is_a_422(api, database_url):
    nul = api.client.get(
        "/v1/suppressions",
        params={"reason": "a\x00b"},
        headers=api.auth("read") | {"Accept": "text/csv"},
    )
    assert_error(nul, 422, "invalid_request")
    sent = api.client.post(
        "/v1/sent",
        json={"recipient": "a@example.com", "message_id": "<m@x>", "subject": "\x00"},
        headers=api.auth("ingest"),
    )
    assert_error(sent, 422, "invalid_request")
    named = api.client.post(
        "/v1/selections/a%00b/members",
        json={"addresses": ["a@example.com"]},
        headers=api.auth("admin"),
    )
    if database_url.startswith("sqlite"):  # SQLite stores it
        assert named.json() == {"count": 1}
    else:  # PostgreSQL cannot: the request's fault, not a 500
        assert_error(named, 422, "invalid_request")
