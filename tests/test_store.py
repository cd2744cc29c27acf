"""The suppression store through its Python API, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from helpers.dsn import Rcpt, delayed, make_dsn, sender_side, soft
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import event

import bounced
from bounced.config import PolicySettings, Settings
from bounced.db.database import SCHEMA_REVISION, alembic_config
from bounced.db.partitions import compared
from bounced.db.suppression import Incoming
from bounced.db.tables import audit_table, metadata
from bounced.dsn import Bounce, BounceClass, Kind, Reason
from bounced.errors import BouncedError, DatabaseUnavailable, UnknownAddress, UnknownSelection
from bounced.formats import Format
from bounced.policy import Decision
from bounced.suppressions import Filters, Outcome, Suppressions

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def open_store(url, **policy) -> Suppressions:
    return Suppressions.open(
        Settings(database_url=url, policy=PolicySettings(**policy)), actor="tester"
    )


@pytest.fixture
def sup(database_url):
    with open_store(database_url) as s:
        yield s


def bounce_n(sup, address, n, rcpt=soft, start=0, **kw):
    """`n` returns of distinct original messages for one address."""
    for i in range(start, start + n):
        raw = make_dsn(rcpt(address), original_id=f"<m{i}@x.example>", message_id=f"<d{i}@x>")
        sup.ingest(raw, source=f"msg{i}", **kw)


def state_of(sup, address):
    return sup.show(address)["address"]


def test_hard_bounce_blocks_and_a_duplicate_changes_nothing(sup):
    raw = make_dsn("Kim@Example.COM")
    first = sup.ingest(raw, source="one.eml")
    assert first.outcome is Outcome.RECORDED
    assert first.new_blocks == ["kim@example.com"]
    check = sup.check("<kim@example.com>")
    assert (check.sendable, check.state, check.reason) == (False, "blocked", "hard")
    again = sup.ingest(raw, source="one.eml")
    assert again.outcome is Outcome.DUPLICATE
    assert state_of(sup, "kim@example.com")["returns"] == 1
    assert len(sup.show("kim@example.com")["events"]) == 1


def test_one_original_message_is_one_return(sup):
    for i in range(3):  # the same original message, reported by three different bounces
        sup.ingest(make_dsn(soft("a@example.com"), message_id=f"<d{i}@x>"))
    assert state_of(sup, "a@example.com")["returns"] == 1


def test_a_repeat_failure_of_a_counted_message_still_blocks_when_hard(sup):
    sup.ingest(make_dsn(soft("a@example.com"), message_id="<d1@x>"))
    sup.ingest(make_dsn("a@example.com", message_id="<d2@x>"))
    row = state_of(sup, "a@example.com")
    assert (row["returns"], row["state"], row["blocked_reason"]) == (1, "blocked", "hard")


def test_the_fifth_return_blocks(sup):
    bounce_n(sup, "b@example.com", 4)
    assert sup.check("b@example.com").sendable
    bounce_n(sup, "b@example.com", 1, start=4)
    row = state_of(sup, "b@example.com")
    assert (row["state"], row["blocked_reason"], row["returns"]) == ("blocked", "returns", 5)


def test_without_an_original_message_id_the_bounce_itself_is_the_key(sup):
    raw = make_dsn(soft("c@example.com"), original_id=None)
    sup.ingest(raw)
    sup.ingest(raw)
    assert state_of(sup, "c@example.com")["returns"] == 1
    sup.ingest(make_dsn(soft("c@example.com"), original_id=None, message_id="<other@x>"))
    assert state_of(sup, "c@example.com")["returns"] == 2


def test_sender_side_delays_and_non_bounces_never_count(sup):
    for i in range(8):
        raw = make_dsn(sender_side("d@gmail.com"), delayed("d@gmail.com"), original_id=f"<{i}@x>")
        sup.ingest(raw)
    assert state_of(sup, "d@gmail.com")["returns"] == 0
    assert sup.check("d@gmail.com").sendable
    person = b"From: someone@example.com\nSubject: thanks!\n\nSee you tomorrow.\n"
    assert sup.ingest(person).outcome is Outcome.NOT_BOUNCE
    (row,) = sup.deliverability()
    assert (row["domain"], row["reason"], row["messages"]) == ("gmail.com", "blocked", 8)
    since = datetime.now(UTC) + timedelta(days=1)
    assert sup.deliverability(since) == []


def test_invalid_recipients_are_reported_not_recorded(sup):
    result = sup.ingest(make_dsn("a..b@example.com", "ok@example.com"))
    assert [r.address for r in result.rows] == [None, "ok@example.com"]
    assert result.problems and "a..b@example.com" in result.problems[0]


def test_returns_window(database_url):
    with open_store(database_url, max_returns=3, returns_window_days=7) as sup:
        for day in (0, 10, 20, 30):
            bounce_n(sup, "w@example.com", 1, start=day, received_at=T0 + timedelta(days=day))
        assert sup.check("w@example.com").sendable
        for day in (31, 32):
            bounce_n(sup, "w@example.com", 1, start=day, received_at=T0 + timedelta(days=day))
        assert state_of(sup, "w@example.com")["blocked_reason"] == "returns"


def test_allow_list_spares_but_records(database_url):
    with open_store(database_url, allow=("@Friends.example",)) as sup:
        sup.ingest(make_dsn("ceo@friends.example", "boss@example.com"))
        assert sup.check("ceo@friends.example").sendable
        assert state_of(sup, "ceo@friends.example")["returns"] == 1
        assert sup.allow(["Boss@Example.com"]) == ["boss@example.com"]
        assert sup.check("boss@example.com").sendable
        assert sup.allow(["boss@example.com"], remove=True) == ["boss@example.com"]
        assert not sup.check("boss@example.com").sendable
        entries = [e["entry"] for e in sup.allow_list()]
        assert entries == ["@friends.example"]


def test_unmark_resets_and_keeps_history(sup):
    bounce_n(sup, "u@example.com", 5)
    result = sup.unmark(["u@example.com", "never@example.com"])
    assert (result.done, result.unknown) == (["u@example.com"], ["never@example.com"])
    row = state_of(sup, "u@example.com")
    assert (row["state"], row["returns"]) == ("active", 0)
    shown = sup.show("u@example.com")
    assert len(shown["events"]) == 5
    assert [(a["action"], a["actor"]) for a in shown["audit"]] == [("unmark", "tester")]
    bounce_n(sup, "u@example.com", 4, start=10)
    assert sup.check("u@example.com").sendable


def test_block_former_employee_and_undo(sup):
    sup.block(["new@example.com"], note="asked us to stop")
    assert state_of(sup, "new@example.com")["blocked_reason"] == "manual"
    assert sup.show("new@example.com")["audit"][0]["detail"] == "asked us to stop"
    sup.ingest(make_dsn("left@example.com"))
    sup.former_employee(["left@example.com"])
    assert sup.check("left@example.com").state == "former_employee"
    sup.former_employee(["left@example.com"], undo=True)
    assert state_of(sup, "left@example.com")["blocked_reason"] == "hard"
    assert sup.former_employee(["nobody@example.com"], undo=True).unknown == ["nobody@example.com"]


def test_delete_erases_history(sup):
    sup.ingest(make_dsn("gone@example.com"))
    sup.selection_add("newsletter", ["gone@example.com"])
    result = sup.delete(["gone@example.com", "never@example.com"])
    assert (result.done, result.unknown) == (["gone@example.com"], ["never@example.com"])
    with pytest.raises(UnknownAddress):
        sup.show("gone@example.com")
    assert sup.check("gone@example.com").state == ""
    assert sup.selections()[0]["members"] == 0


def test_selections(sup):
    sup.ingest(make_dsn("a@example.com", soft("b@example.com")))
    assert sup.selection_add("vip", ["a@example.com", "c@example.com", "a@example.com"]) == 2
    assert sup.selection_add_where("problems", Filters(status=("blocked",))) == 1
    assert sup.selection_add_where("problems", Filters(status=("blocked",))) == 0
    listed = {r["name"]: r["members"] for r in sup.selections()}
    assert listed == {"problems": 1, "vip": 2}
    rows = list(sup.list(Filters(selection="vip")))
    assert [(r["address"], r["selections"]) for r in rows] == [
        ("a@example.com", sorted_names(rows[0])),
        ("c@example.com", "vip"),
    ]
    assert sup.selection_remove("vip", ["c@example.com"]) == 1
    with pytest.raises(UnknownSelection):
        list(sup.list(Filters(selection="nope")))


def sorted_names(row):
    assert sorted(row["selections"].split(",")) == ["problems", "vip"]
    return row["selections"]


def test_list_filters(sup):
    sup.ingest(make_dsn("hard@bücher.example", original_id="<1@x>"))
    bounce_n(sup, "soft@example.com", 2)
    sup.block(["manual@example.com"])

    def addresses(**kw):
        return [r["address"] for r in sup.list(Filters(**kw))]

    assert addresses() == ["hard@xn--bcher-kva.example", "manual@example.com", "soft@example.com"]
    assert addresses(status=("blocked",)) == ["hard@xn--bcher-kva.example", "manual@example.com"]
    assert addresses(reason=("hard",)) == ["hard@xn--bcher-kva.example"]
    assert addresses(reason=("mailbox_full",)) == ["soft@example.com"]
    assert addresses(bounce_class=("soft",)) == ["soft@example.com"]
    assert addresses(domain=("Bücher.example",)) == ["hard@xn--bcher-kva.example"]
    assert addresses(min_returns=2) == ["soft@example.com"]
    now = datetime.now(UTC)
    assert len(addresses(since=now - timedelta(hours=1))) == 3
    assert addresses(until=now - timedelta(hours=1)) == []


def test_a_page_is_read_at_once_and_only_a_whole_list_streams(sup):
    """A page of `list` reads its rows in one statement; a whole list (an export)
    streams them, on PostgreSQL through a server-side cursor, which costs a page
    three round trips (DECLARE, FETCH, CLOSE)."""
    sup.block(["a@example.com", "b@example.com", "c@example.com"])
    streamed = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "FROM address" in statement:
            streamed.append(bool(context.execution_options.get("stream_results")))

    event.listen(sup.store.engine, "before_cursor_execute", seen)
    try:
        assert [r["address"] for r in sup.list(limit=2)] == ["a@example.com", "b@example.com"]
        assert len(list(sup.list())) == 3
    finally:
        event.remove(sup.store.engine, "before_cursor_execute", seen)
    assert streamed == [False, True]


def test_export_streams_every_format(sup):
    bounce_n(sup, "x@example.com", 1)
    sup.ingest(make_dsn("y@example.com"))
    out = io.StringIO()
    assert sup.export(out, Filters(status=("blocked",)), Format.NDJSON) == 1
    row = json.loads(out.getvalue())
    assert (row["address"], row["blocked_reason"], row["returns"]) == ("y@example.com", "hard", 1)
    csv_out = io.StringIO()
    assert sup.export(csv_out) == 2
    assert csv_out.getvalue().splitlines()[0].startswith("address,state,blocked_reason,returns")


def test_stats(sup):
    sup.ingest(make_dsn("a@example.com", "b@example.org", soft("c@example.org")))
    stats = sup.stats()
    assert dict(stats["state"]) == {"active": 1, "blocked": 2}
    assert stats["reason"] == [("hard", 2)]
    assert dict(stats["domain"]) == {"example.com": 1, "example.org": 1}
    assert sum(n for _, n in stats["returns_per_day"]) == 3


def test_check_many_keeps_order_and_reports_invalid(sup):
    sup.ingest(make_dsn("blocked@example.com"))
    given = ["ok@example.com", "nonsense", "MAILTO:Blocked@Example.com", "ok@example.com"]
    verdicts = list(sup.check_many(iter(given), batch=2))
    assert [v.address for v in verdicts] == given
    assert [v.verdict for v in verdicts] == ["send", "invalid", "blocked", "send"]


def test_policy_apply_is_explicit(database_url):
    with open_store(database_url) as sup:
        bounce_n(sup, "p@example.com", 2)
        sup.ingest(make_dsn(sender_side("q@example.com")))
        sup.unmark(["p@example.com"])
        bounce_n(sup, "p@example.com", 2, start=5)
        assert sup.apply_policy(dry_run=True) == []
    with open_store(database_url, max_returns=2, sender_reasons=frozenset()) as sup:
        changes = sup.apply_policy(dry_run=True)
        assert sorted(c.address for c in changes) == ["p@example.com", "q@example.com"]
        assert sup.check("p@example.com").sendable  # a dry run writes nothing
        assert state_of(sup, "q@example.com")["returns"] == 0
        p, _q = sorted(sup.apply_policy(dry_run=False), key=lambda c: c.address)
        assert (p.before.returns, p.after.state, p.after.returns) == (2, "blocked", 2)
        assert not sup.check("p@example.com").sendable
        assert state_of(sup, "q@example.com")["returns"] == 1
        assert sup.apply_policy(dry_run=True) == []


def test_schema_matches_the_models_and_upgrade_is_idempotent(sup):
    # Every module of the package, so that every table model is in the metadata
    # (the command line first: its modules register on its app as they load).
    importlib.import_module("bounced.cli")
    for module in pkgutil.walk_packages(bounced.__path__, "bounced."):
        if ".migrations" not in module.name and module.name != "bounced.__main__":
            importlib.import_module(module.name)
    with sup.store.engine.connect() as conn:
        # What PostgreSQL keeps apart from the models (the partitions, the key table)
        # is left out, as the migrations' autogenerate leaves it out.
        opts = {"include_object": compared(conn.dialect.name)}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert sup.upgrade() == sup.upgrade() == head == SCHEMA_REVISION


def test_events_survive_the_notice_migration_down_and_up(sup):
    from alembic import command

    sup.ingest(make_dsn(soft("a@example.com"), message_id="<d1@x>"))
    with sup.store.engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert sup.upgrade() == SCHEMA_REVISION
    (event,) = sup.show("a@example.com")["events"]
    assert (event["notice"], event["status"], event["counts"]) == ("", "4.2.2", True)
    again = sup.ingest(make_dsn(soft("a@example.com"), message_id="<d2@x>"))
    assert again.outcome is Outcome.RECORDED  # a new notice: recorded, and
    assert state_of(sup, "a@example.com")["returns"] == 1  # the same message: counted once


def test_an_outdated_schema_is_refused(database_url):
    with open_store(database_url) as sup, sup.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'old'")
    with pytest.raises(BouncedError, match="bounced db upgrade"):
        open_store(database_url)


@pytest.mark.parametrize(
    "url",
    [
        "nonsense",
        "mysql+nodriver://x/y",
        "postgresql://nobody@127.0.0.1:1/none",
        "sqlite:////nonexistent/dir/x.db",
    ],
)
def test_unusable_databases_say_so_in_one_line(url):
    with pytest.raises(DatabaseUnavailable) as info:
        open_store(url)
    assert "\n" not in str(info.value)


# --- the store against a model: random bounces, duplicates and unmarks ------------------

RCPTS = {
    "hard": lambda a: Rcpt(a),
    "soft": soft,
    "sender": sender_side,
    "delay": delayed,
}


class StoreMachine(RuleBasedStateMachine):
    """Real DSNs through parse, policy and the database (which refuses duplicates) for
    one address per run, against the rules written as plainly as possible."""

    url = ""

    def __init__(self):
        super().__init__()
        self.sup = open_store(self.url, max_returns=3)
        self.address = f"m{id(self)}-{datetime.now(UTC).timestamp()}@example.com"
        self.notices = set()
        self.ever = set()
        self.returns = set()
        self.hard = False

    def teardown(self):
        self.sup.close()

    @rule(message=st.integers(0, 5), bounce=st.integers(0, 2), kind=st.sampled_from(list(RCPTS)))
    def ingest(self, message, bounce, kind):
        raw = make_dsn(
            RCPTS[kind](self.address),
            original_id=f"<o{message}@x>",
            message_id=f"<b{message}.{bounce}.{kind}@x>",
        )
        self.sup.ingest(raw)
        # The same notice again is a duplicate; another notice about the same original
        # message is news (it may block again after an unmark) but no second return.
        if (message, bounce, kind) in self.notices:
            return
        self.notices.add((message, bounce, kind))
        if kind in ("hard", "soft"):
            if message not in self.ever:
                self.returns.add(message)
            self.ever.add(message)
            self.hard |= kind == "hard"

    @rule()
    def unmark(self):
        self.sup.unmark([self.address])
        self.returns, self.hard = set(), False

    @invariant()
    def agrees(self):
        verdict = self.sup.check(self.address)
        expected = "hard" if self.hard else "returns" if len(self.returns) >= 3 else ""
        assert verdict.reason == expected
        if verdict.state:
            assert state_of(self.sup, self.address)["returns"] == len(self.returns)


def test_store_agrees_with_the_model(database_url):
    machine = type("Machine", (StoreMachine,), {"url": database_url})
    run = settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase.settings = run
    machine.TestCase().runTest()


# --- a batch is recorded as its rows one by one ------------------------------------------

BATCH_BOUNCES = [
    Bounce("", Kind.FAILED, BounceClass.HARD, Reason.USER_UNKNOWN, "5.1.1"),
    Bounce("", Kind.FAILED, BounceClass.SOFT, Reason.MAILBOX_FULL, "4.2.2"),
    Bounce("", Kind.FAILED, BounceClass.SOFT, Reason.MAILBOX_FULL, "5.2.2"),
    Bounce("", Kind.DELAYED, BounceClass.SOFT, Reason.EXPIRED, "4.4.7"),
    Bounce("", Kind.COMPLAINT),
]
BATCH_ROW = st.tuples(
    st.integers(0, 1),  # address
    st.integers(0, 2),  # original message
    st.integers(0, len(BATCH_BOUNCES) - 1),
    st.integers(0, 1),  # notice
    st.integers(-3, 3),  # days from the unmark (returns before it leave the window)
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(before=st.lists(BATCH_ROW, max_size=4), batch=st.lists(BATCH_ROW, max_size=12))
def test_a_batch_records_what_its_rows_record_one_by_one(database_url, before, batch):
    """Same notice twice, several notices of one original message, returns before and
    after an unmark, in one batch: each row's result and the final state are those of
    recording the rows one at a time, with and without a returns window."""
    run = datetime.now(UTC).timestamp()
    for window in (0, 7):
        with open_store(database_url, max_returns=2, returns_window_days=window) as sup:
            now = sup.store.clock()

            def incoming(rows, who, now=now, window=window):
                return [
                    Incoming(
                        f"{who}{a}-{window}-{run}@example.com",
                        f"<o{m}@x>",
                        BATCH_BOUNCES[b],
                        "test",
                        now + timedelta(days=d, seconds=m),
                        f"<n{n}@x>",
                    )
                    for a, m, b, n, d in rows
                ]

            results = {}
            for who in ("batch", "single"):
                sup.store.record(incoming(before, who))
                sup.unmark({i.address for i in incoming(before, who)})
                rows = incoming(batch, who)
                if who == "batch":
                    recorded = sup.store.record(rows)
                else:
                    recorded = [r for row in rows for r in sup.store.record([row])]
                shown = [sup.show(i.address) for i in rows]
                results[who] = (
                    [r.decision and _stored(r.decision) for r in recorded],
                    [(s["address"]["returns"], s["address"]["state"]) for s in shown],
                    [[(e["notice"], e["counts"]) for e in s["events"]] for s in shown],
                )
            assert results["batch"] == results["single"]


def _stored(decision: Decision) -> Decision:
    """`decision` without `recent_returns`, which the store reads from its events rather
    than keeping (without a window, only the rows of one batch carry them on)."""
    return replace(decision, state=replace(decision.state, recent_returns=()))


def test_the_package_exports_suppressions_without_loading_the_store_for_parsing():
    code = (
        "import sys, bounced\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "assert all(getattr(bounced, name) for name in bounced.__all__)\n"
        "import bounced.suppressions as s\n"
        "assert bounced.Suppressions is s.Suppressions\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: Times of one instant in three zones, and others: the bulk writes convert a value
#: object once per batch however many rows share it (bounced.db.database).
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))])
_TIMES = st.builds(
    lambda seconds, zone: (
        datetime(2026, 1, 1, tzinfo=UTC).astimezone(zone) + timedelta(seconds=seconds)
    ),
    st.integers(0, 3),
    _ZONES,
)
#: Examples against the `sup` fixture's store, which every example shares.
_ON_A_STORE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@given(
    shared=st.lists(_TIMES, min_size=1, max_size=3),
    picks=st.lists(st.tuples(st.integers(0, 2), _TIMES, st.booleans()), min_size=1, max_size=30),
)
@_ON_A_STORE
def test_bulk_writes_store_every_time_as_its_own_instant(sup, shared, picks):
    # Rows share some time objects (the batch's) and hold others of their own, equal
    # instants in other zones among them: each is stored as the instant it is.
    database = sup.store.database
    batch = uuid.uuid4().hex
    written = [
        {
            "at": shared[k % len(shared)] if reuse else own,
            "actor": "test",
            "action": "bulk",
            "address": f"{batch}-{n:02}",
            "detail": "",
        }
        for n, (k, own, reuse) in enumerate(picks)
    ]
    with database.engine.begin() as conn:
        database.insert_many(conn, audit_table, written)
    with database.engine.connect() as conn:
        read = database.rows_in(conn, audit_table, "address", [r["address"] for r in written])
    assert [(r.address, r.at) for r in read] == [(w["address"], w["at"]) for w in written]
    assert all(r.at.utcoffset() == timedelta(0) for r in read)


_WORDS = st.sampled_from(["a", "b", "c"])


@given(
    stored=st.lists(st.tuples(_WORDS, _WORDS, _TIMES), max_size=12),
    pairs=st.lists(st.tuples(_WORDS, _WORDS), max_size=8),
)
@_ON_A_STORE
def test_rows_are_found_by_pairs_of_columns_as_a_filter_would(sup, stored, pairs):
    # The ingest path reads stored keys by (address, message) pairs, joined as a table of
    # values: the rows are those whose two columns hold one of the pairs, each once.
    database = sup.store.database
    batch = uuid.uuid4().hex
    written = [
        {"at": at, "actor": "test", "action": action, "address": batch + address, "detail": ""}
        for address, action, at in stored
    ]
    if written:
        with database.engine.begin() as conn:
            database.insert_many(conn, audit_table, written)
    wanted = [(batch + address, action) for address, action in pairs]
    with database.engine.connect() as conn:
        found = database.pairs_in(
            conn, audit_table, ("address", "action"), wanted, ("address", "action", "at")
        )
    expected = [(w["address"], w["action"], w["at"]) for w in written]
    assert sorted(tuple(r) for r in found) == sorted(e for e in expected if e[:2] in wanted)
    assert all(r[2].utcoffset() == timedelta(0) for r in found)


def test_postgres_prepares_the_single_check_and_never_the_bulk_one(postgres_url):
    # A generic plan made while the table is young is a sequential scan: the bulk check's
    # `= ANY($1)` of a thousand addresses then compares each row with all of them. One
    # address is prepared (planning is most of its cost), a chunk never.
    with open_store(postgres_url) as sup:
        engine = sup.store.database.engine

        def prepared() -> list[str]:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
                return [s for (s,) in rows if "= ANY" in s]

        chunk = [f"user{i}@example.com" for i in range(2500)]  # three chunks a check
        for _ in range(4):
            assert len(list(sup.check_many(chunk))) == len(chunk)
        assert prepared() == []
        for _ in range(6):
            sup.check("user1@example.com")
        assert len(prepared()) == 1
