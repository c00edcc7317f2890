"""edit_note and recent_notes driven by the official MCP Python SDK over Streamable HTTP."""

import json

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.asyncio

NOTE = "# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- two\n\n## Notes\n\nText.\n"


def connect(server, token):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(server.url, http_client=http))


async def call(client, tool, args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {result}"
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def test_edit_note_dry_run_edit_and_typed_errors(server):
    http, client = connect(server, server.token("alice"))
    async with http, client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["edit_note"].annotations.idempotent_hint is False
        assert tools["edit_note"].annotations.destructive_hint is False
        assert tools["recent_notes"].annotations.read_only_hint is True
        await call(client, "write_note", {"path": "plan.md", "body": NOTE})

        dry = await call(
            client,
            "edit_note",
            {"path": "plan.md", "dry_run": True, "edits": [{"op": "replace", "find": "- two", "replace": "- 2"}]},
        )
        assert dry["dry_run"] is True and dry["version"] == 1
        assert "\n-- two\n+- 2\n" in dry["diff"]
        assert (await call(client, "read_note", {"path": "plan.md"}))["body"] == NOTE

        edited = await call(
            client,
            "edit_note",
            {
                "path": "plan.md",
                "if_version": 1,
                "edits": [
                    {"op": "replace", "find": "- two", "replace": "- 2"},
                    {"op": "replace_section", "heading": "## Notes", "text": "Rewritten."},
                    {"op": "set_frontmatter", "key": "status", "value": "active"},
                ],
            },
        )
        assert edited["version"] == 2 and edited["changed"] is True
        note = await call(client, "read_note", {"path": "plan.md"})
        assert note["body"] == "# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- 2\n\n## Notes\n\nRewritten.\n"
        assert note["metadata"]["status"] == "active"

        mismatch = await client.call_tool(
            "edit_note", {"path": "plan.md", "edits": [{"op": "replace", "find": "- ", "replace": "* "}]}
        )
        assert mismatch.is_error
        assert mismatch.structured_content["code"] == "occurrence_mismatch"
        assert mismatch.structured_content["found"] == 2
        missing = await client.call_tool(
            "edit_note", {"path": "plan.md", "edits": [{"op": "insert_after_section", "heading": "Nope", "text": "x"}]}
        )
        assert missing.is_error and missing.structured_content["code"] == "heading_not_found"
        stale = await client.call_tool(
            "edit_note", {"path": "plan.md", "if_version": 1, "edits": [{"op": "append", "text": "x"}]}
        )
        assert stale.is_error and stale.structured_content["code"] == "conflict"
        assert (await call(client, "read_note", {"path": "plan.md"}))["version"] == 2


async def test_recent_notes_newest_first_with_folder_filter(server):
    http, client = connect(server, server.token("bob"))
    async with http, client:
        for path in ["a.md", "work/b.md", "work/c.md"]:
            await call(client, "write_note", {"path": path, "body": "x"})
        await call(client, "edit_note", {"path": "work/b.md", "edits": [{"op": "append", "text": "y"}]})
        recent = await call(client, "recent_notes", {})
        assert [n["path"] for n in recent["notes"]][0] == "work/b.md"
        assert {n["path"] for n in recent["notes"]} == {"a.md", "work/b.md", "work/c.md"}
        work = await call(client, "recent_notes", {"folder": "work", "limit": 5})
        assert [n["path"] for n in work["notes"]][0] == "work/b.md"
        assert {n["path"] for n in work["notes"]} == {"work/b.md", "work/c.md"}
        newest = recent["notes"][0]
        since = await call(client, "recent_notes", {"since": newest["changed"]})
        assert [n["path"] for n in since["notes"]][0] == "work/b.md"
