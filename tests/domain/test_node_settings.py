"""The settings checks the IVR node and the backend share (domain.node_settings): one rule, one
message, on both sides."""

from __future__ import annotations

import base64

import pytest

from domain.node_settings import (
    check_prefix,
    check_prefixes,
    check_spool_key,
    node_problem,
    offline_prefixes,
    split_prefixes,
)


@pytest.mark.parametrize("prefix", ["10", "21", "99"])
def test_good_prefixes(prefix):
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "05", "5", "123", "2a", " 21", "۲۱", 21])
def test_bad_prefixes(prefix):
    with pytest.raises(ValueError, match="two digits, not starting with 0"):
        check_prefix(prefix)


def test_prefix_lists():
    assert split_prefixes(" 21, 22 ,") == ["21", "22"]
    assert split_prefixes('["21", "23"]') == ["21", "23"]
    assert split_prefixes(["21"]) == ["21"]
    assert check_prefixes(["21", "22"]) == ["21", "22"]
    with pytest.raises(ValueError, match="'0x'"):
        check_prefixes(["21", "0x"])
    assert offline_prefixes(["10", "21"], "10") == frozenset({"21"})


def test_spool_key():
    raw = bytes(range(32))
    assert check_spool_key(base64.urlsafe_b64encode(raw).decode()) == raw
    with pytest.raises(ValueError, match="DIDEHBAN_SPOOL_KEY is not set"):
        check_spool_key("")
    for bad in ("abc", base64.urlsafe_b64encode(raw[:31]).decode(), "é" * 44):
        with pytest.raises(ValueError, match="is not a Fernet key"):
            check_spool_key(bad)


def test_what_a_node_needs():
    assert "DIDEHBAN_NODE_PREFIX is not set" in node_problem("", "key")
    assert "DIDEHBAN_SPOOL_KEY is not set" in node_problem("21", "")
    assert node_problem("21", "key") is None
