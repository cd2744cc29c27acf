"""Sending providers: their webhook events in as bounce rows, their suppression lists in
and out.

One module per provider (`ses`, `mailgun`, `sendgrid`, `postmark`, `sparkpost`,
`brevo`), each with a verifier (is this request really from the provider?) and a
pure `read` (a verified payload's facts, `facts.Events`); what each provider's event
types mean is data (rules/esp.toml, read by `esp`). `registry` names them all;
`imports` and `exports` read and write the providers' suppression-list files.
Recording goes through `Suppressions.ingest_bounces`, the same path as a parsed DSN;
the HTTP layer (bounced.http.webhooks) and the CLI (bounced.cli.providers) are the
edges. Nothing is imported here, so the CLI's start-up does not pay for the
signature libraries.
"""
