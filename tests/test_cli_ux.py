"""The command line as a user meets it, through the installed `bounced` console script:
one plain line and an exit code for every refusal, nothing written when refused,
choices checked, Ctrl-C, help texts, tables, progress, audit, read-only lookups."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers.dsn import make_dsn, soft

from bounced import verp

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "dsn_samples"
BOUNCED = Path(sys.executable).parent / "bounced"
WAIT = 60


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env.pop("PYTHONUNBUFFERED", None)
    return env | extra


class Run:
    """`bounced ARGS...` as a process in `cwd`, on the SQLite store `cwd/bounced.db`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.db = cwd / "bounced.db"

    def __call__(self, *args: str, stdin: str | None = None, **env: str):
        return subprocess.run(
            [str(BOUNCED), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=clean_env(**env),
            timeout=WAIT,
        )


@pytest.fixture
def bounced(tmp_path) -> Run:
    return Run(tmp_path)


def refused(result, code: int = 2) -> str:
    """The one line a refusal prints; fails on a traceback or a second line."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bounced: ")
    return lines[0]


@pytest.fixture
def store(bounced):
    """A store with the samples ingested (36 blocked addresses)."""
    done = bounced("ingest", str(SAMPLES))
    assert done.returncode == 0, done.stderr
    return bounced


# --- output paths, ports ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("export", "-o", "missing/out.csv"),
        ("export", "-o", "."),
        ("selection", "export", "s", "-o", "missing/out.csv"),
        ("selection", "export", "s", "-o", "."),
    ],
)
def test_output_into_a_missing_directory_or_onto_one(bounced, args):
    line = refused(bounced(*args))
    assert "--output" in line
    assert not (bounced.cwd / "missing").exists()
    assert not bounced.db.exists()  # refused before the store was opened


@pytest.mark.parametrize("aside", ["a-file", "a-file/below"])
def test_ingest_aside_onto_a_file_or_where_it_cannot_write(bounced, aside):
    (bounced.cwd / "a-file").write_text("mine\n")
    line = refused(bounced("ingest", "--aside", aside, str(SAMPLES)))
    assert line.startswith(f"bounced: --aside {aside}: ")
    assert (bounced.cwd / "a-file").read_text() == "mine\n"
    assert not bounced.db.exists()


def test_serve_on_a_port_out_of_range(bounced):
    line = refused(bounced("serve", "--port", "99999", "--domain", "b.example"))
    assert "--port" in line and "99999" in line
    assert not (bounced.cwd / "spool").exists()


def test_serve_on_a_port_in_use_fails_before_writing(bounced):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bounced("serve", "--port", str(port), "--domain", "b.example")
    line = refused(result)
    assert line == f"bounced: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not (bounced.cwd / "spool").exists() and not bounced.db.exists()


# --- choices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "valid"),
    [
        (("list", "--status", "bloked"), "active, blocked, former_employee"),
        (("export", "--class", "firm"), "hard, soft"),
        (("list", "--reason", "gone"), "user_unknown"),
        (("list", "--reason", "gone"), "retries_exhausted"),
        (("selection", "add", "s", "--where", "--status", "x"), "former_employee"),
        (
            ("sent", "list", "--status", "bounced"),
            "bounced_soft, bounced_hard, retrying, delivered",
        ),
        (("sent", "list", "--reason", "gone"), "mailbox_full"),
        (("retries", "list", "--status", "done"), "succeeded, exhausted, cancelled"),
    ],
)
def test_unknown_choices_are_refused_with_the_valid_ones(bounced, args, valid):
    line = refused(bounced(*args))
    assert valid in line
    assert args[-1] in line


def test_choices_given_right_still_filter(store):
    result = store("list", "--status", "blocked", "--class", "hard", "--reason", "hard")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and rows
    assert {(r["state"], r["blocked_reason"]) for r in rows} == {("blocked", "hard")}


def test_selection_add_where_refuses_addresses(store):
    line = refused(
        store("selection", "add", "s", "a@example.com", "--where", "--status", "blocked")
    )
    assert "--where" in line
    assert store("selection", "list", "-f", "csv").stdout.strip() == "name,members,created_at"


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--selection", "nosuch"),
        ("export", "--selection", "nosuch"),
        ("export", "--selection", "nosuch", "-o", "out.csv"),
        ("selection", "show", "nosuch"),
        ("selection", "export", "nosuch", "-o", "out.csv"),
        ("selection", "remove", "nosuch", "a@example.com"),
        ("selection", "add", "other", "--where", "--selection", "nosuch"),
    ],
)
def test_an_unknown_selection_is_the_same_error_everywhere(store, args):
    assert refused(store(*args), 1) == "bounced: no selection named 'nosuch'"
    assert not (store.cwd / "out.csv").exists()
    assert "other" not in store("selection", "list", "-f", "csv").stdout


def test_allow_a_bare_at_sign_is_refused(bounced):
    line = refused(bounced("allow", "@"), 1)
    assert line == (
        "bounced: argument 1: '@' is not a valid address: no domain after the @ "
        "(write @example.com)"
    )
    assert bounced("allow", "--list", "-f", "csv").stdout.strip() == "entry,actor,created_at"


def test_verp_encode_refuses_what_is_not_an_address(bounced):
    line = refused(
        bounced(
            "verp", "encode", "not an address", "--message-id", "<m@x>", BOUNCED_VERP_SECRET="s"
        )
    )
    assert "'not an address' is not a valid address" in line


def test_worker_refuses_a_missing_spool_directory_unless_asked_to_create_it(bounced):
    line = refused(bounced("worker", "--once", "--spool-dir", "spoool"))
    assert line == "bounced: no spool directory spoool (--create-spool-dir makes it)"
    assert not (bounced.cwd / "spoool").exists()
    made = bounced("worker", "--once", "--spool-dir", "spoool", "--create-spool-dir")
    assert made.returncode == 0, made.stderr
    assert (bounced.cwd / "spoool" / "new").is_dir()


# --- Ctrl-C -----------------------------------------------------------------------------


@pytest.fixture
def big_mbox(tmp_path) -> Path:
    """An mbox of 20000 bounces: long enough to be interrupted half-way."""
    path = tmp_path / "big.mbox"
    with path.open("wb") as out:
        for i in range(20000):
            raw = make_dsn(soft(f"u{i}@example.net"), original_id=f"<{i}@x>")
            out.write(b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" + raw + b"\n")
    return path


def _interrupt(argv: list[str], cwd: Path, started) -> subprocess.CompletedProcess:
    """Run `argv` in a session of its own, press Ctrl-C (SIGINT to the whole process
    group, workers included, as a terminal does) once `started()` is true."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not started(proc):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())


def test_ctrl_c_during_parallel_ingest_is_one_clean_line(tmp_path, big_mbox):
    argv = [str(BOUNCED), "ingest", "-j", "2", str(big_mbox)]

    def recording(_proc) -> bool:
        try:
            url = f"file:{tmp_path / 'bounced.db'}?mode=ro"
            with closing(sqlite3.connect(url, uri=True)) as db:
                return db.execute("SELECT count(*) FROM event").fetchone()[0] > 0
        except sqlite3.Error:  # not created yet
            return False

    result = _interrupt(argv, tmp_path, recording)
    assert result.returncode == 130, result.stderr
    assert result.stderr == (
        "bounced: interrupted: what was recorded so far is kept; run again to finish\n"
    )


def test_ctrl_c_during_parallel_parse_is_one_clean_line(tmp_path, big_mbox):
    argv = [str(BOUNCED), "parse", "-j", "2", str(big_mbox)]

    def printing(proc) -> bool:
        ready, _, _ = select.select([proc.stdout], [], [], 0)
        return bool(ready) and bool(proc.stdout.read1(1))

    result = _interrupt(argv, tmp_path, printing)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "bounced: interrupted\n"


# --- VERP -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_verp_bounce_with_an_unreadable_body_is_booked_for_the_token(bounced):
    domain, secret = "b.example.com", "test-secret"
    env = {"BOUNCED_VERP_SECRET": secret, "BOUNCED_LISTENER_DOMAINS": domain}
    made = bounced("verp", "encode", "alice@example.org", "--message-id", "<m1@shop>", **env)
    assert made.returncode == 0, made.stderr
    return_path = made.stdout.strip()
    assert return_path.endswith("@" + domain)  # [listener] domains stands in for [verp] domain
    port = _free_port()
    log = bounced.cwd / "serve.log"
    argv = [str(BOUNCED), "serve", "--port", str(port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, cwd=bounced.cwd, env=clean_env(**env), stderr=err)
    try:
        deadline = time.monotonic() + WAIT
        while b"listening" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        unreadable = b"Subject: \xff\xfe\r\n\r\n\x00\x01 garbled beyond reading \xfe\r\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as client:
            client.sendmail("<>", [return_path], unreadable)
            reply = b"From: alice@example.org\r\nSubject: Re: your order\r\n\r\nThanks!\r\n"
            client.sendmail("alice@example.org", [return_path], reply)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0, log.read_text()
    shown = bounced("show", "alice@example.org", "-f", "json", **env)
    assert shown.returncode == 0, shown.stderr
    timeline = json.loads(shown.stdout)["timeline"]
    assert [(t["what"], t["kind"]) for t in timeline] == [("return", "failed")]
    assert "m1@shop" in timeline[0]["detail"]
    inbox = bounced("inbox", "list", "-f", "csv", **env)
    assert [r["subject"] for r in csv.DictReader(io.StringIO(inbox.stdout))] == ["Re: your order"]


def test_verp_encode_domain_comes_from_the_listener_or_is_asked_for(bounced):
    env = {"BOUNCED_VERP_SECRET": "s"}
    args = ("verp", "encode", "a@example.org", "--message-id", "<m@x>")
    line = refused(bounced(*args, **env))
    assert "[verp] domain" in line and "[listener] domains" in line and "--domain" in line
    given = {"BOUNCED_LISTENER_DOMAINS": "postmaster@x.example,bounces.example.com"}
    address = bounced(*args, **env, **given).stdout.strip()
    assert address.endswith("@bounces.example.com")
    assert verp.decode(address, secret="s").recipient == "a@example.org"
    verp_first = bounced(*args, **env, **given, BOUNCED_VERP_DOMAIN="v.example")
    assert verp_first.stdout.strip().endswith("@v.example")
    shown = bounced("verp", "encode", "--help").stdout
    assert "[verp] domain, else the first" in " ".join(shown.split())
    assert "[listener] domains" in " ".join(shown.split())


# --- audit ------------------------------------------------------------------------------


def test_audit_log_by_address_actor_and_time(store):
    assert store("--actor", "alice", "block", "x@example.com", "--note", "asked").returncode == 0
    assert store("--actor", "bob", "unmark", "x@example.com").returncode == 0
    assert store("--actor", "bob", "allow", "ceo@example.com").returncode == 0

    def audit(*args: str) -> list[dict]:
        result = store("audit", "-f", "csv", *args)
        assert result.returncode == 0, result.stderr
        return list(csv.DictReader(io.StringIO(result.stdout)))

    rows = audit()
    assert [(r["actor"], r["action"], r["address"]) for r in rows] == [
        ("alice", "block", "x@example.com"),
        ("bob", "unmark", "x@example.com"),
        ("bob", "allow", "ceo@example.com"),
    ]
    assert rows[0]["detail"] == "asked"
    assert [r["action"] for r in audit("--actor", "bob")] == ["unmark", "allow"]
    assert [r["action"] for r in audit("--address", "X@Example.com")] == ["block", "unmark"]
    assert [r["action"] for r in audit("--action", "allow")] == ["allow"]
    assert audit("--since", "2999-01-01") == []
    assert len(audit("--since", "1d")) == 3
    timeline = json.loads(store("show", "x@example.com", "-f", "json").stdout)["timeline"]
    assert [(t["kind"], t["actor"]) for t in timeline if t["what"] == "admin"] == [
        ("block", "alice"),
        ("unmark", "bob"),
    ]


def test_audit_on_each_database(bounced, database_url):
    """The audit query on SQLite and PostgreSQL alike (times compared as the store's)."""
    url = ("--database-url", database_url)
    assert bounced(*url, "--actor", "carol", "block", "y@example.com").returncode == 0
    result = bounced(*url, "audit", "--actor", "carol", "--since", "1h", "-f", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["actor"], r["action"], r["address"]) for r in rows] == [
        ("carol", "block", "y@example.com")
    ]
    assert bounced(*url, "audit", "--until", "1h", "-f", "csv").stdout.count("\n") == 1


def test_settings_from_the_environment_are_attributed_to_it(store):
    listed = store("allow", "--list", "-f", "csv", BOUNCED_POLICY_ALLOW="boss@example.com")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["entry"], r["actor"]) for r in rows] == [
        ("boss@example.com", "environment: BOUNCED_POLICY_ALLOW")
    ]
    applied = store("--actor", "ops", "policy", "apply", BOUNCED_POLICY_MAX_RETURNS="1")
    assert applied.returncode == 0, applied.stderr
    rows = list(csv.DictReader(io.StringIO(store("audit", "-f", "csv").stdout)))
    assert rows and {r["action"] for r in rows} == {"policy_apply"}
    assert {r["actor"] for r in rows} == {"ops"}
    assert {r["detail"] for r in rows} == {
        "policy.max_returns=1 (environment: BOUNCED_POLICY_MAX_RETURNS)"
    }


