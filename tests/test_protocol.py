"""The binary wire format: encode → decode round trips, alignment, and clear errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from collapse_lab.server import protocol
from collapse_lab.server.protocol import ProtocolError, decode, encode_frame, encode_real


def tick_2d(n: int = 50, k: int = 8, g: int = 16, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(step=1234, time=5.5, config_version=3, steps_per_sec=812.5, loss_d=0.7,
                loss_g=float("nan"), term_gp=0.0, term_r1=0.0, term_entropy=0.0,
                grad_norm_d=1.0, grad_norm_g=2.0, modes_captured=5, modes_covered=4,
                hq_fraction=0.8, effective_modes=4.2, reverse_kl=0.3, hopping=0.01,
                occupancy=list(rng.dirichlet(np.ones(k))),
                samples=rng.normal(size=(n, 2)).astype(np.float32),
                nearest=rng.integers(0, k, n).astype(np.int16), hq=rng.random(n) > 0.3,
                value_grid=rng.random((g, g)).astype(np.float32), extent=[-3, 3, -2, 2])


def test_frame_round_trip():
    t = tick_2d(n=53)  # an odd N exercises the padding after the modes bytes
    data = encode_frame(t, "paused", {"value_kind": "probability"})
    assert len(data) % 4 == 0
    m = decode(data)
    assert (m.type, m.step, m.config_version) == (protocol.FRAME, 1234, 3)
    np.testing.assert_array_equal(m.samples, t["samples"])
    np.testing.assert_allclose(m.occupancy, np.float32(t["occupancy"]))
    np.testing.assert_array_equal(m.nearest, t["nearest"])
    np.testing.assert_array_equal(m.hq, t["hq"])
    np.testing.assert_array_equal(m.value_grid, t["value_grid"])
    assert m.scalars["loss_g"] is None  # NaN travels as null
    assert m.scalars["status"] == "paused" and m.scalars["extent"] == [-3, 3, -2, 2]
    assert m.scalars["modes_covered"] == 4 and m.scalars["value_kind"] == "probability"


def test_header_layout_matches_the_spec():
    t = tick_2d(n=10, k=8, g=4)
    data = encode_frame(t)
    magic, ver, kind, flags, step, version, j, n, d, k, gw, gh = struct.unpack_from(
        "<4sBBHIIIIHHHH", data)
    assert (magic, ver, kind, flags, step, version) == (b"CLAB", 1, 1, 1, 1234, 3)
    assert (n, d, k, gw, gh) == (10, 2, 8, 4, 4)
    off = 32 + j + (-j % 4)
    assert off % 4 == 0
    first = np.frombuffer(data, "<f4", 2, off)  # the browser's view, no copy
    np.testing.assert_array_equal(first, t["samples"][0])
    assert len(data) == off + 4 * n * d + 4 * k + n + (-n % 4) + 4 * gw * gh


def test_images_and_real_messages():
    rng = np.random.default_rng(1)
    imgs = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
    t = dict(tick_2d(), samples=imgs, nearest=np.arange(2500) % 10, hq=np.ones(2500, bool),
             occupancy=[0.1] * 10)
    del t["value_grid"], t["extent"]
    m = decode(encode_frame(t))
    assert m.images and m.value_grid is None and m.samples.shape == (64, 64)
    np.testing.assert_array_equal(m.nearest, np.arange(64) % 10)
    real = decode(encode_real(rng.normal(size=(7, 2)), np.arange(7)))
    assert real.type == protocol.REAL and real.scalars == {} and len(real.occupancy) == 0
    assert real.hq.all() and list(real.nearest) == list(range(7))


def test_a_familys_panels_ride_in_the_json_part():
    panels = {"kl_units": {"labels": ["z1", "z2"], "values": [0.5, 0.0012], "ref": 0.5,
                           "unit": "nats"},
              "recon": {"images": [[0.0, 1.0, 0.25, 0.5]] * 2, "shape": [2, 2],
                        "labels": ["in", "out"], "cols": 2}}
    m = decode(encode_frame(dict(tick_2d(), panels=panels)))
    assert m.scalars["panels"] == panels
    assert "panels" not in decode(encode_frame(tick_2d())).scalars


def test_truncated_and_garbled_messages_give_clear_errors():
    data = encode_frame(tick_2d(n=100))
    with pytest.raises(ProtocolError, match="header needs 32 bytes, got 10"):
        decode(data[:10])
    j = struct.unpack_from("<I", data, 16)[0]
    cut = 32 + j + (-j % 4) + 16
    with pytest.raises(ProtocolError, match=r"frame truncated: samples need 800 bytes at offset"):
        decode(data[:cut])
    with pytest.raises(ProtocolError, match="value grid need"):
        decode(data[:-4])
    with pytest.raises(ProtocolError, match="bad magic"):
        decode(b"XXXX" + data[4:])
    with pytest.raises(ProtocolError, match="protocol version 9"):
        decode(data[:4] + b"\x09" + data[5:])
    garbled = bytearray(data)
    garbled[32] = ord("}")
    with pytest.raises(ProtocolError, match="json part does not parse"):
        decode(bytes(garbled))


def test_replay_records_round_trip_and_keep_alignment():
    msgs = [encode_real(np.zeros((3, 2))), encode_frame(tick_2d(n=5)), encode_frame(tick_2d(n=7))]
    body = protocol.pack_records(msgs)
    assert protocol.unpack_records(body) == msgs
    off = 4
    for m in msgs:  # each message starts 4-byte aligned inside the whole buffer
        assert off % 4 == 0
        off += len(m) + 4
    with pytest.raises(ProtocolError, match="replay truncated"):
        protocol.unpack_records(body[:-3])


def test_manifold_part_round_trip_and_layout():
    """Flag 4: G's image of an M×M latent grid, after the value grid, its side in the JSON."""
    rng = np.random.default_rng(2)
    side = 7
    grid = rng.normal(size=(side, side, 2)).astype(np.float32)
    t = dict(tick_2d(n=13, g=5), manifold=grid, manifold_note="z[0], z[1] over ±2σ")
    data = encode_frame(t)
    flags = struct.unpack_from("<H", data, 6)[0]
    assert flags == protocol.FLAG_GRID | protocol.FLAG_MANIFOLD == 5
    assert len(data) % 4 == 0
    # the manifold is the last 4·M·M·2 bytes, row-major over the latent grid, row 0 first
    tail = np.frombuffer(data[-4 * side * side * 2:], "<f4").reshape(side, side, 2)
    np.testing.assert_array_equal(tail, grid)
    m = decode(data)
    np.testing.assert_array_equal(m.manifold, grid)
    np.testing.assert_array_equal(m.value_grid, t["value_grid"])  # the grid is still whole
    assert m.scalars["manifold_side"] == side
    assert m.scalars["manifold_note"] == "z[0], z[1] over ±2σ"
    assert m.summary()["manifold"] == {"side": side, "note": "z[0], z[1] over ±2σ"}
    # without the array nothing of it is sent
    plain = decode(encode_frame(tick_2d(n=13, g=5)))
    assert plain.manifold is None and "manifold_side" not in plain.scalars


