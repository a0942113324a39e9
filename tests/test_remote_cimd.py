"""Client ID Metadata Documents: fetched with https only, public addresses only, size and time limits.

The fetch rules are checked against a real local HTTP server (loopback is allowed there only by the
test setting); one client then signs in end to end with its document URL as its client id.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from astravue_mcp.remote.cimd import MAX_BYTES, DocumentRefused, fetch_document
from tests.remote_support import MAYA, ManualClient, Person, client_redirect_uri, mcp_post
from tests.test_remote import Realm, realm  # noqa: F401 (the module's server, with the test setting on)

REDIRECT = client_redirect_uri()


class Documents(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        good = {"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT]}
        bodies = {
            "/good.json": good,
            "/big.json": good | {"client_name": "x" * MAX_BYTES},
            "/wrong-id.json": good | {"client_id": "https://elsewhere.example/c.json"},
            "/secret.json": good | {"token_endpoint_auth_method": "client_secret_post"},
            "/bad-redirect.json": good | {"redirect_uris": ["http://evil.example/cb"]},
        }
        if self.path == "/slow.json":
            time.sleep(1.5)
        if self.path == "/moved.json":
            self.send_response(302)
            self.send_header("Location", "/good.json")
            self.end_headers()
            return
        body = json.dumps(bodies.get(self.path, good)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def documents() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_a_good_document_describes_a_public_client(documents: str) -> None:
    client = await fetch_document(f"{documents}/good.json", allow_private=True)
    assert client.client_name == "Doc Client" and client.token_endpoint_auth_method == "none"
    assert [str(u) for u in client.redirect_uris or []] == [REDIRECT]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "allow_private", "why"),
    [
        ("{base}/good.json", False, "is not an https URL"),
        ("https://127.0.0.1:1/c.json", False, "private, loopback or reserved"),
        ("https://localhost:1/c.json", False, "private, loopback or reserved"),
        ("https://10.1.2.3/c.json", False, "private, loopback or reserved"),
        ("{base}/big.json", True, f"larger than {MAX_BYTES} bytes"),
        ("{base}/slow.json", True, "did not answer within"),
        ("{base}/moved.json", True, "answered HTTP 302"),
        ("{base}/wrong-id.json", True, "does not name itself"),
        ("{base}/secret.json", True, "must be public"),
        ("{base}/bad-redirect.json", True, "outside the policy"),
    ],
)
async def test_documents_outside_the_rules_are_refused(documents: str, url: str, allow_private: bool, why: str) -> None:
    with pytest.raises(DocumentRefused, match=why):
        await fetch_document(url.format(base=documents), allow_private=allow_private, timeout=0.5)


def test_a_client_signs_in_with_its_document_url_as_client_id(realm: Realm, documents: str) -> None:  # noqa: F811
    client = ManualClient(realm.server, REDIRECT, client_id=f"{documents}/good.json")
    person = Person(MAYA)
    query = client.query(challenge="y" * 43)
    consent = person.http.get(person.http.get(f"{realm.server.url}/authorize", params=query).headers["location"])
    assert "Doc Client" in consent.text
    tokens = client.sign_in(Person(MAYA))
    assert mcp_post(realm.server, tokens["access_token"]).status_code == 200
    # A document that breaks the rules is no client at all.
    refused = ManualClient(realm.server, REDIRECT, client_id=f"{documents}/wrong-id.json")
    verifier = secrets.token_urlsafe(48)
    answer = person.http.get(f"{realm.server.url}/authorize", params=refused.query(challenge=verifier))
    assert answer.status_code == 400 and "not found" in answer.text
