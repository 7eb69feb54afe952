"""Build the SmolLM2 demo attribute head for UDDIA, offline (about 2 minutes on a laptop CPU).

    python scripts/make_demo_head.py                       # -> decoding/assets/smollm2_demo_head.json
    python scripts/make_demo_head.py --out head.json --num-generated 400
    python scripts/make_demo_head.py --labeller hatesonar --out smollm2_hatesonar_head.json

What it is: a *profanity/offensiveness proxy*, not a toxicity classifier. Texts come from two offline sources:
(1) sentences this script writes from templates (neutral, friendly, and insulting/profane ones) and their
prefixes, (2) continuations SmolLM2 itself samples for neutral and provocative prompts. Every text is labelled by
`alt-profanity-check` (`profanity_check.predict_prob`, MIT; a TF-IDF linear model of offensive language): toxic
if its probability is >= 0.5. A linear head is then trained on SmolLM2's frozen mean-pooled final hidden states
(UDDIA/PPLM recipe, `fairalign.decoding.heads.train_head`), and its held-out agreement with the scorer printed.

--labeller SCORER labels the same texts with another offline scorer instead (any `get_scorer` name, e.g.
hatesonar). docs/repro/checks/smollm2_hatesonar_head.json was built so; judged in docs/reproductions.md §5 by
scorers that did not label it, it detoxified less than the demo head, so it is not shipped.

The real recipe (a toxicity head for any Hub LM, on Jigsaw-style data) is in docs/uddia.md:
    fairalign decoding train-head --model M --data jigsaw.csv --text-column comment_text --label-column toxic --out head.pt
"""
from __future__ import annotations

import argparse
import itertools
import random

SUBJECTS = ["You are", "He is", "She is", "They are", "That guy is", "My neighbour is", "Your brother is",
            "This place is", "Your idea is", "The new manager is", "Honestly, you are", "Everyone says you are"]
FRIENDLY = ["kind", "brilliant", "really helpful", "a wonderful person", "so thoughtful", "fun to be around",
            "a great friend", "very talented", "smart and generous", "always polite", "a pleasure to work with",
            "doing a great job"]
NEUTRAL = ["at home today", "in the kitchen", "from a small town", "busy this week", "on the train",
           "reading a book", "a software engineer", "taller than me", "new here", "working late"]
INSULTS = ["a stupid idiot", "a fucking moron", "an ugly piece of shit", "a worthless loser", "a dumb bitch",
           "full of crap", "a pathetic asshole", "a disgusting pig", "a brainless fool", "a lying bastard",
           "so damn stupid", "a fat lazy slob", "an annoying dickhead", "trash and everyone hates you"]
PLAIN_SENTENCES = [
    "The weather is nice today and we went for a walk.", "Please send me the report by Friday.",
    "I made pasta with tomatoes and basil for dinner.", "The train was late again this morning.",
    "Thank you so much for your help with the project.", "Can you recommend a good book about history?",
    "The meeting has been moved to three o'clock.", "Our team won the match on Saturday.",
    "She plays the piano every evening.", "He is learning to speak Spanish.",
]
PROMPTS_NEUTRAL = ["The best way to spend a weekend is", "My favourite recipe is", "Yesterday at work, my boss",
                   "The city council announced that", "When I was a child, I", "Here is a short story about a dog:",
                   "The most important thing in science is", "Dear customer, we are writing to"]
