"""Fixtures: a real vault-mcp binary on a loopback port, and tokens minted by its own CLI."""

import os
import pathlib
import secrets
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(os.environ.get("VAULT_MCP_BIN", ROOT / "target" / "release" / "vault-mcp"))


class Server:
    """A running vault-mcp in space mode with its own data folder."""

    def __init__(self, tmp: pathlib.Path, **extra_env: str):
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "MODE": "space",
            "HOST": "127.0.0.1",
            "PORT": "0",
            "JWT_SECRET_KEY": secrets.token_hex(32),
            "PUBLIC_URL": "http://vault.e2e",
            "DATA_DIR": str(tmp),
            "RUST_LOG": "warn",
            **extra_env,
        }
        self.proc = subprocess.Popen(
            [str(BIN), "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        first = self.proc.stdout.readline().strip()
        assert first.startswith("listening on "), f"unexpected first line: {first!r}"
        self.base = first.removeprefix("listening on ")
        self.url = f"{self.base}/mcp"
        # Drain both pipes so the server never blocks on a full one.
        for pipe in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=lambda p=pipe: p.read(), daemon=True).start()

    def token(self, user: str, *scopes: str) -> str:
        args = [str(BIN), "token", "--user", user, "--ttl", "1h"]
        for s in scopes:
            args += ["--scope", s]
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()
