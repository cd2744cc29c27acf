"""`bounced api` as a real uvicorn process (one, or several workers on PostgreSQL),
`bounced token`, the README's curl examples, and the health port of the worker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers.api_process import (
    BOUNCED_ARGV,
    api_server,
    bounced,
    bounced_env,
    process,
    token,
)
from helpers.net import free_port

README = Path(__file__).parent.parent / "README.md"


def test_token_create_list_revoke(database_url):
    secret = token(database_url, "mailer", "check", "ingest")
    assert secret.startswith("bnc_")
    listed = bounced("token", "list", "--format", "json", url=database_url)
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["scopes"], row["revoked_at"]) == ("mailer", "check,ingest", None)
    assert secret not in listed.stdout
    again = bounced("token", "create", "mailer", "--scope", "read", url=database_url)
    assert again.returncode == 1 and "exists" in again.stderr
    bad = bounced("token", "create", "x", "--scope", "root", url=database_url)
    assert bad.returncode == 2
    assert bounced("token", "revoke", "mailer", url=database_url).returncode == 0
    assert bounced("token", "revoke", "mailer", url=database_url).returncode == 1


def test_a_real_server_answers_checks_and_refuses_without_a_token(database_url):
    check = token(database_url, "sender", "check")
    admin = token(database_url, "ops", "admin")
    with api_server(database_url) as base:
        auth = {"Authorization": f"Bearer {admin}"}
        blocked = httpx.post(
            f"{base}/v1/suppressions", json={"addresses": ["x@example.com"]}, headers=auth
        )
        assert blocked.status_code == 200
        got = httpx.get(
            f"{base}/v1/suppressions/x@example.com", headers={"Authorization": f"Bearer {check}"}
        )
        assert got.json()["sendable"] is False
        refused = httpx.get(f"{base}/v1/suppressions/x@example.com")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "bounced"
        assert httpx.get(f"{base}/docs").status_code == 200
        metrics = httpx.get(f"{base}/metrics").text
        assert 'bounced_checks_total{verdict="blocked"} 1.0' in metrics
        assert "x@example.com" not in metrics


def test_the_bulk_check_of_100000_addresses_in_one_request(database_url):
    from bounced.suppressions import Suppressions

    with Suppressions.open(database_url, actor="test") as sup:
        sup.block([f"u{i}@example.com" for i in range(0, 100_000, 1000)])
    check = token(database_url, "bulk", "check")
    addresses = [f"u{i}@example.com" for i in range(100_000)]
    with api_server(database_url) as base:
        got = httpx.post(
            f"{base}/v1/check",
            json=addresses,
            headers={"Authorization": f"Bearer {check}"},
            timeout=120,
        )
    assert got.status_code == 200
    answers = [json.loads(line) for line in got.text.splitlines()]
    assert [a["address"] for a in answers] == addresses
    assert [i for i, a in enumerate(answers) if not a["sendable"]] == list(range(0, 100_000, 1000))


def test_several_workers_on_postgresql_share_the_store_and_the_metrics(database_url):
    if database_url.startswith("sqlite"):
        refused = bounced("api", "--workers", "2", "--port", str(free_port()), url=database_url)
        assert refused.returncode == 2 and "PostgreSQL" in refused.stderr
        return
    check = token(database_url, "sender", "check")
    admin = token(database_url, "ops", "admin")
    with api_server(database_url, "--workers", "2") as base:
        headers = {"Authorization": f"Bearer {admin}"}
        httpx.post(
            f"{base}/v1/suppressions", json={"addresses": ["w@example.com"]}, headers=headers
        )
        with httpx.Client(headers={"Authorization": f"Bearer {check}"}) as client:
            for i in range(40):  # new connections: both workers take some
                got = client.get(
                    f"{base}/v1/suppressions/w@example.com", headers={"Connection": "close"}
                )
                assert got.json()["sendable"] is False, i
        metrics = httpx.get(f"{base}/metrics").text
    assert re.search(r'bounced_checks_total\{verdict="blocked"\} 40\.0', metrics), metrics


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_the_readme_curl_examples_run_as_written(database_url, tmp_path):
    section = README.read_text().split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    examples = [b for b in blocks if "curl" in b]
    assert len(examples) >= 5
    admin = token(database_url, "readme", "admin")
    with api_server(database_url) as base:
        env = bounced_env(API=base, TOKEN=admin, PATH=os.environ["PATH"])
        for block in examples:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=60,
            )
            assert done.returncode == 0, (block, done.stdout, done.stderr)
            assert '"error"' not in done.stdout, (block, done.stdout)


def test_the_worker_serves_health_and_metrics_on_its_port(database_url, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [*BOUNCED_ARGV, "--database-url", database_url, "worker"]
    bounced("db", "upgrade", url=database_url)
    env = bounced_env(BOUNCED_METRICS_PORT=str(port))
    with process(argv, base, env, cwd=tmp_path):
        assert httpx.get(f"{base}/readyz").text.strip() == "ready"
        assert "bounced_retries_due 0.0" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/nothing").status_code == 404


def test_the_listener_serves_health_and_metrics_on_its_port(database_url, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [*BOUNCED_ARGV, "--database-url", database_url, "serve", "--port", str(free_port())]
    argv += ["--domain", "bounces.example.com", "--spool-dir", str(tmp_path / "spool")]
    bounced("db", "upgrade", url=database_url)
    with process(argv, base, bounced_env(BOUNCED_METRICS_PORT=str(port)), cwd=tmp_path):
        assert httpx.get(f"{base}/readyz").text.strip() == "ready"
        assert "bounced_spool_messages 0.0" in httpx.get(f"{base}/metrics").text


def test_the_cli_starts_without_the_web_framework():
    code = "import sys; from bounced.cli import app; print(sorted(m for m in "
    code += "('fastapi', 'uvicorn', 'prometheus_client') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