# --- read-only check --------------------------------------------------------------------


def test_check_works_on_a_read_only_sqlite_file(store, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(store.db, folder / "bounced.db")
    (folder / "bounced.db").chmod(0o444)
    folder.chmod(0o555)
    argv = [str(BOUNCED), "--database-url", f"sqlite:///{folder / 'bounced.db'}", "check"]
    argv += ["a.moretti@example.net", "new@example.com", "-f", "csv"]
    if os.geteuid() == 0:
        # root writes whatever the mode: run the lookup without that power.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and no setpriv to drop CAP_DAC_OVERRIDE")
        argv = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *argv]
    try:
        probe = subprocess.run(
            [*argv[: argv.index(str(BOUNCED))], "sh", "-c", f"echo > {folder}/probe"],
            capture_output=True,
        )
        assert probe.returncode != 0, "the folder is writable after all: the test proves nothing"
        result = subprocess.run(
            argv, capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=WAIT
        )
        assert result.returncode == 1, result.stderr
        rows = csv.DictReader(io.StringIO(result.stdout))
        verdicts = [(r["address"], r["verdict"]) for r in rows]
        assert verdicts == [("a.moretti@example.net", "blocked"), ("new@example.com", "send")]
        assert sorted(os.listdir(folder)) == ["bounced.db"]
    finally:
        folder.chmod(0o755)