def test_manifold_errors_name_the_part():
    t = dict(tick_2d(n=4, g=3), manifold=np.zeros((4, 4, 2), np.float32))
    data = encode_frame(t)
    with pytest.raises(ProtocolError, match="frame truncated: manifold need 128 bytes"):
        decode(data[:-4])
    with pytest.raises(ProtocolError, match=r"manifold must be \(M, M, 2\)"):
        encode_frame(dict(t, manifold=np.zeros((4, 3, 2), np.float32)))
    # the flag set but no side in the JSON: refused by name, not read as garbage
    no_side = encode_frame(tick_2d(n=4, g=3))
    garbled = bytearray(no_side)
    struct.pack_into("<H", garbled, 6, protocol.FLAG_GRID | protocol.FLAG_MANIFOLD)
    with pytest.raises(ProtocolError, match="manifold flag needs manifold_side"):
        decode(bytes(garbled))


def test_a_family_vector_field_travels_in_the_json_part():
    rng = np.random.default_rng(3)
    field = rng.normal(size=(4, 4, 2)) * 1e3
    field[0, 0] = [np.inf, np.nan]  # non-finite arrows travel as zero, never as garbage
    m = decode(encode_frame(dict(tick_2d(n=5, g=4), arrows=field)))
    a = m.scalars["arrows"]
    assert a["side"] == 4 and len(a["uv"]) == 32 and a["uv"][:2] == [0.0, 0.0]
    np.testing.assert_allclose(np.array(a["uv"][2:]), field.ravel()[2:], rtol=1e-3)
    assert "arrows" not in decode(encode_frame(tick_2d(n=5, g=4))).scalars
    with pytest.raises(ProtocolError, match=r"arrows must be \(A, A, 2\)"):
        encode_frame(dict(tick_2d(n=5, g=4), arrows=np.zeros((40, 40, 2))))
