#!/usr/bin/env python3
"""Check META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/meta/spec.txt).

    test/pgxn_meta_check.py [META.json]     the file, and that it agrees with
                                            ctr_dist.control and names files
                                            that exist; non-zero if not
    test/pgxn_meta_check.py --self-test     every rule rejects a broken copy

Written from the spec's text: required keys, the type and form of every key
it defines, no unknown keys but x_/X_ ones.  Standard library only.
"""
import copy
import json
import os
import re
import sys

LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown",
}
REQUIRED = ("name", "version", "abstract", "maintainer", "license", "provides", "meta-spec")
OPTIONAL = ("description", "generated_by", "tags", "no_index", "prereqs",
            "release_status", "resources")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
# a term: at least two characters, none of them /, \, space or control
TERM = re.compile(r"^[^/\\\s\x00-\x1f\x7f]{2,}$")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
PHASES = ("configure", "build", "test", "runtime", "develop")
RELATIONS = ("requires", "recommends", "suggests", "conflicts")


def custom(key):
    return re.match(r"^[xX]_.", key) is not None


def nonempty_string(v):
    return isinstance(v, str) and len(v) > 0


def version_range(v):
    """0, a version, or comparisons joined by commas: '>= 1.2.0, != 1.5.0'"""
    if v == 0 and not isinstance(v, bool):
        return True
    if not isinstance(v, str):
        return False
    if v == "0":
        return True
    for part in v.split(","):
        m = re.match(r"^\s*(==|!=|<=|>=|<|>)?\s*(.+?)\s*$", part)
        if not m or not SEMVER.match(m.group(2)):
            return False
    return True


def check_keys(errors, where, obj, allowed):
    for k in obj:
        if k not in allowed and not custom(k):
            errors.append(f"{where}: unknown key {k!r}")


def check_paths(errors, where, v):
    items = v if isinstance(v, list) else [v]
    if isinstance(v, list) and (not v or len(set(map(str, v))) != len(v)):
        errors.append(f"{where}: a non-empty list of distinct paths")
    for p in items:
        if not isinstance(p, str) or len(p) < 2:
            errors.append(f"{where}: {p!r} is not a path")