# --- help, version ----------------------------------------------------------------------


def test_version(bounced):
    result = bounced("--version")
    assert (result.returncode, result.stdout) == (0, f"bounced {version('bounced-engine')}\n")


def _commands():
    """Every command of the app with its path (typer builds the click tree)."""
    import typer.main

    from bounced.cli import app

    pending = [((), typer.main.get_command(app))]
    while pending:
        path, command = pending.pop()
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            pending.append(((*path, name), sub))


#: Text glued together without a space ("files,each", "file.Each"), or a double space
#: (a phrase left out, or markup eaten).
_GAP = re.compile(r"[a-z][,;][A-Za-z]|[a-z]{2}\.[A-Z]|\S  +\S")


def test_every_help_text_is_whole(bounced):
    seen = 0
    for path, command in _commands():
        texts = [(path, " ".join((command.help or "").split("\n")))]
        assert command.help, f"{path} has no help"
        for param in command.params:
            if param.name in ("help",):
                continue
            assert getattr(param, "help", None), f"{path} {param.name} is not described"
            texts.append(((*path, param.name), param.help))
        for where, text in texts:
            found = _GAP.search(" ".join(text.split("\n")).strip())
            assert found is None, f"{where}: {text!r}"
        seen += 1
        # What the user reads: the same words, not cut by markup.
        shown = bounced(*path, "--help")
        assert shown.returncode == 0, shown.stderr
        for _where, text in texts[1:]:
            assert " ".join(text.split()) in " ".join(shown.stdout.split()), (path, text)
    assert seen > 30


