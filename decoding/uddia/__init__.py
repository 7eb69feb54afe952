"""UDDIA: unified detoxifying and debiasing by inference-time adaptive optimisation (Yang et al., ICLR 2023)."""
from fairalign.decoding.uddia.config import UDDIAConfig
from fairalign.decoding.uddia.generator import UDDIAGenerateOutput, UDDIAGenerator

__all__ = ["UDDIAConfig", "UDDIAGenerator", "UDDIAGenerateOutput"]
