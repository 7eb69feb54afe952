"""No string from a user, a file or a data set reaches eval (issue 15, style guide section 8).

`fairalign logic --decompile RHO` reads rho with our own grammar (align/logic/expression.py) instead of SymPy's
`parse_expr`, which evaluates its input. These tests pin: every documented form still parses to the same SymPy
expression; hostile inputs fail fast with InputError (exit code 2 and one line through the CLI) and run nothing;
no eval/exec/parse_expr call is made while decompiling; and no source file calls an evaluating or unpickling
API on its own.
"""
import builtins
import io
import time
import tokenize
from pathlib import Path

import pytest
import sympy

from fairalign.align.errors import InputError
from fairalign.align.logic.decompile import SYMBOL_NAMES, decompile, parse_loss_expression, symbols
from fairalign.align.logic.expression import MAX_DEPTH, parse_expression
from fairalign.scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]
SYMS = symbols()
NAMES = {SYMBOL_NAMES[a]: s for a, s in SYMS.items()} | SYMS
w, l, rw, rl = (SYMS[a] for a in ("Mw", "Ml", "Rw", "Rl"))
log, half = sympy.log, sympy.Rational(1, 2)


def parse(text: str):
    return parse_expression(text, NAMES, field="rho")


# ------------------------------------------------------------------------------------ documented forms
# (text, the SymPy expression built by hand). The first group is what docs/logic.md, the CLI help and the
# closed forms print; the rest exercises each rule of the grammar.
DOCUMENTED = [
    ("log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))", log(w * (1 - l)) - log(l * (1 - w))),
    ("log(pi_w*ref_l) - log(pi_l*ref_w)", log(w * rl) - log(l * rw)),
    ("(pi_w/(1 - pi_w)) / (pi_l/(1 - pi_l))", (w / (1 - w)) / (l / (1 - l))),
    ("log(Mw) + log(1 - Ml) - log(Ml) - log(1 - Mw)", log(w) + log(1 - l) - log(l) - log(1 - w)),
    ("log(pi_l*pi_w - pi_l + 1) - log((1 - pi_w)*pi_l)", log(l * w - l + 1) - log((1 - w) * l)),
    ("-log(pi_w)", -log(w)),
    ("pi_w/pi_l", w / l),
    ("2*pi_w/pi_l", 2 * w / l),
    ("pi_w**2/pi_l", w**2 / l),
    ("0*pi_w/pi_l", sympy.Integer(0)),
    ("Mw*Rl/(Ml*Rw)", w * rl / (l * rw)),
    ("pi_w - pi_l - ref_w", w - l - rw),                      # left-associative
    ("pi_w/pi_l/ref_w", w / (l * rw)),
    ("pi_w + pi_l*ref_w", w + l * rw),                        # * binds tighter than +
    ("(pi_w + pi_l)*ref_w", (w + l) * rw),
    ("-pi_w**2", -(w**2)),                                    # as in Python
    ("(-pi_w)**2", w**2),
    ("2*-pi_w", -2 * w),
    ("--pi_w", w),
    ("+pi_w", w),
    ("pi_w^2 + ref_l^0", w**2 + 1),                           # ^ is a power, as in the paper
    ("pi_w**16", w**16),
    ("0.5*pi_w + 1.25", half * w + sympy.Rational(5, 4)),     # decimals are exact rationals
    ("007", sympy.Integer(7)),
    ("log(2) + log(1)", log(2)),
    ("\tlog( pi_w )  -\nlog(pi_l)", log(w) - log(l)),
    ("2*(log(pi_w) - log(pi_l))", 2 * log(w) - 2 * log(l)),
]


@pytest.mark.parametrize("text, expected", DOCUMENTED, ids=[t for t, _ in DOCUMENTED])
def test_documented_forms_parse_to_the_same_expression(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, ratio", [
    ("log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))", (w * (1 - l), l * (1 - w))),
    ("(pi_w/(1 - pi_w)) / (pi_l/(1 - pi_l))", (w * (1 - l), l * (1 - w))),
    ("log(Mw) + log(1 - Ml) - log(Ml) - log(1 - Mw)", (w * (1 - l), l * (1 - w))),
    ("log(pi_w*ref_l) - log(pi_l*ref_w)", (w * rl, l * rw)),
])
def test_documented_forms_split_into_the_same_ratio(text, ratio):
    num, den = parse_loss_expression(text)
    assert sympy.expand(num * ratio[1] - den * ratio[0]) == 0