def test_status_help_lists_every_status(bounced):
    from bounced.sending.log import SentStatus
    from bounced.sending.plans import PlanStatus

    for args, values in ((("sent", "list"), SentStatus), (("retries", "list"), PlanStatus)):
        shown = " ".join(bounced(*args, "--help").stdout.split())
        for value in values:
            assert value.value in shown, (args, value)


# --- tables, empty results, progress ----------------------------------------------------


def _whole_words(table: str, data: str, headers: set[str]) -> None:
    """Every word of `table` is a word of `data`, a header, or one cut with an ellipsis
    (the rest of a word, or a path's tail): none is folded into pieces."""
    words = set(data.split()) | headers
    text = " ".join(words)
    for line in table.splitlines():
        assert len(line) <= 80, line
        for token in line.split():
            if set(token) <= set("─") or token in words:
                continue
            if token.endswith("…"):
                assert any(w.startswith(token[:-1]) for w in words), token
            elif token.startswith("…"):
                assert token[1:] in text, token
            elif _unspaced(token):  # Japanese, Chinese: no spaces, so any cut is whole
                assert token in text, token
            else:
                raise AssertionError(f"{token!r} is not a whole word in: {line!r}")


def _unspaced(token: str) -> bool:
    """Text of a script written without spaces between words (wide characters)."""
    return all(unicodedata.east_asian_width(c) in "WF" for c in token)


