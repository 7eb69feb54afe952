"""UDDIA reproduction (Yang et al., ICLR 2023): detoxify and debias at inference time at a small fluency cost.

Claim tested: UDDIA's per-token adaptation lowers the toxicity of sampled continuations at a small cost in
fluency (perplexity under another LM) and diversity; its debias term narrows the gap between demographic groups,
and detoxifying alone can widen it. Offline: the embedded SmolLM2-135M-Instruct as the generator, the shipped
demo head (decoding/assets/smollm2_demo_head.json: a profanity proxy distilled from alt-profanity-check) as the
attribute model, our own prompts (scripts/repro/data/uddia_*.txt).

Toxicity part: plain sampling and UDDIA-t (detox only) at several settings (SETTINGS: learning rate, trigger
threshold, look-ahead, the paper's redo) on provocative and on neutral openings; k samples per prompt, scored by
--scorers (default hatesonar, better-profanity -- neither trained the head -- and profanity, the proxy the head was
distilled from). Expected max toxicity and toxicity probability (>= 0.5), their per-prompt paired differences to
plain sampling (bootstrap over prompts), perplexity under --evaluator (default gemma3-270m, not the generator),
the generator's own perplexity, Dist-1/2/3, tokens/s, the adapted fraction, and two behaviours: samples of one
prompt beginning alike (same-opening share) and redo rows still above its threshold after the last try.
Bias part: group-swapped templates (scripts/repro/data/uddia_group_templates.txt; axes gender and religion,
AXES), VADER compound sentiment of the continuations as a regard proxy, the gap between the groups' means under
plain sampling, UDDIA-b (debias only), UDDIA-t (detox only, every token as the paper), UDDIA-u (both) and the
toxicity part's base setting.

Jobs are (seed, setting, part, chunk of prompts); each seeds its sampling by (seed, part, chunk) alone, so every
setting sees the same random numbers (paired comparisons) and --workers / --resume give the same rows.
Full default, estimated from per-sample costs timed on SmolLM2 (COST_PER_SAMPLE, 1 thread): about 5,900
CPU-seconds, i.e. ~50 min wall with 2 workers on the 2-core CPU, plus model loading and scoring (a few minutes);
the script prints its own estimate for the options given.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from fairalign.scripts.repro import harness
from fairalign.scripts.repro import uddia_metrics as um
from fairalign.scripts.repro import uddia_report
from fairalign.scripts.repro.uddia_report import TOX_PARTS

NAME = "uddia"
RESUMABLE = True  # every job seeds itself: a resumed or parallel run writes the rows an uninterrupted one writes
DEFAULT_SEEDS = 1  # CIs are bootstrapped over prompts; --seeds S repeats the sampling with S seeds (S x the time)
DATA = Path(__file__).resolve().parent / "data"
PART_IDS = {"provocative": 0, "neutral": 1, "gender": 2, "religion": 3}  # in the sampling seed

# UDDIA-t settings for SmolLM2: the base is docs/uddia.md's one-pass setting (the paper's lr 0.06 without redo
# degrades a small no-bias model); every other setting changes one knob of it. "head": False = no attribute head.
BASE = {"lr": 0.01, "trigger_threshold": 0.5, "lookahead_steps": 1, "redo_ppl_threshold": None, "debias_weight": 0.0}
SETTINGS: dict[str, dict | None] = {
    "plain": None,  # model.generate
    "base": BASE,
    "redo": {**BASE, "lr": 0.06, "redo_ppl_threshold": 30.0, "redo_layer_step": 3},  # the paper's lr and redo
    "lr=0.06": {**BASE, "lr": 0.06},
    "trigger=0.3": {**BASE, "trigger_threshold": 0.3},
    "lookahead=0": {**BASE, "lookahead_steps": 0},
    # not in the default run (time): pass them with --settings
    "lr=0.03": {**BASE, "lr": 0.03},
    "trigger=none": {**BASE, "trigger_threshold": None},  # adapt at every token, as the paper
    "trigger=0.7": {**BASE, "trigger_threshold": 0.7},  # fewer false alarms of the proxy head on neutral text?
    "paper": {**BASE, "lr": 0.06, "trigger_threshold": None, "redo_ppl_threshold": 30.0, "redo_layer_step": 3},
    # bias part: debias only, detox only and both, at every token as the paper (the trigger concerns the head only)
    "uddia-b": {**BASE, "trigger_threshold": None, "debias_weight": 0.05, "head": False},
    "uddia-t": {**BASE, "trigger_threshold": None},
    "uddia-u": {**BASE, "trigger_threshold": None, "debias_weight": 0.05},
}
TOX_DEFAULT = ["plain", "base", "redo", "lr=0.06", "trigger=0.3", "lookahead=0"]
BIAS_DEFAULT = ["plain", "base", "uddia-b", "uddia-t", "uddia-u"]
QUICK_TOX, QUICK_BIAS = ["plain", "base", "redo"], ["plain", "uddia-b", "uddia-u"]  # --quick: one of each code path
# --quick's 2-layer model tunes 1 layer by default, so redo would have one attempt: give it two
QUICK_OVERRIDES = {"redo": {"num_tuned_layers": 2, "redo_layer_step": 1}}
# Group terms per axis ({who}); the debias term's word lists: gender is decoding/uddia/wordlists.py's built-in
# list, religion is ours (aligned triples: Christian/Muslim/Jewish, church/mosque/synagogue, ...). The token
# threshold of Q_a: the paper's 0.75 for two groups is a logit margin of ln 3 over the other group; the same margin
# over each of two others is p > 0.6 (at 0.75 no SmolLM2 token is "Muslim" enough: the largest p(muslim|v) is 0.705).
AXES = {
    "gender": {"groups": {"female": "the woman", "male": "the man"}, "words": "gender", "token_threshold": 0.75},
    "religion": {"groups": {"christian": "the Christian student", "muslim": "the Muslim student",
                            "jewish": "the Jewish student"}, "words": str(DATA / "uddia_religion_words.json"),
                 "token_threshold": 0.6},
}
# CPU-seconds per sample of 20 tokens, SmolLM2, 1 torch thread, ~32 rows a batch: (provocative, neutral or bias
# prompt). plain and base were timed (8 prompts x 4 samples each, 2026-12-06, on the shared machine: user CPU time);
# the rest are extrapolated: per adapted token ~0.13 s, redo ~4.7x base (docs/bench/uddia.md), the rest guessed.
COST_PER_SAMPLE = {"plain": (0.55, 0.6), "base": (1.55, 0.84), "lr=0.06": (1.55, 0.84), "lr=0.03": (1.55, 0.84),
                   "trigger=0.3": (2.0, 1.0), "trigger=0.7": (1.3, 0.75), "lookahead=0": (1.05, 0.7), "redo": (7.3, 4.0),
                   "trigger=none": (3.1, 3.1), "paper": (15.0, 15.0), "uddia-b": (1.5, 1.5), "uddia-t": (3.1, 3.1),
                   "uddia-u": (3.3, 3.3)}
EVALUATOR_COST = 0.45  # CPU-seconds per continuation under gemma3-270m (from its FLOPs; not timed)
# Settings tried before the full run
TRIED: list[dict] = [
    {"what": "timing slice: SmolLM2, 8 provocative + 8 neutral prompts x 4 samples x 20 tokens, plain and base, "
             "1 thread under a concurrent load", "decision": "sizes of the full default (COST_PER_SAMPLE)"},
]


def add_arguments(parser) -> None:
    parser.add_argument("--settings", default=None,
                        help=f"toxicity-part settings, comma-separated, from {sorted(SETTINGS)} (default "
                             f"{','.join(TOX_DEFAULT)}; --quick {','.join(QUICK_TOX)})")
    parser.add_argument("--bias_settings", default=None,
                        help=f"bias-part settings ('' skips it; default {','.join(BIAS_DEFAULT)}; "
                             f"--quick {','.join(QUICK_BIAS)})")
    parser.add_argument("--provocative", type=int, default=40, help="provocative prompts (the file's first N of 200)")
    parser.add_argument("--neutral", type=int, default=24, help="neutral prompts (the file's first N of 200)")
    parser.add_argument("--samples", type=int, default=4, help="k: samples per prompt (toxicity part)")
    parser.add_argument("--templates", type=int, default=24, help="group-swapped templates (bias part; of 24)")
    parser.add_argument("--bias_samples", type=int, default=2, help="samples per group-swapped prompt")
    parser.add_argument("--new_tokens", type=int, default=20, help="tokens per continuation (the protocol's 20)")
    parser.add_argument("--top_p", type=float, default=0.9)
    parser.add_argument("--chunk", type=int, default=8, help="prompts (bias part: templates) per job")
    parser.add_argument("--scorers", default="hatesonar,better-profanity,profanity",
                        help="toxicity scorers, get_scorer names (the first is the plot's); 'profanity' is the "
                             "proxy the demo head was distilled from, so it is not independent of the head")
    parser.add_argument("--evaluator", default="gemma3-270m",
                        help="LM for perplexity (not the generator); if it cannot load, the generator itself, loudly")
    parser.add_argument("--head", default="demo", help="attribute head file, or 'demo' (the shipped SmolLM2 head)")
    parser.add_argument("--head_labeller", default=None,
                        help="the scorer whose labels trained --head (the tables mark it as not independent); default "
                             "'profanity' for the demo head, none for another head")


# ------------------------------------------------------------------------------------------------ data
def read_lines(path: Path) -> list[str]:
    """Non-empty lines that are not # comments."""
    return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def toxicity_prompts() -> dict[str, list[str]]:
    return {part: read_lines(DATA / f"uddia_{part}.txt") for part in TOX_PARTS}


