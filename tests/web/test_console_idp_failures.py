"""Outside development the console asks the town's own provider for its
endpoints (OIDC discovery). A provider that is down, or answers with
something that is not a discovery document, gives a clear 503 — never a 500
(hostile review r2 L4).

The provider here is real (a local HTTP server, or a closed port); only the
look-up of which provider the town registered is replaced, since a
production service needs a PKCS#11 key provider these tests do not start.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from shared_gov import errors
from shared_gov.web import oidc


class _NotJson(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>maintenance</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def not_json() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotJson)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _request() -> Any:
    settings = SimpleNamespace(is_dev=False)
    services = SimpleNamespace(settings=settings, db=None)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(services=services)))


@pytest.mark.parametrize("provider", ["not_json", "closed"])
async def test_a_provider_that_fails_is_a_503_not_a_500(
    provider: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue("not_json") if provider == "not_json" else _closed_port()

    async def registered(_db: Any, _town: str) -> Any:
        return SimpleNamespace(url=url)

    monkeypatch.setattr(oidc, "get_issuer", registered)
    with pytest.raises(errors.DomainError) as caught:
        await oidc._endpoints(_request(), "172065")
    assert caught.value.status == 503
