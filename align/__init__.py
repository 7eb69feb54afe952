"""fairalign.align: preference trainers (rDPO, RPO, logic-derived losses), loss reweighting, model helpers."""
