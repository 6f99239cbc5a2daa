"""The vectorized XES reader: the file tokenized and checked in polars, no Python per event.

lxml parses a million-event XES file in about ten seconds on this project's reference machine,
most of it handing every element to Python. This reader lets polars' CSV scanner split the text
at ``<`` (which never occurs inside an attribute value of well-formed XML) into rows, and each
row at ``"`` into fields, so ``<string key="K" value="V"/>`` arrives as the fields
``string key=``, ``K``, `` value=``, ``V``, ``/>``. Two streaming scans read the file: one keeps
the shape of every token (opens, closes, self-closes, tag names where needed), the other only the
attributes the analyses use. Depth is a cumulative sum; the nesting (every close tag matches the
open tag at its depth) is checked with a sort and a shift instead of a stack; each attribute's
element is found by forward-filling the last open tag.

It handles the XES that tools write. Anything it is not sure of (comments holding markup, CDATA,
a DTD, processing instructions after the prolog, character references, attributes quoted or
spaced unusually, elements with more than five attributes, markup that does not nest) makes it
give up, and :func:`accord.analytics.xes_read.read_xes` (the streaming lxml reader, which
reports errors by line and column) reads the file instead. Tests check both readers agree on
every corpus log.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl

from accord.analytics.frame import EventLog, LogError, Skipped
from accord.analytics.xes_read import XesKeys, finish

ATTRIBUTE_TAGS = ("string", "date", "int", "float", "boolean", "id", "list", "container")
LOG_CHILDREN = (*ATTRIBUTE_TAGS, "extension", "global", "classifier", "trace")


class NotSimple(Exception):
    """The file uses XML this reader does not handle; the streaming reader must read it."""


NCOL = 12  # fields per token: an element with more than five attributes is read carefully


def read_xes_fast(source: Path | bytes, path: Path, keys: XesKeys | None = None) -> EventLog:
    """Read XES text (a plain file, or decompressed bytes) into an :class:`EventLog`.

    Raise :class:`NotSimple` when the careful reader must take over, :class:`LogError` when
    the file is certainly not an event log.
    """
    keys = keys or XesKeys()
    start = source[:4096] if isinstance(source, bytes) else _head(source)
    if not start.strip():
        raise LogError(f"{path}: the file is empty")
    if start.split(b"<", 1)[0].strip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf"):
        raise NotSimple("text before the first element")
    shape = _scan(source).select(_SHAPE).collect(engine="streaming")
    skip = 2 if shape.height > 1 and shape["prolog"][1] else 1
    shape = shape.with_row_index("i").slice(skip)
    for flag, why in (
        ("overflow", "an element with many attributes"),
        ("odd", "attributes written in an unusual way"),
        ("special", "CDATA, DTD or processing instructions"),
    ):
        if bool(shape[flag].any()):
            raise NotSimple(why)
    if bool(shape["comment"].any()):
        # A comment without '<' is one token (split at its quotes): drop it; anything else,
        # such as a comment holding markup, goes to the careful reader.
        whole = (
            _scan(source)
            .filter(_COMMENT)
            .select(pl.concat_str(pl.all(), separator='"', ignore_nulls=True))
            .collect()
            .to_series()
        )
        if not bool(whole.str.contains(r"(?s)-->\s*$").all()):
            raise NotSimple("a comment holding markup")
        shape = shape.filter(~pl.col("comment"))
    frame, named = _structure(shape, path)
    del shape  # the biggest frame: gone before the attribute scan allocates its own
    wanted = [*dict.fromkeys([keys.case, *keys.event_columns()])]
    attrs = (
        _scan(source)
        .with_row_index("i")
        .filter(
            _IS_ATTRIBUTE & pl.col("c1").is_in(wanted) & (_KEY_FIRST | _VALUE_FIRST | _KEY_ONLY)
        )
        .select(
            "i",
            pl.when(_VALUE_FIRST).then(pl.col("c3")).otherwise(pl.col("c1")).alias("key"),
            pl.when(_KEY_FIRST)
            .then(pl.col("c3").fill_null(""))
            .when(_VALUE_FIRST)
            .then(pl.col("c1").fill_null(""))
            .alias("value"),
        )
        .filter(pl.col("key").is_in(wanted) & (pl.col("i") >= skip))
        .collect(engine="streaming")
    )
    attrs, named, frame = _renumber(frame, named, attrs)
    attrs = _decode(attrs)
    attrs = _enclosing(frame, named, attrs)
    del frame
    return _columns(named, attrs, path, keys)


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def _scan(source: Path | bytes) -> pl.LazyFrame:
    # '<' can never occur inside an attribute value, and '"' only delimits them: each row is
    # one element (or closing tag) and its fields are what lies between its quotes.
    options: dict[str, Any] = {
        "has_header": False,
        "separator": '"',
        "quote_char": None,
        "eol_char": "<",
        "schema": dict.fromkeys((f"c{i}" for i in range(NCOL)), pl.Utf8),
        "truncate_ragged_lines": True,
        "missing_columns": "insert",
    }
    if isinstance(source, bytes):  # decompressed in memory: small by construction
        return pl.read_csv(io.BytesIO(source), **options).lazy()
    return pl.scan_csv(source, **options)


_C0, _C2 = pl.col("c0"), pl.col("c2")
# key="K" value="V" splits at its quotes into: 'TAG key=', K, ' value=', V, '/>'
_KEY_FIRST = (_C0.str.contains(r"\skey=$") & _C2.str.contains(r"^\s+value=$")).fill_null(False)
_VALUE_FIRST = (_C0.str.contains(r"\svalue=$") & _C2.str.contains(r"^\s+key=$")).fill_null(False)
_KEY_ONLY = (
    _C0.str.contains(r"\skey=$") & ~_C2.fill_null("").str.contains("=", literal=True)
).fill_null(False)
_IS_ATTRIBUTE = pl.any_horizontal(_C0.str.starts_with(f"{t} ") for t in ATTRIBUTE_TAGS).fill_null(
    False
)
_LAST = pl.coalesce([pl.col(f"c{i}") for i in reversed(range(NCOL))])
_COMMENT = _C0.str.starts_with("!--").fill_null(False)
_SELFCLOSE = _LAST.str.contains(r"/>\s*$").fill_null(False)
_SHAPE = [
    _C0.str.starts_with("/").fill_null(False).alias("close"),
    _SELFCLOSE.alias("selfclose"),
    # self-closing attributes all count as "string": their tag is never looked at again
    pl.when(_IS_ATTRIBUTE & _SELFCLOSE)
    .then(pl.lit("string"))
    .when(~_COMMENT)
    .then(_C0.str.extract(r"^/?([^\s/>]+)").str.split(":").list.last())
    .alias("name"),
    _COMMENT.alias("comment"),
    (_C0.str.contains(r"^[!?]").fill_null(False) & ~_COMMENT).alias("special"),
    (
        _C0.str.contains(r"key\s*=").fill_null(False) & ~_KEY_FIRST & ~_VALUE_FIRST & ~_KEY_ONLY
    ).alias("odd"),
    pl.col(f"c{NCOL - 1}").is_not_null().alias("overflow"),
    _C0.str.starts_with("?xml").fill_null(False).alias("prolog"),
]


def _structure(shape: pl.DataFrame, path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Depth of every token; the named ones (tags that open or close, and shallow ones)."""
    frame = shape.select(
        "i",
        "close",
        pl.when(pl.col("close"))
        .then(-1)
        .when(pl.col("selfclose"))
        .then(0)
        .otherwise(1)
        .cast(pl.Int8)
        .alias("delta"),
    )
    frame = frame.with_columns(
        (pl.col("delta").cast(pl.Int32).cum_sum() - pl.col("delta")).alias("depth")
    )
    mask = (frame["delta"] != 0) | (frame["depth"] <= 2)
    named = frame.filter(mask).with_columns(shape["name"].filter(mask))
    if named.height == 0:
        raise LogError(f"{path}: the file holds no XML element")
    if bool(named["name"].is_null().any()):
        raise NotSimple("a token that is not an element")
    _check_nesting(frame, named, path)
    return frame, named


