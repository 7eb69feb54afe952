"""fairalign.decoding: inference-time methods (UDDIA)."""