def fill(template: str, who: str) -> str:
    return template.replace("{Who}", who[0].upper() + who[1:]).replace("{who}", who)


def bias_prompts(templates: list[str]) -> dict[str, list[dict]]:
    """{axis: [{"template": t, "group": g, "text": ...}]}, template-major, every group of a template together."""
    return {axis: [{"template": t, "group": g, "text": fill(templates[t], who)}
                   for t in range(len(templates)) for g, who in spec["groups"].items()]
            for axis, spec in AXES.items()}


def chunks(part: str, prompts: dict, size: int) -> list[list[int]]:
    """Prompt indices per job: `size` prompts, or for a bias axis `size` templates with all their groups."""
    n = len(prompts[part])
    step = size if part in TOX_PARTS else size * len(AXES[part]["groups"])
    return [list(range(i, min(i + step, n))) for i in range(0, n, step)]


def jobs(tox: list[str], bias: list[str], prompts: dict, size: int, seeds: int) -> list[tuple]:
    """(seed, setting, part, chunk) in run order: the toxicity settings as listed (slow redo early, so two workers
    end together), then the bias part."""
    out = [(s, name, part, c) for name in tox for part in TOX_PARTS
           for c in range(len(chunks(part, prompts, size))) for s in range(seeds)]
    out += [(s, name, axis, c) for name in bias for axis in AXES
            for c in range(len(chunks(axis, prompts, size))) for s in range(seeds)]
    return out


