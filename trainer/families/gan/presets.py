"""Named configurations: a lesson's starting point, overridable knob by knob.

A preset is a partial config on top of the defaults (and optionally on top of another preset).
Each lesson preset carries a claim about its final tick (`expect`), and `docs/presets.md` records
how often the claim holds over ten seeds, measured by `bench/calibrate_presets.py`; a preset ships
only when it holds on at least 80 % of them.

How the collapse presets collapse (measured, see docs/presets.md): the discriminator learns five
times faster than the generator (lr 1e-3 against 2e-4) and Adam's β1 is 0.9, so the generator
keeps running after the last place D liked and settles, sharply, on one or two real modes — the
picture of VEEGAN's Table 1 ("GAN: 1 mode, 99.3 % high quality"). The remedy twins keep the data,
the seed, the networks and the collapse preset's optimizer unless their text says otherwise.
"""

from __future__ import annotations

from collapse_lab.trainer.family import Preset

# the steps the paper presets train: fewer than the papers' (PacGAN 400,000, Metz et al.
# 25,000), measured on a shared CPU; docs/presets.md says what the shorter runs show.
# "gan": VEEGAN's GAN row (the demo without unrolling); "metz": the unrolled rows
PAPER_STEPS = {"pacgan": 2000, "gan": 2000, "metz": 1500}


# the collapse recipe shared by the collapse presets (see the module text)
_COLLAPSE = dict(objective="nsgan", lr_g=2e-4, lr_d=1e-3, beta1=0.9, beta2=0.999, batch_size=256,
                 steps=3000)

# the WGAN-GP twin of a collapse preset: Adam β (0.5, 0.9) as in Gulrajani et al., one critic
# step, G's rate 5e-4 against D's 1e-3, and λ 1. A searched setting (docs/presets.md): λ 10, the
# paper's, keeps this small critic too smooth to pull samples within 3 std (0.06) of a ring
# centre in a lesson's length; λ 1 covers every mode by step 3,000 on most seeds.
_WGAN_GP = dict(objective="wgan-gp", gp=1.0, n_critic=1, beta1=0.5, beta2=0.9, lr_g=5e-4,
                lr_d=1e-3, steps=4000)

# PacGAN's 2-D setting (Lin et al. 2018; their code's config for the ring and the grid):
# G 4×400 ReLU with batch norm, z 2-D Gaussian; D three maxout layers of 200 units × 5 pieces;
# weights N(0, 0.02²), zero biases; Adam 1e-4 for both, β1 0.8; batch 100; their ring has radius
# 1, std 0.01 (our ring8 × 0.5). They train 400 epochs of 100,000 samples (400,000 steps): the
# steps here are what a shared CPU allows (docs/presets.md gives the figures).
_PACGAN = dict(dataset="ring8", data_scale=0.5, objective="nsgan", z_dim=2, g_width=400,
               g_depth=4, g_batchnorm=True, activation="relu", d_width=200, d_depth=3,
               d_maxout=5, init_std=0.02, lr_g=1e-4, lr_d=1e-4, beta1=0.8, beta2=0.999,
               batch_size=100, steps=PAPER_STEPS["pacgan"])