def _renumber(
    frame: pl.DataFrame, named: pl.DataFrame, attrs: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """From here on a token is known by its row in the frame, not its row in the file (they
    differ by the prolog and any comments dropped)."""
    first = int(frame["i"][0]) if frame.height else 0
    if frame.height and int(frame["i"][-1]) - first == frame.height - 1:
        return (
            attrs.with_columns(pl.col("i") - first),
            named.with_columns(pl.col("i") - first),
            frame.with_columns(pl.col("i") - first),
        )
    rows = frame.select("i", pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"))
    return (
        attrs.join(rows, on="i", maintain_order="left").drop("i").rename({"row": "i"}),
        named.join(rows, on="i", maintain_order="left").drop("i").rename({"row": "i"}),
        frame.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("i")),
    )


def _decode(attrs: pl.DataFrame) -> pl.DataFrame:
    """Entity references in values (&amp; and friends); numeric ones are left to lxml."""
    if bool(attrs["value"].str.contains("&#", literal=True).any()):
        raise NotSimple("character references")
    if bool(attrs["value"].str.contains("&", literal=True).any()):
        attrs = attrs.with_columns(
            pl.when(pl.col("value").str.contains("&", literal=True))
            .then(_unescape("value"))
            .otherwise(pl.col("value"))
            .alias("value")
        )
    return attrs


def _parents(named: pl.DataFrame) -> pl.DataFrame:
    """Each named token's ``parent`` (index) and ``pname``: the last element opened one level
    up before it, found by forward-filling the last open element of every depth."""
    depth = pl.col("depth")
    opened = ~pl.col("close")
    levels = range(int(named["depth"].max() or 0))  # type: ignore[arg-type]
    last_i = [pl.when(opened & (depth == k)).then(pl.col("i")).forward_fill() for k in levels]
    last_n = [pl.when(opened & (depth == k)).then(pl.col("name")).forward_fill() for k in levels]
    if not last_i:
        return named.with_columns(
            pl.lit(None, pl.UInt32).alias("parent"), pl.lit(None, pl.Utf8).alias("pname")
        )
    return named.with_columns(
        pl.coalesce([pl.when(depth == k + 1).then(e) for k, e in enumerate(last_i)]).alias(
            "parent"
        ),
        pl.coalesce([pl.when(depth == k + 1).then(e) for k, e in enumerate(last_n)]).alias("pname"),
    )


def _enclosing(frame: pl.DataFrame, named: pl.DataFrame, attrs: pl.DataFrame) -> pl.DataFrame:
    """Add to each attribute row the element it sits in: ``parent`` (its index), ``pname``
    (``event``, ``trace`` or ``other``), its ``depth``, and ``after_close`` when the last tag
    before it closed an element (then the parent must be found by depth instead)."""
    code = pl.zeros(frame.height, dtype=pl.Int8, eager=True).scatter(
        named["i"],
        named.select(
            pl.when(pl.col("name") == "event")
            .then(1)
            .when(pl.col("name") == "trace")
            .then(2)
            .otherwise(0)
            .cast(pl.Int8)
        ).to_series(),
    )
    struct = pl.col("delta") != 0
    ctx = frame.with_columns(code.alias("code")).select(
        pl.when(struct).then(pl.col("i")).forward_fill().shift(1).alias("parent"),
        pl.when(struct).then(pl.col("close")).forward_fill().shift(1).alias("after_close"),
        pl.when(struct).then(pl.col("code")).forward_fill().shift(1).alias("pcode"),
        pl.col("depth"),
    )
    picked = ctx.select(pl.all().gather(attrs["i"]))
    return pl.concat([attrs, picked], how="horizontal").select(
        pl.col("i").cast(pl.UInt32),
        "key",
        "value",
        "depth",
        pl.col("after_close").fill_null(True),
        pl.col("parent").cast(pl.UInt32),
        pl.col("pcode")
        .replace_strict({1: "event", 2: "trace"}, default="other", return_dtype=pl.Utf8)
        .alias("pname"),
    )


def _check_nesting(frame: pl.DataFrame, named: pl.DataFrame, path: Path) -> None:
    """Every close tag must close the element opened last at its depth, and all must close.

    Sorted stably by level, a well-nested document alternates open, close, open, close... at
    each level, each close naming the open just before it: one sort and one shift check it.
    """
    end = int(frame["depth"][-1]) + int(frame["delta"][-1])
    if end != 0 or int(frame["depth"].min() or 0) < 0:  # type: ignore[arg-type]
        raise NotSimple("unbalanced")
    bad = (
        named.lazy()
        .filter(pl.col("delta") != 0)
        .with_columns(
            pl.when(pl.col("close"))
            .then(pl.col("depth") - 1)
            .otherwise(pl.col("depth"))
            .alias("lv")
        )
        .sort("lv", maintain_order=True)
        .with_columns(
            prev_close=pl.col("close").shift(1),
            prev_name=pl.col("name").shift(1),
            same_lv=pl.col("lv") == pl.col("lv").shift(1),
        )
        .filter(
            pl.when(pl.col("close"))
            .then(
                ~pl.col("same_lv").fill_null(False)
                | pl.col("prev_close")
                | (pl.col("prev_name") != pl.col("name"))
            )
            .otherwise(pl.col("same_lv").fill_null(False) & ~pl.col("prev_close").fill_null(True))
        )
        .head(1)
        .collect()
    )
    if bad.height:
        raise NotSimple("mismatched tags")
    roots = named.filter((pl.col("depth") == 0) & ~pl.col("close"))
    if roots.height != 1:
        raise NotSimple("not exactly one root element")
    if roots["name"][0] != "log":
        raise LogError(
            f"{path}: the root element is <{roots['name'][0]}>, not <log>: "
            "this is not an XES event log"
        )


def _unescape(col: str) -> pl.Expr:
    return (
        pl.col(col)
        .str.replace_all("&lt;", "<", literal=True)
        .str.replace_all("&gt;", ">", literal=True)
        .str.replace_all("&quot;", '"', literal=True)
        .str.replace_all("&apos;", "'", literal=True)
        .str.replace_all("&amp;", "&", literal=True)
    )


def _columns(named: pl.DataFrame, attrs: pl.DataFrame, path: Path, keys: XesKeys) -> EventLog:
    """Events, their case ids and attribute columns, as the streaming reader would see them."""
    skipped = Skipped()
    notes: list[str] = []
    opens = _parents(named).filter(~pl.col("close")).select("i", "depth", "name", "parent", "pname")
    # for attributes after a nested element closed (rare): the last open one level up
    parents = opens.select(
        pl.col("i").alias("parent"), pl.col("depth").alias("pdepth"), pl.col("name").alias("pname")
    )

    def with_parent(df: pl.DataFrame) -> pl.DataFrame:
        df = df.with_columns((pl.col("depth") - 1).alias("pdepth")).sort("i")
        return df.join_asof(
            parents.sort("parent"),
            left_on="i",
            right_on="parent",
            by="pdepth",
            strategy="backward",
            check_sortedness=False,
        )

    traces = opens.filter(pl.col("name") == "trace")
    good_traces = traces.filter(pl.col("pname") == "log")
    if traces.height > good_traces.height:
        skipped.add("traces not directly inside <log>", traces.height - good_traces.height)
    if traces.height == 0:
        notes.append("the log holds no <trace>")
    events = opens.filter(pl.col("name") == "event")
    outside = events.filter(pl.col("pname") != "trace")
    skipped.add("events outside any trace", outside.height)
    events = events.select("i", trace="parent").join(
        good_traces.select(trace="i"), on="trace", how="semi", maintain_order="left"
    )
    children = opens.filter(pl.col("depth") <= 2)
    unknown = children.filter(
        (pl.col("pname") == "trace") & ~pl.col("name").is_in([*ATTRIBUTE_TAGS, "event"])
    )
    for name, n in unknown.group_by("name").len().sort("name").iter_rows():
        skipped.add(f"unknown <{name}> elements in traces", int(n))
    at_log = children.filter((pl.col("pname") == "log") & ~pl.col("name").is_in(LOG_CHILDREN))
    for name, n in at_log.group_by("name").len().sort("name").iter_rows():
        if name != "event":  # already counted as events outside any trace
            skipped.add(f"unknown <{name}> elements in the log", int(n))
    keep = ["i", "key", "value", "parent", "pname"]
    nested = attrs.filter(pl.col("after_close"))
    attrs = attrs.filter(~pl.col("after_close")).select(keep)
    if nested.height:  # after a nested element closed, the parent is found by depth
        nested = with_parent(nested.select("i", "key", "value", "depth")).select(keep)
        attrs = pl.concat([attrs, nested.cast(attrs.schema)]).sort("i")
    case_ids = (
        attrs.filter((pl.col("pname") == "trace") & (pl.col("key") == keys.case))
        .select(pl.col("parent").alias("trace"), pl.col("value").alias("case"))
        .unique(subset="trace", keep="last", maintain_order=True)
    )
    table = _lookup(events, case_ids, "trace")
    no_case = int(table["case"].is_null().sum())
    if no_case:
        skipped.add("events of traces without a case id", no_case)
        table = table.filter(pl.col("case").is_not_null())
    ev_attrs = attrs.filter(pl.col("pname") == "event")
    cols: dict[str, Any] = {"case": table["case"]}
    for key, column in keys.event_columns().items():
        sub = ev_attrs.filter(pl.col("key") == key).select(pl.col("parent").alias("i"), "value")
        if bool((sub["i"].diff() == 0).any()):  # a key given twice: the last one counts
            sub = sub.unique(subset="i", keep="last", maintain_order=True)
        cols[column] = _lookup(table.select("i"), sub, "i")["value"]
    cols["pos"] = pl.int_range(0, table.height, eager=True)
    return finish(cols, path=path, fmt="xes", skipped=skipped, notes=notes)


def _lookup(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
    """Left join on an integer key both sides hold in ascending order (right keys unique):
    a merge instead of a hash join, several times faster on millions of rows."""
    return left.join_asof(
        right.with_columns(pl.col(on).cast(left.schema[on])),
        on=on,
        strategy="backward",
        tolerance=0,
        check_sortedness=False,
    )
