"""Helpers for the evaluate-module tests (a module of its own: test files import it by name)."""
import zlib


def hashed_label(*texts) -> int:
    """A deterministic pseudo-random NLI label (0, 1, 2) from texts (Python's hash() is salted per process)."""
    return zlib.crc32("\x1f".join(texts).encode()) % 3


def synthetic_bbnli(num_premises: int = 6, with_variants: bool = False):
    """BBNLI-shaped rows over two domains: per premise, pro and anti versions, each with two test hypotheses
    and one stereotypical / anti-stereotypical one; optionally a lexical variant of every other row."""
    from fairalign.eval.bbnli.data import BBNLIExample, with_variation

    rows = []
    for p in range(num_premises):
        domain = ("gender", "race")[p % 2]
        for cond in ("pro", "anti"):
            premise = f"Premise {p} about group {'A' if cond == 'pro' else 'B'}."
            specs = [("test", 2, -1), ("test", (p + 1) % 3, -1),
                     ("stereotypical" if cond == "pro" else "anti-stereotypical", 1, 2)]
            for j, (htype, gold, bias) in enumerate(specs):
                rows.append(BBNLIExample(domain=domain, name=f"topic_{p // 2}", id=f"{p:02}", type=cond,
                                         unique_id=f"topic_{p // 2}_{cond}_{p:02}", premise=premise,
                                         hypothesis_type=htype, hypothesis=f"Hypothesis {p}.{j} ({cond}).",
                                         question=f"Is it {p}.{j}?", true_label=gold, bias_label=bias))
    if with_variants:
        rows += [with_variation(ex, hypothesis=ex.hypothesis.replace("Hypothesis", "Claim"), variation="lexical_hypothesis")
                 for ex in rows[::2]]
    return rows
