"""`vault-mcp stdio` driven by the official MCP Python SDK's stdio client (`stdio_client` +
`ClientSession`): the note tools, the exclusive lock on the data folder, and a stdout that carries
nothing but JSON-RPC even with every log level on."""

import json
import os
import pathlib
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from conftest import BIN

pytestmark = pytest.mark.asyncio

NOTE_TOOLS = ["list_notes", "read_note", "write_note", "delete_note", "search_notes", "get_backlinks", "get_tags"]
IN_USE = "is in use by another vault-mcp"
# Longest a whole test may take: a hung server fails the test instead of hanging the suite.
TEST_DEADLINE = 60


@pytest.fixture
def work():
    """A temp folder for one test (data folder and logs), removed afterwards whatever happened."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="vault-stdio-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def tail(path: pathlib.Path, lines: int = 30) -> str:
    """The end of a log file, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def server_env(data: pathlib.Path, rust_log: str = "debug", **extra: str) -> dict[str, str]:
    return {"DATA_DIR": str(data), "RUST_LOG": rust_log, "PATH": os.environ.get("PATH", ""), **extra}


class Session:
    """An initialized SDK session with a `vault-mcp stdio` child, plus what the test saw of it."""

    def __init__(self, session: ClientSession, init, log: pathlib.Path, stray: list):
        self.session = session
        self.init = init
        self.log = log
        # Anything the SDK's transport could not read as JSON-RPC, or any other error it reported.
        self.stray = stray

    async def call(self, tool: str, args: dict) -> dict:
        """Calls a tool that must succeed; returns its structured content."""
        result = await self.session.call_tool(tool, args)
        assert not result.is_error, f"{tool} {args} failed: {result}\n-- server stderr:\n{tail(self.log)}"
        assert result.structured_content is not None, f"{tool} returned no structuredContent"
        # Clients that only read text see the same data.
        assert json.loads(result.content[0].text) == result.structured_content, f"{tool}: text and structure differ"
        return result.structured_content

    async def fail(self, tool: str, args: dict) -> dict:
        """Calls a tool that must fail as a tool result; returns its structured error."""
        result = await self.session.call_tool(tool, args)
        assert result.is_error, f"{tool} {args} should have failed, got {result.structured_content}"
        assert result.structured_content is not None, f"{tool}'s error carries no structuredContent"
        return result.structured_content