def _job(run: dict) -> tuple:
    return run["seed"], run["setting"], run["part"], run["chunk"]


def estimate_seconds(todo: list[tuple], prompts: dict, args) -> float:
    """CPU-seconds the jobs take by COST_PER_SAMPLE (scaled to --new_tokens) plus the evaluator's perplexity."""
    total = 0.0
    for _, name, part, chunk in todo:
        k = args.samples if part in TOX_PARTS else args.bias_samples
        rows = len(chunks(part, prompts, args.chunk)[chunk]) * k
        cost = COST_PER_SAMPLE.get(name, (3.0, 3.0))[0 if part == "provocative" else 1] * args.new_tokens / 20
        total += rows * (cost + (EVALUATOR_COST if part in TOX_PARTS else 0.0))
    return total


# ------------------------------------------------------------------------------------------------ models
def load_generator(quick: bool, head_arg: str):
    """(model, tokenizer, head): SmolLM2 + the demo head, or a tiny random Llama + a random head."""
    import torch

    from fairalign.decoding import load_head

    if quick:
        from fairalign.align.testing import tiny_llama, tiny_tokenizer
        from fairalign.decoding.heads import random_head

        model = tiny_llama()
        return model, tiny_tokenizer(padding_side="left"), random_head(model.config.hidden_size, seed=0, scale=4.0)
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding.heads import demo_head_path

    model, tokenizer = load_model_and_tokenizer("smollm2", dtype=torch.float32, device="cpu")
    head = load_head(demo_head_path() if head_arg == "demo" else head_arg, model=model)
    return model.eval(), tokenizer, head


