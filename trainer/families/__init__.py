"""The model families Collapse Lab trains (docs/families.md)."""
