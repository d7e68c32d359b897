#!/usr/bin/env python3
"""Makes sentences.tsv, the labelled multilingual set of bench_language_id, from the message
translations Debian installs under /usr/share/locale (see README.md for sources and licenses).

For each of twelve languages it takes the first N messages (catalogs in the order below,
messages by msgid, at most PER_DOMAIN from one catalog so that no subject dominates) whose
English text and translation both read as prose, and writes "<ISO 639-1 code>\t<text>" lines.
English lines are the msgids of the French catalogs. Deterministic for a given set of
installed packages. Needs gettext's msgunfmt and msgconv.
Usage: python3 make_set.py [N] > sentences.tsv
"""
import re
import subprocess
import sys

LOCALES = {"en": "fr", "fr": "fr", "de": "de", "es": "es", "it": "it", "pt": "pt", "nl": "nl",
           "sv": "sv", "pl": "pl", "ru": "ru", "zh": "zh_CN", "ja": "ja"}
# Catalogs with prose messages (user-facing errors and descriptions), in the order read.
DOMAINS = ["apt", "dpkg", "glib20", "gtk30", "systemd", "shadow", "bash", "grep", "tar", "wget",
           "adduser", "appstream", "gdk-pixbuf", "gsettings-desktop-schemas", "libc", "man-db",
           "PackageKit", "python-apt", "software-properties", "sed", "coreutils", "diffutils",
           "findutils", "make", "gettext-tools", "Linux-PAM", "psmisc", "xkeyboard-config"]
PER_DOMAIN = 3
MIN_CHARS, MAX_CHARS = 50, 200


def catalog(locale, domain):
    """msgid -> msgstr of one .mo file (singular, non-empty), or {} if absent."""
    path = f"/usr/share/locale/{locale}/LC_MESSAGES/{domain}.mo"
    try:
        po = subprocess.run(["msgunfmt", path], capture_output=True, check=True).stdout
        # Older catalogs are in legacy charsets: msgconv re-encodes by their own header.
        po = subprocess.run(["msgconv", "--to-code=UTF-8"], input=po, capture_output=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {}
    unquote = lambda s: "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', s))
    out = {}
    for entry in po.decode("utf-8").split("\n\n"):
        if "msgid_plural" in entry or "msgctxt" in entry:
            continue
        m = re.search(r'^msgid ((?:".*"\n?)+)msgstr ((?:".*"\n?)+)', entry, re.M)
        if m and unquote(m.group(1)) and unquote(m.group(2)):
            out[unquote(m.group(1))] = unquote(m.group(2))
    return out


def clean(text):
    """One line of prose: escapes out, whitespace collapsed; None if it is not prose."""
    text = text.replace("\\n", " ").replace("\\t", " ").replace('\\"', '"').replace("\\\\", "\\")
    if re.search(r"%|--|\$\{|<|>|`|_\w|\w_|\\|\||\[", text):
        return None  # format strings, options, markup, identifiers: not the language's own words
    text = re.sub(r"\s+", " ", text).strip()
    letters = sum(c.isalpha() or c.isspace() for c in text)
    if not MIN_CHARS <= len(text) <= MAX_CHARS or letters < 0.85 * len(text):
        return None
    return text


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    for code, locale in LOCALES.items():
        rows = []
        for domain in DOMAINS:
            taken = 0
            for msgid, msgstr in sorted(catalog(locale, domain).items()):
                english, translated = clean(msgid), clean(msgstr)
                if english is None or translated is None or msgid == msgstr:
                    continue
                rows.append(english if code == "en" else translated)
                taken += 1
                if taken == PER_DOMAIN or len(rows) == n:
                    break
            if len(rows) == n:
                break
        for text in rows:
            print(f"{code}\t{text}")


if __name__ == "__main__":
    main()