def load_evaluator(name: str, quick: bool, generator, log):
    """(model, tokenizer, info) of the perplexity LM. One that cannot load stops the run before any generation:
    a perplexity quietly measured under another model (the generator, say) would not be the number asked for.
    Naming the generator itself (--evaluator smollm2) is allowed, and the tables say it is not independent."""
    import torch

    if quick:
        from fairalign.align.testing import tiny_llama, tiny_tokenizer

        return tiny_llama(seed=1, hidden_size=48), tiny_tokenizer(), {"requested": "tiny random Llama (quick)",
                                                                       "used": "tiny random Llama (quick)"}
    from fairalign.align.modeling import EMBEDDED_ALIASES, load_model_and_tokenizer

    try:
        model, tokenizer = load_model_and_tokenizer(name, dtype=torch.float32, device="cpu")
    except Exception as err:  # noqa: BLE001 -- any load failure: stop, naming the fix
        raise SystemExit(f"--evaluator {name!r} could not be loaded ({type(err).__name__}: {str(err)[:200]}); install "
                         "the default with `bash scripts/setup.sh repro` (Gemma-3-270m), or name another local model "
                         "or Hub id") from err
    info = {"requested": name, "used": name}
    if name.lower() in EMBEDDED_ALIASES:
        info["fallback"] = ("perplexity under the generator itself (SmolLM2, --evaluator smollm2): NOT an independent "
                            "evaluator")
        log(info["fallback"])
    return model.eval(), tokenizer, info


def fake_scorers() -> dict:
    """--quick only: a tiny random model's bytes say nothing to a real scorer; these check the plumbing."""
    return {"FAKE-length (quick)": lambda texts: [min(1.0, len(t.split()) / 6) for t in texts],
            "FAKE-symbols (quick)": lambda texts: [min(1.0, 2 * sum(not (c.isalpha() or c.isspace()) for c in t)
                                                       / max(1, len(t))) for t in texts]}


def check_head_labeller(name: str | None) -> None:
    """A misspelt --head_labeller would mark no scorer as the head's teacher, and the tables would call the teacher
    independent: refuse a name get_scorer would not know."""
    from fairalign.eval.toxicity.scorers import SCORERS, names_a_scorer

    if name is not None and not names_a_scorer(name):
        raise SystemExit(f"--head_labeller {name!r} is not a scorer: use one of {sorted(SCORERS)} or a classifier's "
                         "Hub id / local path (the scorer whose labels trained --head)")


def load_scorers(names: list[str], head_labeller: str | None) -> tuple[dict, list[dict]]:
    """({name: scorer}, descriptions); a scorer that does not load stops the run before any generation. The one
    named `head_labeller` labelled the head's training data: it judges UDDIA by the head's own teacher."""
    from fairalign.eval.toxicity.scorers import describe_scorer, get_scorer

    scorers, info = {}, []
    for name in names:
        try:
            scorers[name] = get_scorer(name)
        except Exception as err:  # noqa: BLE001 -- name the scorer and the fix, whatever failed
            raise SystemExit(f"--scorers: scorer {name!r} did not load ({type(err).__name__}: {err}); install what it "
                             "needs or choose others, e.g. --scorers profanity") from err
        d = describe_scorer(scorers[name])
        info.append({"name": name, "notice": d.get("notice"), "trained_the_head": name == head_labeller})
    return scorers, info


def vader(texts: list[str]) -> list[float]:
    from fairalign.scripts.repro.sentiment import gold_reward

    return gold_reward(texts)


# ------------------------------------------------------------------------------------------------ generation
def eos_ids(model, tokenizer) -> set[int]:
    """The ids generate() stops at: the generation config's (we pass none), else the tokenizer's."""
    ids = model.generation_config.eos_token_id
    if ids is None:
        ids = tokenizer.eos_token_id
    return set(ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids])


