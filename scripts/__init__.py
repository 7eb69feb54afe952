"""Command-line entry points (installed as fairalign.scripts). Each module exposes make_parser() and main(args)."""
