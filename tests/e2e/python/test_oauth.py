"""The official MCP Python SDK connects to vault-mcp knowing only its URL, by OAuth: vault-mcp is
the authorization server of its own MCP endpoint. The SDK meets 401, discovers the server,
registers dynamically (RFC 7591), sends the person to /authorize (they sign in at the stand-in
OpenID provider and approve on the consent page), trades the code and calls tools. Access tokens
live 4 seconds here, so a call after a pause needs the SDK to refresh, without the person.

Needs the stand-in OpenID provider binary (see oauth_helpers.py); a missing one fails the test.
"""

import time
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from oauth_helpers import Person, SigninServer, StandInProvider, free_port

pytestmark = pytest.mark.asyncio

ACCESS_TOKEN_TTL_S = 4
NOTE_TOOLS = ["list_notes", "read_note", "write_note", "delete_note", "search_notes", "get_backlinks", "get_tags"]


@pytest.fixture(scope="module")
def signin_server(tmp_path_factory):
    provider = StandInProvider()
    try:
        server = SigninServer(
            tmp_path_factory.mktemp("oauth-data"), provider, OAUTH_ACCESS_TOKEN_TTL=f"{ACCESS_TOKEN_TTL_S}s"
        )
    except BaseException:
        provider.stop()
        raise
    yield server
    server.stop()
    provider.stop()


class MemoryStorage:
    """Token storage as an application keeps it, recording every save."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.saved_tokens: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved_tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def call(client, tool, args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {result}"
    assert result.structured_content is not None
    return result.structured_content


async def test_python_sdk_connects_by_oauth_and_refreshes_without_the_person(signin_server):
    server = signin_server
    person = Person(server)
    storage = MemoryStorage()
    # The application's loopback redirect; the person's "browser" stops at the redirect and hands
    # its parameters over, as a callback server would.
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    answers: list[dict[str, str]] = []

    async def redirect_handler(authorization_url: str) -> None:
        answers.append(await person.approve(authorization_url, redirect_uri))

    async def callback_handler() -> AuthorizationCodeResult:
        answer = answers.pop()
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    client_name = "vault-mcp e2e (Python SDK)"
    auth = OAuthClientProvider(
        server_url=server.url,
        client_metadata=OAuthClientMetadata(
            client_name=client_name,
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    # Every request the SDK's HTTP client sends, OAuth ones included.
    seen: list[dict] = []

    async def record(response):
        request = response.request
        entry = {
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "bearer": request.headers.get("authorization", "").removeprefix("Bearer "),
        }
        if request.url.path == "/token":
            entry["grant"] = parse_qs(request.content.decode()).get("grant_type", [None])[0]
        seen.append(entry)

    http = create_mcp_http_client(auth=auth)
    http.event_hooks["response"].append(record)
    try:
        with anyio.fail_after(120):
            async with http, Client(streamable_http_client(server.url, http_client=http)) as client:
                # The whole authorization happened while connecting.
                assert len(person.visits) == 1, "the person was asked once"
                authorization = urlsplit(person.visits[0])
                assert f"{authorization.scheme}://{authorization.netloc}{authorization.path}" == f"{server.base}/authorize"
                q = {k: v[0] for k, v in parse_qs(authorization.query).items()}
                assert q["code_challenge_method"] == "S256"
                assert q["redirect_uri"] == redirect_uri
                assert q["resource"] == server.url, "the resource indicator names the MCP endpoint"
                assert storage.client_info is not None and q["client_id"] == storage.client_info.client_id
                [consent] = person.consent_pages
                assert consent["client_name"] == client_name, "the consent page names the client"
                assert consent["redirect_host"] == "127.0.0.1"
                assert consent["scopes"] == 2, "the consent page lists reading and writing"
                paths = [(r["method"], r["path"], r["status"]) for r in seen]
                assert ("POST", "/mcp", 401) in paths, paths
                assert ("GET", "/.well-known/oauth-protected-resource/mcp", 200) in paths, paths
                assert ("POST", "/register", 201) in paths, paths
                assert [r["status"] for r in seen if r.get("grant") == "authorization_code"] == [200]
                first = storage.tokens
                assert first is not None and first.access_token and first.refresh_token
                assert first.expires_in == ACCESS_TOKEN_TTL_S

                tools = {t.name for t in (await client.list_tools()).tools}
                assert set(NOTE_TOOLS) <= tools
                body = "# Through OAuth\n\nWritten by the Python SDK after the person approved.\n"
                written = await call(client, "write_note", {"path": "oauth/python-sdk.md", "body": body})
                assert written["path"] == "oauth/python-sdk.md"
                assert (await call(client, "read_note", {"path": "oauth/python-sdk.md"}))["body"] == body

                # Past the access token's lifetime: the SDK refreshes on its own.
                mark = len(seen)
                before = storage.tokens
                deadline = time.monotonic() + ACCESS_TOKEN_TTL_S + 1.5
                await anyio.sleep(max(0.0, deadline - time.monotonic()))
                again = await call(client, "read_note", {"path": "oauth/python-sdk.md"})
                assert again["body"] == body, "the call after the pause succeeded"
                later = seen[mark:]
                refreshes = [r for r in later if r.get("grant") == "refresh_token"]
                assert [r["status"] for r in refreshes] == [200], later
                after = storage.tokens
                assert after.access_token != before.access_token, "a new access token"
                assert after.refresh_token != before.refresh_token, "the refresh token rotated"
                assert any(r["path"] == "/mcp" and r["bearer"] == after.access_token and r["status"] < 300 for r in later)
                assert len(person.visits) == 1, "the person was not asked again"

        # The person's account lists the application (the person's cookies are still signed in).
        listed = (await person.http.get(f"{server.base}/api/clients")).json()["clients"]
        mine = [c for c in listed if c["client_id"] == storage.client_info.client_id]
        assert len(mine) == 1 and mine[0]["name"] == client_name, listed
    finally:
        await person.aclose()
