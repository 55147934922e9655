"""The vae family: a variational autoencoder on the 8×8 digits whose posterior collapses onto
its prior — the decoder ignores z and prior samples become one blurred average digit
(docs/families.md)."""
