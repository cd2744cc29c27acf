"""Webhook verification refuses what a provider did not send, for every provider;
provider types as data (esp.toml) are validated strictly; the provider's type and the
server's text meet in one contest."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.webhook_signing import (
    BREVO_TOKEN,
    CERT_URL,
    Signer,
    basic,
    signed_request,
)

from bounced.config import BasicAuthWebhook
from bounced.dsn import BounceClass, Kind, Reason
from bounced.errors import RulesError, WebhookRefused
from bounced.providers.auth import ReplayGuard, Request
from bounced.providers.esp import load_esp, parse_esp
from bounced.providers.facts import Events, Said, bounce_of, rule_priority
from bounced.providers.registry import READERS, verifier
from bounced.rules import load

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"


def sample(name: str):
    return json.loads((SAMPLES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def refused(check, request: Request) -> WebhookRefused:
    with pytest.raises(WebhookRefused) as caught:
        check.verify(request)
    assert caught.value.status in (401, 403, 406)
    return caught.value


# --- Amazon SES / SNS ----------------------------------------------------------------------


def ses(signer: Signer, **changes):
    settings = signer.settings()
    return verifier(
        "ses", replace(settings, ses=replace(settings.ses, **changes)), fetch=signer.fetch
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signature_versions_verify(signer: Signer, version: str) -> None:
    body = signer.ses(sample("ses-bounce-dsn-01"), version=version)
    assert ses(signer).verify(Request(body, {}))["MessageId"]


def test_sns_tampered_message_is_refused(signer: Signer) -> None:
    message = json.loads(signer.ses(sample("ses-bounce-dsn-01")))
    message["Message"] = message["Message"].replace("jane@", "someone-else@")
    assert refused(ses(signer), Request(json.dumps(message).encode(), {})).reason == "bad signature"


def test_sns_signature_of_another_key_is_refused(signer: Signer) -> None:
    other = Signer()
    body = other.ses(sample("ses-bounce-dsn-01"))  # same URL, another key
    assert refused(ses(signer), Request(body, {})).reason == "bad signature"


def test_sns_unexpected_topic_is_refused(signer: Signer) -> None:
    body = signer.ses(sample("ses-bounce-dsn-01"))
    check = ses(signer, topics=("arn:aws:sns:us-east-1:123456789012:other",))
    assert "TopicArn" in refused(check, Request(body, {})).reason


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/cert.pem",
    ],
)
def test_sns_certificate_from_a_foreign_url_is_never_fetched(signer: Signer, url: str) -> None:
    signer.fetch.served[url] = signer.fetch.served[CERT_URL]
    asked = len(signer.fetch.asked)
    body = signer.ses(sample("ses-bounce-dsn-01"), url=url)
    assert "certificate URL" in refused(ses(signer), Request(body, {})).reason
    assert len(signer.fetch.asked) == asked


def test_sns_certificate_is_fetched_once_per_url(signer: Signer) -> None:
    fresh = Signer()
    check = ses(fresh)
    for _ in range(3):
        check.verify(Request(fresh.ses(sample("ses-complaint-06")), {}))
    assert fresh.fetch.asked == [CERT_URL]


def test_sns_unsupported_signature_version_is_refused(signer: Signer) -> None:
    message = json.loads(signer.ses(sample("ses-bounce-dsn-01")))
    message["SignatureVersion"] = "3"
    assert (
        "SignatureVersion" in refused(ses(signer), Request(json.dumps(message).encode(), {})).reason
    )


def test_sns_confirmation_visits_only_sns_hosts(signer: Signer) -> None:
    check = ses(signer)
    with pytest.raises(WebhookRefused):
        check.confirm("https://evil.example/?Action=ConfirmSubscription")
    url = sample("ses-subscription-confirmation-12")["SubscribeURL"]
    signer.fetch.served[url] = b"<ConfirmSubscriptionResponse/>"
    check.confirm(url)
    assert signer.fetch.asked[-1] == url


def test_sns_unsubscribe_confirmation_is_not_a_subscription(signer: Signer) -> None:
    message = dict(sample("ses-subscription-confirmation-12"), Type="UnsubscribeConfirmation")
    payload = ses(signer).verify(Request(signer.ses(message), {}))
    assert READERS["ses"](payload) == Events(ignored=1)


# --- Mailgun -------------------------------------------------------------------------------


def test_mailgun_wrong_key_is_refused(signer: Signer) -> None:
    body = signer.mailgun(sample("mailgun-permanent-fail-01"), key="key-wrong")
    assert refused(verifier("mailgun", signer.settings()), Request(body, {})).status == 403


def test_mailgun_tampered_body_is_refused(signer: Signer) -> None:
    payload = json.loads(signer.mailgun(sample("mailgun-permanent-fail-01")))
    payload["signature"]["timestamp"] = str(int(payload["signature"]["timestamp"]) + 1)
    check = verifier("mailgun", signer.settings())
    assert refused(check, Request(json.dumps(payload).encode(), {})).reason == "bad signature"


def test_mailgun_stale_timestamp_is_refused_for_good(signer: Signer) -> None:
    body = signer.mailgun(sample("mailgun-permanent-fail-01"), at=1_000_000_000)
    error = refused(verifier("mailgun", signer.settings()), Request(body, {}))
    assert error.status == 406 and "stale" in error.reason


def test_mailgun_replayed_token_is_refused_once_recorded(signer: Signer) -> None:
    check = verifier("mailgun", signer.settings())
    request = Request(signer.mailgun(sample("mailgun-permanent-fail-01")), {})
    payload = check.verify(request)
    check.verify(request)  # not recorded yet: a retry of a request that failed here
    check.recorded(payload)
    assert refused(check, request).reason == "replayed token"


def test_mailgun_payload_without_signature_is_never_accepted(signer: Signer) -> None:
    body = json.dumps({"event-data": sample("mailgun-permanent-fail-01")["event-data"]}).encode()
    assert refused(verifier("mailgun", signer.settings()), Request(body, {})).status == 406


def test_replay_guard_forgets_after_its_window() -> None:
    now = [1000.0]
    guard = ReplayGuard(timedelta(minutes=5), clock=lambda: now[0])
    guard.remember("t")
    with pytest.raises(WebhookRefused):
        guard.check("mailgun", "t")
    now[0] += 301
    guard.check("mailgun", "t")


# --- SendGrid ------------------------------------------------------------------------------


def test_sendgrid_tampered_body_is_refused(signer: Signer) -> None:
    body = json.dumps(sample("sendgrid-events-01")).encode()
    headers = signer.sendgrid_headers(body)
    check = verifier("sendgrid", signer.settings())
    check.verify(Request(body, headers))
    tampered = body.replace(b"example@test.com", b"example@test.org", 1)
    assert refused(check, Request(tampered, headers)).reason == "bad signature"


def test_sendgrid_signature_covers_the_raw_bytes_not_the_json(signer: Signer) -> None:
    body = json.dumps(sample("sendgrid-events-01")).encode()
    headers = signer.sendgrid_headers(body)
    reserialised = json.dumps(json.loads(body), indent=1).encode()
    assert refused(verifier("sendgrid", signer.settings()), Request(reserialised, headers))


def test_sendgrid_wrong_key_missing_headers_and_stale_timestamp(signer: Signer) -> None:
    body = json.dumps(sample("sendgrid-events-01")).encode()
    check = verifier("sendgrid", signer.settings())
    assert refused(check, Request(body, Signer().sendgrid_headers(body))).status == 403
    assert refused(check, Request(body, {})).status == 401
    stale = signer.sendgrid_headers(body, at=1_000_000_000)
    assert "stale" in refused(check, Request(body, stale)).reason


# --- Postmark, SparkPost, Brevo --------------------------------------------------------------


@pytest.mark.parametrize("provider", ["postmark", "sparkpost"])
def test_basic_auth_refuses_wrong_or_missing_credentials(signer: Signer, provider: str) -> None:
    check = verifier(provider, signer.settings())
    body = b"{}"
    check.verify(Request(body, basic()))
    assert refused(check, Request(body, basic(password="wrong"))).status == 401
    assert refused(check, Request(body, basic(user="other"))).status == 401
    assert refused(check, Request(body, {})).status == 401
    assert refused(check, Request(body, {"authorization": "Basic !!!"})).status == 401


def test_postmark_network_allow_list(signer: Signer) -> None:
    settings = signer.settings()
    allowed = replace(settings.postmark, allowed_networks=("50.31.156.0/24", "2001:db8::/32"))
    check = verifier("postmark", replace(settings, postmark=allowed))
    check.verify(Request(b"{}", basic(), client="50.31.156.6"))
    assert "allowed networks" in refused(check, Request(b"{}", basic(), client="10.0.0.1")).reason


def test_brevo_token_or_basic(signer: Signer) -> None:
    settings = signer.settings()
    check = verifier("brevo", settings)
    check.verify(Request(b"{}", {"authorization": f"Bearer {BREVO_TOKEN}"}))
    assert refused(check, Request(b"{}", {"authorization": "Bearer nope"})).status == 401
    both = replace(settings.brevo, username="u", password="p")
    verifier("brevo", replace(settings, brevo=both)).verify(Request(b"{}", basic("u", "p")))


def test_unconfigured_credentials_refuse_everything(signer: Signer) -> None:
    settings = replace(signer.settings(), postmark=BasicAuthWebhook(enabled=True))
    assert refused(verifier("postmark", settings), Request(b"{}", basic("", ""))).status == 403


def test_disabled_provider_has_no_verifier(signer: Signer) -> None:
    settings = replace(signer.settings(), postmark=BasicAuthWebhook())
    assert verifier("postmark", settings) is None
    assert verifier("nonesuch", settings) is None


def test_every_signed_sample_verifies_and_a_tampered_one_does_not(signer: Signer) -> None:
    """(Mailgun signs its timestamp and token only, not the event: see the Mailgun tests.)"""
    for provider in ("ses", "sendgrid"):
        path = next(SAMPLES.glob(f"{provider}-*[0-9].json"))
        request = signed_request(signer, provider, json.loads(path.read_text()))
        check = verifier(provider, signer.settings(), fetch=signer.fetch)
        check.verify(request)
        tampered = replace(request, body=request.body.replace(b"example", b"exbmple", 1))
        refused(check, tampered)


# --- esp.toml and the contest ----------------------------------------------------------------


def test_packaged_esp_rules_load() -> None:
    rules = load_esp()
    assert rules.find("ses", ["Bounce:Transient/Nonesuch", "Bounce:Transient/*"]).reason is (
        Reason.UNDEFINED
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[type]]\nprovider = "ses"\ntype = "X"\nkind = "complaint"\ncolour = "red"\n', "colour"),
        (
            '[[type]]\nprovider = "ses"\ntype = "X"\nkind = "delivered"\nreason = "blocked"\n',
            "reason",
        ),
        ('[[type]]\nprovider = "nonesuch"\ntype = "X"\nkind = "ignore"\n', "provider"),
        ('[[type]]\nprovider = "ses"\ntype = "X"\nkind = "bounced"\n', "kind"),
        ('[[type]]\nprovider = "ses"\ntype = "X"\nkind = "failed"\nreason = "blocked"\n', "needs"),
        (
            '[[type]]\nprovider = "ses"\ntype = "X"\nkind = "failed"\nreason = "gone"\n'
            "permanent = true\npriority = 1\n",
            "unknown reason",
        ),
        (
            '[[type]]\nprovider = "ses"\ntype = "X"\nkind = "failed"\nreason = "blocked"\n'
            'permanent = "yes"\npriority = 1\n',
            "permanent",
        ),
        ('[[type]]\nprovider = "ses"\ntype = "X"\nkind = "ignore"\n' * 2, "twice"),
        ("[other]\nx = 1\n", "unknown tables"),
        ('[[type]]\nprovider = "ses"\n', "missing"),
    ],
)
def test_esp_rules_are_validated_strictly(text: str, problem: str) -> None:
    with pytest.raises(RulesError, match=problem):
        parse_esp(text)


def test_specific_text_outranks_a_coarse_type() -> None:
    said = Said(
        "a@example.com",
        ("Bounce:Transient/General", "Bounce:Transient/*"),
        diagnostic="smtp; 550 5.1.1 user unknown",
    )
    row = bounce_of("ses", said, "test")
    assert (row.kind, row.reason, row.bounce_class, row.status) == (
        Kind.FAILED,
        Reason.USER_UNKNOWN,
        BounceClass.HARD,
        "5.1.1",
    )


def test_a_type_that_knows_more_outranks_the_text() -> None:
    said = Said("a@example.com", ("Bounce:Permanent/Suppressed",), diagnostic="550 mailbox full")
    row = bounce_of("ses", said, "test")
    assert (row.reason, row.bounce_class, row.rule) == (
        Reason.USER_UNKNOWN,
        BounceClass.HARD,
        "esp:ses:Bounce:Permanent/Suppressed",
    )


def test_a_coarse_type_without_text_decides_alone() -> None:
    row = bounce_of("ses", Said("a@example.com", ("Bounce:Transient/*",)), "test")
    assert (row.reason, row.bounce_class, row.status[0]) == (
        Reason.UNDEFINED,
        BounceClass.SOFT,
        "4",
    )


def test_rule_priorities_come_from_the_rules_files() -> None:
    rules = load()
    phrase, (priority, _) = next(iter(rules.phrase_index.items()))
    assert rule_priority(f"phrase:{phrase}", rules) == priority
    assert rule_priority("status:5.1.1", rules) == rules.statuses["x.1.1"][1]
    assert rule_priority("reply:554", rules) == rules.replies["554"][1]
    assert rule_priority("none", rules) == -1