def plain_generate(model, enc, kwargs, eos: set[int]):
    """model.generate; returns (new tokens, lengths up to and including EOS, NLL of each continuation under the
    model's raw logits -- the perplexity UDDIA's redo reads)."""
    import torch

    out = model.generate(**enc, **kwargs, return_dict_in_generate=True, output_logits=True)
    new = out.sequences[:, enc["input_ids"].shape[1]:]
    lengths, nll = [], []
    for row in range(new.shape[0]):
        tokens = new[row].tolist()
        n = next((i + 1 for i, t in enumerate(tokens) if t in eos), len(tokens))
        logps = [torch.log_softmax(out.logits[t][row].float(), -1)[tokens[t]] for t in range(n)]
        lengths.append(n)
        nll.append(-float(sum(logps)) if logps else 0.0)
    return new, lengths, nll


def config_of(name: str, quick: bool) -> dict | None:
    """The setting's UDDIAConfig fields (None = plain sampling), with --quick's overrides."""
    if SETTINGS[name] is None:
        return None
    return {**SETTINGS[name], **(QUICK_OVERRIDES.get(name, {}) if quick else {})}


def make_generator(model, tokenizer, head, config: dict, part: str):
    from fairalign.decoding import UDDIAConfig, UDDIAGenerator

    kwargs = dict(config)
    use_head = kwargs.pop("head", True)
    if kwargs.get("debias_weight", 0) > 0:
        axis = AXES[part if part in AXES else "gender"]
        kwargs["debias_groups"], kwargs["debias_token_threshold"] = axis["words"], axis["token_threshold"]
    return UDDIAGenerator(model, tokenizer, UDDIAConfig(**kwargs), attribute_head=head if use_head else None)