def test_decompiling_never_calls_eval_or_exec(monkeypatch):
    """SymPy's parse_expr ends in eval(); so would any other string-to-code path."""
    decompile("log(pi_w) - log(pi_l)")  # first: lazy imports (dataclasses use exec) happen outside the guard
    calls = []

    def guard(name, real):
        def spy(source, *args, **kwargs):
            calls.append((name, str(source)[:80]))
            return real(source, *args, **kwargs)
        return spy

    monkeypatch.setattr(builtins, "eval", guard("eval", builtins.eval))
    monkeypatch.setattr(builtins, "exec", guard("exec", builtins.exec))
    for text, _ in DOCUMENTED[:5]:
        decompile(text)
    with pytest.raises(InputError):
        decompile("__import__('os').getcwd()")
    assert calls == []


# ------------------------------------------------------------------------------------- hostile inputs
# {marker} becomes a file path: a command that ran would create it.
HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "exec('import os; os.system(\"touch {marker}\")')",
    "eval(\"__import__('os').system('touch {marker}')\")",
    "pi_w + __import__('subprocess').call(['touch', '{marker}'])",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 0",
    "pi_w.__class__",
    "pi_w.__class__.__mro__",
    "log.__globals__",
    '"a"*10**6',
    "'pi_w'",
    "[pi_w]",
    "{pi_w: 1}",
    "pi_w, pi_l",
    "pi_w; pi_l",
    "pi_w if pi_l else ref_w",
    "not pi_w",
    "pi_w == pi_l",
    "pi_w // pi_l",
    "pi_w % pi_l",
    "pi_w @ pi_l",
    "(" * 10000 + "pi_w" + ")" * 10000,                      # too long
    "(" * (MAX_DEPTH + 1) + "pi_w" + ")" * (MAX_DEPTH + 1),  # short enough, too deep
    "log(" * (MAX_DEPTH + 1) + "pi_w" + ")" * (MAX_DEPTH + 1),
    "a" * 10**6,
    "2**10**10",
    "9**9**9**9",
    "((2**16)**16)**16",
    "pi_w**pi_l",
    "pi_w**17",
    "pi_w**-1",
    "pi_w**0.5",
    "((pi_w + pi_l + ref_w + ref_l + 1)**16)**16",           # degree 256: would keep SymPy expanding
    "16*log(pi_w + pi_l + ref_w + ref_l + 1) - 16*log(pi_l)",
    "10**10*log(2)",
    "1e999",
    "1e3*pi_w",
    "1_000",
    "0x10",
    "1j",
    "E", "I", "oo", "zoo", "nan", "pi", "S", "Symbol", "Symbol('x')", "S('x')", "sympify('x')", "Integer(1)",
    "exp(pi_w)", "sqrt(pi_w)", "Abs(pi_w)", "x", "pi_W", "Mw_", "_", "__builtins__", "log",
    "\u0440i_w",        # Cyrillic 'r' that looks like a Latin 'p'
    "\uff50i_w",        # fullwidth 'p' (Python would NFKC-normalise it to 'p' inside an identifier)
    "pi_w\u200b",       # zero-width space
    "\uff12*pi_w",      # fullwidth digit
    "pi_w\x00",
    "",
    "log pi_w",
    "pi_w pi_l",
    "2pi_w",
    "log(0)",
    "1/0",
    "pi_w/(pi_l - pi_l)",
    "log(log(pi_w))",
]


def _hostile(text: str, tmp_path: Path) -> tuple[str, Path]:
    marker = tmp_path / "pwned"
    return text.replace("{marker}", str(marker)), marker


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:30]) + f"_{i}" for i, t in enumerate(HOSTILE)])
def test_hostile_input_is_an_input_error_fast(text, tmp_path):
    text, marker = _hostile(text, tmp_path)
    start = time.perf_counter()
    with pytest.raises(InputError, match="^rho: "):
        decompile(text)
    assert time.perf_counter() - start < 2.0
    assert not marker.exists()


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:30]) + f"_{i}" for i, t in enumerate(HOSTILE)])
def test_hostile_input_through_the_cli_is_one_line_exit_2(text, tmp_path, capsys):
    text, marker = _hostile(text, tmp_path)
    assert main(["logic", f"--decompile={text}"]) == 2  # "=": a text may start with '-'
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("fairalign logic: error: rho: ")
    assert len(err) < 1000  # the input is not echoed back whole
    assert not marker.exists()


