#!/usr/bin/env python3
"""tests/lib/promcheck.py FILE - a strict checker of the Prometheus text
exposition format (version 0.0.4), used by tests/integration/availability.sh
in place of `promtool check metrics` (the Debian package prometheus that
ships promtool installs about 96 MB, too much for contrib/install-deps.sh).

Checks: every sample's metric family has one HELP and one TYPE line before
its samples, the TYPE is known, families are not split, names and label
names are valid, label values use only the escapes \\\\ \\" \\n, values are
floats, counters are non-negative, histograms have _bucket lines with le
labels ascending and cumulative, a le="+Inf" bucket equal to _count, and a
_sum.  Exit 0 valid, 1 with one line per problem.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(s, i, errs, lineno):
    """Parse {a="b",...} from s[i] == '{'; return (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            errs.append(f"line {lineno}: bad label name at column {i}")
            return labels, len(s)
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            errs.append(f"line {lineno}: label {name} without =\"")
            return labels, len(s)
        i += 2
        val = []
        while i < len(s) and s[i] != '"':
            if s[i] == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    errs.append(f"line {lineno}: bad escape in label {name}")
                    return labels, len(s)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            else:
                val.append(s[i])
                i += 1
        if i >= len(s):
            errs.append(f"line {lineno}: unterminated label value {name}")
            return labels, len(s)
        i += 1
        if name in labels:
            errs.append(f"line {lineno}: duplicate label {name}")
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            continue
        else:
            errs.append(f"line {lineno}: expected , or }} after label {name}")
            return labels, len(s)


def family_of(name, types):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) in ("histogram", "summary"):
            return name[: -len(suf)]
    return name


def check(text):
    errs = []
    helps, types, seen_samples, done = {}, {}, set(), set()
    current = None
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v, "sum": v}
    if text and not text.endswith("\n"):
        errs.append("text does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME.match(parts[2]):
                    errs.append(f"line {lineno}: bad metric name in {parts[1]}")
                    continue
                fam = parts[2]
                if fam in done:
                    errs.append(f"line {lineno}: family {fam} split (seen before another family)")
                if current and current != fam:
                    done.add(current)
                current = fam
                if parts[1] == "HELP":
                    if fam in helps:
                        errs.append(f"line {lineno}: second HELP for {fam}")
                    helps[fam] = parts[3] if len(parts) > 3 else ""
                else:
                    if fam in types:
                        errs.append(f"line {lineno}: second TYPE for {fam}")
                    if fam in seen_samples:
                        errs.append(f"line {lineno}: TYPE of {fam} after its samples")
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        errs.append(f"line {lineno}: unknown type {t!r}")
                    types[fam] = t
            continue
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            errs.append(f"line {lineno}: bad sample line")
            continue
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, errs, lineno)
        rest = line[i:].split()
        if len(rest) not in (1, 2):
            errs.append(f"line {lineno}: expected value [timestamp]")
            continue
        try:
            v = float(rest[0])
        except ValueError:
            errs.append(f"line {lineno}: bad value {rest[0]!r}")
            continue
        fam = family_of(name, types)
        if fam not in types or fam not in helps:
            errs.append(f"line {lineno}: sample of {fam} without HELP and TYPE before it")
        if fam != current:
            if fam in done:
                errs.append(f"line {lineno}: family {fam} split")
            if current:
                done.add(current)
            current = fam
        seen_samples.add(fam)
        t = types.get(fam)
        if t == "counter" and (v < 0 or math.isnan(v)):
            errs.append(f"line {lineno}: negative counter")
        if t == "histogram":
            key = (fam, tuple(sorted((k, x) for k, x in labels.items() if k != "le")))
            h = hist.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if name.endswith("_bucket"):
                if "le" not in labels:
                    errs.append(f"line {lineno}: bucket without le")
                    continue
                h["buckets"].append((float(labels["le"]), v))
            elif name.endswith("_count"):
                h["count"] = v
            elif name.endswith("_sum"):
                h["sum"] = v
            else:
                errs.append(f"line {lineno}: histogram sample {name} is not _bucket/_sum/_count")
    for (fam, lab), h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != math.inf:
            errs.append(f"{fam}{dict(lab)}: no le=\"+Inf\" bucket last")
            continue
        for (l1, v1), (l2, v2) in zip(b, b[1:]):
            if l2 <= l1 or v2 < v1:
                errs.append(f"{fam}{dict(lab)}: buckets not ascending and cumulative")
                break
        if h["count"] is None or h["sum"] is None:
            errs.append(f"{fam}{dict(lab)}: missing _count or _sum")
        elif h["count"] != b[-1][1]:
            errs.append(f"{fam}{dict(lab)}: _count differs from the +Inf bucket")
    return errs


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    errs = check(text)
    for e in errs:
        print("promcheck: " + e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
