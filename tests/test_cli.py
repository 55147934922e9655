"""The `collapse-lab` command as a user runs it: a real subprocess, real output."""

import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def cli(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", *args],
                       capture_output=True,
                       text=True, env=ENV, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(p.stderr)
    return p


def test_options_lists_every_objective_remedy_and_knob():
    out = cli("options").stdout
    for word in ("minimax", "nsgan", "wgan-gp", "hinge", "lsgan", "minibatch_disc", "unroll",
                 "--lr-g", "--spectral-norm", "collapse-ring8"):
        assert word in out
    reg = json.loads(cli("options", "--json").stdout)
    assert {k["name"] for k in reg["knobs"]} >= {"objective", "gp", "batch_size", "n_critic"}
    lr = next(k for k in reg["knobs"] if k["name"] == "lr_g")
    assert lr["min"] == 1e-6 and lr["max"] == 0.1 and lr["live"] is True
    # the registry as the one source: every family, with its knobs' and stats' display facts,
    # and each preset's family and machine-readable claim
    from collapse_lab.trainer.families import FAMILIES

    assert [f["name"] for f in reg["families"]] == list(FAMILIES)
    for f in reg["families"]:
        assert f"  {f['name']:<10} {f['label']}" in out
        assert all(k["label"] for k in f["knobs"])
        assert all({"label", "unit", "format", "show", "color"} <= set(s) for s in f["stats"])
    assert lr["label"] == "G learning rate"
    collapse = next(p for p in reg["presets"] if p["name"] == "collapse-ring8")
    assert collapse["family"] == "gan"
    assert collapse["expect"] == {"metric": "modes_covered", "op": "at_most", "value": 3}
    final = json.loads(cli("train", "--steps", "20", "--g-width", "8", "--d-width", "8",
                           "--eval-samples", "100", "--json").stdout)["final"]
    claims = [p for p in reg["presets"] if p["expect"]]
    assert all(p["expect"]["metric"] in final for p in claims if p["family"] == "gan")
    # another family's claim names one of its own stats or a mode metric (what its final
    # metrics carry: its own tests train it)
    metrics = {s["name"] for s in reg["stats"] if s["kind"] == "metric"}
    own = {f["name"]: {s["name"] for s in f["stats"]} for f in reg["families"]}
    assert all(p["expect"]["metric"] in own[p["family"]] | metrics for p in claims)


def test_train_json(tmp_path):
    p = cli("train", "--dataset", "ring8", "--objective", "wgan-gp", "--steps", "40",
            "--g-width", "32", "--d-width", "32", "--eval-samples", "500", "--json",
            "--data-dir", str(tmp_path))
    out = json.loads(p.stdout)
    assert out["config"]["objective"] == "wgan-gp"
    assert out["final"]["step"] == 40
    assert 0 <= out["final"]["modes_covered"] <= 8
    assert out["final"]["term_gp"] > 0
    assert "samples" not in out["final"]  # arrays stay out of the JSON summary
    assert p.stderr == ""  # no progress bar when stderr is not a terminal


def test_train_table_and_preset_override(tmp_path):
    p = cli("train", "--preset", "collapse-ring8", "--objective", "hinge", "--steps", "20",
            "--g-width", "16", "--d-width", "16", "--data-dir", str(tmp_path))
    assert "ring8 / hinge" in p.stdout
    assert "modes covered" in p.stdout and "reverse KL" in p.stdout


def test_a_paper_preset_runs_from_the_cli(tmp_path):
    """PacGAN's own setting (batch-normalised G, maxout D, its ring at half our scale) trains
    from `train --preset`, and its final tick counts modes on PacGAN's ring."""
    p = cli("train", "--preset", "paper-pacgan4-ring8", "--steps", "6", "--tick-every", "3",
            "--eval-samples", "500", "--json", "--data-dir", str(tmp_path))
    out = json.loads(p.stdout)
    cfg = out["config"]
    assert (cfg["g_batchnorm"], cfg["d_maxout"], cfg["pack"], cfg["data_scale"]) == (
        True, 5, 4, 0.5)
    assert out["final"]["step"] == 6 and 0 <= out["final"]["modes_captured"] <= 8


@pytest.mark.parametrize("args,needle", [
    (["--lr-g", "5"], "--lr-g: expected a number in [1e-06, 0.1], got '5'"),
    (["--objective", "gann"], "--objective: expected one of minimax, nsgan"),
    (["--preset", "nope"], "--preset: unknown preset 'nope'"),
    (["--objective", "wgan", "--gp", "10"], "--gp: wgan already constrains"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_exit_2_with_one_line(args, needle):
    p = cli("train", *args, check=False)
    assert p.returncode == 2
    assert needle in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_csv_data_errors_name_the_line(tmp_path):
    f = tmp_path / "pts.csv"
    f.write_text("1,2\n" * 30 + "3,x\n")
    p = cli("train", "--data", str(f), "--steps", "5", check=False)
    assert p.returncode == 2 and "line 31" in p.stderr


def test_save_and_resume(tmp_path):
    ck = tmp_path / "run.pt"
    cli("train", "--steps", "20", "--g-width", "16", "--d-width", "16", "--save", str(ck),
        "--data-dir", str(tmp_path))
    p = cli("train", "--resume", str(ck), "--steps", "40", "--json", "--data-dir", str(tmp_path))
    assert json.loads(p.stdout)["final"]["step"] == 40


def test_train_steps_zero_runs_until_ctrl_c(tmp_path):
    """`--steps 0` trains until stopped: on a terminal the progress line counts steps with no
    end, and the first Ctrl-C ends the run cleanly with its summary."""
    import pty
    import select
    import signal
    import time

    master, slave = pty.openpty()  # stderr on a terminal: the progress line is drawn
    p = subprocess.Popen([sys.executable, "-m", "collapse_lab.server.cli", "train", "--steps", "0",
                          "--g-width", "16", "--d-width", "16", "--eval-samples", "200",
                          "--tick-every", "10", "--json", "--data-dir", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=slave, text=True, env=ENV)
    os.close(slave)
    seen = ""
    deadline = time.monotonic() + 120
    while seen.count("Ctrl-C ends the run") < 3 and time.monotonic() < deadline:
        if select.select([master], [], [], 1.0)[0]:
            seen += os.read(master, 4096).decode(errors="replace")
    assert "Ctrl-C ends the run" in seen, seen
    assert "eta" not in seen and "/0" not in seen  # no bar to an end that does not exist
    assert p.poll() is None  # still training: no end of its own
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    os.close(master)
    assert p.returncode == 0
    result = json.loads(out)
    assert result["config"]["steps"] == 0 and result["final"]["step"] > 0


def test_sweep_refuses_steps_zero():
    p = cli("sweep", "--steps", "0", check=False)
    assert p.returncode == 2 and "--steps: expected a positive integer" in p.stderr


def test_a_paper_table_from_earlier_runs_of_some_presets_only(tmp_path):
    """`sweep --table pacgan --from-csv` prints the rows the CSV has, each paper preset beside
    the published row it reproduces with a verdict over its seeds (none for a row of one seed),
    the lesson presets labelled as such with none, and no row the CSV lacks."""
    from collapse_lab.trainer import sweep as sw

    def row(preset, dataset, seed, captured, hq=95.0, rkl=0.5):
        return dict(label=preset, preset=preset, dataset=dataset, objective="nsgan", seed=seed,
                    steps=100, modes_captured=captured, modes_covered=captured,
                    num_modes=8 if dataset == "ring8" else 25, hq_pct=hq,
                    effective_modes=float(captured), reverse_kl=rkl, max_hopping=0.1,
                    covered_min=captured, covered_max=captured, frac_ticks_le3=1.0, wall_s=1.0,
                    overrides="")

    rows = [row("collapse-ring8", "ring8", s, 1) for s in range(3)]
    rows += [row("paper-pacgan4-ring8", "ring8", s, 8) for s in range(3)]
    rows += [row("paper-pacgan-gan-ring8", "ring8", s, 3 + s % 2) for s in range(3)]
    rows += [row("paper-pacgan-gan-grid25", "grid25", 0, 17, hq=94.0, rkl=0.7)]
    rows += [row("paper-pacgan2-grid25", "grid25", 7, 24)]  # a seed outside --seeds
    path = tmp_path / "runs.csv"
    path.write_text(sw.to_csv(rows))
    out = cli("sweep", "--table", "pacgan", "--seeds", "0-2", "--from-csv", str(path)).stdout
    lines = out.splitlines()
    pac4 = next(x for x in lines if x.startswith("ring8: PacGAN4, PacGAN's setting"))
    assert "8.0 ± 0.0" in pac4 and "PacGAN4: modes 7.8±0.1" in pac4
    # 8 within 7.8 ± 2·0.1; HQ 95.0 within 95.9 ± 2.8; reverse KL 0.5 outside 0.07 ± 0.04
    assert pac4.rstrip().endswith("modes meets, HQ % meets, rKL misses")
    gan = next(x for x in lines if x.startswith("ring8: GAN, PacGAN's setting"))
    # 3, 4, 3: mean 10/3, s.e. √(1/3)/√3 = 1/3; below 6.3 − 2·0.5
    assert " 3  " in gan and "3.3 ± 0.3" in gan and "modes misses" in gan
    collapse = next(x for x in lines if x.startswith("ring8: lesson preset: collapse recipe"))
    assert "GAN:" not in collapse and "meets" not in collapse and "misses" not in collapse
    assert not any(x.startswith("ring8: PacGAN2") for x in lines)
    assert not any(x.startswith("ring8: lesson preset: WGAN-GP") for x in lines)
    grid = next(x for x in lines if x.startswith("grid25: GAN, PacGAN's setting"))
    # one seed: its values without a spread, and no verdict although 17 lies in 17.3 ± 1.6
    assert "17.0" in grid and "±" not in grid.split("GAN:")[0]
    assert grid.rstrip().endswith("1 seed: no verdict")
    assert not any(x.startswith("grid25: PacGAN2") for x in lines)  # seed 7 not asked for
    assert "not measured (no runs in the CSV): PacGAN2 (paper-pacgan2-ring8)" in lines
    assert ("not measured (no runs in the CSV): PacGAN2 (paper-pacgan2-grid25), PacGAN4 "
            "(paper-pacgan4-grid25)") in lines
    assert any(x.startswith("ring8 (8 modes), seeds 0-2:") and "the paper ran 10" in x
               for x in lines)
