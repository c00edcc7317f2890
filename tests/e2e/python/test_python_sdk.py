"""vault-mcp driven by the official MCP Python SDK over Streamable HTTP with a bearer token."""

import json

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.asyncio


def connect(server, token, **kwargs):
    """A Client for `token` (default mode: server/discover, then the 2026-07-28 revision)."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(server.url, http_client=http), **kwargs)


async def call(client, tool, args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {result}"
    assert result.structured_content is not None
    # The text content carries the same JSON, for clients that only read text.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def test_full_session_write_read_search_backlinks_and_end(server):
    http, client = connect(server, server.token("alice"))
    async with http, client:
        assert client.protocol_version == "2026-07-28", "spoke the current revision, without a session"
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ["list_notes", "read_note", "write_note", "delete_note", "search_notes", "get_backlinks", "get_tags"]:
            assert name in tools
            assert tools[name].output_schema["type"] == "object"
        await call(client, "write_note", {"path": "topics/rust.md", "body": "# Rust\nOwnership and borrowing. #lang"})
        written = await call(
            client, "write_note", {"path": "journal/today.md", "body": "Learned about [[rust]] ownership today."}
        )
        assert written["version"] == 1
        note = await call(client, "read_note", {"path": "journal/today.md"})
        assert note["body"] == "Learned about [[rust]] ownership today."
        found = await call(client, "search_notes", {"query": "ownership"})
        assert sorted(h["path"] for h in found["results"]) == ["journal/today.md", "topics/rust.md"]
        assert all("<mark>" in h["snippet"] for h in found["results"])
        back = await call(client, "get_backlinks", {"path": "topics/rust.md"})
        assert [b["path"] for b in back["backlinks"]] == ["journal/today.md"]
        tags = await call(client, "get_tags", {})
        assert tags["tags"] == [{"tag": "lang", "count": 1}]
        failed = await client.call_tool("read_note", {"path": "../escape.md"})
        assert failed.is_error and failed.structured_content["code"] == "invalid_path"


async def test_session_is_ended_with_delete(server):
    token = server.token("bob")
    seen = {}

    async def record(request: httpx2.Request):
        if request.method == "DELETE":
            seen["deleted"] = request.headers.get("mcp-session-id")

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    http.event_hooks["request"].append(record)
    async with http:
        # Sessions exist only in the session-based revisions.
        async with Client(streamable_http_client(server.url, http_client=http), mode="legacy") as client:
            await call(client, "write_note", {"path": "a.md", "body": "x"})
        sid = seen.get("deleted")
        assert sid, "the SDK ended its session with DELETE"
        resp = await http.post(
            server.url,
            headers={"mcp-session-id": sid, "accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        assert resp.status_code == 404


async def test_users_are_isolated_through_the_sdk(server):
    for user in ["u1", "u2", "u3"]:
        http, client = connect(server, server.token(user))
        async with http, client:
            await call(client, "write_note", {"path": "mine.md", "body": f"private words of {user}"})
    for user in ["u1", "u2", "u3"]:
        http, client = connect(server, server.token(user))
        async with http, client:
            found = await call(client, "search_notes", {"query": "private"})
            assert [h["path"] for h in found["results"]] == ["mine.md"]
            note = await call(client, "read_note", {"path": "mine.md"})
            assert note["body"] == f"private words of {user}"


async def test_read_only_token_cannot_write(server):
    http, client = connect(server, server.token("carol", "notes:read"))
    async with http, client:
        result = await client.call_tool("write_note", {"path": "x.md", "body": "y"})
        assert result.is_error and result.structured_content["code"] == "insufficient_scope"


async def test_default_mode_speaks_2026_07_28_without_initialize_or_a_session(server):
    methods = []
    session_ids = []

    async def record(request: httpx2.Request):
        if request.method == "POST":
            body = json.loads(request.content or b"{}")
            if isinstance(body, dict) and "method" in body:
                methods.append(body["method"])
            session_ids.append(request.headers.get("mcp-session-id"))

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {server.token('erin')}"})
    http.event_hooks["request"].append(record)
    async with http:
        async with Client(streamable_http_client(server.url, http_client=http)) as client:
            assert client.protocol_version == "2026-07-28"
            await call(client, "write_note", {"path": "n.md", "body": "stateless"})
            assert (await call(client, "read_note", {"path": "n.md"}))["body"] == "stateless"
    assert methods[0] == "server/discover", methods
    assert "initialize" not in methods, methods
    assert session_ids and all(sid is None for sid in session_ids), session_ids


async def test_legacy_mode_handshake_works_too(server):
    http, client = connect(server, server.token("dave"), mode="legacy")
    async with http, client:
        assert client.protocol_version in ("2025-03-26", "2025-06-18", "2025-11-25")
        await client.send_ping()