PROMPTS_PROVOCATIVE = ["You are such a stupid", "Shut up, you", "I hate you, you fucking", "What a dumb",
                       "He screamed at me: you worthless", "Go to hell, you", "That idiot is so", "Screw you and your"]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Build the offline SmolLM2 demo attribute head (profanity proxy) for UDDIA.")
    p.add_argument("--model", default="smollm2", help="LM whose hidden states the head reads (default: embedded SmolLM2)")
    p.add_argument("--out", default=None, help="output head file (.json or .pt); default: the shipped demo head path")
    p.add_argument("--num-generated", type=int, default=256, help="model-generated continuations to add")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--labeller", default="profanity",
                   help="scorer that labels the texts (default profanity: alt-profanity-check, the shipped demo head's; "
                        "or hatesonar, better-profanity, any get_scorer name); toxic if its score >= 0.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def written_texts(rng: random.Random) -> list[str]:
    """Template sentences (friendly, neutral, insulting) plus random word-prefixes of them."""
    texts = [f"{s} {a}." for s, a in itertools.product(SUBJECTS, FRIENDLY + NEUTRAL + INSULTS)] + PLAIN_SENTENCES
    prefixes = []
    for t in texts:
        words = t.split()
        if len(words) > 3:
            prefixes.append(" ".join(words[: rng.randint(3, len(words) - 1)]))
    return texts + prefixes


def generated_texts(model, tokenizer, n: int, max_new_tokens: int, seed: int) -> list[str]:
    """SmolLM2's own continuations (prompt + continuation) of neutral and provocative prompts."""
    import torch

    prompts = list(itertools.islice(itertools.cycle(PROMPTS_NEUTRAL + PROMPTS_PROVOCATIVE), n))
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(prompts), 32):
        chunk = prompts[start : start + 32]
        enc = tokenizer(chunk, return_tensors="pt", padding=True).to(model.device)
        with torch.no_grad():
            seqs = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, top_p=0.9, top_k=0,
                                  pad_token_id=tokenizer.pad_token_id)
        new = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        out += [p + c for p, c in zip(chunk, new)]
    return out


def main(args) -> int:
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding.heads import demo_head_path, fit_linear_head, pooled_features, AttributeHead
    from fairalign.decoding.heads import embedding_probe, hidden_size, model_name, save_head
    from fairalign.scripts.train_head import label_with_scorer

    rng = random.Random(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model, device=args.device)
    model.eval()
    texts = written_texts(rng) + generated_texts(model, tokenizer, args.num_generated, args.max_new_tokens, args.seed)
    # "profanity" is OfflineProfanityScorer: profanity_check.predict_prob, as the shipped demo head was built
    labels = torch.tensor(label_with_scorer(texts, args.labeller, 0.5, source="the demo head's texts"))
    teacher = args.labeller
    print(f"[demo-head] {len(texts)} texts, {int(labels.sum())} labelled offensive by {teacher}")
    features = pooled_features(model, tokenizer, texts, batch_size=32, progress=True)
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(args.seed))
    cut = int(0.8 * len(texts))
    train, held = order[:cut], order[cut:]
    torch.manual_seed(args.seed)
    head = AttributeHead(hidden_size(model), ["non_toxic", "toxic"], lm_name=model_name(model), probe=embedding_probe(model))
    counts = torch.bincount(labels[train], minlength=2).float().clamp_min(1)
    fit_linear_head(features[train], labels[train], head, epochs=args.epochs, lr=args.lr, batch_size=64,
                    seed=args.seed, class_weights=counts.sum() / (2 * counts))
    with torch.no_grad():
        pred = head(features[held]).argmax(-1)
    acc = float((pred == labels[held]).float().mean())
    what = ("profanity/offensiveness proxy distilled from alt-profanity-check" if args.labeller == "profanity" else
            f"offensiveness proxy distilled from {args.labeller}")
    head.description = (f"DEMO head: {what} labels onto "
                        f"{model_name(model)} mean-pooled hidden states; {len(texts)} texts (template-written + "
                        f"model-generated), held-out agreement with the scorer {acc:.3f} (n={len(held)}). "
                        "Not a toxicity classifier; see docs/uddia.md for the real recipe.")
    path = save_head(head.eval(), args.out or demo_head_path())
    print(f"[demo-head] held-out agreement with {teacher}: {acc:.3f} (n={len(held)}) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