def check(meta):
    """The spec's rules; returns a list of errors"""
    errors = []
    if not isinstance(meta, dict):
        return ["the document is not a JSON object"]
    for k in REQUIRED:
        if k not in meta:
            errors.append(f"required key {k!r} is missing")
    check_keys(errors, "top level", meta, REQUIRED + OPTIONAL)

    if "name" in meta and not (isinstance(meta["name"], str) and TERM.match(meta["name"])):
        errors.append("name: not a term (2+ characters, no /, \\, space or control)")
    if "version" in meta and not (isinstance(meta["version"], str) and SEMVER.match(meta["version"])):
        errors.append("version: not a semantic version")
    for k in ("abstract", "description", "generated_by"):
        if k in meta and not nonempty_string(meta[k]):
            errors.append(f"{k}: not a non-empty string")

    m = meta.get("maintainer")
    if "maintainer" in meta and not (
            nonempty_string(m)
            or (isinstance(m, list) and m and all(nonempty_string(x) for x in m)
                and len(set(m)) == len(m))):
        errors.append("maintainer: a non-empty string or list of distinct strings")

    lic = meta.get("license")
    if "license" in meta:
        if isinstance(lic, str):
            ok = lic in LICENSES
        elif isinstance(lic, list):
            ok = (lic and all(isinstance(x, str) and x in LICENSES for x in lic)
                  and len(set(lic)) == len(lic))
        elif isinstance(lic, dict):
            ok = lic and all(isinstance(u, str) and URI.match(u) for u in lic.values())
        else:
            ok = False
        if not ok:
            errors.append("license: a known license string, a list of them, or names mapped to URLs")

    prov = meta.get("provides")
    if "provides" in meta:
        if not isinstance(prov, dict) or not prov:
            errors.append("provides: a non-empty object")
        else:
            for ext, spec in prov.items():
                where = f"provides.{ext}"
                if not TERM.match(ext):
                    errors.append(f"{where}: the name is not a term")
                if not isinstance(spec, dict):
                    errors.append(f"{where}: not an object")
                    continue
                check_keys(errors, where, spec, ("file", "version", "abstract", "docfile", "docpath"))
                for k in ("file", "version"):
                    if k not in spec:
                        errors.append(f"{where}: required key {k!r} is missing")
                if "version" in spec and not (isinstance(spec["version"], str) and SEMVER.match(spec["version"])):
                    errors.append(f"{where}.version: not a semantic version")
                for k in ("file", "docfile"):
                    if k in spec:
                        check_paths(errors, f"{where}.{k}", spec[k])
                        if isinstance(spec[k], list):
                            errors.append(f"{where}.{k}: one path, not a list")
                for k in ("abstract", "docpath"):
                    if k in spec and not nonempty_string(spec[k]):
                        errors.append(f"{where}.{k}: not a non-empty string")

    ms = meta.get("meta-spec")
    if "meta-spec" in meta:
        if not isinstance(ms, dict):
            errors.append("meta-spec: not an object")
        else:
            check_keys(errors, "meta-spec", ms, ("version", "url"))
            if not (isinstance(ms.get("version"), str) and re.match(r"^1\.0\.\d+$", ms["version"])):
                errors.append("meta-spec.version: must be 1.0.x for this spec")
            if "url" in ms and ms["url"] not in ("https://pgxn.org/meta/spec.txt", "http://pgxn.org/meta/spec.txt"):
                errors.append("meta-spec.url: not the spec's URL")

    tags = meta.get("tags")
    if "tags" in meta and not (
            isinstance(tags, list) and tags and len(set(map(str, tags))) == len(tags)
            and all(isinstance(t, str) and 2 <= len(t) <= 255
                    and re.match(r"^[^/\\\x00-\x1f\x7f]+$", t) for t in tags)):
        errors.append("tags: a non-empty list of distinct strings of 2..255 characters, no / or \\")

    ni = meta.get("no_index")
    if "no_index" in meta:
        if not isinstance(ni, dict) or not ("file" in ni or "directory" in ni):
            errors.append("no_index: an object with file and/or directory")
        else:
            check_keys(errors, "no_index", ni, ("file", "directory"))
            for k in ("file", "directory"):
                if k in ni:
                    check_paths(errors, f"no_index.{k}", ni[k])

    pr = meta.get("prereqs")
    if "prereqs" in meta:
        if not isinstance(pr, dict) or not any(p in pr for p in PHASES):
            errors.append("prereqs: an object with at least one phase")
        else:
            check_keys(errors, "prereqs", pr, PHASES)
            for phase in PHASES:
                ph = pr.get(phase)
                if ph is None:
                    continue
                if not isinstance(ph, dict) or not any(r in ph for r in RELATIONS):
                    errors.append(f"prereqs.{phase}: an object with at least one relationship")
                    continue
                check_keys(errors, f"prereqs.{phase}", ph, RELATIONS)
                for rel in RELATIONS:
                    deps = ph.get(rel)
                    if deps is None:
                        continue
                    if not isinstance(deps, dict) or not deps:
                        errors.append(f"prereqs.{phase}.{rel}: a non-empty object")
                        continue
                    for name, rng in deps.items():
                        if not TERM.match(name):
                            errors.append(f"prereqs.{phase}.{rel}: {name!r} is not a term")
                        if not version_range(rng):
                            errors.append(f"prereqs.{phase}.{rel}.{name}: {rng!r} is not a version range")

    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        errors.append("release_status: stable, testing or unstable")

    res = meta.get("resources")
    if "resources" in meta:
        if not isinstance(res, dict) or not res:
            errors.append("resources: a non-empty object")
        else:
            check_keys(errors, "resources", res, ("homepage", "bugtracker", "repository"))
            if "homepage" in res and not (isinstance(res["homepage"], str) and URI.match(res["homepage"])):
                errors.append("resources.homepage: not a URI")
            for k, keys in (("bugtracker", ("web", "mailto")), ("repository", ("url", "web", "type"))):
                if k not in res:
                    continue
                if not isinstance(res[k], dict) or not res[k]:
                    errors.append(f"resources.{k}: a non-empty object")
                    continue
                check_keys(errors, f"resources.{k}", res[k], keys)
                for sub in ("web", "url"):
                    if sub in res[k] and not (isinstance(res[k][sub], str) and URI.match(res[k][sub])):
                        errors.append(f"resources.{k}.{sub}: not a URI")
    return errors


