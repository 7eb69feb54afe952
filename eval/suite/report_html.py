"""Render the report blocks (report.py) as one self-contained HTML file: inline CSS, plots as base64 PNG
data URIs, no scripts and no external resources, so it opens offline and can be mailed as one file."""
from __future__ import annotations

import base64
from html import escape

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
p { max-width: 80em; word-wrap: break-word; }
.banner { background: #fff4d6; border: 1px solid #e6b400; border-left: 6px solid #e6b400; padding: 0.6em 1em;
          margin: 1em 0; } .banner ul { margin: 0.3em 0 0 0; }
"""


def render_html(blocks: list, plots: dict[str, bytes]) -> str:
    title = next((b[1] for b in blocks if b[0] == "h1"), "fairalign report")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{escape(block[1])}</p>")
        elif kind == "banner":
            items = "".join(f"<li>{escape(str(i))}</li>" for i in block[2])
            parts.append(f'<div class="banner" role="note"><strong>{escape(block[1])}</strong><ul>{items}</ul></div>')
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{escape(str(i))}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{escape(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(plots[block[1]]).decode("ascii")
            parts.append(f'<figure><img id="plot-{escape(block[1])}" alt="{escape(block[2])}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{escape(block[2])}</figcaption></figure>')
        else:
            raise ValueError(f"unknown report block {kind!r}")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
