"""A decoding run through the real server and a real worker process: bad input refused with a
422 naming the field, a run that trains and streams frames whose JSON part carries its text
panel, a live switch of its decoder, its history, CSV and replay.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings

pytestmark = [pytest.mark.server]

SMALL = dict(family="decoding", hidden=32, embed=16, tick_every=10, device="cpu")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), max_workers=1, worker_threads=1,
                 frame_rate=20, snapshot_every=2, checkpoint_every=5, stop_timeout=10,
                 pack=False)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


@pytest.mark.parametrize("body, field, words", [
    ({"family": "decoding", "top_p": 2}, "top_p", "[0.01, 1]"),
    ({"family": "decoding", "strategy": "nucleus"}, "strategy", "one of greedy"),
    ({"family": "decoding", "g_width": 8}, "g_width", "unknown knob"),
    ({"family": "decoding", "dataset": "ring8"}, "dataset", "one of templates"),
    ({"family": "decoding", "strategy": "diverse_beam", "beam_width": 4, "groups": 8},
     "groups", "at most 4"),
    ({"dataset": "templates"}, "dataset", "one of ring8"),  # a GAN cannot learn text
])
def test_bad_decoding_input_is_refused_naming_the_field(client, body, field, words):
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["detail"], r.json()


def test_a_decoding_run_streams_its_strings_and_switches_decoder_live(client):
    r = client.post("/api/runs", json=dict(SMALL, preset="decoding-beam-collapse",
                                           steps=1_000_000))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    url = f"/api/runs/{rid}/control"
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["step"] >= 20, timeout=120)
    r = client.post(url, json={"set": {"hidden": 64}})
    assert r.status_code == 422 and r.json()["field"] == "hidden"
    r = client.post(url, json={"set": {"groups": 99}})
    assert r.status_code == 422 and r.json()["field"] == "groups"
    r = client.post(url, json={"set": {"strategy": "sample", "samples": 64}})
    assert r.status_code == 200 and r.json()["accepted"] == {"strategy": "sample", "samples": 64}
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["config_version"] >= 1, timeout=60)
    version_step = client.get(f"/api/runs/{rid}").json()["step"]
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["step"] >= version_step + 20,
             timeout=120)
    client.post(url, json={"action": "stop"})
    run = wait_for(lambda: (j := client.get(f"/api/runs/{rid}").json())["status"] == "done"
                   and j, timeout=60)

    h = client.get(f"/api/runs/{rid}/history").json()
    assert [e["changes"] for e in h["events"] if e["type"] == "config"] == [
        {"strategy": "sample", "samples": 64}]
    before = [t for t in h["ticks"] if t["config_version"] == 0 and t["step"] > 0]
    after = [t for t in h["ticks"] if t["config_version"] == 1]
    assert before and after
    assert all(t["self_bleu"] is not None and 0 <= t["self_bleu"] <= 1 for t in after)
    csv = client.get(f"/api/runs/{rid}/history?format=csv").text.split("\n")[0].split(",")
    assert {"lm_loss", "logprob", "distinct_2", "self_bleu"} <= set(csv)
    assert csv[-6:] == [f"occ_{i}" for i in range(6)]

    r = client.get(f"/api/runs/{rid}/replay")
    msgs = [protocol.decode(m) for m in protocol.unpack_records(r.content)]
    assert msgs[0].type == protocol.REAL and msgs[0].samples.shape[0] == 0  # no points
    frames = msgs[1:]
    assert frames[-1].step == run["step"]
    panels = [f.scalars["panels"]["strings"] for f in frames if "panels" in f.scalars]
    assert panels, "no frame carried the strings"
    last = panels[-1]
    assert last["groups"][0] == "the ANIMAL ACT PLACE" and last["groups"][-1] == "ungrammatical"
    assert 0 < len(last["items"]) <= 64
    assert all(it["group"] in last["groups"] for it in last["items"])
    assert all(f.samples.shape[0] == 0 and len(f.occupancy) == 6 for f in frames)


def test_a_comparison_of_decoders_is_one_group_and_a_bad_variant_is_named(client):
    bad = client.post("/api/compare", json={
        "base": dict(SMALL, preset="decoding-beam-collapse", steps=30),
        "variants": [{"strategy": "beam"}, {"top_p": 0}]})
    assert bad.status_code == 422 and bad.json()["field"] == "variants[1].top_p", bad.text
    r = client.post("/api/compare", json={
        "base": dict(SMALL, preset="decoding-beam-collapse", steps=30), "label": "decoders",
        "variants": [{"strategy": "beam"}, {"strategy": "sample"}]})
    assert r.status_code == 201, r.text
    runs = r.json()["runs"]
    assert [x["config"]["strategy"] for x in runs] == ["beam", "sample"]
    assert all(x["config"]["family"] == "decoding" for x in runs)
    for x in runs:
        wait_for(lambda x=x: client.get(f"/api/runs/{x['id']}").json()["status"] == "done",
                 timeout=180)
    finals = [client.get(f"/api/runs/{x['id']}/history").json()["ticks"][-1] for x in runs]
    # the same seed trains the same model: only the decoder differs
    assert finals[0]["lm_loss"] == pytest.approx(finals[1]["lm_loss"], rel=1e-5)
    assert finals[0]["step"] == finals[1]["step"] == 30
