"""The providers' webhooks and imports over HTTP, against a real store: verified events
recorded once, refusals answered 401/403/406 and counted with nothing recorded,
unreadable events kept in the inbox with a 2xx, subscription confirmations, and
suppression lists uploaded with the admin scope."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from helpers.api_process import api_server
from helpers.http import Api
from helpers.webhook_signing import (
    MAILGUN_KEY,
    PASSWORD,
    TOPIC,
    USER,
    Signer,
    basic,
    signed_request,
)

from bounced import Suppressions
from bounced.http.webhooks import install
from bounced.listener.inbox import Inbox

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"

SETTINGS = {
    "webhooks.ses.enabled": True,
    "webhooks.ses.topics": [TOPIC],
    "webhooks.mailgun.enabled": True,
    "webhooks.mailgun.signing_key": MAILGUN_KEY,
    "webhooks.postmark.enabled": True,
    "webhooks.postmark.username": USER,
    "webhooks.postmark.password": PASSWORD,
}


def sample(name: str):
    return json.loads((SAMPLES / f"{name}.json").read_text())


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def api(database_url, signer):
    sendgrid = signer.settings().sendgrid.public_key
    api = Api.start(
        database_url,
        **SETTINGS,
        **{"webhooks.sendgrid.enabled": True},
        **{"webhooks.sendgrid.public_key": sendgrid},
    )
    install(api.client.app, fetch=signer.fetch)
    yield api
    api.close()


def post(api, provider: str, request):
    return api.client.post(
        f"/v1/webhooks/{provider}", content=request.body, headers=dict(request.headers)
    )


def metric(api, provider: str, outcome: str) -> float:
    text = api.client.get("/metrics").text
    line = f'bounced_webhook_requests_total{{outcome="{outcome}",provider="{provider}"}}'
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ("ses", "ses-bounce-dsn-01"),
        ("mailgun", "mailgun-permanent-bounce-02"),
        ("sendgrid", "sendgrid-events-01"),
        ("postmark", "postmark-hard-bounce-01"),
    ],
)
def test_a_verified_event_is_recorded_once(api, signer, provider, name) -> None:
    first = post(api, provider, signed_request(signer, provider, sample(name)))
    assert first.status_code == 200, first.text
    assert first.json()["recorded"] >= 1
    again = post(api, provider, signed_request(signer, provider, sample(name)))  # a retry
    assert again.status_code == 200, again.text
    assert (again.json()["recorded"], again.json()["duplicates"]) == (0, first.json()["recorded"])
    blocked = [r["address"] for r in api.sup.list() if r["state"] == "blocked"]
    assert blocked, "a hard bounce blocks"


def test_refused_requests_record_nothing_and_are_counted(api, signer, caplog) -> None:
    before = metric(api, "mailgun", "refused")
    forged = signer.mailgun(sample("mailgun-permanent-fail-01"), key="key-of-someone-else")
    with caplog.at_level(logging.WARNING, logger="bounced.http.webhooks"):
        answer = api.client.post("/v1/webhooks/mailgun", content=forged)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert "mailgun webhook refused" in caplog.text and "bad signature" in caplog.text
    assert metric(api, "mailgun", "refused") == before + 1
    stale = signer.mailgun(sample("mailgun-permanent-fail-01"), at=1_000_000_000)
    assert api.client.post("/v1/webhooks/mailgun", content=stale).status_code == 406
    wrong = api.client.post("/v1/webhooks/postmark", content=b"{}", headers=basic(password="x"))
    assert wrong.status_code == 401
    other_topic = dict(sample("ses-bounce-dsn-01"))
    body = json.loads(signer.ses(other_topic))
    body["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:other"
    assert api.client.post("/v1/webhooks/ses", content=json.dumps(body)).status_code == 403
    assert list(api.sup.list()) == []


def test_a_mailgun_token_is_not_accepted_twice(api, signer) -> None:
    body = signer.mailgun(sample("mailgun-permanent-fail-01"))
    assert api.client.post("/v1/webhooks/mailgun", content=body).status_code == 200
    assert api.client.post("/v1/webhooks/mailgun", content=body).status_code == 406


def test_an_event_that_cannot_be_read_is_kept_in_the_inbox(api, signer) -> None:
    answer = post(api, "ses", signed_request(signer, "ses", sample("ses-unknown-type-11")))
    assert answer.status_code == 200, answer.text
    assert answer.json()["kept"] == 1
    (kept,) = Inbox(api.sup).list()
    assert "Teleport" in kept["reason"]
    assert "Teleport" in Inbox(api.sup).get(kept["id"])["raw"].decode()
    post(api, "ses", signed_request(signer, "ses", sample("ses-unknown-type-11")))
    assert len(Inbox(api.sup).list()) == 1  # a retry is kept once


def test_a_subscription_is_logged_and_not_confirmed_by_default(api, signer, caplog) -> None:
    message = sample("ses-subscription-confirmation-12")
    with caplog.at_level(logging.WARNING, logger="bounced.http.webhooks"):
        answer = post(api, "ses", signed_request(signer, "ses", message))
    assert answer.status_code == 200
    assert message["SubscribeURL"] in caplog.text
    assert message["SubscribeURL"] not in signer.fetch.asked


def test_a_subscription_is_confirmed_when_configured(database_url, signer) -> None:
    api = Api.start(database_url, **SETTINGS, **{"webhooks.ses.confirm": True})
    install(api.client.app, fetch=signer.fetch)
    message = sample("ses-subscription-confirmation-12")
    signer.fetch.served[message["SubscribeURL"]] = b"<ConfirmSubscriptionResponse/>"
    try:
        assert post(api, "ses", signed_request(signer, "ses", message)).status_code == 200
    finally:
        api.close()
    assert signer.fetch.asked[-1] == message["SubscribeURL"]


def test_a_provider_not_enabled_is_not_found(api) -> None:
    answer = api.client.post("/v1/webhooks/brevo", content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_imports_need_the_admin_scope_and_are_idempotent(api) -> None:
    body = b"a@example.com,BOUNCE\nnot an address,BOUNCE\nb@example.com,COMPLAINT\n"
    assert api.client.post("/v1/imports/ses", content=body).status_code == 401
    assert (
        api.client.post("/v1/imports/ses", content=body, headers=api.auth("read")).status_code
        == 403
    )
    first = api.client.post("/v1/imports/ses", content=body, headers=api.auth("admin"))
    assert first.status_code == 200, first.text
    assert first.json()["imported"] == 2
    assert first.json()["skipped"][0]["where"] == "line 2"
    again = api.client.post("/v1/imports/ses", content=body, headers=api.auth("admin"))
    assert (again.json()["imported"], again.json()["already_known"]) == (0, 2)
    assert api.sup.check("b@example.com").reason == "complaint"


def test_import_of_a_generic_csv_with_columns_and_a_dry_run(api) -> None:
    body = b"Email,Why\nc@example.com,hard\n"
    dry = api.client.post(
        "/v1/imports/csv?dry_run=true&column=address=Email&column=reason=Why",
        content=body,
        headers=api.auth("admin"),
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["imported"] == 1 and list(api.sup.list()) == []
    bad = api.client.post("/v1/imports/csv", content=body, headers=api.auth("admin"))
    assert bad.status_code == 422
    assert (
        api.client.post("/v1/imports/nonesuch", content=body, headers=api.auth("admin")).status_code
        == 404
    )


def test_a_real_server_takes_provider_webhooks(database_url, signer) -> None:
    """`bounced api` as a process, webhooks keyed in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")} | {
        "BOUNCED_WEBHOOKS_MAILGUN_ENABLED": "true",
        "BOUNCED_WEBHOOKS_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "BOUNCED_WEBHOOKS_POSTMARK_ENABLED": "true",
        "BOUNCED_WEBHOOKS_POSTMARK_USERNAME": USER,
        "BOUNCED_WEBHOOKS_POSTMARK_PASSWORD": PASSWORD,
    }
    with api_server(database_url, env=env) as base:
        hard = json.dumps(sample("postmark-hard-bounce-01")).encode()
        answer = httpx.post(f"{base}/v1/webhooks/postmark", content=hard, headers=basic())
        assert answer.status_code == 200, answer.text
        forged = httpx.post(f"{base}/v1/webhooks/postmark", content=hard, headers=basic("x", "y"))
        assert forged.status_code == 401
        body = signer.mailgun(sample("mailgun-permanent-bounce-02"))
        assert httpx.post(f"{base}/v1/webhooks/mailgun", content=body).status_code == 200
        assert httpx.post(f"{base}/v1/webhooks/mailgun", content=body).status_code == 406
        metrics = httpx.get(f"{base}/metrics").text
    assert 'bounced_webhook_requests_total{outcome="refused",provider="postmark"} 1.0' in metrics
    with Suppressions.open(database_url) as sup:
        assert not sup.check("john@example.com").sendable
        assert not sup.check("alice@example.com").sendable


def test_a_verified_body_that_is_no_json_is_kept_not_refused(api) -> None:
    answer = api.client.post("/v1/webhooks/postmark", content=b"RecordType=Bounce", headers=basic())
    assert answer.status_code == 200, answer.text
    assert answer.json()["kept"] == 1
    (kept,) = Inbox(api.sup).list()
    assert kept["reason"] == "the verified body is not JSON"
    assert Inbox(api.sup).get(kept["id"])["raw"] == b"RecordType=Bounce"
