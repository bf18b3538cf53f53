"""The page's files: the vendored renderer and sanitizer are the pinned npm files the vendor
README names (by sha256), each with its license, and the server serves them and the favicon
(no CDN, nothing missing)."""

from __future__ import annotations

import hashlib
import re

import httpx2

from agent_runtime.server._app import STATIC_DIR

VENDOR = STATIC_DIR / "vendor"


def test_vendored_files_match_their_pinned_hashes_and_have_licenses() -> None:
    readme = (VENDOR / "README.md").read_text()
    rows = re.findall(
        r"^\| `([^`]+\.js)` \| `([^`]+)` \| ([0-9.]+) \|.*`([0-9a-f]{64})` \|$", readme, re.M
    )
    assert {r[0] for r in rows} == {"marked.umd.js", "purify.min.js"}
    for name, package, version, digest in rows:
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert re.search(rf"\b{package} v?{re.escape(version)} ", data[:400].decode(), re.I), name
    for license_file in ("marked.LICENSE", "dompurify.LICENSE", "dompurify.LICENSE-MPL"):
        assert (VENDOR / license_file).stat().st_size > 500


def test_the_page_references_only_its_own_files(echo_server: str) -> None:
    page = httpx2.get(echo_server).text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all("//" not in r for r in refs)  # no CDN
    for ref in refs:
        r = httpx2.get(f"{echo_server}/{ref}")
        assert r.status_code == 200, ref
    assert "vendor/purify.min.js" in refs and "favicon.svg" in refs
    icon = httpx2.get(f"{echo_server}/favicon.ico")  # asked for without reading the page
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
