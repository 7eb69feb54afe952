"""`fairalign generate`: generate text from a model, optionally with UDDIA inference-time adaptation.

    fairalign generate --model smollm2 --prompt "You are such a"                       # plain sampling
    fairalign generate --model smollm2 --uddia-head demo --prompt "You are such a"     # UDDIA, shipped demo head
    fairalign generate --model gpt2-large --uddia-head head.pt --uddia-trigger-threshold 0.5 \\
        --prompts-file prompts.txt --num-return-sequences 5 --out samples.jsonl
    fairalign generate --model smollm2 --uddia-debias-only --prompt "The nurse said that"   # UDDIA-b

Every UDDIAConfig field is a flag `--uddia-<field>` (use "none" for None), e.g. `--uddia-redo-ppl-threshold none`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json


def _optional(kind):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    return parse


def add_uddia_args(parser: argparse.ArgumentParser) -> None:
    from fairalign.decoding.uddia.config import UDDIAConfig

    group = parser.add_argument_group("UDDIA (each UDDIAConfig field; defaults are the paper's)")
    for f in dataclasses.fields(UDDIAConfig):
        kind = type(f.default) if f.default is not None else (int if f.name == "num_tuned_layers" else float)
        group.add_argument(f"--uddia-{f.name.replace('_', '-')}", dest=f"uddia_{f.name}", default=argparse.SUPPRESS,
                           type=_optional(kind), help=f"{f.metadata.get('help', '')} (default: {f.default})")


def uddia_config_from_args(args):
    """UDDIAConfig from the --uddia-* flags that were given (absent flags keep the paper's defaults)."""
    from fairalign.decoding.uddia.config import UDDIAConfig

    given = {f.name: getattr(args, f"uddia_{f.name}") for f in dataclasses.fields(UDDIAConfig) if hasattr(args, f"uddia_{f.name}")}
    return UDDIAConfig(**given)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Generate text, optionally with UDDIA (detox + debias at inference time).")
    p.add_argument("--model", default="smollm2", help="Hub id, local path, or 'smollm2' (embedded default)")
    p.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    p.add_argument("--prompts-file", default=None, help="text file, one prompt per line")
    p.add_argument("--uddia-head", default=None, help="attribute head file (.pt/.json) or 'demo' (SmolLM2 demo head)")
    p.add_argument("--uddia-debias-only", action="store_true", help="UDDIA-b: debias term only, no attribute head")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--greedy", action="store_true", help="greedy decoding (default: sampling)")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--num-return-sequences", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU, bfloat16 on CUDA)")
    p.add_argument("--out", default=None, help="write JSONL rows {prompt, sample, continuation, ...}")
    add_uddia_args(p)
    return p


def _prompts(args) -> list[str]:
    from fairalign.align.errors import InputError, require_path

    prompts = list(args.prompt)
    for i, text in enumerate(prompts):
        if not text.strip():
            raise InputError(f"--prompt number {i + 1} is empty: there is nothing to continue; give some text "
                             "(for unconditional samples, start from a word such as 'The')")
    if args.prompts_file:
        path = require_path(args.prompts_file, "--prompts-file", "give a text file with one prompt per line")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise InputError(f"--prompts-file {path}: not UTF-8 ({err.reason} at byte {err.start}); re-save it as UTF-8") from None
        prompts += [line for line in lines if line.strip()]
    if not prompts:
        raise InputError("no prompts: pass --prompt TEXT (repeatable) or --prompts-file FILE with non-empty lines")
    return prompts


def _check_settings(args) -> None:
    """Every number of the command line checked before the model loads (one line naming the flag)."""
    from fairalign.align.validation import check_number

    for flag, value, interval in [("--max-new-tokens", args.max_new_tokens, "[1, inf)"), ("--top-k", args.top_k, "[0, inf)"),
                                  ("--num-return-sequences", args.num_return_sequences, "[1, inf)"),
                                  ("--batch-size", args.batch_size, "[1, inf)")]:
        check_number(value, flag, interval, integer=True)
    check_number(args.top_p, "--top-p", "(0, 1]")
    check_number(args.temperature, "--temperature", "(0, inf)")
    uddia_config_from_args(args)  # UDDIAConfig validates the --uddia-* values given


def main(args) -> int:
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer

    prompts = _prompts(args)
    _check_settings(args)
    model, tokenizer = load_model_and_tokenizer(args.model, dtype=args.dtype, device=args.device)
    generator = model
    use_uddia = args.uddia_head is not None or args.uddia_debias_only
    if use_uddia:
        from fairalign.decoding import UDDIAGenerator
        from fairalign.decoding.heads import demo_head_path, load_head

        head = None
        if args.uddia_head is not None:
            head = load_head(demo_head_path() if args.uddia_head == "demo" else args.uddia_head, model=model)
        generator = UDDIAGenerator(model, tokenizer, uddia_config_from_args(args), attribute_head=head)
    torch.manual_seed(args.seed)
    rows = []
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start : start + args.batch_size]
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                 for t in chunk] if args.chat else chunk
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not args.chat).to(model.device)
        kwargs = dict(max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                      num_return_sequences=args.num_return_sequences, pad_token_id=tokenizer.pad_token_id)
        if not args.greedy:
            kwargs.update(top_p=args.top_p, top_k=args.top_k, temperature=args.temperature)
        with torch.no_grad():
            seqs = generator.generate(**enc, **kwargs)
        new = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        stats = getattr(generator, "last_output", None)
        for i, text in enumerate(new):
            row = {"prompt": chunk[i // args.num_return_sequences], "sample": i % args.num_return_sequences,
                   "continuation": text, "method": "uddia" if use_uddia else "plain"}
            if use_uddia and stats is not None:
                row.update(adapted_steps=int(stats.adapted_steps[i]), perplexity=float(stats.perplexity[i]),
                           tuned_layers=int(stats.tuned_layers[i]))
            rows.append(row)
            print(f"[{row['prompt']!r} #{row['sample']}] {text}")
    if args.out:
        from fairalign.align.files import write_bytes_atomic

        write_bytes_atomic(args.out, "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8"))
        print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
