"""The engine against a plain reference step, and runs in stacks of any size against runs alone.

The reference (`Plain` below) is a GAN step written the obvious way for one run: plain tensors,
torch.optim's Adam or RMSprop, the losses and penalties written out again from their papers. Both
run in float64 from the same initial weights and the same draws (per D update: a real batch, a
noise batch, interpolation weights; per G update: a noise batch), so they differ only by
rounding, ~1e-16 relative per operation. Adam divides by √v + ε, which can magnify an absolute
rounding error in a gradient by up to lr/ε = 1e5 on an element whose gradient is ~0; over a few
steps that stays below 1e-10 of the parameters' movement. The bound below, 1e-8 of the movement,
holds on any CPU with room to spare, while a wrong value (a learning rate 1 % off, a penalty
dropped, a missing term) moves the result by more than 1e-3 (test_a_wrong_value_is_caught).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.gan.config import make_config
from collapse_lab.trainer.families.gan.engine import Engine
from collapse_lab.trainer.families.gan.state import RunState
from collapse_lab.trainer.loop import Trainer

BASE = dict(batch_size=32, g_width=16, d_width=16, z_dim=4, eval_samples=200, grid_size=8,
            tick_every=5, device="cpu", mbd_kernels=3, mbd_dim=2)
STEPS = 4
BOUND = 1e-8


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def engine(*knob_sets: dict) -> Engine:
    cfgs = [make_config({**BASE, **k}) for k in knob_sets]
    data = make_dataset(cfgs[0]).to("cpu")
    return Engine([RunState.fresh(c, data.dim, False) for c in cfgs], data, torch.device("cpu"))


def flat(module_params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten() for t in module_params.values()])


def run_params(eng: Engine, i: int) -> torch.Tensor:
    st = eng.export(i)
    return torch.cat([flat({n: st.G[n] for n in eng.g_names}),
                      flat({n: st.D[n] for n in eng.d_names})])


# ---------------------------------------------------------------------------- the reference
class Plain:
    """One run, written plainly: weights as leaf tensors, torch.optim, losses from the papers."""

    def __init__(self, knobs: dict):
        self.c = c = make_config({**BASE, **knobs})
        self.data = make_dataset(c).to("cpu")
        st = RunState.fresh(c, 2, False)
        self.g = {n: t.clone().requires_grad_(True) for n, t in st.G.items()}
        self.d = {n: t.clone().requires_grad_(True) for n, t in st.D.items()
                  if not n.startswith("sn_u")}
        self.u = {n: t.clone() for n, t in st.D.items() if n.startswith("sn_u")}
        self.gen = torch.Generator().manual_seed(c.seed)
        opt = (lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(c.beta1, c.beta2))) \
            if c.optimizer == "adam" else \
            (lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, alpha=c.beta2))
        self.opt_g, self.opt_d = opt(self.g.values(), c.lr_g), opt(self.d.values(), c.lr_d)

    # -- networks
    def G(self, z):
        h, n = z, self.c.g_depth + 1
        for i in range(n):
            h = h @ self.g[f"layers.{i}.weight"] + self.g[f"layers.{i}.bias"]
            h = torch.relu(h) if i < n - 1 else h
        return h

    def weights(self, d):
        """D's weight matrices (body…, head over [f, mbd, std]), spectrally normalised if on;
        the first over a pack of m samples (PacGAN: their inputs concatenated)."""
        ws = [d[f"body.{i}.weight"] for i in range(self.c.d_depth)]
        ws[0] = torch.cat([ws[0], d["pack_w"][: 2 * (self.c.pack - 1)]])
        ws.append(torch.cat([d["head.weight"], d["head_mbd"], d["head_std"]]))
        if not self.c.spectral_norm:
            return ws
        out = []
        for i, w in enumerate(ws):  # Miyato et al.: σ ≈ vᵀWu with v = Wu/‖Wu‖
            v = F.normalize(w.detach() @ self.u[f"sn_u{i}"], dim=0)
            out.append(w / (v @ w @ self.u[f"sn_u{i}"]))
        return out

    def power_iteration(self):
        ws = [self.d[f"body.{i}.weight"] for i in range(self.c.d_depth)]
        ws[0] = torch.cat([ws[0], self.d["pack_w"][: 2 * (self.c.pack - 1)]])
        ws.append(torch.cat([self.d["head.weight"], self.d["head_mbd"], self.d["head_std"]]))
        with torch.no_grad():
            for i, w in enumerate(ws):
                v = F.normalize(w @ self.u[f"sn_u{i}"], dim=0)
                self.u[f"sn_u{i}"] = F.normalize(v @ w, dim=0)

    def D(self, x, d=None):
        d = d or self.d
        c = self.c
        ws = self.weights(d)
        h = x
        for i in range(c.d_depth):
            h = torch.relu(h @ ws[i] + d[f"body.{i}.bias"])
        a = h.shape[1]
        head = ws[-1]
        s = (h @ head[:a] + d["head.bias"])[:, 0]
        if c.mbstd:  # Karras et al.: mean over features of the batch std
            s = s + torch.sqrt(h.var(0, unbiased=False) + 1e-8).mean() * head[-1, 0]
        if c.minibatch_disc:  # Salimans et al.: o_b(x_i) = Σ_{j≠i} exp(−‖M_ib − M_jb‖₁)
            m = (h @ d["mbd_T"]).view(len(h), c.mbd_kernels, c.mbd_dim)
            dist = (m[:, None] - m[None, :]).abs().sum(3)  # (B, B, K)
            o = torch.exp(-dist).sum(1) - 1.0
            s = s + (o @ head[a:a + c.mbd_kernels])[:, 0]
        return s

    # -- losses (Goodfellow et al.; Arjovsky et al.; Lim & Ye; Mao et al.)
    def d_loss(self, r, f):
        o = self.c.objective
        if o in ("minimax", "nsgan"):
            return -F.logsigmoid(r).mean() - torch.log1p(-torch.sigmoid(f)).mean()
        if o in ("wgan", "wgan-gp"):
            return f.mean() - r.mean()
        if o == "hinge":
            return torch.relu(1 - r).mean() + torch.relu(1 + f).mean()
        return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()

    def d_real(self, r):
        o = self.c.objective
        return {"minimax": -F.logsigmoid(r).mean(), "nsgan": -F.logsigmoid(r).mean(),
                "wgan": -r.mean(), "wgan-gp": -r.mean(), "hinge": torch.relu(1 - r).mean(),
                "lsgan": 0.5 * ((r - 1) ** 2).mean()}[o]

    def g_loss(self, f):
        o = self.c.objective
        return {"minimax": torch.log1p(-torch.sigmoid(f)).mean(), "nsgan": -F.logsigmoid(f).mean(),
                "wgan": -f.mean(), "wgan-gp": -f.mean(), "hinge": -f.mean(),
                "lsgan": 0.5 * ((f - 1) ** 2).mean()}[o]

    def draw(self):
        b, m = self.c.batch_size, self.c.pack
        return (self.data.sample(m * b, self.gen),
                torch.randn(m * b, self.c.z_dim, generator=self.gen),
                torch.rand(b, 1, generator=self.gen))

    def packs(self, x):  # m consecutive samples -> one row of D's input
        return x.reshape(len(x) // self.c.pack, -1)

    def step(self):
        c = self.c
        if c.simultaneous:  # G's gradient against D before D moves, applied after
            self.g_grad()
            self.d_steps()
            self.opt_g.step()
        else:
            self.d_steps()
            self.g_grad()
            self.opt_g.step()

    def d_steps(self):
        c = self.c
        for _ in range(c.n_critic):
            real, z, eps = self.draw()
            real, fake = self.packs(real), self.packs(self.G(z).detach())
            if c.spectral_norm:
                self.power_iteration()
            loss = self.d_loss(self.D(real), self.D(fake))
            if c.gp_weight > 0:  # Gulrajani et al.: (‖∇D(x̂)‖ − 1)² at x̂ = εx + (1 − ε)x̃
                xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
                (gr,) = torch.autograd.grad(self.D(xh).sum(), xh, create_graph=True)
                loss = loss + c.gp_weight * ((gr.norm(dim=1) - 1) ** 2).mean()
            if c.r1 > 0:  # Mescheder et al.: γ/2 ‖∇D(x)‖² on real data
                xr = real.clone().requires_grad_(True)
                (gr,) = torch.autograd.grad(self.D(xr).sum(), xr, create_graph=True)
                loss = loss + 0.5 * c.r1 * (gr**2).sum(1).mean()
            self.opt_d.zero_grad()
            loss.backward()
            self.opt_d.step()
            if c.objective == "wgan":
                with torch.no_grad():
                    for p in self.d.values():
                        p.clamp_(-c.clip, c.clip)
    def g_grad(self):
        c = self.c
        samples = self.G(torch.randn(c.pack * c.batch_size, c.z_dim, generator=self.gen))
        fake = self.packs(samples)
        if c.unroll:
            dk = self.unrolled(c.unroll)
            real = self.packs(self.data.sample(c.pack * c.batch_size, self.gen))
            loss = self.g_loss(self.D(fake, dk)) - self.d_real(self.D(real, dk))
        else:
            loss = self.g_loss(self.D(fake))
        fake = samples
        if c.entropy > 0:  # Kozachenko–Leonenko: dim · mean log nearest-neighbour distance
            dist = torch.cdist(fake, fake) + torch.eye(len(fake)) * 1e9
            loss = loss - c.entropy * 2 * torch.log(dist.min(1).values + 1e-6).mean()
        self.opt_g.zero_grad()
        for p in self.d.values():  # G's loss reaches D's weights: only G's gradient is kept
            p.requires_grad_(False)
        loss.backward()
        for p in self.d.values():
            p.requires_grad_(True)

    def unrolled(self, k):
        """D after k differentiable Adam steps from the optimizer's state (Metz et al.)."""
        c = self.c
        d = {n: p.detach().requires_grad_(True) for n, p in self.d.items()}
        st = {n: self.opt_d.state.get(p, {}) for n, p in self.d.items()}
        m = {n: s.get("exp_avg", torch.zeros_like(self.d[n])) for n, s in st.items()}
        v = {n: s.get("exp_avg_sq", torch.zeros_like(self.d[n])) for n, s in st.items()}
        t0 = {n: float(s.get("step", 0)) for n, s in st.items()}
        for i in range(k):
            real = self.packs(self.data.sample(c.pack * c.batch_size, self.gen))
            fake = self.packs(self.G(torch.randn(c.pack * c.batch_size, c.z_dim,
                                                 generator=self.gen)))
            loss = self.d_loss(self.D(real, d), self.D(fake, d))
            grads = torch.autograd.grad(loss, list(d.values()), create_graph=True,
                                        allow_unused=True)
            new = {}
            for (n, p), g in zip(d.items(), grads, strict=True):
                if g is None:
                    new[n] = p
                    continue
                t = t0[n] + i + 1
                m[n] = c.beta1 * m[n] + (1 - c.beta1) * g
                v[n] = c.beta2 * v[n] + (1 - c.beta2) * g * g
                mh, vh = m[n] / (1 - c.beta1**t), v[n] / (1 - c.beta2**t)
                new[n] = p - c.lr_d * mh / torch.sqrt(vh + 1e-16)
            d = new
            if c.objective == "wgan":
                d = {n: p.clamp(-c.clip, c.clip) for n, p in d.items()}
        return d

    def params(self, names_g, names_d):
        return torch.cat([flat({n: self.g[n] for n in names_g}),
                          flat({n: self.d[n] for n in names_d})]).detach()