# The Unrolled GAN authors' demo (Metz et al. 2017), which VEEGAN's Table 1 rows follow:
# G and D 2×128 tanh, z 256, batch 512, Adam β1 0.5 (D 1e-4, G 1e-3), simultaneous updates,
# 25,000 steps in the paper; the ring of the paper's figure, radius 2, std 0.02 (our ring8).
_METZ = dict(dataset="ring8", objective="nsgan", z_dim=256, g_width=128, g_depth=2,
             d_width=128, d_depth=2, activation="tanh", lr_g=1e-3, lr_d=1e-4, beta1=0.5,
             beta2=0.999, batch_size=512, simultaneous=True, steps=PAPER_STEPS["metz"])

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("vanilla-ring8", "plain non-saturating GAN on the 8-Gaussian ring, default knobs",
           dict(dataset="ring8", objective="nsgan")),
    Preset("vanilla-grid25", "plain non-saturating GAN on the 5×5 grid, default knobs",
           dict(dataset="grid25", objective="nsgan")),
    # ------------------------------------------------------------------ ring8
    Preset("collapse-ring8",
           "Mode collapse on the ring: D learns 5× faster than G and Adam keeps heavy momentum "
           "(β1 0.9), so after a few hundred steps as a blob the generator lands on one of the "
           "eight modes (on a few seeds two or three) and stays there, its samples sharp (high "
           "quality) and the other modes dropped — watch the occupancy bars empty out while "
           "D's landscape stays high around the modes nobody visits.",
           dict(dataset="ring8", **_COLLAPSE), expect=("modes_covered", "at_most", 3)),
    Preset("wgan-gp-ring8",
           "collapse-ring8 switched to WGAN-GP (gradient penalty λ 1, Adam β (0.5, 0.9), G's "
           "rate 5e-4 against D's 1e-3): the generator never locks onto one mode — its mass "
           "spreads round the whole ring as a blurry circle, which then tightens onto the eight "
           "centres until every mode is covered (around step 2,500). The same optimizer with "
           "the non-saturating loss and no penalty still collapses, onto 2 modes on most seeds "
           "(1–5), so the objective is what rescues it here. Switched live onto a collapse-ring8 "
           "run that has already collapsed, these knobs brought 7 or more of the 8 modes back "
           "within 3,000 steps on 4 of 10 seeds: for a sure result start it as a run of its own "
           "(docs/presets.md).",
           _WGAN_GP,
           base="collapse-ring8", expect=("modes_covered", "at_least", 7),
           control=dict(objective="nsgan", gp=0.0)),
    Preset("gp-ring8",
           "collapse-ring8 with a gradient penalty on D (λ 0.3, Gulrajani et al.'s penalty "
           "kept on the non-saturating loss) and G's rate raised to 5e-4, Adam β (0.9, 0.9): "
           "D can no longer build the steep wall that herds the generator, so instead of "
           "settling on one mode the mass spreads and sharpens onto all eight (by around step "
           "3,500). Without the penalty these same knobs collapse, onto 2 modes on most seeds "
           "(1–4). Switched live onto a collapse-ring8 run that has already collapsed, these "
           "knobs brought 7 or more of the 8 modes back within 3,000 steps on 0 of 10 seeds: "
           "start it as a run of its own (docs/presets.md).",
           dict(gp=0.3, lr_g=5e-4, beta2=0.9, steps=4000),
           base="collapse-ring8", expect=("modes_covered", "at_least", 7),
           control=dict(gp=0.0)),
    Preset("pacgan-ring8",
           "collapse-ring8 with packing (PacGAN, Lin et al.): D judges packs of 4 samples "
           "side by side instead of one at a time, and G's rate is raised to 5e-4. A pack "
           "drawn from a collapsed generator holds four copies of one point, which real packs "
           "almost never do, so D can punish the collapse itself: the mass spreads onto more "
           "and more modes and ends with 6–8 of the 8 covered by sharp samples (7 or 8 on most "
           "seeds) by step 7,000. With packing off the same knobs end on 2–6 modes (3 or 4 on "
           "the median seed), never on 7. Switched live onto a collapse-ring8 run that has "
           "already collapsed, these knobs brought 6 or more of the 8 modes back within 3,000 "
           "steps on 2 of 10 seeds: start it as a run of its own (docs/presets.md).",
           dict(pack=4, lr_g=5e-4, steps=7000),
           base="collapse-ring8", expect=("modes_covered", "at_least", 6),
           control=dict(pack=1)),
    Preset("minibatch-ring8",
           "collapse-ring8 with minibatch discrimination (16 kernels of 4, the collapse "
           "preset's own, so a running collapse-ring8 run can be switched to it; batch 64) — "
           "an honest negative: it does not rescue this collapse. D's view of the batch "
           "breaks the single blob on some seeds and the mass spreads round the ring, but the "
           "samples stay blurry between the modes, a few per cent of them high quality at "
           "most, and no mode is covered by the end. A search over batch size, G's rate, "
           "β1, runs of up to 8,000 steps, a data-dependent start for the features and "
           "features fed into D's hidden layer instead of its head found no setting that "
           "recovers. Nor does using it in two stages, on until the mass has spread and then "
           "off so the generator might sharpen: over 10 seeds (2,000 steps on, 2,000 off) 7 "
           "gathered back onto a single mode and 3 stayed a blur, none covering more than 1; "
           "the same knobs without it end on 1 sharp mode (docs/presets.md).",
           dict(minibatch_disc=True, batch_size=64),
           base="collapse-ring8", expect=("modes_covered", "at_most", 1)),
    Preset("unrolled-ring8",
           "collapse-ring8 with G trained against D unrolled 5 Adam steps ahead (Metz et al.; "
           "batch 64 to keep it affordable) — an honest negative: against a D that learns 5× "
           "faster than G with β1 0.9, looking ahead does not help and the generator still "
           "lands on one or two modes. Unrolling is meant for a D slower than G, but at Metz et "
           "al.'s own rates (D 1e-4, G 1e-3, β1 0.5) our runs mostly stayed blurry for 4,000 "
           "steps; the paper trains 25,000 (docs/presets.md). The paper's own setting is "
           "paper-veegan-unrolled5-ring8 (k = 5) and paper-metz-unrolled10-ring8 (k = 10).",
           dict(unroll=5, batch_size=64), base="collapse-ring8",
           expect=("modes_covered", "at_most", 3)),
    Preset("balanced-ring8",
           "collapse-ring8 with the optimizer fixed instead of the loss: β1 0.5 and equal learning "
           "rates (1e-3) for G and D, same loss — the generator keeps up with D and ends with "
           "5–8 of the 8 modes covered by sharp samples (6 or more on most seeds; a few may stay "
           "starved, as in PacGAN's GAN row, 6.3 of 8): this collapse came from the "
           "optimisation, not the objective.",
           dict(lr_g=1e-3, lr_d=1e-3, beta1=0.5, steps=6000), base="collapse-ring8",
           expect=("modes_covered", "at_least", 6)),
    Preset("spectral-ring8", "collapse-ring8 with spectral normalization in D (not calibrated)",
           dict(spectral_norm=True), base="collapse-ring8"),
    # ------------------------------------------------------------------ grid25
    Preset("collapse-grid25",
           "The collapse recipe of collapse-ring8 on the 5×5 grid, where it fails differently: "
           "the generator never locks onto the grid — its samples smear across it and between "
           "the modes, about 2 % of them high quality and 0–1 of the 25 modes covered (VEEGAN's "
           "GAN row: 3.3 modes, 0.5 % high quality), though the nearest-mode counts stay spread.",
           dict(dataset="grid25", **_COLLAPSE), expect=("modes_covered", "at_most", 3)),
    Preset("wgan-gp-grid25",
           "collapse-grid25 switched to WGAN-GP with the settings that rescue the ring (λ 1, "
           "Adam β (0.5, 0.9), G 5e-4 against D 1e-3), given the time the grid needs: for "
           "the first ~12,000 steps it looks no better than the collapse preset — samples "
           "smeared between the 25 modes, a handful covered — then the smear tightens onto the "
           "grid's points and the covered count climbs fast, to 20 or more of 25 by step "
           "20,000 (about two minutes on a CPU). Without WGAN-GP (the non-saturating loss, no "
           "penalty) the same knobs collapse instead: sharp samples on a few modes, about 4 "
           "of 25 covered.",
           _WGAN_GP | dict(steps=20000),
           base="collapse-grid25", expect=("modes_covered", "at_least", 20),
           control=dict(objective="nsgan", gp=0.0)),
    # ------------------------------------------------------------------ the papers' own
    # settings (docs/presets.md: "The papers' settings"); claims from the published numbers
    Preset("paper-pacgan-gan-ring8",
           "PacGAN's GAN row on the ring, in PacGAN's own setting (Lin et al. 2018, Table 1: "
           "6.3 ± 0.5 of 8 modes, 98.2 % high quality): ring of radius 1, std 0.01; G 4×400 "
           "ReLU with batch norm, z 2-D; D 3×200 maxout units of 5 pieces; weights N(0, 0.02²); "
           "Adam 1e-4, β1 0.8, batch 100. The paper trains 400,000 steps; this preset trains "
           "fewer (docs/presets.md says how many and what that changed).",
           dict(_PACGAN), expect=("modes_captured", "at_least", 5)),
    Preset("paper-pacgan2-ring8",
           "PacGAN2 on the ring: paper-pacgan-gan-ring8 with D judging packs of 2 samples "
           "(Table 1: 7.9 ± 0.1 of 8 modes, 95.6 % high quality).",
           dict(pack=2), base="paper-pacgan-gan-ring8",
           expect=("modes_captured", "at_least", 7)),
    Preset("paper-pacgan4-ring8",
           "PacGAN4 on the ring: paper-pacgan-gan-ring8 with D judging packs of 4 samples "
           "(Table 1: 7.8 ± 0.1 of 8 modes, 95.9 % high quality).",
           dict(pack=4), base="paper-pacgan-gan-ring8",
           expect=("modes_captured", "at_least", 7)),
    Preset("paper-veegan-gan-ring8",
           "VEEGAN's GAN row on the ring (Srivastava et al. 2017, Table 1: 1 of 8 modes, 99.3 % "
           "high quality). VEEGAN compares against the Unrolled GAN authors' demo, so this is "
           "that demo's setting without unrolling: G and D 2×128 tanh, z 256, batch 512, "
           "Adam β1 0.5, D 1e-4 and G 1e-3, simultaneous updates, on the ring of radius 2, "
           "std 0.02.",
           _METZ | dict(steps=PAPER_STEPS["gan"]), expect=("modes_captured", "at_most", 2)),
    Preset("paper-veegan-unrolled5-ring8",
           "VEEGAN's Unrolled GAN row on the ring (Table 1: 7.6 of 8 modes, 35.6 % high "
           "quality): paper-veegan-gan-ring8 with G trained against D unrolled 5 steps ahead, "
           "as in Metz et al.'s demo.",
           dict(unroll=5, steps=PAPER_STEPS["metz"]), base="paper-veegan-gan-ring8",
           expect=("modes_captured", "at_least", 6)),
    Preset("paper-metz-unrolled10-ring8",
           "Metz et al. (2017)'s ring figure: 10 unrolling steps recover all 8 modes where the "
           "plain GAN rotates from mode to mode. The demo's setting (2×128 tanh, z 256, batch "
           "512, Adam β1 0.5, D 1e-4, G 1e-3) with k = 10, on the ring of radius 2, std 0.02.",
           dict(unroll=10, steps=PAPER_STEPS["metz"]), base="paper-veegan-gan-ring8",
           expect=("modes_captured", "at_least", 7)),
    Preset("paper-pacgan-gan-grid25",
           "PacGAN's GAN row on the grid (Table 1: 17.3 ± 0.8 of 25 modes, 94.8 % high "
           "quality): paper-pacgan-gan-ring8's networks and optimiser on the 5×5 grid, std "
           "0.05.",
           _PACGAN | dict(dataset="grid25", data_scale=1.0),
           expect=("modes_captured", "at_least", 15)),
    Preset("paper-pacgan2-grid25",
           "PacGAN2 on the grid (Table 1: 23.8 ± 0.7 of 25 modes, 91.3 % high quality).",
           dict(pack=2), base="paper-pacgan-gan-grid25",
           expect=("modes_captured", "at_least", 22)),
    Preset("paper-pacgan4-grid25",
           "PacGAN4 on the grid (Table 1: 24.8 ± 0.2 of 25 modes, 93.6 % high quality).",
           dict(pack=4), base="paper-pacgan-gan-grid25",
           expect=("modes_captured", "at_least", 24)),
    Preset("paper-veegan-gan-grid25",
           "VEEGAN's GAN row on the grid (Table 1: 3.3 of 25 modes, 0.5 % high quality): the "
           "Unrolled GAN demo's setting without unrolling, on the 5×5 grid.",
           _METZ | dict(dataset="grid25", steps=PAPER_STEPS["gan"]),
           expect=("modes_captured", "at_most", 4)),
    Preset("paper-veegan-unrolled5-grid25",
           "VEEGAN's Unrolled GAN row on the grid (Table 1: 23.6 of 25 modes, 16 % high "
           "quality): the demo's setting with 5 unrolling steps, on the 5×5 grid.",
           dict(unroll=5, steps=PAPER_STEPS["metz"]), base="paper-veegan-gan-grid25",
           expect=("modes_captured", "at_least", 21)),
    # ------------------------------------------------------------------ digits
    Preset("collapse-digits",
           "Mode collapse on 8×8 digits with the same recipe: the generator draws clean images "
           "of one class at a time and hops from class to class (7, then 1, then 8 …) as D "
           "catches up — watch one class bar fill, empty, and another fill.",
           dict(dataset="digits", z_dim=32, g_width=256, d_width=256,
                **(_COLLAPSE | dict(batch_size=128, steps=2000))),
           expect=("modes_covered", "at_most", 3)),
]}
