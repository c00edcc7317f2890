"""What the OAuth end-to-end test needs besides the SDK: the stand-in OpenID provider, a vault-mcp
in space mode that signs people in through it (as on a Space) on a port known in advance, and a
person at a browser, played over plain HTTP with a client that keeps cookies.

The provider binary is `target/release/stand-in-idp` (build it with
`cargo build --release -p stand-in-idp`); `STAND_IN_IDP_BIN` names another. The server is
`VAULT_MCP_BIN`, as for the other tests here.
"""

import os
import pathlib
import queue
import secrets
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(os.environ.get("VAULT_MCP_BIN", ROOT / "target" / "release" / "vault-mcp"))
IDP_BIN = pathlib.Path(os.environ.get("STAND_IN_IDP_BIN", ROOT / "target" / "release" / "stand-in-idp"))
if not IDP_BIN.is_absolute():
    IDP_BIN = ROOT / IDP_BIN

IDP_CLIENT_ID = "vault-mcp-test"
IDP_CLIENT_SECRET = "stand-in-secret"
ALICE_SUB = "1000000000000000000000a1"
START_TIMEOUT = 20


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_line(proc: subprocess.Popen, what: str) -> str:
    """The process's first stdout line, waited for at most START_TIMEOUT seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        first = lines.get(timeout=START_TIMEOUT).strip()
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"{what} printed nothing within {START_TIMEOUT} s") from None
    if not first.startswith("listening on http://"):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"{what} did not start (first line {first!r}): {err[-2000:]}")
    return first.removeprefix("listening on ")


def _drain(proc: subprocess.Popen, sink: list[str]):
    """Read both pipes to the end so the process never blocks on a full one; keep stderr."""
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    threading.Thread(target=lambda: sink.append(proc.stderr.read()), daemon=True).start()


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class StandInProvider:
    """The stand-in OpenID provider. It ends on SIGTERM or at the end of its stdin, a pipe held
    here, so it also ends if the test process dies."""

    def __init__(self):
        if not IDP_BIN.is_file() or not os.access(IDP_BIN, os.X_OK):
            raise AssertionError(
                f"no stand-in OpenID provider at {IDP_BIN}: build it with "
                "`cargo build --release -p stand-in-idp`, or set STAND_IN_IDP_BIN"
            )
        self.proc = subprocess.Popen(
            [str(IDP_BIN), "--port", "0", "--client-id", IDP_CLIENT_ID, "--client-secret", IDP_CLIENT_SECRET],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = _first_line(self.proc, "stand-in-idp")
        self.stderr: list[str] = []
        _drain(self.proc, self.stderr)

    def stop(self):
        self.proc.stdin.close()
        _stop(self.proc)


class SigninServer:
    """vault-mcp in space mode signing people in through `provider`, with its own data folder, on
    a port known in advance (its PUBLIC_URL must be the address the browser uses)."""

    def __init__(self, tmp: pathlib.Path, provider: StandInProvider, **extra_env: str):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/mcp"
        self.idp_url = provider.url
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "MODE": "space",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PUBLIC_URL": self.base,
            "JWT_SECRET_KEY": secrets.token_hex(32),
            "DATA_DIR": str(tmp),
            "RUST_LOG": "warn",
            "OPENID_PROVIDER_URL": provider.url,
            "OAUTH_CLIENT_ID": IDP_CLIENT_ID,
            "OAUTH_CLIENT_SECRET": IDP_CLIENT_SECRET,
            "OAUTH_SCOPES": "openid profile",
            **extra_env,
        }
        self.proc = subprocess.Popen(
            [str(BIN), "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        listening = _first_line(self.proc, "vault-mcp")
        assert listening == self.base, f"vault-mcp listens on {listening}, not {self.base}"
        self.stderr: list[str] = []
        _drain(self.proc, self.stderr)

    def stop(self):
        _stop(self.proc)


class _Page(HTMLParser):
    """What the person reads on a page: links, form fields, and the text of elements with an id."""

    def __init__(self, html: str):
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.inputs: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self.list_items: dict[str, int] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.links.append(a)
        if tag == "input" and "name" in a:
            self.inputs[a["name"]] = a.get("value", "")
        if tag == "li":
            for _, owner in self._open:
                if owner is not None:
                    self.list_items[owner] = self.list_items.get(owner, 0) + 1
        if tag not in ("input", "meta", "link", "br", "img"):
            self._open.append((tag, a.get("id")))
            if a.get("id"):
                self.text.setdefault(a["id"], "")

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for _, owner in self._open:
            if owner is not None:
                self.text[owner] += data


@dataclass
class Person:
    """Someone at a browser: follows redirects, signs in at the provider as alice by following
    her link, reads the consent page and approves. Cookies stay in the client, so a second
    authorization needs no second sign-in."""

    server: SigninServer
    http: httpx2.AsyncClient = field(default_factory=lambda: httpx2.AsyncClient(follow_redirects=False, timeout=30))
    visits: list[str] = field(default_factory=list)
    consent_pages: list[dict] = field(default_factory=list)

    async def approve(self, authorization_url: str, redirect_uri: str) -> dict[str, str]:
        """Goes through the authorization at `authorization_url` and approves; returns the
        parameters of the final redirect to `redirect_uri` (code, state, iss). Nobody needs to
        listen there: like a browser, this stops at the redirect, and the parameters are what the
        application's callback would take."""
        self.visits.append(authorization_url)
        idp_origin = _origin(self.server.idp_url)
        url = authorization_url
        for _ in range(12):
            if url.startswith(redirect_uri):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            response = await self.http.get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                continue
            assert response.status_code == 200, f"GET {url} answered {response.status_code}: {response.text[:500]}"
            page = _Page(response.text)
            if _origin(url) == idp_origin:
                alice = [a for a in page.links if a.get("class") == "account" and a.get("data-sub") == ALICE_SUB]
                assert alice, f"the provider's page lists no link for alice: {page.links}"
                url = urljoin(url, alice[0]["href"])
                continue
            assert "consent" in page.text, f"expected the consent page at {url}, got: {response.text[:500]}"
            self.consent_pages.append(
                {
                    "url": url,
                    "client_name": page.text.get("client-name", "").strip(),
                    "redirect_host": page.text.get("redirect-host", "").strip(),
                    "scopes": page.list_items.get("scopes", 0),
                }
            )
            decision = await self.http.post(
                f"{self.server.base}/authorize",
                data={"ticket": page.inputs["ticket"], "csrf": page.inputs["csrf"], "decision": "approve"},
                headers={"Origin": self.server.base},
            )
            assert decision.is_redirect, f"approving answered {decision.status_code}: {decision.text[:500]}"
            url = urljoin(url, decision.headers["location"])
        raise AssertionError(f"the authorization did not come back to {redirect_uri}; last at {url}")

    async def aclose(self):
        await self.http.aclose()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
