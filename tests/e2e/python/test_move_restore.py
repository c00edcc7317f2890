"""move_note, note_history and restore_note driven by the official MCP Python SDK over Streamable HTTP."""

import json

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.asyncio

IDEA = "Ship the first version.\n\n## Goal\n\nOne user, one vault.\n"
JOURNAL = "Today: see [[drafts/idea#Goal|the goal]] and ![[idea]].\n"
MOVED_JOURNAL = "Today: see [[projects/launch#Goal|the goal]] and ![[launch]].\n"


def connect(server, token):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(server.url, http_client=http))


async def call(client, tool, args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {result}"
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def test_move_rewrites_links_and_restore_undoes_it(server):
    http, client = connect(server, server.token("mira"))
    async with http, client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ["move_note", "note_history", "restore_note"]:
            assert tools[name].output_schema["type"] == "object", f"{name} has no object outputSchema"
        assert tools["note_history"].annotations.read_only_hint is True
        assert tools["move_note"].annotations.read_only_hint is False

        await call(client, "write_note", {"path": "drafts/idea.md", "body": IDEA})
        await call(client, "write_note", {"path": "journal/today.md", "body": JOURNAL})

        move = {"from": "drafts/idea.md", "to": "projects/launch.md"}
        dry = await call(client, "move_note", {**move, "dry_run": True})
        assert dry["dry_run"] is True and "operation_id" not in dry
        assert dry["notes"] == [{"from": "drafts/idea.md", "to": "projects/launch.md"}]
        assert dry["rewritten"] == [{"path": "journal/today.md", "links": 2}]
        assert (await call(client, "read_note", {"path": "journal/today.md"}))["body"] == JOURNAL

        stale = await client.call_tool("move_note", {**move, "if_version": 7})
        assert stale.is_error and stale.structured_content["code"] == "conflict"

        moved = await call(client, "move_note", {**move, "if_version": 1})
        assert moved["dry_run"] is False and moved["folder"] is False
        assert moved["notes"] == [{"from": "drafts/idea.md", "to": "projects/launch.md"}]
        assert moved["rewritten"] == [{"path": "journal/today.md", "links": 2}]
        operation = moved["operation_id"]
        assert operation
        # Heading, alias and embed survive; only the target text changes.
        assert (await call(client, "read_note", {"path": "journal/today.md"}))["body"] == MOVED_JOURNAL
        assert (await call(client, "read_note", {"path": "projects/launch.md"}))["body"] == IDEA
        gone = await client.call_tool("read_note", {"path": "drafts/idea.md"})
        assert gone.is_error and gone.structured_content["code"] == "not_found"
        backlinks = await call(client, "get_backlinks", {"path": "projects/launch.md"})
        assert [b["path"] for b in backlinks["backlinks"]] == ["journal/today.md"]

        history = await call(client, "note_history", {"path": "projects/launch.md"})
        assert history["path"] == "projects/launch.md"
        newest = history["entries"][0]
        assert newest["operation"] == "move"
        assert (newest["from"], newest["to"], newest["moved"]) == ("drafts/idea.md", "projects/launch.md", True)
        assert newest["operation_id"] == operation and newest["version"] == 1
        referrer = (await call(client, "note_history", {"path": "journal/today.md", "limit": 1}))["entries"]
        assert len(referrer) == 1
        assert (referrer[0]["operation"], referrer[0]["moved"]) == ("move", False)
        assert referrer[0]["operation_id"] == operation
        # The kept file: the body before the move, under the frontmatter the server keeps.
        assert referrer[0]["size"] > len(JOURNAL.encode())

        restored = await call(client, "restore_note", {"path": "projects/launch.md", "history_id": newest["id"]})
        assert restored["action"] == "moved_back"
        assert restored["history_id"] == newest["id"]
        assert restored["path"] == "drafts/idea.md"
        assert restored["moved"]["notes"] == [{"from": "projects/launch.md", "to": "drafts/idea.md"}]

        back = await call(client, "read_note", {"path": "drafts/idea.md"})
        assert back["body"] == IDEA
        assert (await call(client, "read_note", {"path": "journal/today.md"}))["body"] == JOURNAL
        missing = await client.call_tool("read_note", {"path": "projects/launch.md"})
        assert missing.is_error and missing.structured_content["code"] == "not_found"
        listed = await call(client, "list_notes", {})
        assert sorted(n["path"] for n in listed["notes"]) == ["drafts/idea.md", "journal/today.md"]
        # The undo is itself in the history, so it can be undone in turn.
        undo = (await call(client, "note_history", {"path": "drafts/idea.md", "limit": 1}))["entries"][0]
        assert undo["operation"] == "restore"


async def test_restore_brings_back_a_deleted_note(server):
    http, client = connect(server, server.token("nils"))
    async with http, client:
        await call(client, "write_note", {"path": "old.md", "body": "first"})
        await call(client, "write_note", {"path": "old.md", "body": "second", "if_version": 1})
        await call(client, "delete_note", {"path": "old.md"})
        history = (await call(client, "note_history", {"path": "old.md"}))["entries"]
        assert [e["operation"] for e in history] == ["delete", "write"]
        assert [e["version"] for e in history] == [2, 1]

        stale = await client.call_tool("restore_note", {"path": "old.md", "if_version": 2})
        assert stale.is_error and stale.structured_content["code"] == "conflict"
        restored = await call(client, "restore_note", {"path": "old.md", "if_version": 0})
        assert restored["action"] == "content" and restored["version"] > 0
        assert (await call(client, "read_note", {"path": "old.md"}))["body"] == "second"
        # An older entry brings back an older version.
        again = await call(client, "restore_note", {"path": "old.md", "history_id": history[1]["id"]})
        assert again["action"] == "content"
        assert (await call(client, "read_note", {"path": "old.md"}))["body"] == "first"
