"""The decoding family: a small language model trained on a synthetic language of known
templates, whose decoded strings collapse onto the likeliest template under beam search
(docs/families.md)."""
