"""The links a class opens: the machine's real addresses, the teacher and viewer URLs, a QR code.

A server bound to all interfaces (0.0.0.0 or ::) is reached through the machine's own addresses,
never through 0.0.0.0, which no student's machine can open. `public_url` (a setting) overrides
them where the server sits behind NAT or in a container.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import struct
import sys
from pathlib import Path

log = logging.getLogger(__name__)

ANY = ("0.0.0.0", "::", "")
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def _usable(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def _linux_ipv4() -> list[str]:
    import fcntl

    out = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on this interface
        out.append(socket.inet_ntoa(packed[20:24]))
    return out


def _linux_ipv6() -> list[str]:
    p = Path("/proc/net/if_inet6")
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        hexaddr = line.split()[0] if line.split() else ""
        if len(hexaddr) == 32:
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(hexaddr))))
    return out


def interface_addresses(ipv6: bool = False) -> list[str]:
    """This machine's addresses other machines can reach (no loopback, link-local or
    unspecified ones), IPv4 first; IPv6 global addresses too when `ipv6`."""
    found: list[str] = []
    if sys.platform.startswith("linux"):
        try:
            found += _linux_ipv4()
            if ipv6:
                found += _linux_ipv6()
        except (OSError, ImportError) as e:
            log.debug("could not list interfaces: %s", e)
    try:
        families = (socket.AF_INET, socket.AF_INET6) if ipv6 else (socket.AF_INET,)
        for fam, *_, sa in socket.getaddrinfo(socket.gethostname(), None):
            if fam in families:
                found.append(str(sa[0]))
    except OSError:
        pass
    out: list[str] = []
    for a in found:
        if _usable(a) and a not in out:
            out.append(a)
    return sorted(out, key=lambda a: ":" in a)


def _url(host: str, port: int) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"http://{h}:{port}/"


def base_urls(host: str, port: int, public_url: str | None = None,
              https: bool = False) -> list[str]:
    """The URLs a browser opens the dashboard at (each ends with '/')."""
    if public_url:
        return [public_url.rstrip("/") + "/"]
    if host in ANY:
        addrs = interface_addresses(ipv6=host == "::")
        urls = [_url(a, port) for a in addrs] or [_url(socket.gethostname(), port)]
    else:
        urls = [_url(host, port)]
    return ["https://" + u[len("http://"):] for u in urls] if https else urls


def teacher_link(base: str, token: str) -> str:
    """The link that signs a browser in as the teacher (the token leaves the URL at once)."""
    return f"{base}?token={token}"


def qr_svg(text: str) -> bytes:
    """A QR code of `text` as a standalone SVG (no script, no style element)."""
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="svg", scale=8, border=2, dark="#111111",
                                     light="#ffffff", xmldecl=False, title="viewer link")
    return buf.getvalue()
