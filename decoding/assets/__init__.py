"""Data files shipped with fairalign.decoding (the SmolLM2 demo attribute head)."""
