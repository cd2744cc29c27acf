"""Settings layering: defaults < config.toml < BOUNCED_* env < command line."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounced.config import PolicySettings, Settings, load_settings, parse_duration
from bounced.dsn import Reason
from bounced.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


def leaf_keys(obj, prefix=()):
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from leaf_keys(value, (*prefix, f.name))
        else:
            yield (*prefix, f.name)


def test_shipped_config_states_the_defaults():
    assert load_settings(REPO_CONFIG, env={}) == Settings()


def test_shipped_config_documents_every_setting():
    text = REPO_CONFIG.read_text()
    for key in leaf_keys(Settings()):
        assert f"\n{key[-1]} = " in text, key
        if len(key) > 1:
            assert f"[{'.'.join(key[:-1])}]" in text


def test_layers_override_in_order(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('database_url = "sqlite:///file.db"\n[policy]\nmax_returns = 7\n')
    env = {"BOUNCED_POLICY_MAX_RETURNS": "3", "BOUNCED_POLICY_RETURNS_WINDOW_DAYS": "30"}
    settings = load_settings(cfg, env=env, overrides={"database_url": "sqlite:///cli.db"})
    assert settings.database_url == "sqlite:///cli.db"
    assert settings.policy.max_returns == 3
    assert settings.policy.returns_window_days == 30
    assert load_settings(cfg, env={}).policy.max_returns == 7
    assert load_settings(cfg, env={}).database_url == "sqlite:///file.db"


def test_config_found_by_env_then_working_directory(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text("[policy]\nmax_returns = 2\n")
    other = tmp_path / "other.toml"
    other.write_text("[policy]\nmax_returns = 9\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).policy.max_returns == 2
    assert load_settings(env={"BOUNCED_CONFIG": str(other)}).policy.max_returns == 9
    monkeypatch.chdir(tmp_path.parent)
    assert load_settings(env={}) == Settings()


def test_env_values_are_typed():
    env = {
        "BOUNCED_DATABASE_TIMEOUT": "1h30m",
        "BOUNCED_POLICY_ALLOW": "ceo@example.com, @example.org",
        "BOUNCED_POLICY_HARD_REASONS": "user_unknown,mailbox_full",
        "BOUNCED_POLICY_CASE_SENSITIVE_LOCAL_PART": "yes",
        "BOUNCED_TEST_DATABASE_URL": "ignored: not a setting",
    }
    settings = load_settings(env=env)
    assert settings.database_timeout == timedelta(hours=1, minutes=30)
    assert settings.policy.allow == ("ceo@example.com", "@example.org")
    assert settings.policy.hard_reasons == {Reason.USER_UNKNOWN, Reason.MAILBOX_FULL}
    assert settings.policy.case_sensitive_local_part is True


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[policy]\nmax_retrns = 3\n", {}, "unknown setting policy.max_retrns"),
        ('[policy]\nmax_returns = "many"\n', {}, "policy.max_returns"),
        ('[policy]\nhard_reasons = ["user_unkown"]\n', {}, "user_unkown"),
        ("policy = 3\n", {}, "must be a table"),
        ('database_timeout = "soon"\n', {}, "not a duration"),
        ("max_returns = [\n", {}, "c.toml"),
        ("", {"BOUNCED_POLICY_MAX_RETURNS": "-1"}, "BOUNCED_POLICY_MAX_RETURNS"),
        ("", {"BOUNCED_POLICY_CASE_SENSITIVE_LOCAL_PART": "maybe"}, "true or false"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, toml, env, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env=env)


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().database_url = "x"  # type: ignore[misc]
    assert PolicySettings().max_returns == 5


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(UNITS))), min_size=1))
def test_durations_sum_their_parts(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == timedelta(seconds=sum(n * UNITS[u] for n, u in parts))


@pytest.mark.parametrize("text", ["", "m", "5 minutes", "1.5h", "-3s", "3x"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
