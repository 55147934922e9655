"""Uploading points from the browser: stored under DATA_DIR/uploads/ with a server-chosen name;
bad uploads get a clear 4xx and change nothing; a drawn dataset trains and its blobs are the
modes the metrics count."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings
from collapse_lab.server.uploads import MAX_BYTES, MAX_POINTS
from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.gan.config import make_config
from collapse_lab.trainer.loop import train

CSV = {"content-type": "text/csv"}


def drawn_csv(centres, n=60, std=0.1, seed=0) -> str:
    """Blobs as the dashboard draws them: x,y,mode rows."""
    rng = np.random.default_rng(seed)
    rows = ["x,y,mode"]
    for m, (cx, cy) in enumerate(centres):
        for x, y in rng.normal((cx, cy), std, size=(n, 2)):
            rows.append(f"{x:.4f},{y:.4f},{m}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), worker_threads=1)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


def uploads(client):
    folder = client.app.state.settings.data_dir / "uploads"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_upload_is_stored_with_a_server_chosen_name(client):
    r = client.post("/api/uploads", content=drawn_csv([(-2, 0), (2, 0), (0, 2)]), headers=CSV)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["points"] == 180 and up["modes"] == 3
    folder = client.app.state.settings.data_dir / "uploads"
    # the path is relative to the uploads folder: the server's own paths are nobody's business
    assert up["path"] == up["name"] and up["name"].endswith(".csv")
    assert (folder / up["name"]).read_text().startswith("x,y,mode\n")
    # without a mode column the modes are k-means clusters, decided when a run starts
    plain = "\n".join(f"{i % 7},{i % 5}" for i in range(40))
    r = client.post("/api/uploads", content=plain, headers={"content-type": "text/plain"})
    assert r.status_code == 201 and r.json()["modes"] is None


@pytest.mark.parametrize("body, status, words", [
    ("x,y,z,w\n" + "1,2,3,4\n" * 30, 422, "columns x,y or x,y,mode"),
    ("x,y\n" + "1,2\n" * 30 + "1,nan\n", 422, "line 32: values must be finite"),
    ("x,y\n" + "1,2\n" * 30 + "1,2,0\n", 422, "line 32: expected 2 values"),
    ("x,y,mode\n" + "1,2,0\n" * 30 + "1,2,99\n", 422, "mode must be an integer in [0, 24]"),
    ("x,y,mode\n" + "1,2,0\n" * 30 + "3,4,1\n", 422, "mode 1 has 1 points"),
    ("x,y\n1,2\n", 422, "at least 20 points"),
    ("x,y\n" + "0.5,0.25\n" * (MAX_POINTS + 1), 422, f"more than {MAX_POINTS:,} points"),
    ("1,2\n" * (MAX_BYTES // 4 + 10), 413, "at most"),
    ("\xff\xfe", 422, "not UTF-8"),
])
def test_bad_uploads_are_refused_and_change_nothing(client, body, status, words):
    before = uploads(client)
    data = body.encode("latin-1") if body.startswith("\xff") else body.encode()
    r = client.post("/api/uploads", content=data, headers=CSV)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert uploads(client) == before


def test_not_a_csv_and_viewers_refused(client, tmp_path):
    r = client.post("/api/uploads", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415 and "text/csv" in r.json()["detail"]
    s = Settings(data_dir=tmp_path, token="teacher-secret-1", worker_threads=1)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        r = c.post("/api/uploads", content=drawn_csv([(0, 0)]), headers=CSV)
        assert r.status_code == 403
        assert not (tmp_path / "uploads").exists()


def test_drawn_blobs_are_the_modes_and_a_run_trains_on_them(client, small):
    centres = [(-3, -1), (3, -1), (0, 3), (0, -3)]
    up = client.post("/api/uploads", content=drawn_csv(centres, n=80, std=0.15),
                     headers=CSV).json()
    folder = client.app.state.settings.data_dir / "uploads"
    cfg = make_config(dict(small, dataset="csv", data=str(folder / up["path"]), steps=60, seed=1))
    d = make_dataset(cfg)
    assert d.num_modes == 4 and d.mode_names == ["blob 1", "blob 2", "blob 3", "blob 4"]
    # each mode sits where its blob was drawn (standardised: the same layout up to scale)
    c = d.centres.numpy()
    assert c[0, 0] < 0 < c[1, 0] and c[2, 1] > 0 > c[3, 1]
    # the data itself is high quality on its own modes: within 3 std for ~99 % of a Gaussian
    nearest, hq = d.assign(d.points)
    assert hq.float().mean() > 0.95
    # a run trains on it and its ticks count the drawn modes
    last = train(cfg)
    assert len(last["occupancy"]) == 4
    assert 0 <= last["modes_covered"] <= 4
    # the server takes a run on the upload (dataset csv, data: the stored file)
    r = client.post("/api/runs", json=dict(small, dataset="csv", data=up["path"], steps=40))
    assert r.status_code == 201, r.text
