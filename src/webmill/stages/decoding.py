"""Turn HTML bytes into text: declared charset, then UTF-8, then detection, never a crash.

A wrong or missing charset is normal on the web. The order follows what browsers do: trust the HTTP
header, then the page's own <meta>, then try UTF-8, then guess (cchardet). When nothing decodes cleanly
the page is decoded with replacement characters and the fallback is counted.
"""

from __future__ import annotations

import codecs
import re

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)
HTML_START = re.compile(rb"^\s*(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)",
                        re.IGNORECASE | re.DOTALL)


def looks_like_html(body: bytes) -> bool:
    head = body[:4096]
    return bool(HTML_START.match(head)) or b"<html" in head.lower()


def _codec(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", errors="ignore")
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def decode_html(body: bytes, declared: str | None = None, stat_update=None) -> str:
    def count(label):
        if stat_update is not None:
            stat_update(label)

    meta = META_CHARSET.search(body[:4096])
    candidates = [_codec(declared), _codec(meta.group(1) if meta else None), "utf-8"]
    for name in dict.fromkeys(c for c in candidates if c):
        try:
            return body.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    import cchardet

    guessed = _codec(cchardet.detect(body[:65536]).get("encoding"))
    if guessed:
        try:
            text = body.decode(guessed)
            count("charset_detected")
            return text
        except (UnicodeDecodeError, LookupError):
            pass
    count("charset_replaced")
    return body.decode(guessed or "utf-8", errors="replace")
