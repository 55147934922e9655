"""The diffusion family: a small denoising diffusion model trained on a few points of a 2-D
dataset, which memorises them when trained long on too few (docs/families.md)."""
