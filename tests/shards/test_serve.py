"""shards.serve: files, fault routes and a clean shutdown on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shards.serve import Route, serve_folder


def test_serves_files_and_routes(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8abc")
    routes = {"/robots.jpg": Route(body=b"xyz", headers=(("X-Robots-Tag", "noai"),)),
              "/teapot": Route(status=418, body=b"no")}  # fmt: skip
    with serve_folder(tmp_path, routes) as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base}/a.jpg") as r:
            assert r.read() == b"\xff\xd8abc"
        with urllib.request.urlopen(f"{base}/robots.jpg?x=1") as r:
            assert r.read() == b"xyz" and r.headers["X-Robots-Tag"] == "noai"
        for path, code in (("/missing.jpg", 404), ("/teapot", 418)):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + path)
            assert err.value.code == code
    assert capfd.readouterr().err == ""  # quiet: no access log lines
    with pytest.raises(urllib.error.URLError):  # stopped after the block
        urllib.request.urlopen(f"{base}/a.jpg", timeout=2)


def test_a_fixed_port_is_used_and_a_taken_one_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8abc")
    with serve_folder(tmp_path) as first:
        port = int(first.rsplit(":", 1)[1])
    # the port just freed: a fixed port gives the same base url, run after run
    with serve_folder(tmp_path, port=port) as base:
        assert base == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/a.jpg") as r:
            assert r.read() == b"\xff\xd8abc"
        with pytest.raises(OSError), serve_folder(tmp_path, port=port):
            pass
    with serve_folder(tmp_path, port=port) as again:  # released at the end of the block
        assert again == base
