"""The token redaction of `hub` (resolve_token, redact, the log filter, redacting_logs), written
against its mutation survivors (issue 17). Real `logging` loggers and handlers, no Hub needed."""

from __future__ import annotations

import logging

import pytest
from huggingface_hub import constants

from avsynth.hub import redact, redacting_logs, resolve_token

TOKEN = "hf_sEcReTtOkEn123"


class Keep(logging.Handler):
    """Keeps the records it is given (after the filters of the handler and its logger ran)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture()
def keep():
    handler = Keep()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


def test_redact_replaces_every_occurrence_and_nothing_else():
    assert redact(f"{TOKEN}{TOKEN} x", TOKEN) == "[REDACTED][REDACTED] x"
    assert redact("no secret here", TOKEN) == "no secret here"
    assert redact(f"keep {TOKEN}", "") == f"keep {TOKEN}"
    assert redact(404, TOKEN) == "404"  # any object is turned into its text


def test_logs_of_hub_avsynth_other_and_root_loggers_are_redacted_while_active(keep):
    child = logging.getLogger("huggingface_hub.utils._http")  # exists before the context opens
    mine = logging.getLogger("avsynth.hub")
    other = logging.getLogger("urllib3.connectionpool")  # reaches the root handlers only
    child.propagate = mine.propagate = True
    with redacting_logs(TOKEN):
        child.warning("GET with token %s failed", TOKEN)
        mine.error(f"token={TOKEN}")
        other.warning("header Authorization: Bearer %s", TOKEN)
        logging.getLogger().info("root %s", TOKEN)
        logging.getLogger("huggingface_hub").warning("plain %d", 3)
    messages = [r.getMessage() for r in keep.records]
    assert messages == ["GET with token [REDACTED] failed", "token=[REDACTED]",
                        "header Authorization: Bearer [REDACTED]", "root [REDACTED]", "plain 3"]
    assert keep.records[0].args is None  # the message was rewritten whole
    assert keep.records[-1].args == (3,) and keep.records[-1].msg == "plain %d"  # untouched
    # afterwards every filter is gone again
    n = len(keep.records)
    child.warning("after %s", TOKEN)
    assert keep.records[n].getMessage() == f"after {TOKEN}"
    for logger in (child, mine, other, logging.getLogger(), logging.getLogger("huggingface_hub")):
        assert logger.filters == []
    assert all(h.filters == [] for h in logging.getLogger().handlers)


def test_records_reaching_a_hub_logger_directly_are_redacted_even_without_propagation():
    child = logging.getLogger("huggingface_hub.file_download")
    handler = Keep()
    child.addHandler(handler)
    child.propagate = False
    try:
        with redacting_logs(TOKEN):
            child.warning("x %s", TOKEN)
        assert [r.getMessage() for r in handler.records] == ["x [REDACTED]"]
    finally:
        child.removeHandler(handler)
        child.propagate = True


def test_no_token_adds_no_filter_and_a_broken_record_is_passed_on(keep):
    with redacting_logs(None):
        assert logging.getLogger().filters == [] and all(h.filters == [] for h in logging.getLogger().handlers)
        logging.getLogger("avsynth").warning("t %s", TOKEN)
    assert keep.records[-1].getMessage() == f"t {TOKEN}"
    with redacting_logs(TOKEN):
        record = logging.LogRecord("avsynth", logging.WARNING, __file__, 1, "%d apples", ("many",), None)
        root = logging.getLogger()
        assert root.filter(record)  # getMessage() fails: the record is kept as it is
        assert (record.msg, record.args) == ("%d apples", ("many",))


def test_token_resolution_skips_empty_values(tmp_path, monkeypatch):
    cached = tmp_path / "token"
    cached.write_text("hf_cached")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cached))
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN", "")
    assert resolve_token("") == "hf_cached"  # empty explicit and empty environment: the cached login
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert resolve_token(None) == "hf_env" and resolve_token("") == "hf_env"
    monkeypatch.delenv("HF_TOKEN")
    cached.unlink()
    assert resolve_token() is None