@pytest.mark.parametrize("text, words", [
    ("__import__('os')", "position 0: unknown name '__import__'"),
    ("pi_w.__class__", "position 4: unexpected character '.'"),
    ("\u0440i_w", "position 0: unexpected character 'р' (U+0440)"),
    ("2**10**10", "position 5: expected one exponent"),
    ("pi_w**17", "position 6: expected a whole exponent from 0 to 16"),
    ("log(pi_w", "position 8: expected ')' to close the '(' at position 3, found the end"),
    ("a" * 10**6, "1000000 characters is too long"),
    ("(" * 65 + "pi_w" + ")" * 65, "brackets nested more than 64 deep"),
    ("((pi_w + 1)**16)**16", "pi_w appears to the power 256"),
])
def test_errors_name_the_position_and_what_is_allowed(text, words):
    with pytest.raises(InputError) as err:
        decompile(text)
    assert words in str(err.value)
    assert "allowed: numbers" in str(err.value) or "power" in str(err.value)


def test_empty_decompile_is_the_parsers_error(capsys):
    assert main(["logic", "--decompile", ""]) == 2
    assert "the expression is empty" in capsys.readouterr().err


# ------------------------------------------------------------------------- no evaluating calls in source
SOURCES = ("align", "decoding", "eval", "scripts")
MODULE_LOADS = {  # module -> its functions that run code or unpickle what they read
    "pickle": {"load", "loads", "Unpickler"}, "dill": {"load", "loads"}, "cloudpickle": {"load", "loads"},
    "joblib": {"load"}, "shelve": {"open"}, "marshal": {"load", "loads"},
    "yaml": {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"},
    "pd": {"eval", "read_pickle"}, "pandas": {"eval", "read_pickle"}, "sympy": {"S", "sympify", "parse_expr"},
}


def unsafe_calls(source: str) -> list[tuple[int, str]]:
    """(line, construct) for each call in `source`'s code that can run or unpickle a string: builtin eval /
    exec / compile / __import__, SymPy's parse_expr / sympify / lambdify, pickle-style and yaml.load loaders,
    DataFrame.query / .eval(expr), numexpr, jinja2, weights_only=False, trust_remote_code=True, allow_pickle=True.
    Comments and string literals (docstrings) are not code, so mentioning eval( in prose is fine; so is a method
    call like model.eval() with no argument, and re.compile(...)."""
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    skip |= {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
    toks = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip]
    text = [t.string for t in toks]
    found = []
    for i, t in enumerate(toks):
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        after2 = text[i + 2] if i + 2 < len(text) else ""
        name = t.string
        if t.type != tokenize.NAME:
            continue
        if name in ("eval", "exec", "compile", "__import__") and after == "(" and before != ".":
            found.append((t.start[0], f"{name}("))
        elif name in ("eval", "exec", "query") and before == "." and after == "(" and after2 != ")":
            found.append((t.start[0], f".{name}(...)"))  # pd.eval(expr), df.query(expr); model.eval() is fine
        elif name in ("parse_expr", "sympify", "lambdify", "numexpr", "jinja2", "read_pickle"):
            found.append((t.start[0], name))
        elif name in MODULE_LOADS and after == "." and after2 in MODULE_LOADS[name]:
            if after2 != "S" or text[i + 3:i + 4] == ["("]:  # sympy.S("x") parses; sympy.S.One does not
                found.append((t.start[0], f"{name}.{after2}"))
        elif (name, after, after2) in (("weights_only", "=", "False"), ("trust_remote_code", "=", "True"),
                                       ("allow_pickle", "=", "True")):
            found.append((t.start[0], f"{name}={after2}"))
    return found


def test_the_scanner_finds_what_it_should_and_nothing_else():
    bad = ("eval(x)\nexec(code)\ncompile(s, 'f', 'exec')\n__import__(m)\nfrom sympy import sympify\n"
           "from sympy.parsing.sympy_parser import parse_expr\nsympy.S('x')\npickle.loads(b)\nyaml.load(f)\n"
           "pd.eval('a + b')\ndf.query(q)\nimport numexpr\ntorch.load(p, weights_only=False)\n"
           "AutoModel.from_pretrained(n, trust_remote_code=True)\nnp.load(p, allow_pickle=True)\n")
    assert [line for line, _ in unsafe_calls(bad)] == list(range(1, 16))
    fine = ('"""Never call eval(x) or exec(code) on input."""\n# parse_expr evaluates; we do not\n'
            "model.eval()\nhead.eval()\npattern = re.compile(r'x')\nyaml.safe_load(f)\nminus = sympy.S.NegativeOne\n"
            "torch.load(p, weights_only=True)\nmsg = 'sympify(text) is unsafe'\nevaluate = 1\n")
    assert unsafe_calls(fine) == []


def test_no_source_file_calls_an_evaluating_or_unpickling_api():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))
             for line, what in unsafe_calls(path.read_text(encoding="utf-8"))]
    assert found == [], "parse with a grammar of our own, load with safe loaders (style guide section 8):\n" + \
        "\n".join(found)