def _sample_expectations() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.expected.json"))]


def _sample_rows() -> int:
    """Rows `parse` prints for the samples, as their expectations say: one per
    recipient, one for a bounce that names none, none for a message that is no bounce."""
    return sum(len(e["rows"]) or (1 if e["kind"] else 0) for e in _sample_expectations())


def _words(ndjson: str) -> str:
    """The values of the rows, as a table shows them (a control character as `?`)."""
    values = " ".join(str(v) for line in ndjson.splitlines() for v in json.loads(line).values())
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "?", values)


def test_tables_at_80_columns_keep_words_whole(store):
    env = {"COLUMNS": "80"}
    parse_data = _words(store("parse", str(SAMPLES)).stdout)
    table = store("parse", "-f", "table", str(SAMPLES), **env)
    assert table.returncode == 0
    headers = {"file", "recipient", "kind", "class", "reason", "status", "diagnostic"}
    _whole_words(table.stdout, parse_data, headers)
    tails = re.findall(r"^…\S*\.eml ", table.stdout, re.MULTILINE)  # a path's tail, not its head
    assert len(tails) == _sample_rows(), table.stdout

    listed = store("list", "-f", "table", **env)
    headers = {"address", "state", "blocked_reason", "returns", "last_reason", "last_status"}
    _whole_words(listed.stdout, _words(store("list").stdout), headers)

    shown = store("show", "a.moretti@example.net", "-f", "table", **env).stdout
    rows = shown.split("\n", 3)[3]  # after the three summary lines
    detail = store("show", "a.moretti@example.net", "-f", "json").stdout
    words = " ".join(str(v) for t in json.loads(detail)["timeline"] for v in t.values())
    minute = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    assert re.search(minute, rows)
    headers = {"at", "what", "kind", "reason", "status", "detail", "source"}
    _whole_words(re.sub(minute, "", rows), words, headers)


