"""The results.json schema (version 2), checked by hand (no jsonschema dependency).

    {"schema_version": 2, "kind": "fairalign.eval.suite", "created": ISO date, "out_dir": str,
     "tasks": [task, ...], "config": {resolved SuiteConfig}, "provenance": {"git_commit", "versions", ...},
     "systems": [{"name", "spec", "identity", "notes": [str], "tasks": {task: OK | SKIPPED}}],
     "comparisons": {"baseline": name of systems[0], "differences": [DIFFERENCE, ...]}}
    OK         = {"status": "ok", "task_version", "settings", "data": DATA, "metrics": {key: METRIC}, "details",
                  "notes", "runtime_s", "reused", "file", "file_sha256", "fingerprint",
                  "caveats"?: [str] | null (headline caveats the report shows on top, e.g. a demo prompt set)}
    SKIPPED    = {"status": "skipped", "reason": str, "how_to": str | null, "earlier": EARLIER | null}
    EARLIER    = OK + {"from_earlier_run": true, "finished_at": ISO date | null}: the finished per-task file an
                 earlier run left for this (system, task), kept visible (a skip never erases results); its
                 numbers are that run's (its own settings, data and fingerprint), not this run's, and are not
                 compared
    METRIC     = {"value", "low", "high" (number | null), "level" (0 < level < 1), "n" (int >= 0), "method",
                  "label", "unit", "units" (unit-set name), "higher_is_better" (bool | null), "ideal" (number | null),
                  "scale"?: one of SCALES | null (what axis the number lives on; the report groups plots by it)}
    DATA       = {"source", "path", "sha256", "hub_id", "revision", "rows_used"}: a local path with its sha256,
                 or a Hub id
    DIFFERENCE = {"task", "metric", "label", "baseline", "system", "value", "low", "high", "level", "n",
                  "paired" (bool), "method", "unit", "n_baseline", "n_system", "higher_is_better", "note"?,
                  "p"?, "p_holm"? (number in [0, 1] | null: bootstrap p-value, Holm-adjusted over all differences),
                  "verdict_holm"?: str}
Keys marked ? are optional: older files lack them and stay valid.
Bump SCHEMA_VERSION when a key changes meaning or disappears; readers check it first.
Changes: 2: a skipped entry may carry an earlier run's numbers (`earlier`), so "skipped" no longer means
"no numbers"; per-task files carry `content_sha256` (checked on reuse).
"""
from __future__ import annotations

import re

