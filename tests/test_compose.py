"""docker-compose.yml and the Dockerfile hold together (no container engine runs here, so their
structure is what can be checked): every service has an image, the profiles are the documented
ones, the Ray services point the server at the Ray head, and every flag a service passes to
`collapse-lab` exists."""

from __future__ import annotations

from pathlib import Path

import yaml

from collapse_lab.server.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_profiles_and_volumes():
    c = compose()
    services = c["services"]
    assert set(services) == {"lab", "lab-gpu", "ray-head", "ray-worker", "lab-ray"}
    assert "profiles" not in services["lab"]  # `docker compose up` starts the CPU dashboard
    assert services["lab-gpu"]["profiles"] == ["gpu"]
    for name in ("ray-head", "ray-worker", "lab-ray"):
        assert services[name]["profiles"] == ["ray"], name
    for name, svc in services.items():
        assert svc.get("image", "").startswith("collapse-lab:"), name
        for v in svc.get("volumes", []):
            assert v.split(":")[0] in c["volumes"], (name, v)
    # one image per variant is built once, by the service that names a build
    built = {svc["image"] for svc in services.values() if "build" in svc}
    assert built == {svc["image"] for svc in services.values()}
    assert services["ray-head"]["build"]["args"]["EXTRAS"] == "[ray]"


def test_the_ray_profile_points_the_server_at_the_head():
    services = compose()["services"]
    head = services["ray-head"]["command"]
    port = next(a.split("=")[1] for a in head if a.startswith("--port="))
    assert "--head" in head
    assert f"--address=ray-head:{port}" in services["ray-worker"]["command"]
    serve = services["lab-ray"]["command"]
    assert serve[:2] == ["collapse-lab", "serve"]
    assert serve[serve.index("--ray-address") + 1] == f"ray-head:{port}"
    assert "ray-head" in services["lab-ray"]["depends_on"]
    ns = build_parser().parse_args(serve[1:])  # every flag exists
    assert ns.backend == "ray" and ns.ray_address == f"ray-head:{port}"
    # the server and the Ray nodes share the data volume: checkpoints are written where a
    # run trains and read where it resumes
    vols = {tuple(services[s]["volumes"]) for s in ("ray-head", "ray-worker", "lab-ray")}
    assert len(vols) == 1


def test_dockerfile_installs_the_extras_it_is_given():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ARG EXTRAS=""' in text and 'pip install ".${EXTRAS}"' in text
    assert "COLLAPSE_LAB_DATA_DIR=/data" in text
