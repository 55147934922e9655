"""A small convolutional GAN on the 8×8 digits, with collapse measured by a digits classifier.

    collapse-lab serve                                       # open the page it prints
    python examples/digits_gan.py http://127.0.0.1:8000      # or a folder: runs/

The loop trains in plain PyTorch; `classify=` hands Collapse Lab the digits classifier
(collapse_lab.trainer.digits: a small MLP, about 97 % on held-out digits), so the page counts
which digits the generator makes (a sample is high quality when the classifier is ≥ 90 % sure)
and draws the generated digits as a grid. On seed 0 the generator covers a few digits first (3
at step 170, 5 at 380) and then hops between 6 and 10 of them; raise `lr_d` or `n_critic` in the
page while it runs and watch which digits it makes. 2,000 steps take about 45 s of CPU time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

import collapse_lab
from collapse_lab.trainer.digits import get_classifier, load_digits

Z = 16


class G(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(Z, 64 * 2 * 2), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),  # 4×4
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh())  # 8×8

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(-1, 64, 2, 2))


class D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),  # 4×4
            nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),  # 2×2
            nn.Flatten(), nn.Linear(64 * 2 * 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", nargs="?", default="http://127.0.0.1:8000",
                   help="a Collapse Lab server's URL, or a folder")
    p.add_argument("--token", default=None, help="the server's teacher or writer token")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "collapse-lab-digits"),
                   help="where the digits classifier is kept after its first training")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    images, _ = load_digits()  # (1797, 64) in [-1, 1]
    images = images.view(-1, 1, 8, 8)
    classifier, accuracy = get_classifier(Path(a.cache))
    classifier.eval()
    print(f"digits classifier: {accuracy:.1%} on held-out digits")
    g, d = G(), D()
    run = collapse_lab.track(
        a.target, token=a.token, name="examples/digits_gan.py",
        classify=lambda x: classifier(x.reshape(len(x), 64)), classes=[str(i) for i in range(10)],
        knobs={"lr_g": (2e-4, 1e-5, 1e-2), "lr_d": (2e-4, 1e-5, 1e-2), "n_critic": (1, 1, 10)})
    print(f"tracking run {run.id}" + (f": {run.url}" if run.url else ""))
    opt_g = torch.optim.Adam(g.parameters(), lr=run.knobs["lr_g"], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=run.knobs["lr_d"], betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    batch = 64
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    with run:
        for step in range(a.steps):
            for group in opt_g.param_groups:
                group["lr"] = run.knobs["lr_g"]
            for group in opt_d.param_groups:
                group["lr"] = run.knobs["lr_d"]
            for _ in range(run.knobs["n_critic"]):
                real = images[torch.randint(0, len(images), (batch,))]
                fake = g(torch.randn(batch, Z)).detach()
                loss_d = bce(d(real), ones) + bce(d(fake), zeros)
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
            fake = g(torch.randn(batch, Z))
            loss_g = bce(d(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            run.log(step, samples=fake, d_loss=loss_d.item(), g_loss=loss_g.item())
            if run.stop_requested:
                break
    print(f"done: {run.sent} ticks sent, {run.dropped} dropped")


if __name__ == "__main__":
    main()