def _on_terminal(argv: list[str], cwd: Path, *, stream: str, stdin=None) -> tuple[str, str]:
    """Run with `stream` (stdout or stderr) on a pseudo-terminal, the other one into a
    file; returns (what the terminal showed, what the file got)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as other:
        pipes = {"stdout": other, "stderr": other, stream: slave}
        proc = subprocess.Popen(argv, cwd=cwd, env=clean_env(), stdin=stdin, **pipes)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal's last end
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        proc.wait(WAIT)
        other.seek(0)
        return seen.decode("utf-8", "replace"), other.read().decode()


def test_an_empty_result_on_a_terminal_says_so(store):
    argv = [str(BOUNCED), "list", "--status", "former_employee"]
    _screen, err = _on_terminal(argv, store.cwd, stream="stdout")
    assert err == "bounced: no addresses match\n"
    piped = store("list", "--status", "former_employee")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "", "")


def test_progress_has_a_total_and_a_rate_for_files_a_spinner_for_stdin(bounced, tmp_path):
    argv = [str(BOUNCED), "parse", str(SAMPLES)]
    screen, out = _on_terminal(argv, tmp_path, stream="stderr")
    assert out.count("\n") == _sample_rows()
    total = sum(p.stat().st_size for p in SAMPLES.iterdir()) / 1e3
    assert re.search(rf"[\d.]+/{total:.1f} kB", screen), screen
    assert re.search(r"[\d.]+ [kM]?B/s", screen), screen
    assert f"{len(_sample_expectations())} files skipped (not mail)" in screen
    with (SAMPLES / "exim-multi-02.eml").open("rb") as stdin:
        screen, out = _on_terminal(
            [str(BOUNCED), "parse", "-"], tmp_path, stream="stderr", stdin=stdin
        )
    assert out.count("\n") == 3
    assert "messages read" in screen and "B/s" not in screen and " kB" not in screen


# --- samples are read, their expectations skipped ---------------------------------------


def test_parse_and_ingest_read_only_the_messages_of_the_samples(bounced):
    parsed = bounced("parse", "--all", "-f", "csv", str(SAMPLES))
    assert parsed.returncode == 0
    files = {r["file"] for r in csv.DictReader(io.StringIO(parsed.stdout))}
    assert files == {str(p) for p in SAMPLES.glob("*.eml")}
    messages, expectations = len(files), _sample_expectations()
    skipped = f"{len(expectations)} files skipped (not mail)"
    assert parsed.stderr == f"bounced: {skipped}\n"
    ingested = bounced("ingest", str(SAMPLES))
    assert ingested.returncode == 0
    assert ingested.stderr.startswith(f"bounced: {messages} messages, ")
    not_bounces = sum(1 for e in expectations if not e["kind"])
    assert ingested.stderr.endswith(f", {not_bounces} not bounces, 0 kept aside, {skipped}\n")


# --- smtp test --send-to ----------------------------------------------------------------


@pytest.fixture
def relay():
    """An aiosmtpd relay on loopback that keeps what it is sent, and refuses nobody@."""
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self) -> None:
            self.received: list[tuple[str, list[str], bytes]] = []

        async def handle_RCPT(self, server, session, envelope, address, options):
            if address.startswith("nobody@"):
                return "550 5.1.1 <nobody@example.com>: no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
            return "250 2.0.0 Ok: queued as 4F2A9"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def test_smtp_test_sends_a_message_and_shows_the_answer(bounced, relay):
    controller, handler = relay
    args = ("smtp", "test", "--port", str(controller.port), "--send-to", "me@example.com")
    result = bounced(*args, "--from", "ops@example.org")
    assert result.returncode == 0, result.stdout
    assert "ok   send: accepted: 250 2.0.0 Ok: queued as 4F2A9\n" in result.stdout
    ((sender, rcpts, content),) = handler.received
    assert (sender, rcpts) == ("ops@example.org", ["me@example.com"])
    assert b"Subject: bounced: relay test" in content
    refused_rcpt = bounced("smtp", "test", "--port", str(controller.port), "--send-to", "nobody@x")
    assert refused_rcpt.returncode == 1
    assert "FAIL send: RCPT TO refused: 550 5.1.1 <nobody@example.com>: no such user" in (
        refused_rcpt.stdout
    )
    assert "ready to take resends" not in refused_rcpt.stdout
    assert len(handler.received) == 1


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[retry]\njitter_percent = 150\n", {}, "retry.jitter_percent: must be at most 100"),
        ("", {"BOUNCED_RETRY_JITTER_PERCENT": "101"}, "must be at most 100, got 101"),
        ('[listener]\ndomains = "a.example, b.example"\n', {}, "listener.domains must be a list"),
        ('[policy]\nallow = "@example.com"\n', {}, 'policy.allow must be a list, e.g. ["@exa'),
    ],
)
def test_settings_out_of_bounds_or_lists_as_text_are_refused(bounced, toml, env, message):
    (bounced.cwd / "config.toml").write_text(toml)
    assert message in refused(bounced("list", **env))


def test_a_list_setting_from_the_environment_is_comma_separated(bounced):
    shown = bounced("allow", "--list", "-f", "csv", BOUNCED_POLICY_ALLOW="@a.example, b@c.example")
    entries = [r["entry"] for r in csv.DictReader(io.StringIO(shown.stdout))]
    assert entries == ["@a.example", "b@c.example"]