@asynccontextmanager
async def stdio_session(data: pathlib.Path, log: pathlib.Path, rust_log: str = "debug", args=()):
    """`vault-mcp stdio` started by the SDK's stdio client, its stderr in `log`."""
    params = StdioServerParameters(command=str(BIN), args=["stdio", *args], env=server_env(data, rust_log))
    stray = []

    async def on_message(message):
        if isinstance(message, Exception):
            stray.append(message)

    with open(log, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                with anyio.fail_after(15):
                    init = await session.initialize()
                yield Session(session, init, log, stray)


def lock_holder(data: pathlib.Path) -> tuple[int, str]:
    """(pid, description) from the data folder's lock file."""
    text = (data / "vault-mcp.lock").read_text().strip()
    m = re.fullmatch(r"pid (\d+), (.+)", text)
    assert m, f"the lock file does not say who holds it: {text!r}"
    return int(m.group(1)), m.group(2)


async def run_refused(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Runs a vault-mcp command that must be refused at once; returns how it ended."""
    started = time.monotonic()
    with anyio.fail_after(10):
        done = await anyio.run_process([str(BIN), *args], env=env, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    assert done.returncode != 0, f"`vault-mcp {' '.join(args)}` was not refused: rc 0\nstdout: {out}\nstderr: {err}"
    assert elapsed < 5, f"`vault-mcp {' '.join(args)}` took {elapsed:.1f}s to give up (should be at once)"
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


async def test_initialize_and_the_seven_note_tools_over_stdio(work):
    data, log = work / "data", work / "stderr.log"
    with anyio.fail_after(TEST_DEADLINE):
        async with stdio_session(data, log) as s:
            assert s.init.server_info.name == "vault-mcp", f"server_info: {s.init.server_info}"
            assert s.init.capabilities.tools is not None, "the server did not announce tools"
            tools = {t.name: t for t in (await s.session.list_tools()).tools}
            for name in NOTE_TOOLS:
                assert name in tools, f"tools/list lacks {name}: {sorted(tools)}"
                assert tools[name].output_schema and tools[name].output_schema["type"] == "object", (
                    f"{name} has no object outputSchema"
                )

            topic = await s.call("write_note", {"path": "topics/rust.md", "body": "# Rust\nOwnership and borrowing. #lang"})
            assert topic["path"] == "topics/rust.md"
            assert topic["version"] == 1 and topic["created_note"] is True, f"first write: {topic}"
            assert topic["title"] == "Rust", f"title from the heading: {topic}"
            assert topic["tags"] == ["lang"], f"inline tag: {topic}"
            journal_body = "Learned about [[rust]] ownership today. #lang #daily"
            journal = await s.call("write_note", {"path": "journal/today.md", "body": journal_body})
            assert journal["version"] == 1

            note = await s.call("read_note", {"path": "journal/today.md"})
            assert note["body"] == journal_body
            assert note["version"] == 1
            assert sorted(note["tags"]) == ["daily", "lang"], f"read_note tags: {note['tags']}"

            listed = await s.call("list_notes", {})
            assert [n["path"] for n in listed["notes"]] == ["journal/today.md", "topics/rust.md"], listed
            assert "next_cursor" not in listed, f"one page only: {listed}"
            in_topics = await s.call("list_notes", {"folder": "topics"})
            assert [n["path"] for n in in_topics["notes"]] == ["topics/rust.md"], in_topics

            found = await s.call("search_notes", {"query": "ownership"})
            assert found["query"] == "ownership"
            assert sorted(h["path"] for h in found["results"]) == ["journal/today.md", "topics/rust.md"], found
            assert all("<mark>" in h["snippet"].lower() for h in found["results"]), f"snippets unmarked: {found}"

            back = await s.call("get_backlinks", {"path": "topics/rust.md"})
            assert back["path"] == "topics/rust.md"
            assert [b["path"] for b in back["backlinks"]] == ["journal/today.md"], back

            tags = await s.call("get_tags", {})
            counts = {t["tag"]: t["count"] for t in tags["tags"]}
            assert counts == {"lang": 2, "daily": 1}, f"get_tags: {tags}"

            deleted = await s.call("delete_note", {"path": "journal/today.md"})
            assert deleted == {"path": "journal/today.md", "version": 1}, f"delete_note: {deleted}"
            gone = await s.fail("read_note", {"path": "journal/today.md"})
            assert gone["code"] == "not_found", f"read after delete: {gone}"
            back = await s.call("get_backlinks", {"path": "topics/rust.md"})
            assert back["backlinks"] == [], f"the deleted note still links: {back}"
            listed = await s.call("list_notes", {})
            assert [n["path"] for n in listed["notes"]] == ["topics/rust.md"], listed
            escape = await s.fail("read_note", {"path": "../escape.md"})
            assert escape["code"] == "invalid_path", f"path escape: {escape}"

            assert s.stray == [], f"the transport met non-JSON-RPC output or errors: {s.stray}"

    # The notes live in the data folder named by DATA_DIR, in the `local` user's vault.
    vault = data / "vaults" / "local"
    on_disk = (vault / "topics" / "rust.md").read_text()
    assert "Ownership and borrowing. #lang" in on_disk, f"note file: {on_disk!r}"
    assert not (vault / "journal" / "today.md").exists(), "delete_note left the file on disk"
    assert "DEBUG" in log.read_text(errors="replace"), f"RUST_LOG=debug wrote no debug log to stderr:\n{tail(log)}"


async def test_user_option_selects_the_vault(work):
    data, log = work / "data", work / "stderr.log"
    with anyio.fail_after(TEST_DEADLINE):
        async with stdio_session(data, log, args=["--user", "alice"]) as s:
            await s.call("write_note", {"path": "mine.md", "body": "alice's words"})
            assert lock_holder(data)[1] == "vault-mcp stdio for alice", f"lock file: {lock_holder(data)}"
    assert (data / "vaults" / "alice" / "mine.md").is_file(), f"no note in alice's vault: {list(data.rglob('*'))}"
    assert not (data / "vaults" / "local").exists() or not any((data / "vaults" / "local").iterdir()), (
        "--user alice wrote into the local user's vault"
    )


async def test_a_second_vault_mcp_on_the_folder_is_refused_until_the_session_ends(work):
    data, log = work / "data", work / "stderr.log"
    other_env = server_env(data, "warn", PORT="0", HOST="127.0.0.1")
    with anyio.fail_after(TEST_DEADLINE):
        async with stdio_session(data, log) as s:
            await s.call("write_note", {"path": "kept.md", "body": "written while the folder was locked"})
            pid, holder = lock_holder(data)
            assert holder == "vault-mcp stdio for local", f"lock holder: {holder!r}"
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert cmdline[:2] == [str(BIN).encode(), b"stdio"], f"pid {pid} in the lock file is not the SDK's child: {cmdline}"

            for args in (["serve"], ["stdio"]):
                done = await run_refused(args, other_env)
                what = f"`vault-mcp {args[0]}` while stdio holds the folder"
                assert IN_USE in done.stderr, f"{what}: stderr lacks the reason:\n{done.stderr}"
                assert f"pid {pid}, vault-mcp stdio for local" in done.stderr, f"{what}: holder not named:\n{done.stderr}"
                assert str(data) in done.stderr, f"{what}: the folder is not named:\n{done.stderr}"
                assert "listening on" not in done.stdout, f"{what}: started listening anyway:\n{done.stdout}"
            assert done.stdout == "", f"a refused stdio wrote to stdout: {done.stdout!r}"

            # The session that holds the folder is unaffected by the refused attempts.
            note = await s.call("read_note", {"path": "kept.md"})
            assert note["body"] == "written while the folder was locked"
            assert lock_holder(data) == (pid, holder), "a refused process rewrote the lock file"

    # The lock went with the process: the folder serves a new stdio session, with the note kept.
    async with stdio_session(data, work / "stderr2.log") as s:
        note = await s.call("read_note", {"path": "kept.md"})
        assert note["body"] == "written while the folder was locked", f"after a restart: {note}"

    # ... and a server, which in turn keeps stdio out and names itself.
    server = subprocess.Popen(
        [str(BIN), "serve"], env=other_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        first = server.stdout.readline().strip()
        assert first.startswith("listening on http://"), f"serve did not start after stdio ended: {first!r}"
        url = first.removeprefix("listening on ")
        pid, holder = lock_holder(data)
        assert (pid, holder) == (server.pid, f"vault-mcp serve on {url}/mcp"), f"lock file: {(pid, holder)}"
        done = await run_refused(["stdio"], other_env)
        expected = f"(pid {server.pid}, vault-mcp serve on {url}/mcp); stop it first, or connect your client to that server"
        assert IN_USE in done.stderr and expected in done.stderr, f"stdio beside a server:\n{done.stderr}"
        assert done.stdout == "", f"a refused stdio wrote to stdout: {done.stdout!r}"
    finally:
        server.terminate()
        try:
            server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


async def test_trace_logging_leaves_stdout_to_json_rpc(work):
    data, log = work / "data", work / "stderr.log"
    with anyio.fail_after(TEST_DEADLINE):
        async with stdio_session(data, log, rust_log="trace") as s:
            tools = (await s.session.list_tools()).tools
            assert {t.name for t in tools} >= set(NOTE_TOOLS)
            await s.call("write_note", {"path": "a.md", "body": "traced words #t"})
            found = await s.call("search_notes", {"query": "traced"})
            assert [h["path"] for h in found["results"]] == ["a.md"], found
            assert (await s.call("get_tags", {}))["tags"] == [{"tag": "t", "count": 1}]
            assert s.stray == [], f"the SDK met stdout it could not read as JSON-RPC: {s.stray}"
    text = log.read_text(errors="replace")
    assert "TRACE" in text, f"RUST_LOG=trace wrote no trace log to stderr:\n{tail(log)}"


class RawStdio:
    """`vault-mcp stdio` without any SDK: lines written to its stdin, every stdout line kept."""

    INITIALIZE = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }

    def __init__(self, data: pathlib.Path, rust_log: str):
        self.proc = subprocess.Popen(
            [str(BIN), "stdio"], env=server_env(data, rust_log), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines = queue.Queue()
        self.stderr = []
        self.stdout_pump = threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True)
        self.stderr_pump = threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True)
        self.stdout_pump.start()
        self.stderr_pump.start()

    @staticmethod
    def _pump(pipe, put):
        for line in pipe:
            put(line)
        put(None)

    def stderr_text(self) -> str:
        return "".join(line for line in self.stderr if line is not None)

    def send(self, *messages: dict):
        self.proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self.proc.stdin.flush()

    def next(self, timeout: float = 10) -> dict:
        """The next stdout line, which must be one JSON-RPC message."""
        line = self.lines.get(timeout=timeout)
        assert line is not None, f"stdout ended early; stderr:\n{self.stderr_text()[-3000:]}"
        try:
            msg = json.loads(line)
        except ValueError:
            pytest.fail(f"stdout carries a line that is not JSON: {line!r}")
        assert isinstance(msg, dict) and msg.get("jsonrpc") == "2.0", f"not a JSON-RPC message on stdout: {line!r}"
        return msg

    def initialize(self):
        self.send(self.INITIALIZE)
        first = self.next()
        assert first.get("id") == 1 and "result" in first, f"initialize answer: {first}"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def end(self) -> list[dict]:
        """Closes stdin; returns the messages written after that; the process must exit 0."""
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("vault-mcp stdio did not exit within 15 s of the end of its stdin")
        rest = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        msgs = [json.loads(line) for line in rest]
        assert self.proc.returncode == 0, (
            f"vault-mcp stdio exited {self.proc.returncode} at the end of stdin:\n{self.stderr_text()[-3000:]}"
        )
        return msgs

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stdout_pump.join(timeout=10)
        self.stderr_pump.join(timeout=10)


async def test_raw_stdout_is_one_json_rpc_message_per_line_and_eof_ends_the_process(work):
    """Without the SDK (which may pass over what it cannot parse): with RUST_LOG=trace every stdout
    line is a JSON-RPC message, every request is answered, and closing stdin ends the process
    with status 0."""
    raw = RawStdio(work / "data", "trace")
    try:
        raw.initialize()
        raw.send(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
             "params": {"name": "write_note", "arguments": {"path": "r.md", "body": "raw"}}},
            {"jsonrpc": "2.0", "id": 4, "method": "ping"},
        )
        answers = {}
        while len(answers) < 3:
            msg = raw.next()
            if "id" in msg:
                answers[msg["id"]] = msg
        assert sorted(answers) == [2, 3, 4], f"answers: {answers}"
        assert all("result" in a for a in answers.values()), f"an error answer: {answers}"
        assert answers[3]["result"]["structuredContent"]["path"] == "r.md"
        after = raw.end()
        assert [m for m in after if "id" in m] == [], f"answers after the end of stdin: {after}"
    finally:
        raw.kill()
    assert "TRACE" in raw.stderr_text(), "RUST_LOG=trace wrote no trace log to stderr"


async def test_requests_read_before_the_end_of_stdin_are_still_answered(work):
    """A client may write its last requests and close stdin at once (`echo ... | vault-mcp stdio`):
    what was read before the end of input is still carried out and answered, and notifications
    are never answered. The race is timing-dependent, so it is tried a number of times."""
    for attempt in range(20):
        raw = RawStdio(work / f"data{attempt}", "warn")
        try:
            raw.initialize()
            raw.send(
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                 "params": {"name": "write_note", "arguments": {"path": "last.md", "body": "last words"}}},
                {"jsonrpc": "2.0", "id": 3, "method": "ping"},
            )
            after = raw.end()
        finally:
            raw.kill()
        by_id = {m.get("id"): m for m in after if "result" in m or "error" in m}
        assert None not in by_id, f"attempt {attempt}: a notification was answered: {by_id[None]}"
        assert sorted(by_id) == [2, 3], f"attempt {attempt}: answers after the end of stdin: {after}"
        assert all("result" in m for m in by_id.values()), f"attempt {attempt}: error answers: {after}"
        assert (work / f"data{attempt}" / "vaults" / "local" / "last.md").is_file(), f"attempt {attempt}: not written"
