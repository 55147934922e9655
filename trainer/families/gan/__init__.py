"""The GAN family: a small generator against a small discriminator, stacked over R runs."""
