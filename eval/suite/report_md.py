"""Render the report blocks (report.py) as Markdown; plots are linked as plots/<name>.png beside report.md."""
from __future__ import annotations


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "banner":  # a blockquote: set apart from the text in every Markdown viewer
            lines += [f"> **{block[1]}**", ">"] + [f"> - {item}" for item in block[2]] + [""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(map(_cell, header)) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[2]}](plots/{block[1]}.png)", ""]
        else:
            raise ValueError(f"unknown report block {kind!r}")
    return "\n".join(lines)