def check_project(meta, top):
    """What PGXN cannot know: META.json agrees with the extension"""
    errors = []
    control = open(os.path.join(top, "ctr_dist.control")).read()
    m = re.search(r"^default_version\s*=\s*'([^']*)'", control, re.M)
    default_version = m.group(1) if m else None
    if meta.get("version") != default_version:
        errors.append(f"version {meta.get('version')!r} is not ctr_dist.control's default_version {default_version!r}")
    for ext, spec in (meta.get("provides") or {}).items():
        if not isinstance(spec, dict):
            continue
        if spec.get("version") != default_version:
            errors.append(f"provides.{ext}.version is not ctr_dist.control's default_version")
        for k in ("file", "docfile"):
            if isinstance(spec.get(k), str) and not os.path.exists(os.path.join(top, spec[k])):
                errors.append(f"provides.{ext}.{k}: {spec[k]} does not exist")
    return errors


def self_test(meta):
    """Each broken copy must be rejected, and the file itself accepted"""
    def without(k):
        def f(m):
            del m[k]
        return f

    def setter(path, value):
        def f(m):
            o = m
            for p in path[:-1]:
                o = o[p]
            o[path[-1]] = value
        return f

    broken = [(f"no {k}", without(k)) for k in REQUIRED] + [
        ("version not semver", setter(["version"], "0.2")),
        ("name with a slash", setter(["name"], "ctr/dist")),
        ("name of one character", setter(["name"], "c")),
        ("empty abstract", setter(["abstract"], "")),
        ("maintainer not a string", setter(["maintainer"], 42)),
        ("maintainer list with duplicates", setter(["maintainer"], ["a", "a"])),
        ("unknown license", setter(["license"], "wtfpl")),
        ("license URL not a URI", setter(["license"], {"PostgreSQL": "not a url"})),
        ("empty provides", setter(["provides"], {})),
        ("provides without file", lambda m: m["provides"]["ctr_dist"].pop("file")),
        ("provides with an unknown key", setter(["provides", "ctr_dist", "sql"], "x")),
        ("provides version not semver", setter(["provides", "ctr_dist", "version"], "v2")),
        ("meta-spec 2.0.0", setter(["meta-spec", "version"], "2.0.0")),
        ("meta-spec unknown url", setter(["meta-spec", "url"], "https://example.org/spec")),
        ("unknown top-level key", setter(["homepage"], "https://example.org")),
        ("bad release_status", setter(["release_status"], "beta")),
        ("empty tags", setter(["tags"], [])),
        ("prereq not a version range", setter(["prereqs", "runtime", "requires", "PostgreSQL"], "15")),
        ("unknown prereq phase", setter(["prereqs", "install"], {"requires": {"a": 0}})),
        ("no_index with neither key", setter(["no_index"], {})),
    ]
    failures = 0
    if check(meta):
        print("self-test: META.json itself is rejected")
        failures += 1
    for name, breaker in broken:
        m = copy.deepcopy(meta)
        breaker(m)
        if not check(m):
            print(f"self-test: not rejected: {name}")
            failures += 1
    for v in ("0", 0, "15.0.0", ">= 15.0.0", ">= 15.0.0, < 20.0.0", "!= 16.1.0"):
        if not version_range(v):
            print(f"self-test: valid version range rejected: {v!r}")
            failures += 1
    print(f"pgxn_meta_check self-test: {len(broken) + 7 - failures} passed, {failures} failed")
    return failures == 0


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = sys.argv[1:]
    selftest = "--self-test" in args
    args = [a for a in args if a != "--self-test"]
    path = args[0] if args else os.path.join(top, "META.json")
    with open(path) as f:
        meta = json.load(f)
    if selftest:
        sys.exit(0 if self_test(meta) else 1)
    errors = check(meta) + check_project(meta, os.path.dirname(os.path.abspath(path)))
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"{path}: valid PGXN META.json (spec {meta['meta-spec']['version']}), version {meta['version']}")


if __name__ == "__main__":
    main()