CASES = [
    dict(objective="nsgan"), dict(objective="minimax"), dict(objective="wgan", n_critic=2),
    dict(objective="wgan-gp"), dict(objective="hinge"), dict(objective="lsgan"),
    dict(gp=2.0), dict(r1=1.0), dict(entropy=0.5), dict(minibatch_disc=True),
    dict(mbstd=True), dict(spectral_norm=True), dict(unroll=2),
    dict(unroll=2, objective="wgan", n_critic=1), dict(optimizer="rmsprop"),
    dict(objective="hinge", n_critic=3, gp=1.0, lr_d=3e-4, beta1=0.0, beta2=0.9),
    dict(pack=2), dict(pack=3, gp=1.0, minibatch_disc=True, spectral_norm=True),
    dict(pack=4, unroll=2, entropy=0.2),
    dict(simultaneous=True), dict(simultaneous=True, n_critic=2, objective="wgan-gp"),
]


def relative_error(eng: Engine, i: int, ref: Plain, start: torch.Tensor) -> float:
    got, want = run_params(eng, i), ref.params(eng.g_names, eng.d_names)
    moved = (want - start).norm()
    assert moved > 0
    return float((got - want).norm() / moved)


@pytest.mark.parametrize("knobs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_engine_matches_the_plain_step(knobs):
    eng, ref = engine(knobs), Plain(knobs)
    start = run_params(eng, 0)
    assert torch.equal(start, ref.params(eng.g_names, eng.d_names))  # the same weights
    for _ in range(STEPS):
        eng.step()
        ref.step()
    assert relative_error(eng, 0, ref, start) < BOUND


def test_a_wrong_value_is_caught():
    knobs = dict(objective="nsgan", gp=1.0)
    eng = engine(knobs)
    start = run_params(eng, 0)
    for wrong in (dict(lr_d=BASE.get("lr_d", 1e-3) * 1.01), dict(gp=0.0), dict(beta1=0.51)):
        ref = Plain({**knobs, **wrong})
        e = engine(knobs)
        for _ in range(STEPS):
            e.step()
            ref.step()
        assert relative_error(e, 0, ref, start) > 1e-3, wrong


def test_runs_in_a_stack_are_the_runs_alone():
    """Eight runs differing in seed, values and objective, stacked, against each alone."""
    variants = [dict(seed=1), dict(seed=2, lr_g=3e-4), dict(seed=1, objective="hinge"),
                dict(seed=3, objective="wgan", clip=0.05), dict(seed=1, gp=1.0, r1=0.5),
                dict(seed=4, entropy=0.2, beta1=0.9), dict(seed=2, objective="lsgan"),
                dict(seed=1, objective="wgan-gp")]
    stack = engine(*variants)
    assert len(stack.streams.gens) == 4  # the runs of one seed share one stream
    start = [run_params(stack, i) for i in range(len(variants))]
    for _ in range(STEPS):
        stack.step()
    for i, v in enumerate(variants):
        alone = engine(v)
        for _ in range(STEPS):
            alone.step()
        want = run_params(alone, 0)
        err = float((run_params(stack, i) - want).norm() / (want - start[i]).norm())
        assert err < BOUND, (v, err)


def test_moving_between_engines_keeps_the_series():
    """Through the driver: a run joins a stack, is paused out of it, single-stepped alone,
    resumed back in, and changes shape alone; its series is the one it has alone."""
    ticks: dict[str, list[dict]] = {"a": [], "b": [], "solo": []}

    def cb(name):
        from collapse_lab.trainer.loop import Callbacks

        return Callbacks(on_tick=ticks[name].append, want_picture=lambda: False)

    t = Trainer()
    t.add("a", make_config({**BASE, "seed": 5}), cb("a"))
    t.add("b", make_config({**BASE, "seed": 6, "lr_d": 5e-4}), cb("b"))
    assert t.runs["a"].engine is t.runs["b"].engine  # packed into one stack
    for _ in range(3):
        t.advance()
    t.command("a", {"action": "pause"})
    assert t.runs["a"].engine is not t.runs["b"].engine
    t.advance()  # b alone
    t.command("a", {"action": "step", "n": 2})
    t.advance()
    t.advance()
    t.command("a", {"action": "resume"})
    assert t.runs["a"].engine is t.runs["b"].engine
    for _ in range(3):
        t.advance()
    t.command("a", {"set": {"n_critic": 2}})  # a shape of its own
    assert t.runs["a"].engine is not t.runs["b"].engine
    for _ in range(2):
        t.advance()
    t.command("a", {"set": {"n_critic": 1}})
    for _ in range(2):
        t.advance()
    assert t.runs["a"].step == 12

    solo = Trainer()
    solo.add("solo", make_config({**BASE, "seed": 5}), cb("solo"))
    for _ in range(8):
        solo.advance()
    solo.command("solo", {"set": {"n_critic": 2}})
    for _ in range(2):
        solo.advance()
    solo.command("solo", {"set": {"n_critic": 1}})
    for _ in range(2):
        solo.advance()
    a, s = t.state("a"), solo.state("solo")
    assert a.step == s.step == 12
    pa = torch.cat([flat(a.G), flat(a.D)])
    ps = torch.cat([flat(s.G), flat(s.D)])
    p0 = torch.cat([flat(v) for v in (RunState.fresh(a.cfg, 2, False).G,
                                      RunState.fresh(a.cfg, 2, False).D)])
    assert float((pa - ps).norm() / (ps - p0).norm()) < BOUND
    # the same ticks, plus one after each single step taken while paused (steps 4 and 5)
    assert [x["step"] for x in ticks["solo"]] == [0, 5, 10]
    assert [x["step"] for x in ticks["a"]] == [0, 4, 5, 10]


def test_unrolled_generator_gradient_is_the_surrogates():
    """G's gradient with unrolling is the gradient of f(θ_G, θ_D^K(θ_G)) — D's real-data term
    included — checked against central finite differences in float64."""
    eng = engine(dict(unroll=3, objective="nsgan", lr_d=0.05))
    for _ in range(2):
        eng.step()  # give the optimizer a state to unroll from
    state = [g.get_state() for g in eng.streams.gens]

    def surrogate() -> torch.Tensor:
        for g, s in zip(eng.streams.gens, state, strict=True):
            g.set_state(s)
        return eng.g_objective().sum()

    eng.D.requires_grad_(False)
    w = eng.G.layers[0].weight
    eng.flat_g.zero_grad()
    surrogate().backward()
    grad = w.grad.detach().clone()
    h = 1e-6
    for idx in [(0, 0, 0), (0, 1, 3), (0, 3, 7)]:
        with torch.no_grad():
            w[idx] += h
        up = float(surrogate().detach())
        with torch.no_grad():
            w[idx] -= 2 * h
        down = float(surrogate().detach())
        with torch.no_grad():
            w[idx] += h
        fd = (up - down) / (2 * h)
        # central differences are exact to O(h²·f''') ≈ 1e-10 here, far below the gradient
        assert abs(fd - float(grad[idx])) <= 1e-6 * max(1.0, abs(fd)), (idx, fd, grad[idx])


def test_feature_switched_on_starts_its_optimizer_state_afresh():
    """Minibatch discrimination switched on mid-run: D's scores are unchanged at the switch,
    and the new head weights' first Adam update is a first update (≈ lr·sign(g)), not ~10×."""
    eng = engine(dict(lr_d=1e-3, beta1=0.9))
    for _ in range(20):
        eng.step()
    x = torch.randn(1, 32, 2)
    before = eng._d(x).detach()
    eng.apply(0, {"minibatch_disc": True})
    assert torch.allclose(eng._d(x), before, atol=1e-12)
    i = Engine._param_index(eng.flat_d, eng.D.head_mbd)
    j = Engine._param_index(eng.flat_d, eng.D.body[0].weight)
    assert float(eng.opt_d.t[i, 0]) == 0.0 and float(eng.opt_d.t[j, 0]) == 20.0
    eng.step()
    step = eng.D.head_mbd.detach().abs().max()
    assert float(step) <= 1e-3 * (1 + 1e-6)  # Adam's first step is at most lr per element


def test_packing_switched_on_keeps_d_at_the_switch():
    """From 1 to 3 samples a pack mid-run: the new input weights start at zero, so D scores a
    pack exactly as it scored its first sample, and their Adam state starts afresh."""
    eng = engine(dict(lr_d=1e-3))
    for _ in range(10):
        eng.step()
    x = torch.randn(1, 16, 2)
    before = eng._d(x).detach()
    eng.apply(0, {"pack": 3})
    packs = torch.cat([x, torch.randn(1, 16, 4)], dim=2)  # each row: x and two more samples
    assert torch.allclose(eng._d(packs), before, atol=1e-12)
    i = Engine._param_index(eng.flat_d, eng.D.pack_w)
    assert float(eng.opt_d.t[i, 0]) == 0.0
    eng.step()
    assert float(eng.D.pack_w.detach().abs().max()) <= 1e-3 * (1 + 1e-6)  # a first Adam step


def test_checkpoint_continues_exactly(tmp_path):
    knobs = dict(unroll=2, spectral_norm=True, mbstd=True, steps=8)
    full = engine(knobs)
    for _ in range(8):
        full.step()
    half = engine(knobs)
    for _ in range(4):
        half.step()
    half.export(0).save(tmp_path / "ck.pt")
    st = RunState.load(tmp_path / "ck.pt")
    resumed = Engine([st], half.data, torch.device("cpu"))
    for _ in range(4):
        resumed.step()
    assert torch.equal(run_params(full, 0), run_params(resumed, 0))