SCHEMA_VERSION = 2
KIND = "fairalign.eval.suite"
# proportion: rates and shares in [0, 1]; pp: percentage points; score: any other unbounded score
SCALES = ("proportion", "perplexity", "pp", "correlation", "ratio", "score")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SchemaError(ValueError):
    """results.json does not match the schema; the message lists every problem with its JSON path."""


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Checker:
    def __init__(self):
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def key(self, obj: dict, key: str, path: str, kind, nullable: bool = False):
        """obj[key] exists and has `kind` ("str", "int", "num", "bool", "dict", "list"); returns it or None."""
        if not isinstance(obj, dict):
            self.fail(path, f"expected an object, got {type(obj).__name__}")
            return None
        if key not in obj:
            self.fail(f"{path}.{key}", "missing")
            return None
        value = obj[key]
        if value is None and nullable:
            return None
        ok = {"str": lambda v: isinstance(v, str), "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "num": _is_num, "bool": lambda v: isinstance(v, bool), "dict": lambda v: isinstance(v, dict),
              "list": lambda v: isinstance(v, list)}[kind](value)
        if not ok:
            self.fail(f"{path}.{key}", f"expected {kind}{' or null' if nullable else ''}, got {value!r:.60}")
            return None
        return value

    def optional(self, obj: dict, key: str, path: str, kind, nullable: bool = True):
        """Like `key`, for a key that older files lack: absent is fine."""
        return self.key(obj, key, path, kind, nullable) if isinstance(obj, dict) and key in obj else None

    def probability(self, obj: dict, key: str, path: str) -> None:
        p = self.optional(obj, key, path, "num")
        if p is not None and not 0 <= p <= 1:
            self.fail(f"{path}.{key}", f"must lie in [0, 1], got {p}")

    def interval(self, obj: dict, path: str) -> None:
        for k in ("value", "low", "high"):
            self.key(obj, k, path, "num", nullable=True)
        level = self.key(obj, "level", path, "num")
        if level is not None and not 0 < level < 1:
            self.fail(f"{path}.level", f"must lie in (0, 1), got {level}")
        n = self.key(obj, "n", path, "int")
        if n is not None and n < 0:
            self.fail(f"{path}.n", f"must be >= 0, got {n}")
        low, high = obj.get("low"), obj.get("high")
        if (low is None) != (high is None):
            self.fail(path, "low and high must both be numbers or both null")
        elif _is_num(low) and _is_num(high) and low > high + 1e-9:
            self.fail(path, f"low {low} > high {high}")
        self.key(obj, "method", path, "str")

    def metric(self, obj: dict, path: str) -> None:
        self.interval(obj, path)
        for k in ("label", "unit", "units"):
            self.key(obj, k, path, "str")
        self.key(obj, "higher_is_better", path, "bool", nullable=True)
        self.key(obj, "ideal", path, "num", nullable=True)
        scale = self.optional(obj, "scale", path, "str")
        if scale is not None and scale not in SCALES:
            self.fail(f"{path}.scale", f"must be one of {list(SCALES)} or null, got {scale!r}")

    def data(self, obj: dict, path: str) -> None:
        self.key(obj, "source", path, "str")
        local = self.key(obj, "path", path, "str", nullable=True)
        digest = self.key(obj, "sha256", path, "str", nullable=True)
        hub = self.key(obj, "hub_id", path, "str", nullable=True)
        self.key(obj, "revision", path, "str", nullable=True)
        rows = self.key(obj, "rows_used", path, "int")
        if rows is not None and rows < 0:
            self.fail(f"{path}.rows_used", f"must be >= 0, got {rows}")
        if local is None and hub is None:
            self.fail(path, "needs a local path (with sha256) or a Hub id")
        if local is not None and (digest is None or not _SHA256.match(digest)):
            self.fail(f"{path}.sha256", "a local file needs its sha256 (64 hex digits)")

    def task_entry(self, obj: dict, path: str) -> None:
        status = self.key(obj, "status", path, "str")
        if status == "skipped":
            self.key(obj, "reason", path, "str")
            self.key(obj, "how_to", path, "str", nullable=True)
            earlier = self.key(obj, "earlier", path, "dict", nullable=True)
            if earlier is not None:
                if earlier.get("from_earlier_run") is not True:
                    self.fail(f"{path}.earlier.from_earlier_run", "must be true (an earlier run's result, marked as such)")
                self.key(earlier, "finished_at", f"{path}.earlier", "str", nullable=True)
                if earlier.get("status") != "ok":
                    self.fail(f"{path}.earlier.status", f"must be 'ok', got {earlier.get('status')!r}")
                else:
                    self.task_entry(earlier, f"{path}.earlier")
            return
        if status != "ok":
            if status is not None:
                self.fail(f"{path}.status", f"must be 'ok' or 'skipped', got {status!r}")
            return
        self.key(obj, "task_version", path, "int")
        self.key(obj, "settings", path, "dict")
        self.key(obj, "details", path, "dict")
        self.key(obj, "runtime_s", path, "num")
        self.key(obj, "reused", path, "bool")
        self.key(obj, "file", path, "str")
        self.key(obj, "fingerprint", path, "str")
        digest = self.key(obj, "file_sha256", path, "str")
        if digest is not None and not _SHA256.match(digest):
            self.fail(f"{path}.file_sha256", "must be 64 hex digits")
        for name in ("notes", "caveats"):
            texts = self.key(obj, name, path, "list") if name == "notes" else self.optional(obj, name, path, "list")
            if texts is not None and not all(isinstance(t, str) for t in texts):
                self.fail(f"{path}.{name}", "must be a list of strings")
        data = self.key(obj, "data", path, "dict")
        if data is not None:
            self.data(data, f"{path}.data")
        metrics = self.key(obj, "metrics", path, "dict")
        if metrics is not None:
            if not metrics:
                self.fail(f"{path}.metrics", "a finished task needs at least one metric")
            for name, m in metrics.items():
                self.metric(m, f"{path}.metrics.{name}")


