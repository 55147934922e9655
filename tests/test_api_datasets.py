"""Data first: GET /api/datasets/{name}/preview, in-process (no worker is started)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings
from collapse_lab.trainer.families.gan.config import make_config
from collapse_lab.trainer.loop import Trainer


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), worker_threads=1,
                 token="teacher-secret-token")
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


def test_ring8_preview_is_the_real_message_a_seed0_run_sends(client):
    r = client.get("/api/datasets/ring8/preview")  # no token: watching needs none
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    m = protocol.decode(r.content)
    assert m.type == protocol.REAL and m.samples.shape == (2500, 2) and not m.images
    ds = m.scalars["dataset"]
    assert ds["name"] == "ring8" and ds["num_modes"] == 8 and len(ds["centres"]) == 8
    assert ds["extent"][0] < -2 < 2 < ds["extent"][1]
    # the same points, and the same mode of each, as the websocket of a seed-0 run
    trainer = Trainer()
    trainer.add("r", make_config(dict(dataset="ring8", seed=0, device="cpu")), tick=False)
    real, modes = trainer.real_samples("r")
    np.testing.assert_array_equal(m.samples, real)
    np.testing.assert_array_equal(m.nearest, modes)
    nearest = np.linalg.norm(m.samples[:, None] - np.array(ds["centres"])[None], axis=2).argmin(1)
    np.testing.assert_array_equal(m.nearest, nearest)
    assert m.hq.all() and set(m.nearest.tolist()) == set(range(8))
    # built once: a second answer is the same bytes
    assert client.get("/api/datasets/ring8/preview").content == r.content


def test_every_builtin_dataset_has_a_preview(client):
    for name, k in [("grid25", 25), ("lines", 5), ("spiral", 8)]:
        m = protocol.decode(client.get(f"/api/datasets/{name}/preview").content)
        assert m.scalars["dataset"]["num_modes"] == k and m.samples.shape == (2500, 2)
    m = protocol.decode(client.get("/api/datasets/digits/preview").content)
    assert m.images and m.samples.shape == (64, 64)
    assert m.scalars["dataset"]["image_shape"] == [8, 8]
    assert m.samples.min() >= -1 and m.samples.max() <= 1


def test_unknown_and_user_datasets_are_refused_by_name(client):
    r = client.get("/api/datasets/csv/preview")
    assert r.status_code == 404 and "your file" in r.json()["detail"]
    r = client.get("/api/datasets/mnist/preview")
    assert r.status_code == 404
    assert "expected one of ring8, grid25, lines, spiral, circle, digits" in r.json()["detail"]
    r = client.get("/api/datasets/" + "x" * 5000 + "/preview")
    assert r.status_code == 404 and len(r.json()["detail"]) < 200