def generate_job(job, ctx) -> dict:
    """One job: sample k continuations of each prompt of the chunk with the setting; time the sampling; the
    evaluator's NLL of each continuation (toxicity part)."""
    import torch

    seed, name, part, chunk = job
    model, tokenizer, head = ctx["model"], ctx["tokenizer"], ctx["head"]
    idx = chunks(part, ctx["prompts"], ctx["chunk"])[chunk]
    texts = [p if isinstance(p, str) else p["text"] for p in (ctx["prompts"][part][i] for i in idx)]
    k = ctx["samples"] if part in TOX_PARTS else ctx["bias_samples"]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    kwargs = {"max_new_tokens": ctx["new_tokens"], "do_sample": True, "top_p": ctx["top_p"], "top_k": 0,
              "temperature": 1.0, "num_return_sequences": k, "pad_token_id": tokenizer.pad_token_id}
    config = config_of(name, ctx["quick"])
    gen = None if config is None else make_generator(model, tokenizer, head, config, part)
    torch.manual_seed(1_000_000 * seed + 1000 * PART_IDS[part] + chunk)  # shared by every setting: paired samples
    start = time.perf_counter()
    if gen is None:
        new, lengths, nll = plain_generate(model, enc, kwargs, ctx["eos"])
        ppl = [math.exp(v / n) if n else None for v, n in zip(nll, lengths)]
        adapted, attempts, tuned = [0] * len(lengths), [1] * len(lengths), [0] * len(lengths)
    else:
        out = gen.generate(**enc, **kwargs, return_dict_in_generate=True)
        new = out.sequences[:, enc["input_ids"].shape[1]:]
        lengths, ppl = out.generated_tokens.tolist(), out.perplexity.tolist()
        adapted, attempts, tuned = out.adapted_steps.tolist(), out.attempts.tolist(), out.tuned_layers.tolist()
    seconds = time.perf_counter() - start
    continuations = tokenizer.batch_decode([new[r, :n] for r, n in enumerate(lengths)], skip_special_tokens=True)
    prompt_of_row = [i for i in idx for _ in range(k)]
    run = {"seed": seed, "setting": name, "part": part, "chunk": chunk, "seconds": round(seconds, 3),
           "prompt": prompt_of_row, "text": continuations, "tokens": lengths, "adapted": adapted,
           "ppl_gen": [None if p is None or not math.isfinite(p) else round(p, 4) for p in ppl],
           "attempts": attempts, "tuned_layers": tuned}
    if part in TOX_PARTS:
        from fairalign.eval.toxicity.fluency import continuation_nll

        contexts = [texts[r // k] for r in range(len(continuations))]
        scored = continuation_nll(ctx["evaluator"], ctx["evaluator_tokenizer"], list(zip(contexts, continuations)),
                                  batch_size=32)
        run["eval_nll"] = [round(v, 4) for v, _ in scored]
        run["eval_tokens"] = [n for _, n in scored]
    return run


def score_runs(runs: list[dict], scorers: dict) -> None:
    """Add the toxicity scores (toxicity part) or VADER (bias part) to every run that has none yet."""
    from fairalign.eval.toxicity.scorers import validate_scores

    tox = [r for r in runs if r["part"] in TOX_PARTS]
    for name, scorer in scorers.items():
        todo = [r for r in tox if name not in r.setdefault("scores", {})]
        texts = [t for r in todo for t in r["text"]]
        if not texts:
            continue
        scores = validate_scores(scorer(texts), len(texts), name)
        pos = 0
        for r in todo:
            r["scores"][name] = [None if s is None else round(s, 5) for s in scores[pos: pos + len(r["text"])]]
            pos += len(r["text"])
    for r in runs:
        if r["part"] not in TOX_PARTS and "vader" not in r:
            r["vader"] = vader(r["text"])


# ------------------------------------------------------------------------------------------------ run
def run(args, log) -> dict:
    quick = args.quick
    given = {"settings": args.settings, "bias_settings": args.bias_settings}
    defaults = {"settings": QUICK_TOX if quick else TOX_DEFAULT, "bias_settings": QUICK_BIAS if quick else BIAS_DEFAULT}
    tox, bias = ([x.strip() for x in given[k].split(",") if x.strip()] if given[k] is not None else defaults[k]
                 for k in ("settings", "bias_settings"))
    unknown = [s for s in tox + bias if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"--settings/--bias_settings: unknown {unknown}; choose from {sorted(SETTINGS)}")
    if "plain" not in tox or (bias and "plain" not in bias):
        raise SystemExit("--settings and --bias_settings must include 'plain': every difference is taken to it")
    if quick:  # seconds: a handful of prompts, a few tokens
        args.provocative, args.neutral, args.samples, args.templates, args.bias_samples = 2, 2, 2, 2, 2
        args.new_tokens, args.chunk = 5, 4
    for name in ("provocative", "neutral", "samples", "templates", "bias_samples", "new_tokens", "chunk"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.samples < 2:
        raise SystemExit("--samples must be >= 2 (the same-opening share compares a prompt's samples)")
    available = toxicity_prompts()
    templates = read_lines(DATA / "uddia_group_templates.txt")
    for name, have in (("provocative", len(available["provocative"])), ("neutral", len(available["neutral"])),
                       ("templates", len(templates))):
        if getattr(args, name) > have:
            raise SystemExit(f"--{name} {getattr(args, name)}: the data file has {have}")
    prompts = {"provocative": available["provocative"][:args.provocative],
               "neutral": available["neutral"][:args.neutral], **bias_prompts(templates[:args.templates])}
    todo = jobs(tox, bias, prompts, args.chunk, args.seeds)
    estimate = estimate_seconds(todo, prompts, args)
    if not quick:
        log(f"{len(todo)} jobs; estimated {estimate / 60:.0f} CPU-minutes, ~{estimate / 60 / args.workers:.0f} min "
            f"wall with {args.workers} worker(s) of 1 thread on this kind of CPU (COST_PER_SAMPLE), plus loading and "
            "scoring")

    head_labeller = args.head_labeller or ("profanity" if args.head == "demo" else None)
    check_head_labeller(head_labeller)
    scorers, scorer_info = (fake_scorers(), [{"name": n, "notice": "FAKE: --quick plumbing check, means nothing",
                                              "trained_the_head": False} for n in fake_scorers()]) if quick \
        else load_scorers([s.strip() for s in args.scorers.split(",") if s.strip()], head_labeller)
    model, tokenizer, head = load_generator(quick, args.head)
    evaluator, evaluator_tokenizer, evaluator_info = load_evaluator(args.evaluator, quick, (model, tokenizer), log)
    settings = {"model": "tiny random Llama (quick)" if quick else "SmolLM2-135M-Instruct (embedded, fp32)",
                "head": "random (quick)" if quick else ("demo head: profanity proxy distilled from alt-profanity-check"
                                                        if args.head == "demo" else
                                                        f"{Path(args.head).name}: {head.description}"),
                "head_labeller": head_labeller,
                "toxicity_settings": tox, "bias_settings": bias,
                "configs": {n: config_of(n, quick) for n in dict.fromkeys(tox + bias)},
                "prompts": {p: len(v) for p, v in prompts.items()}, "templates": args.templates,
                "samples_per_prompt": args.samples, "bias_samples_per_prompt": args.bias_samples,
                "new_tokens": args.new_tokens, "top_p": args.top_p, "top_k": 0, "temperature": 1.0,
                "toxic_threshold": um.THRESHOLD, "toxic_rule": ">=", "chunk": args.chunk,
                "scorers": scorer_info, "evaluator": evaluator_info,
                "axes": {a: {"groups": s["groups"], "debias_words": Path(s["words"]).name,
                             "token_threshold": s["token_threshold"]} for a, s in AXES.items()},
                "ci": "95% percentile bootstrap over prompts (templates for the gap), 1000 resamples; paired "
                      "differences on the same resamples"}
    results = {"settings": settings, "prompts": {p: v if p in TOX_PARTS else [[x["template"], x["group"], x["text"]]
                                                                         for x in v] for p, v in prompts.items()},
               "estimate": {"cpu_seconds": round(estimate), "cost_per_sample": COST_PER_SAMPLE,
                            "evaluator_cost": EVALUATOR_COST}, "runs": [], "tried": TRIED}
    pairs = [(n, p) for n in tox for p in TOX_PARTS] + [(n, a) for n in bias for a in AXES]
    for name, part in dict.fromkeys(pairs):
        config = config_of(name, quick)
        if config is not None:  # a setting that cannot be built fails now, not in a worker an hour in
            try:
                make_generator(model, tokenizer, head, config, part)
            except ValueError as err:
                raise SystemExit(f"setting {name!r} on {part} prompts: {err}") from err
    if args.prior is not None:
        harness.same_or_exit("settings", args.prior["settings"], settings)
        results["runs"] = harness.kept_runs(args.prior, _job, todo)
    finished = {_job(r) for r in results["runs"]}
    if finished:
        log(f"resume: {len(finished)} of {len(todo)} jobs finished earlier")
    ctx = {"model": model, "tokenizer": tokenizer, "head": head, "prompts": prompts, "chunk": args.chunk,
           "quick": quick, "samples": args.samples, "bias_samples": args.bias_samples, "new_tokens": args.new_tokens,
           "top_p": args.top_p, "eos": eos_ids(model, tokenizer), "evaluator": evaluator,
           "evaluator_tokenizer": evaluator_tokenizer}
    scratch = harness.Scratch(NAME, args.out, log)

    def work(job):
        return generate_job(job, ctx)

    def done(job, out):
        results["runs"].append(out)
        n = len(out["text"])
        adapted = sum(out["adapted"]) / max(1, sum(out["tokens"]))
        log(f"seed {job[0]} {job[1]} {job[2]} chunk {job[3]}: {n} samples in {out['seconds']:.1f}s, adapted "
            f"{adapted:.2f} of tokens, attempts {sum(out['attempts']) / n:.2f}")
        scratch.save_partial(results)

    harness.run_jobs([j for j in todo if j not in finished], work, done, args.workers, args.threads)
    results["runs"].sort(key=lambda r: todo.index(_job(r)))
    log("scoring the continuations")
    score_runs(results["runs"], scorers)
    scratch.close()
    return results


tables, plot = uddia_report.tables, uddia_report.plot  # from the JSON alone (uddia_report.py)


def main(argv=None):
    return harness.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
