"""The printed links: the machine's real addresses, never 0.0.0.0; the QR code of a link."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collapse_lab.server.links import base_urls, interface_addresses, qr_svg, teacher_link

ROOT = Path(__file__).resolve().parent.parent


def test_addresses_are_reachable_ones():
    for a in interface_addresses(ipv6=True):
        ip = ipaddress.ip_address(a)
        assert not (ip.is_loopback or ip.is_unspecified or ip.is_link_local), a


def test_urls_for_all_interfaces_are_never_unspecified():
    for host in ("0.0.0.0", "::"):
        urls = base_urls(host, 8123)
        assert urls and all(u.endswith(":8123/") for u in urls)
        assert all("0.0.0.0" not in u and "[::]" not in u for u in urls)
    assert base_urls("127.0.0.1", 9) == ["http://127.0.0.1:9/"]
    assert base_urls("::1", 9) == ["http://[::1]:9/"]
    assert base_urls("0.0.0.0", 9, "https://lab.example.org/x/") == ["https://lab.example.org/x/"]
    assert teacher_link("http://10.1.2.3:8000/", "abc") == "http://10.1.2.3:8000/?token=abc"


def test_qr_code_is_an_svg_without_script():
    svg = qr_svg("http://10.1.2.3:8000/").decode()
    assert svg.startswith("<svg") and "</svg>" in svg
    assert "<script" not in svg and "<style" not in svg
    # a QR code of 25 × 25 modules or more, drawn as one path
    assert re.search(r"<path", svg)


@pytest.mark.server
def test_serve_on_all_interfaces_prints_real_links(tmp_path):
    """`serve --host 0.0.0.0 --token …` prints teacher and viewer links for real addresses."""
    from browser_harness import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "collapse_lab.server.cli", "serve", "--host", "0.0.0.0", "--port",
         str(port), "--data-dir", str(tmp_path), "--token", "teacher-secret-9"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        end = time.monotonic() + 60
        while time.monotonic() < end and len(lines) < 3:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
    finally:
        proc.terminate()
        proc.wait(15)
    text = "\n".join(lines)
    assert "0.0.0.0" not in text, text
    teacher = [x for x in lines if x.startswith("teacher link")]
    viewer = [x for x in lines if x.startswith("viewer link")] + \
        [x for x in proc.stdout.read().splitlines() if x.startswith("viewer link")]
    assert teacher and "?token=teacher-secret-9" in teacher[0]
    assert viewer and all("token" not in v for v in viewer)
    url = re.search(r"http://(\S+?):(\d+)/", teacher[0])
    assert url and int(url.group(2)) == port
