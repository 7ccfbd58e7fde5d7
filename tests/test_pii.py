"""PII scrubbing: real-looking addresses are replaced, look-alikes and non-public addresses are not, and
every replacement is counted (per document and in the run's stats)."""

import gzip
import json

import pyarrow.parquet as pq
import pytest

from conftest import assert_accounts_add_up, run, stage, write_recipe
from webmill.stages.pii import IPV4_PLACEHOLDERS, IPV6_PLACEHOLDERS, PHONE_PLACEHOLDER, PIIScrubber

scrub = PIIScrubber(phones=True).scrub


@pytest.mark.parametrize("text, address", [
    ("Questions? Write to jane.doe@gmail.com before Friday.", "jane.doe@gmail.com"),
    ("Kontakt: m.mueller-schmidt@uni-heidelberg.de", "m.mueller-schmidt@uni-heidelberg.de"),
    ("<a href=\"mailto:press@nytimes.com\">press</a>", "press@nytimes.com"),
    ("First.Last+newsletter@Mail.Example.CO.UK wrote:", "First.Last+newsletter@Mail.Example.CO.UK"),
    ("(reply to j_smith99@yahoo.co.jp)", "j_smith99@yahoo.co.jp"),
])
def test_email_addresses_are_replaced(text, address):
    result = scrub(text)
    assert address not in result.text
    assert "@example.com" in result.text or "@example.org" in result.text
    assert result.counts["email"] == 1


@pytest.mark.parametrize("text", [
    "follow @nasa and @ESA on Twitter",                  # handles: no local part
    "ssh root@localhost then sudo reboot",               # no top-level domain
    "<img src=\"/img/logo@2x.png\">",                     # retina asset names
    "npm install react@18.2.0 lodash@4.17.21",           # package versions
    "https://medium.com/@jane.doe/how-i-learned-python",  # handle inside a URL path
    "ftp://anonymous:guest@ftp.example.org/pub/",        # URL credentials are part of the URL
    "the @ sign, user @ example . com, a@b",
])
def test_email_look_alikes_are_left_alone(text):
    result = scrub(text)
    assert result.text == text and result.counts["email"] == 0


def test_public_ipv4_addresses_are_replaced_by_documentation_addresses():
    text = "Resolved via 8.8.8.8 and 1.1.1.1; the attacker came from 185.220.101.4."
    result = scrub(text)
    assert result.counts["ipv4"] == 3
    for original in ("8.8.8.8", "1.1.1.1", "185.220.101.4"):
        assert original not in result.text
    assert result.text.endswith(".")  # the sentence's full stop is not part of the address
    assert sum(result.text.count(p) for p in IPV4_PLACEHOLDERS) == 3


def test_same_address_gets_the_same_placeholder_everywhere():
    first = scrub("from 93.184.216.34").text
    second = scrub("to 93.184.216.34, again").text
    assert first.split()[-1] == second.split()[1].rstrip(",")
    assert scrub(first).text == first  # placeholders are documentation addresses: a second pass changes nothing


@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "127.0.0.1", "0.0.0.0", "169.254.10.20",
    "192.0.2.55", "198.51.100.7", "203.0.113.200", "224.0.0.251", "239.255.255.250", "255.255.255.255",
    "100.64.1.1", "240.1.2.3",
])
def test_private_reserved_and_documentation_ipv4_are_kept(address):
    result = scrub(f"the router at {address} answered")
    assert address in result.text and result.counts["ipv4"] == 0
    assert result.counts["ip_kept_non_public"] == 1


@pytest.mark.parametrize("text", [
    "999.1.1.1 is not an address",
    "see section 1.2.3 and figure 4.5",
    "published 2023.10.05 at noon",
    "pi is 3.14159 and e is 2.71828",
    "upgrade to v2.4.6.8-beta now",
    "Windows version 6.1.7601.65536 and build 10.0.19045.3693",
    "release 5.4.3.2 fixes the bug",
    "the OID 1.3.6.1.4.1.311 is Microsoft's",
    "ISBN 978-3-16-148410-0, dated 01.02.03.04",
])
def test_ipv4_look_alikes_are_left_alone(text):
    result = scrub(text)
    assert result.text == text and result.counts["ipv4"] == 0


def test_ipv6_public_replaced_others_kept():
    result = scrub("Cloudflare DNS is 2606:4700:4700::1111, Google 2001:4860:4860:0:0:0:0:8888.")
    assert result.counts["ipv6"] == 2
    assert "2606:4700" not in result.text and "2001:4860" not in result.text
    assert all(part in IPV6_PLACEHOLDERS for part in result.text.replace(",", " ").rstrip(".").split()
               if part.startswith("2001:db8"))
    kept = ("loopback ::1, link-local fe80::1ff:fe23:4567:890a, docs 2001:db8::42, at 12:30:45, "
            "MAC 00:1A:2B:3C:4D:5E, std::vector")
    result = scrub(kept)
    assert result.text == kept and result.counts["ipv6"] == 0


def test_phone_numbers_only_when_asked():
    text = "Call (212) 555-0142, +44 20 7946 0958 or 1-800-555-0199; order 2023-10-05, ISBN 978-3-16-148410-0."
    assert PIIScrubber().scrub(text).text == text  # off by default
    result = scrub(text)
    assert result.counts["phone"] == 3
    assert result.text.count(PHONE_PLACEHOLDER) == 3
    assert "2023-10-05" in result.text and "978-3-16-148410-0" in result.text


def test_stage_in_a_recipe_counts_and_records_replacements(tmp_path):
    docs = [
        {"id": "a", "text": "Write to editor@theguardian.com or ping 151.101.1.69 today."},
        {"id": "b", "text": "The lab server sits at 10.1.2.3 behind the firewall; version 1.2.3.4 shipped."},
        {"id": "c", "text": "No personal data here at all."},
    ]
    source = tmp_path / "docs.jsonl.gz"
    with gzip.open(source, "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    recipe = write_recipe(tmp_path / "pii.yaml", ["pii"], [source], tmp_path / "out")
    report = run(recipe)
    assert_accounts_add_up(report)
    row = stage(report, "pii")
    assert row["read"] == row["kept"] == 3
    assert row["counters"]["email_replaced"] == 1
    assert row["counters"]["ipv4_replaced"] == 1
    assert row["counters"]["ip_kept_non_public"] == 1
    assert row["counters"]["ip_kept_version"] == 1
    assert row["changed"] == 1
    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == report

    table = pq.read_table(tmp_path / "out" / "data").to_pylist()
    by_id = {row["id"]: row for row in table}
    assert "editor@theguardian.com" not in by_id["a"]["text"] and "151.101.1.69" not in by_id["a"]["text"]
    assert json.loads(by_id["a"]["metadata"])["pii_replaced"] == {"email": 1, "ipv4": 1}
    assert by_id["b"]["text"] == docs[1]["text"] and by_id["c"]["text"] == docs[2]["text"]
    assert "pii_replaced" not in json.loads(by_id["b"]["metadata"] or "{}")
