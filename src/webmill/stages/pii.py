"""PII scrubbing as FineWeb did it: e-mail addresses and public IP addresses are replaced by placeholders.

datatrove's `PIIFormatter` is not used because (1) its IPv4 pattern has no boundaries, so it rewrites the
inside of longer dotted numbers ("1111.2.3.4", "1.2.3.4.5"); (2) it cycles its placeholders with a counter
that lives in the worker, so a document's text depends on which documents the same task saw before (the
corpus would change with the task count); (3) its placeholder IPs are real public addresses; (4) it counts
nothing. The rules here, with their traps, are in docs/quality-pii-decontamination.md:

- e-mail: `local@domain.tld` where the last label is a real top-level domain (the public-suffix snapshot
  shipped with tldextract), so `user@localhost`, `logo@2x.png`, `pkg@1.2.3` and `@handles` are left alone;
  an address inside a URL's path or authority (`https://host/@user`, `ftp://user@host`) is left alone,
  `mailto:` addresses are replaced.
- IPv4: four dot-separated decimal octets standing alone (not part of a longer dotted number or a word)
  that `ipaddress` accepts (no octet over 255, no leading zeros) and calls global; private, loopback,
  link-local, shared, documentation, multicast, reserved and broadcast addresses are kept. A dotted quad
  written as a version ("version 1.2.3.4", "v1.2.3.4", "build 5.1.2.600") is kept.
- IPv6: hex groups with at least three colons and a digit, valid for `ipaddress` and global
  (so `::1`, `fe80::1`, `2001:db8::1`, times "12:30:45" and MAC addresses are kept).
- phone numbers (off by default): `+<country code>` numbers of 8-15 digits and North-American
  "(212) 555-0142" / "212-555-0142" forms.

A placeholder is chosen by a stable hash of the original, so the same address always gets the same
placeholder, whatever the task or the order of documents; placeholders are documentation addresses,
so running the stage twice changes nothing the second time.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from dataclasses import dataclass

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.stages.exclusions import ExclusionMixin
from webmill.stages.registry import BuildContext, param, register

EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
# RFC 5737 (IPv4) and RFC 3849 (IPv6) documentation ranges: never routed, so never anyone's address
IPV4_PLACEHOLDERS = ("192.0.2.1", "198.51.100.1", "203.0.113.1")
IPV6_PLACEHOLDERS = ("2001:db8::1", "2001:db8::2", "2001:db8::3")
# 555-0100 to 555-0199 are reserved for fiction in the North American numbering plan
PHONE_PLACEHOLDER = "+1 202 555 0100"

EMAIL = re.compile(
    r"(?:(?<=[Mm][Aa][Ii][Ll][Tt][Oo]:)|(?<![\w.%+\-/:@]))"  # not inside a word, a path or URL credentials
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z][A-Za-z0-9\-]{1,62}))"
    r"(?![\w\-@]|\.[A-Za-z0-9])"
)
IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![\w:]|\.\w)")
VERSION_BEFORE = re.compile(r"\b(?:version|ver|release|build|rev|revision|firmware|v)\.?\s*$", re.IGNORECASE)
PHONE = re.compile(
    r"(?<![\w+\-./])(?:"
    r"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?)(?:[ .\-]?\d{2,4}){2,4}"  # international: +44 20 7946 0958
    r"|(?:1[ .\-])?\(?[2-9]\d{2}\)?[ .\-]\d{3}[ .\-]\d{4}"  # North American: (212) 555-0142, 1-800-555-0199
    r")(?![\w\-]|[./]\d)"
)

_TOP_LEVEL_DOMAINS: frozenset[str] | None = None


def top_level_domains() -> frozenset[str]:
    """Last labels of the public-suffix list bundled with tldextract (no network)."""
    global _TOP_LEVEL_DOMAINS
    if _TOP_LEVEL_DOMAINS is None:
        from tldextract import TLDExtract

        suffixes = TLDExtract(suffix_list_urls=(), cache_dir=None)._get_tld_extractor().tlds_incl_private
        _TOP_LEVEL_DOMAINS = frozenset(s.rsplit(".", 1)[-1].lower() for s in suffixes)
    return _TOP_LEVEL_DOMAINS


def _pick(placeholders: tuple[str, ...], original: str) -> str:
    return placeholders[zlib.crc32(original.encode("utf-8")) % len(placeholders)]


def is_public_ip(text: str) -> bool:
    """True for a valid IPv4/IPv6 address that is globally routable (and not multicast)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