def validate_results(obj) -> None:
    """Raise `SchemaError` listing every way `obj` departs from the schema (SCHEMA_VERSION); return None when it conforms."""
    c = _Checker()
    if not isinstance(obj, dict):
        raise SchemaError(f"results: expected a JSON object, got {type(obj).__name__}")
    version = c.key(obj, "schema_version", "results", "int")
    if version is not None and version != SCHEMA_VERSION:
        c.fail("results.schema_version", f"this reader understands version {SCHEMA_VERSION}, got {version}")
    kind = c.key(obj, "kind", "results", "str")
    if kind is not None and kind != KIND:
        c.fail("results.kind", f"expected {KIND!r}, got {kind!r}")
    for k, kind_ in (("created", "str"), ("out_dir", "str"), ("config", "dict")):
        c.key(obj, k, "results", kind_)
    prov = c.key(obj, "provenance", "results", "dict")
    if prov is not None:
        c.key(prov, "git_commit", "results.provenance", "str", nullable=True)
        c.key(prov, "versions", "results.provenance", "dict")
    tasks = c.key(obj, "tasks", "results", "list") or []
    systems = c.key(obj, "systems", "results", "list")
    names = []
    if systems is not None and not systems:
        c.fail("results.systems", "needs at least one system")
    for i, system in enumerate(systems or []):
        path = f"results.systems[{i}]"
        name = c.key(system, "name", path, "str")
        names.append(name)
        c.key(system, "spec", path, "dict")
        c.key(system, "identity", path, "dict")
        c.key(system, "notes", path, "list")
        entries = c.key(system, "tasks", path, "dict")
        if entries is None:
            continue
        for task in tasks:
            if task not in entries:
                c.fail(f"{path}.tasks.{task}", "missing (every task listed in results.tasks needs an entry, ok or skipped)")
        for task, entry in entries.items():
            c.task_entry(entry, f"{path}.tasks.{task}")
    comparisons = c.key(obj, "comparisons", "results", "dict")
    if comparisons is not None:
        baseline = c.key(comparisons, "baseline", "results.comparisons", "str")
        if baseline is not None and names and baseline != names[0]:
            c.fail("results.comparisons.baseline", f"must be the first system {names[0]!r}, got {baseline!r}")
        for j, d in enumerate(c.key(comparisons, "differences", "results.comparisons", "list") or []):
            path = f"results.comparisons.differences[{j}]"
            c.interval(d, path)
            for k in ("task", "metric", "label", "baseline", "system", "unit"):
                c.key(d, k, path, "str")
            c.key(d, "paired", path, "bool")
            c.key(d, "n_baseline", path, "int")
            c.key(d, "n_system", path, "int")
            c.key(d, "higher_is_better", path, "bool", nullable=True)
            c.probability(d, "p", path)
            c.probability(d, "p_holm", path)
            c.optional(d, "verdict_holm", path, "str", nullable=False)
            if isinstance(d, dict) and d.get("system") is not None and d.get("system") not in names:
                c.fail(f"{path}.system", f"{d.get('system')!r} is not one of the systems {names}")
    if c.errors:
        shown = c.errors[:25] + ([f"... and {len(c.errors) - 25} more"] if len(c.errors) > 25 else [])
        raise SchemaError(f"results do not match schema version {SCHEMA_VERSION} ({len(c.errors)} problem(s)):\n  - "
                          + "\n  - ".join(shown))
