"""`fairalign` command: a thin dispatcher over the entry-point modules in this folder.

Each subcommand is a module with `make_parser() -> argparse.ArgumentParser` and `main(args) -> int`.
Modules are imported only when their subcommand runs, so `fairalign --help` is instant.

    fairalign train --config configs/recipes/rdpo/smollm2-135m_lora.yaml
    fairalign eval toxicity --model M --prompts prompts.jsonl
    fairalign --help
"""
from __future__ import annotations

import importlib
import os
import sys

# (words of the subcommand) -> (module in fairalign.scripts, one-line summary)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("train",): ("train", "fine-tune with a recipe (rdpo, rpo, logic, reweight); also under accelerate launch"),
    ("demo",): ("demo", "the main job: short rDPO LoRA fine-tune, UDDIA generation, evaluation suite report"),
    ("generate",): ("generate", "generate text, optionally with UDDIA inference-time adaptation"),
    ("decoding", "train-head"): ("train_head", "train a UDDIA attribute head on a frozen LM"),
    ("logic",): ("logic", "inspect a logic preference structure: truth table, closed form, relations"),
    ("eval", "toxicity"): ("eval_toxicity", "RealToxicityPrompts-style toxicity of one model (`eval run --tasks toxicity`)"),
    ("eval", "occupation"): ("eval_occupation", "occupational bias against BLS labour statistics"),
    ("eval", "bbnli"): ("eval_bbnli", "NLI bias on BBNLI / BBNLI-next"),
    ("eval", "bbnli-next", "build"): ("bbnli_next_build", "build BBNLI-next-style variations for validation"),
    ("eval", "list"): ("eval_list", "the registered evaluation tasks, their settings and data status"),
    ("eval", "run"): ("eval_run", "any registered tasks for one or several systems, one report (also multi-process)"),
    ("eval", "suite"): ("eval_run", "alias of `eval run`"),
    ("env",): ("env", "print library versions and devices (paste into bug reports)"),
}


def _usage() -> str:
    width = max(len(" ".join(words)) for words in COMMANDS)
    lines = ["usage: fairalign <command> [options]", "", "commands:"]
    for words, (_, summary) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<{width}}  {summary}")
    lines.append("")
    lines.append("Run `fairalign <command> --help` for a command's options.")
    return "\n".join(lines)


def resolve(argv: list[str]) -> tuple[tuple[str, ...] | None, list[str]]:
    """Longest prefix of argv that names a command, and the remaining arguments."""
    for n in range(min(3, len(argv)), 0, -1):
        words = tuple(argv[:n])
        if words in COMMANDS:
            return words, argv[n:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    words, rest = resolve(argv)
    if words is None:
        print(f"fairalign: unknown command {' '.join(argv[:2])!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(f"fairalign.scripts.{COMMANDS[words][0]}")
    parser = module.make_parser()
    parser.prog = "fairalign " + " ".join(words)
    return run(module, parser, rest)


def run(module, parser, argv: list[str]) -> int:
    """Parse and run one subcommand. Bad input (a setting, a file, a row; `InputError` or another ValueError,
    a missing file) is one line naming the problem and the fix, exit code 2, like argparse's own errors;
    FAIRALIGN_TRACEBACK=1 shows the traceback too."""
    from fairalign.align.errors import InputError

    try:
        return int(module.main(parse(module, parser, argv)) or 0)
    except (InputError, ValueError, FileNotFoundError) as err:
        if os.environ.get("FAIRALIGN_TRACEBACK"):
            raise
        message = " ".join(str(err).split())  # one line, whatever the message's own line breaks
        if not isinstance(err, InputError):
            message = f"{type(err).__name__}: {message} (FAIRALIGN_TRACEBACK=1 shows where)"
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2


def parse(module, parser, argv):
    """Parse argv; modules that take free-form `--field value` overrides (PASS_THROUGH_UNKNOWN) get the
    unrecognised flags as `args.overrides` and validate them themselves."""
    if getattr(module, "PASS_THROUGH_UNKNOWN", False):
        args, unknown = parser.parse_known_args(argv)
        args.overrides = unknown
        return args
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
