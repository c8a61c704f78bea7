"""The privacy listing (``tallystick privacy``'s Markdown) as HTML, so the site shows the same generated text.

Only the Markdown the listing uses: headings, pipe tables, ``-`` lists, paragraphs,
```code``` and ``*emphasis*``. Everything is escaped before the few tags are added.
"""

from __future__ import annotations

import re
from html import escape

_CODE = re.compile(r"`([^`]+)`")
_EM = re.compile(r"\*([^*]+)\*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _inline(text: str) -> str:
    out = escape(text, quote=True)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _EM.sub(r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    parts = _CELL_SPLIT.split(line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def to_html(markdown: str, *, heading_offset: int = 0) -> str:
    """HTML for ``markdown``; headings are moved down ``heading_offset`` levels (to sit under a page's h1)."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            level = min(6, hashes + heading_offset)
            out.append(f"<h{level}>{_inline(line[hashes:].strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|(\s*-+\s*\|)+", lines[i].strip()):
                    rows.append(_cells(lines[i]))
                i += 1
            head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)
