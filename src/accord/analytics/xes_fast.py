"""The vectorized XES reader: the whole file tokenized and checked in polars, no Python per event.

lxml parses a million-event XES file in about ten seconds on this project's reference machine,
most of it handing every element to Python. This reader splits the text at ``<`` (which can
never occur inside an attribute value of well-formed XML), extracts tag, key and value of every
element with vectorized regular expressions, and checks the nesting (every close tag matches
the open tag at its depth) with a sort and a shift instead of a stack.

It handles the XES that tools write. Anything it is not sure of (comments, CDATA, a DTD,
processing instructions after the prolog, character references, attributes in an order or
quoting it does not read, markup that does not nest) makes it give up, and
:func:`accord.analytics.xes_read.read_xes` (the streaming lxml reader, which reports errors by
line and column) reads the file instead. Tests check both readers agree on every corpus log.
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
    try:
        raw = _tokens(source)
    except pl.exceptions.NoDataError:
        raise LogError(f"{path}: the file is empty") from None
    if raw.height == 0:
        raise LogError(f"{path}: the file is empty")
    lead = raw.row(0)
    if any(f is not None and f.strip() not in ("", "\ufeff") for f in lead):
        raise NotSimple("text before the first element")
    raw = raw.slice(1)
    if raw.height and (raw["c0"][0] or "").startswith("?xml"):
        raw = raw.slice(1)
    if bool(raw[f"c{NCOL - 1}"].is_not_null().any()):
        raise NotSimple("an element with many attributes")
    head = raw["c0"].fill_null("")
    comment = head.str.starts_with("!--")
    if bool(comment.any()):
        # A comment without '<' is one token (split at its quotes): drop it; anything else,
        # such as a comment holding markup, goes to the careful reader.
        whole = (
            raw.filter(comment)
            .select(pl.concat_str(pl.all(), separator='"', ignore_nulls=True))
            .to_series()
        )
        if not bool(whole.str.contains(r"(?s)-->\s*$").all()):
            raise NotSimple("a comment holding markup")
        raw = raw.filter(~comment)
        head = head.filter(~comment)
    if bool(head.str.contains(r"^[!?]").any()):
        raise NotSimple("CDATA, DTD or processing instructions")
    return _read_tokens(raw, head, path, keys)


def _read_tokens(raw: pl.DataFrame, head: pl.Series, path: Path, keys: XesKeys) -> EventLog:
    last = pl.coalesce([pl.col(f"c{i}") for i in reversed(range(NCOL))])
    frame = raw.select(
        pl.col("c0").str.starts_with("/").fill_null(False).alias("close"),
        last.str.contains(r"/>\s*$").fill_null(False).alias("selfclose"),
    )
    frame = frame.with_row_index("i").with_columns(
        pl.when(pl.col("close"))
        .then(-1)
        .when(pl.col("selfclose"))
        .then(0)
        .otherwise(1)
        .cast(pl.Int32)
        .alias("delta")
    )
    frame = frame.with_columns((pl.col("delta").cum_sum() - pl.col("delta")).alias("depth"))
    named_mask = (frame["delta"] != 0) | (frame["depth"] <= 2)
    named = frame.filter(named_mask).with_columns(
        head.filter(named_mask)
        .str.extract(r"^/?([^\s/>]+)")
        .str.split(":")
        .list.last()
        .alias("name")
    )
    if named.height == 0:
        raise LogError(f"{path}: the file holds no XML element")
    if bool(named["name"].is_null().any()):
        raise NotSimple("a token that is not an element")
    _check_nesting(frame, named, path)
    del frame
    wanted = [*dict.fromkeys([keys.case, *keys.event_columns()])]
    # key="K" value="V" splits at its quotes into: 'TAG key=', K, ' value=', V, '/>'
    c0, c2 = pl.col("c0"), pl.col("c2")
    key_first = c0.str.contains(r"\skey=$") & c2.str.contains(r"^\s+value=$")
    value_first = c0.str.contains(r"\svalue=$") & c2.str.contains(r"^\s+key=$")
    key_only = c0.str.contains(r"\skey=$") & ~c2.fill_null("").str.contains("=", literal=True)
    cols = (
        raw.lazy()
        .with_row_index("i")
        .select(
            "i",
            pl.when(key_first | key_only)
            .then(pl.col("c1"))
            .when(value_first)
            .then(pl.col("c3"))
            .alias("key"),
            pl.when(key_first)
            .then(pl.col("c3").fill_null(""))
            .when(value_first)
            .then(pl.col("c1").fill_null(""))
            .alias("value"),
            (c0.str.contains(r"key\s*=") & ~key_first.fill_null(False)
             & ~value_first.fill_null(False) & ~key_only.fill_null(False))
            .fill_null(False).alias("odd"),
        )
    )  # fmt: skip
    attrs = cols.filter(pl.col("odd") | pl.col("key").is_in(wanted)).collect()
    del raw
    if bool(attrs["odd"].any()):
        raise NotSimple("attributes written in an unusual way")
    attrs = attrs.drop("odd")
    if bool(attrs["value"].str.contains("&#", literal=True).any()):
        raise NotSimple("character references")
    if bool(attrs["value"].str.contains("&", literal=True).any()):
        attrs = attrs.with_columns(
            pl.when(pl.col("value").str.contains("&", literal=True))
            .then(_unescape("value"))
            .otherwise(pl.col("value"))
            .alias("value")
        )
    return _columns(named, attrs.with_columns(pl.col("i").cast(pl.UInt32)), path, keys)


def _tokens(source: Path | bytes) -> pl.DataFrame:
    # '<' can never occur inside an attribute value, and '"' only delimits them: each row is
    # one element (or closing tag) and its fields are what lies between its quotes.
    return pl.read_csv(
        io.BytesIO(source) if isinstance(source, bytes) else source,
        has_header=False,
        separator='"',
        quote_char=None,
        eol_char="<",
        schema=dict.fromkeys((f"c{i}" for i in range(NCOL)), pl.Utf8),
        truncate_ragged_lines=True,
        missing_columns="insert",
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
    opens = named.filter(~pl.col("close")).select("i", "depth", "name")
    # Each element's parent is the last element opened one level up before it.
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

    traces = with_parent(opens.filter(pl.col("name") == "trace"))
    good_traces = traces.filter(pl.col("pname") == "log")
    if traces.height > good_traces.height:
        skipped.add("traces not directly inside <log>", traces.height - good_traces.height)
    if traces.height == 0:
        notes.append("the log holds no <trace>")
    events = with_parent(opens.filter(pl.col("name") == "event"))
    outside = events.filter(pl.col("pname") != "trace")
    skipped.add("events outside any trace", outside.height)
    events = events.filter(pl.col("parent").is_in(good_traces["i"].implode())).select(
        "i", trace="parent"
    )
    children = with_parent(opens.filter(pl.col("depth") <= 2))
    unknown = children.filter(
        (pl.col("pname") == "trace") & ~pl.col("name").is_in([*ATTRIBUTE_TAGS, "event"])
    )
    for name, n in unknown.group_by("name").len().sort("name").iter_rows():
        skipped.add(f"unknown <{name}> elements in traces", int(n))
    at_log = children.filter((pl.col("pname") == "log") & ~pl.col("name").is_in(LOG_CHILDREN))
    for name, n in at_log.group_by("name").len().sort("name").iter_rows():
        if name != "event":  # already counted as events outside any trace
            skipped.add(f"unknown <{name}> elements in the log", int(n))
    attrs = _attribute_parents(named, attrs, with_parent)
    case_ids = (
        attrs.filter((pl.col("pname") == "trace") & (pl.col("key") == keys.case))
        .group_by("parent")
        .agg(pl.col("value").last().alias("case"))
        .rename({"parent": "trace"})
    )
    table = events.join(case_ids, on="trace", how="left", maintain_order="left")
    no_case = int(table["case"].is_null().sum())
    if no_case:
        skipped.add("events of traces without a case id", no_case)
        table = table.filter(pl.col("case").is_not_null())
    ev_attrs = attrs.filter(pl.col("pname") == "event")
    cols: dict[str, Any] = {"case": table["case"]}
    for key, column in keys.event_columns().items():
        sub = (
            ev_attrs.filter(pl.col("key") == key)
            .group_by("parent")
            .agg(pl.col("value").last())
            .rename({"parent": "i"})
        )
        joined = table.select("i").join(sub, on="i", how="left", maintain_order="left")
        cols[column] = joined["value"]
    cols["pos"] = pl.int_range(0, table.height, eager=True)
    return finish(cols, path=path, fmt="xes", skipped=skipped, notes=notes)


def _attribute_parents(named: pl.DataFrame, attrs: pl.DataFrame, with_parent: Any) -> pl.DataFrame:
    """The element each attribute row sits in (``parent``, ``pname``).

    Usually that is the last element opened before it, found with one as-of join; after a
    nested element closed (a list inside an event, say) it is found by depth instead.
    """
    struct = named.filter(pl.col("delta") != 0).select(
        pl.col("i").alias("parent"),
        pl.col("name").alias("pname"),
        pl.col("close").alias("after_close"),
        (pl.col("depth") + pl.col("delta")).alias("depth"),
    )
    attrs = attrs.join_asof(
        struct.with_columns(pl.col("parent").alias("si")),
        left_on="i",
        right_on="si",
        strategy="backward",
        check_sortedness=False,
    )
    keep = ["i", "key", "value", "parent", "pname"]
    direct = attrs.filter(~pl.col("after_close").fill_null(True)).select(keep)
    nested = attrs.filter(pl.col("after_close").fill_null(True))
    if nested.height:
        nested = with_parent(nested.select("i", "key", "value", "depth")).select(keep)
        direct = pl.concat([direct, nested]).sort("i")
    return direct


def _unescape_series(s: pl.Series) -> pl.Series:
    return s.to_frame("x").select(_unescape("x")).to_series().alias(s.name)