@dataclass
class PIIParams:
    emails: bool = param(True, "replace e-mail addresses with email@example.com / firstname.lastname@example.org")
    ips: bool = param(True, "replace public IPv4/IPv6 addresses with documentation addresses "
                            "(192.0.2.1, 2001:db8::1, ...)")
    phones: bool = param(False, "replace phone numbers (+CC international, North-American forms) with "
                                "+1 202 555 0100")


@dataclass
class Scrubbed:
    text: str
    counts: dict[str, int]


class PIIScrubber:
    """The replacement rules, usable outside a pipeline: `PIIScrubber().scrub(text)`."""

    def __init__(self, emails: bool = True, ips: bool = True, phones: bool = False):
        self.emails, self.ips, self.phones = emails, ips, phones

    def scrub(self, text: str) -> Scrubbed:
        counts = {"email": 0, "ipv4": 0, "ipv6": 0, "phone": 0, "ip_kept_non_public": 0, "ip_kept_version": 0}

        def email(match: re.Match) -> str:
            if match.group(2).lower() not in top_level_domains():
                return match.group(0)
            counts["email"] += 1
            return _pick(EMAIL_PLACEHOLDERS, match.group(0))

        def ipv4(match: re.Match) -> str:
            original = match.group(1)
            if not is_public_ip(original):
                if _valid_ip(original):
                    counts["ip_kept_non_public"] += 1
                return original
            if VERSION_BEFORE.search(match.string[max(0, match.start() - 24):match.start()]):
                counts["ip_kept_version"] += 1
                return original
            counts["ipv4"] += 1
            return _pick(IPV4_PLACEHOLDERS, original)

        def ipv6(match: re.Match) -> str:
            original = match.group(1)
            if original.count(":") < 3 or not any(c.isdigit() for c in original):
                return original
            if not is_public_ip(original):
                if _valid_ip(original):
                    counts["ip_kept_non_public"] += 1
                return original
            counts["ipv6"] += 1
            return _pick(IPV6_PLACEHOLDERS, original)

        def phone(match: re.Match) -> str:
            digits = sum(c.isdigit() for c in match.group(0))
            if not 8 <= digits <= 15:
                return match.group(0)
            counts["phone"] += 1
            return PHONE_PLACEHOLDER

        if self.emails and "@" in text:
            text = EMAIL.sub(email, text)
        if self.ips:
            if ":" in text:
                text = IPV6.sub(ipv6, text)
            text = IPV4.sub(ipv4, text)
        if self.phones:
            text = PHONE.sub(phone, text)
        return Scrubbed(text, counts)


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PIIFormatter(ExclusionMixin, PipelineStep):
    type = "✂️ - FORMAT"
    name = "🔏 pii"

    def __init__(self, params: PIIParams):
        super().__init__()
        self.params = params
        self.scrubber = PIIScrubber(params.emails, params.ips, params.phones)

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                result = self.scrubber.scrub(doc.text)
            replaced = {kind: n for kind, n in result.counts.items() if n and not kind.startswith("ip_kept")}
            for kind, n in result.counts.items():
                if n:
                    self.stat_update(kind if kind.startswith("ip_kept") else f"{kind}_replaced", value=n)
            if replaced:
                self.stat_update("changed")
                doc.text = result.text
                doc.metadata["pii_replaced"] = replaced
            yield from self.keep(doc)


@register("pii", PIIParams, "replace e-mail addresses and public IPs (optionally phone numbers) with placeholders")
def build_pii(params: PIIParams, ctx: BuildContext):
    return PIIFormatter(params)
