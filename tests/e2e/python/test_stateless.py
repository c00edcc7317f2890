"""The MCP Python SDK in its default mode on the stateless revision 2026-07-28: the seven note tools
(the delete confirmed through an `input_required` result the SDK answers with its elicitation
callback, then retries), and a change made by another client heard through `subscriptions/listen`."""

import json

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated

from conftest import Server

pytestmark = pytest.mark.asyncio

MODERN = "2026-07-28"
TOOLS = ["list_notes", "read_note", "write_note", "delete_note", "search_notes", "get_backlinks", "get_tags"]


@pytest.fixture
def confirming_server(tmp_path):
    """A server that asks before a delete (CONFIRM_DELETES=true)."""
    s = Server(tmp_path, CONFIRM_DELETES="true")
    yield s
    s.stop()


def recording_http(token, wire):
    """An HTTP client for `token` that appends every POSTed JSON-RPC message (and its session header)."""

    async def record(request: httpx2.Request):
        if request.method == "POST" and request.content:
            body = json.loads(request.content)
            for message in body if isinstance(body, list) else [body]:
                wire.append((message.get("method"), message.get("params"), request.headers.get("mcp-session-id")))

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    http.event_hooks["request"].append(record)
    return http


async def call(client, tool, args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {result}"
    assert result.structured_content is not None
    return result.structured_content


async def test_default_mode_runs_the_seven_tools_and_confirms_a_delete_statelessly(confirming_server):
    server = confirming_server
    wire, asked = [], []

    async def confirm(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    http = recording_http(server.token("alice"), wire)
    async with http, Client(streamable_http_client(server.url, http_client=http), elicitation_callback=confirm) as client:
        assert client.protocol_version == MODERN
        names = [t.name for t in (await client.list_tools()).tools]
        assert all(name in names for name in TOOLS), names

        await call(client, "write_note", {"path": "topics/rust.md", "body": "# Rust\nOwnership and borrowing. #lang"})
        await call(client, "write_note", {"path": "journal/today.md", "body": "Learned about [[rust]] ownership."})
        await call(client, "write_note", {"path": "scratch.md", "body": "to be deleted"})
        listed = await call(client, "list_notes", {})
        assert sorted(n["path"] for n in listed["notes"]) == ["journal/today.md", "scratch.md", "topics/rust.md"]
        assert (await call(client, "read_note", {"path": "scratch.md"}))["body"] == "to be deleted"
        found = await call(client, "search_notes", {"query": "ownership"})
        assert sorted(h["path"] for h in found["results"]) == ["journal/today.md", "topics/rust.md"]
        back = await call(client, "get_backlinks", {"path": "topics/rust.md"})
        assert [b["path"] for b in back["backlinks"]] == ["journal/today.md"]
        assert (await call(client, "get_tags", {}))["tags"] == [{"tag": "lang", "count": 1}]

        deleted = await call(client, "delete_note", {"path": "scratch.md"})
        assert deleted["path"] == "scratch.md"
        assert len(asked) == 1 and "scratch.md" in asked[0], asked
        after = await call(client, "list_notes", {})
        assert "scratch.md" not in [n["path"] for n in after["notes"]]

    deletes = [p for m, p, _ in wire if m == "tools/call" and p["name"] == "delete_note"]
    assert len(deletes) == 2, "the delete was sent, answered input_required, and retried"
    assert "requestState" not in deletes[0]
    assert deletes[1]["requestState"] and deletes[1]["inputResponses"]["confirm_delete"]["action"] == "accept"
    assert wire[0][0] == "server/discover"
    assert all(m != "initialize" for m, _, _ in wire)
    assert all(sid is None for _, _, sid in wire)


async def test_default_mode_hears_another_clients_write_through_subscriptions_listen(server):
    token = server.token("carol")
    listener_wire = []
    listener_http = recording_http(token, listener_wire)
    writer_http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with listener_http, writer_http:
        async with (
            Client(streamable_http_client(server.url, http_client=listener_http)) as listener,
            Client(streamable_http_client(server.url, http_client=writer_http)) as writer,
        ):
            assert listener.protocol_version == MODERN and writer.protocol_version == MODERN
            await call(writer, "write_note", {"path": "watched.md", "body": "one"})
            async with listener.listen(
                resources_list_changed=True, resource_subscriptions=["note:///watched.md"]
            ) as sub:
                assert sub.honored.resource_subscriptions == ["note:///watched.md"]
                assert sub.honored.resources_list_changed is True
                assert any(m == "subscriptions/listen" for m, _, _ in listener_wire)

                await call(writer, "write_note", {"path": "watched.md", "body": "two"})
                seen = []
                with anyio.fail_after(10):
                    async for event in sub:
                        seen.append(event)
                        if ResourceUpdated(uri="note:///watched.md") in seen:
                            break
                assert ResourceUpdated(uri="note:///watched.md") in seen, seen

                # A new note changes the list, which the filter asked for as well.
                await call(writer, "write_note", {"path": "fresh.md", "body": "new"})
                with anyio.fail_after(10):
                    async for event in sub:
                        if event == ResourcesListChanged():
                            break
