"""Each JSON log line leaves the process in one write (several workers share stdout)."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from shared_gov import logs
from shared_gov.logs import configure_logging


class _Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_a_log_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Recording()
    monkeypatch.setattr("sys.stdout", out)
    before = logs._stream
    configure_logging("info", force=True, stream="stdout")
    try:
        structlog.get_logger("t").info("request", path="/x", status=200)
        structlog.get_logger("t").info("request", path="/y", status=201)
    finally:
        configure_logging("info", force=True, stream=before)
    # print() wrote message and newline apart; glued lines came from that.
    assert len(out.calls) == 2
    for call in out.calls:
        assert call.endswith("\n")
        assert call.count("\n") == 1
        assert json.loads(call)["event"] == "request"
