"""The evolution family: a genetic algorithm whose fitness is the data's density, one peak per
mode — the same collapse as a GAN's, without a neural network (docs/families.md)."""
