"""fairalign.decoding: inference-time methods (UDDIA).

    from fairalign.decoding import UDDIAConfig, UDDIAGenerator, load_head
"""
from fairalign.decoding.heads import AttributeHead, load_head, save_head, train_head
from fairalign.decoding.uddia import UDDIAConfig, UDDIAGenerateOutput, UDDIAGenerator

__all__ = ["AttributeHead", "UDDIAConfig", "UDDIAGenerateOutput", "UDDIAGenerator", "load_head", "save_head", "train_head"]
