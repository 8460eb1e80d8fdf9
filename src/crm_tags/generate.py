"""Synthetic landing zone: writes the Parquet layout of raw-sources.md for N customers.

    crm-tags generate --customers N --out DIR [--seed 42] [--as-of YYYY-MM-DD] [--dirty RATE]

Realistic enough that every tag value of the catalog occurs at 10k customers: purchases follow
a BG/NBD-like process (Gamma purchase rates, a dropout chance after each purchase) on a
seasonal calendar (Chinese New Year, 618, Double 11), with per-customer basket size, margin,
promotion appetite, favourite category, service channel, web and campaign activity. Free text
comes from the mapping seeds with case/whitespace noise.

Deliveries: one file per period (orders, order_items and web_events monthly, the rest yearly)
per chunk of `CHUNK_CUSTOMERS` customers, plus a `<as_of>_redelivery` file with the newer
versions of keys. File names start with the delivery date and mtimes are set to it, so both
sort in delivery order. Clean timestamps end at 23:00 on as_of (the extract time).

Determinism: randomness comes from numpy Generators seeded by (seed, chunk, stream), ids from
running counters, Parquet is written with fixed options: same arguments, same bytes.

`--dirty RATE` applies each kind of `DIRT_KINDS` to about RATE of the rows of every table it
fits, on disjoint rows whose key has a single version (clean re-deliveries stay unambiguous):
duplicate_row (exact copy, same or re-delivery file), redelivered (newer version stamped after
23:00 on as_of), null_key, null_fk, unknown_fk (ids numbered 9xxx.. in the id's width),
negative_value, future_date (1-60 days after as_of), unparseable_text (placeholders and
UTF-8-as-Latin-1 mojibake), unknown_enum (values outside the contract after trim/lower-case),
ambiguous_email (a contact takes the email of another account's contact).
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_tags import PROJECT_DIR
from crm_tags import _generate_text as txt
from crm_tags.contract import arrow_schema

CHUNK_CUSTOMERS = 50_000
DAY = 86_400_000_000  # microseconds
HOUR = 3_600_000_000
MINUTE = 60_000_000
ORDER_HISTORY_DAYS = 3 * 365  # the order system keeps three years
ACCOUNT_HISTORY_DAYS = 4 * 365  # accounts may predate the order history
WEB_HISTORY_DAYS = 365  # web tracking keeps one year
EPOCH = date(1970, 1, 1)

STR, INT, DEC, TS, DATE, BOOL = (
    pa.string(), pa.int32(), pa.decimal128(18, 2), pa.timestamp("us"), pa.date32(), pa.bool_(),
)


# The contract (column names and types) is read from the dbt source YAML, its one written form;
# the tables are generated in this order (CRM first: later tables reference its keys).
TABLES: tuple[str, ...] = (
    "crm/accounts", "crm/contacts", "crm/manual_tags",
    "orders/orders", "orders/order_items", "orders/products", "orders/promotions",
    "support/tickets",
    "campaigns/campaigns", "campaigns/campaign_events", "campaigns/web_events",
    "campaigns/attributed_orders",
)
SCHEMAS: dict[str, pa.Schema] = {table: arrow_schema(table) for table in TABLES}

# Valid enum values (the contract's); dirty rows use values outside these.
ORDER_STATUSES = ("paid", "shipped", "completed", "cancelled", "refunded")
SALES_CHANNELS = ("online", "offline", "partner")
TICKET_CHANNELS = ("phone", "online_chat", "email", "wechat", "account_manager")
TICKET_TYPES = ("inquiry", "complaint", "after_sales", "return")
CAMPAIGN_CHANNELS = ("email", "sms", "wechat", "ads")
CAMPAIGN_EVENT_TYPES = ("sent", "delivered", "opened", "clicked", "unsubscribed")
WEB_EVENT_TYPES = ("page_view", "add_to_cart", "search")
PROMOTION_TYPES = ("coupon", "discount", "full_reduction", "flash_sale", "bundle")

# Dirt kinds written by --dirty, in the order they are drawn (see `_inject_dirt`).
DIRT_KINDS: tuple[str, ...] = (
    "duplicate_row", "redelivered", "null_key", "null_fk", "unknown_fk", "negative_value",
    "future_date", "unparseable_text", "unknown_enum", "ambiguous_email",
)

# Id formats: prefix + zero-padded number. Unknown foreign keys use numbers starting with 9 in
# the full width, far above any generated id.
ID_WIDTH = {"AC": 8, "CT": 9, "SO": 10, "SKU": 5, "PM": 4, "CMP": 4, "TK": 9, "CE": 11,
            "WE": 11, "V": 10}

# Chinese New Year (first day of the lunar year), for the seasonal calendar and promotions.
SPRING_FESTIVAL = {
    2015: "02-19", 2016: "02-08", 2017: "01-28", 2018: "02-16", 2019: "02-05", 2020: "01-25",
    2021: "02-12", 2022: "02-01", 2023: "01-22", 2024: "02-10", 2025: "01-29", 2026: "02-17",
    2027: "02-06", 2028: "01-26", 2029: "02-13", 2030: "02-03", 2031: "01-23", 2032: "02-11",
    2033: "01-31", 2034: "02-19", 2035: "02-08",
}

# Independent random streams per chunk, so changing one table's logic leaves the others alone.
STREAMS = {name: i for i, name in enumerate((
    "customers", "contacts", "accounts", "orders", "items", "tickets", "campaign_events",
    "web_events", "attributed", "manual_tags", "dirt", "global"))}


# --------------------------------------------------------------------------------------------
# Arrow helpers: build typed columns from numpy without per-row Python.
# --------------------------------------------------------------------------------------------

def _validity(null: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    if null is None or not null.any():
        return None, 0
    return pa.py_buffer(np.packbits(~null, bitorder="little")), int(null.sum())


def dec(cents: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """DECIMAL(18,2) from integer cents: the 128-bit little-endian words, written directly."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension
    validity, nulls = _validity(null)
    return pa.Array.from_buffers(DEC, len(cents), [validity, pa.py_buffer(words)], nulls)


def ts(us: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), TS, mask=null)


def dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), DATE, mask=null)


def ints(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int32), INT, mask=null)


def pick(pool: Sequence[str | None] | pa.Array, idx: np.ndarray,
         null: np.ndarray | None = None) -> pa.Array:
    pool = pool if isinstance(pool, pa.Array) else pa.array(list(pool), STR)
    return pc.take(pool, pa.array(np.asarray(idx, dtype=np.int64), mask=null))


def ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Fixed-width ids such as AC00000042, built as raw UTF-8 bytes (fast at 10^7 rows)."""
    width = ID_WIDTH[prefix]
    numbers = np.asarray(numbers, dtype=np.int64)
    n, head = len(numbers), np.frombuffer(prefix.encode(), dtype=np.uint8)
    data = np.empty((n, len(head) + width), dtype=np.uint8)
    data[:, : len(head)] = head
    rest = numbers.copy()
    for col in range(len(head) + width - 1, len(head) - 1, -1):
        data[:, col] = 48 + rest % 10
        rest //= 10
    offsets = np.arange(n + 1, dtype=np.int32) * data.shape[1]
    return pa.Array.from_buffers(STR, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def unknown_ids(rng: np.random.Generator, prefix: str, n: int) -> pa.Array:
    width = ID_WIDTH[prefix]
    return ids(prefix, 9 * 10 ** (width - 1) + rng.integers(0, 10 ** (width - 1), n))


def join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def num_text(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(STR)


def choose(which: np.ndarray, *options: pa.Array) -> pa.Array:
    return pc.choose(pa.array(np.asarray(which, dtype=np.int8)), *options)


def with_nulls(arr: pa.Array, null: np.ndarray) -> pa.Array:
    if not null.any():
        return arr
    return pc.if_else(pa.array(null), pa.scalar(None, arr.type), arr)


def vary_case(rng: np.random.Generator, arr: pa.Array | pa.ChunkedArray, upper: float = 0.0,
              lower: float = 0.0, title: float = 0.0, capital: float = 0.0) -> pa.Array:
    """Free text typed by people: some rows upper-, lower-, title- or first-letter-cased."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    which = rng.choice(5, size=len(arr), p=[1 - upper - lower - title - capital, upper, lower,
                                            title, capital])
    return choose(which, arr, pc.utf8_upper(arr), pc.utf8_lower(arr), pc.utf8_title(arr),
                  pc.utf8_capitalize(arr))


def pad(rng: np.random.Generator, arr: pa.Array, share: float) -> pa.Array:
    """Surrounding spaces on `share` of the rows (leading, trailing or both)."""
    which = rng.choice(4, size=len(arr), p=[1 - share, share / 3, share / 3, share / 3])
    return choose(which, arr, join(" ", arr), join(arr, " "), join("  ", arr, " "))


def weighted(rng: np.random.Generator, weights: Sequence[float] | np.ndarray,
             size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=size, p=w / w.sum())


def in_groups(rng: np.random.Generator, group: np.ndarray, starts: np.ndarray,
              counts: np.ndarray) -> np.ndarray:
    """A uniform index inside each row's group of a flattened pool (pool[starts[g]:+counts[g]])."""
    return starts[group] + (rng.random(len(group)) * counts[group]).astype(np.int64)


def flatten(groups: Sequence[Sequence[str]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return pa.array([s for g in groups for s in g], STR), starts, counts


def group_starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def rank_in_group(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... within each run of a np.repeat(arange, counts) layout."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(group_starts(counts), counts)


def day_of(us: np.ndarray) -> np.ndarray:
    return np.floor_divide(us, DAY)


def iso(day: int) -> str:
    return (EPOCH + timedelta(days=int(day))).isoformat()


# --------------------------------------------------------------------------------------------
# Seeds and the shared context.
# --------------------------------------------------------------------------------------------

DEFAULT_MANUAL_TAGS = ("key_account", "blacklist", "strategic_partner")


@dataclass(frozen=True)
class Seeds:
    industry: dict[str, tuple[str, ...]]  # code -> free-text variants, in file order
    category: dict[str, tuple[str, ...]]
    decision_role: dict[str, tuple[str, ...]]
    provinces: tuple[tuple[str, str], ...]  # (official name, short name)
    manual_tags: tuple[str, ...]


def _read_mapping(path: Path, text_col: str, code_col: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row[code_col], []).append(row[text_col])
    return {code: tuple(texts) for code, texts in out.items()}


def load_seeds(seed_dir: Path | None = None) -> Seeds:
    seed_dir = seed_dir or PROJECT_DIR / "seeds"
    with (seed_dir / "province_regions.csv").open(encoding="utf-8", newline="") as f:
        provinces = tuple((r["province_name"], r["province_short_name"]) for r in csv.DictReader(f))
    manual: tuple[str, ...] = DEFAULT_MANUAL_TAGS
    catalog_yml = seed_dir.parent / "dbt_project.yml"  # the tag catalog: its manual tag codes
    if catalog_yml.exists():
        from crm_tags.catalog import read_catalog

        manual_tag = read_catalog(catalog_yml).get("manual")
        manual = tuple(code for code, _, _ in manual_tag.values) if manual_tag else manual
    return Seeds(
        industry=_read_mapping(seed_dir / "industry_mapping.csv", "industry_text", "industry_code"),
        category=_read_mapping(seed_dir / "category_mapping.csv", "category_text", "category_code"),
        decision_role=_read_mapping(seed_dir / "decision_role_mapping.csv", "decision_role_text",
                                    "decision_role_code"),
        provinces=provinces,
        manual_tags=manual,
    )


def _seasonal_weights(days: np.ndarray) -> np.ndarray:
    """Relative shopping volume per day: growth, weekends, CNY, 618, Double 11, Double 12."""
    d64 = days.astype("datetime64[D]")
    month = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    w = 1.0 + 0.35 * (days - days[0]) / max(len(days), 1)
    w *= np.where((days + 3) % 7 >= 5, 1.15, 1.0)  # 1970-01-01 was a Thursday
    w *= np.select([(month == 11) & (dom <= 10), (month == 11) & (dom == 11),
                    (month == 11) & (dom <= 13), (month == 6) & (dom < 18),
                    (month == 6) & (dom == 18), (month == 12) & (dom == 12)],
                   [1.8, 8.0, 1.5, 1.6, 5.0, 2.5], 1.0)
    years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    for year in np.unique(years):
        cny = _spring_festival(int(year))
        w *= np.where((days >= cny - 21) & (days <= cny - 8), 1.6, 1.0)  # New-Year shopping
        w *= np.where((days >= cny - 3) & (days <= cny + 6), 0.35, 1.0)  # the holiday itself
    return w


def _spring_festival(year: int) -> int:
    month_day = SPRING_FESTIVAL.get(year, "02-05")
    return (date.fromisoformat(f"{year}-{month_day}") - EPOCH).days


class Calendar:
    """Seasonal 'operational time': a Poisson process in this clock has seasonal peaks in days."""

    def __init__(self, first_day: int, last_day: int) -> None:
        w = _seasonal_weights(np.arange(first_day, last_day + 1))
        self.first = first_day
        self.cum = np.concatenate([[0.0], np.cumsum(w / w.mean())])
        self.grid = np.arange(len(self.cum), dtype=float)

    def to_op(self, day: np.ndarray) -> np.ndarray:
        return np.interp(day - self.first, self.grid, self.cum)

    def from_op(self, op: np.ndarray) -> np.ndarray:
        return np.interp(op, self.cum, self.grid) + self.first


CATEGORY_CODES: tuple[str, ...] = tuple(txt.PRODUCT_CATEGORIES)
INDUSTRY_WEIGHTS = {"manufacturing": 24, "retail": 15, "it_services": 15, "finance": 8,
                    "healthcare": 8, "education": 7, "logistics": 10, "other": 13}
# Purchase mix by customer type, in CATEGORY_CODES order.
CATEGORY_WEIGHTS_B2C = np.array([15, 5, 5, 18, 15, 14, 10, 0.5, 3, 8, 6], dtype=float)
CATEGORY_WEIGHTS_B2B = np.array([15, 22, 10, 3, 5, 1, 4, 15, 15, 3, 7], dtype=float)
CATEGORY_MARGIN_SHIFT = np.array([-0.08, 0.0, 0.02, 0.05, -0.08, 0.1, -0.05, 0.0, 0.2, -0.05, 0.0])
CATEGORY_QTY_FACTOR = np.array([0.7, 2.0, 0.6, 1.0, 2.0, 1.0, 0.6, 0.2, 0.5, 1.5, 1.0])
HOUR_WEIGHTS = np.array([2, 1, .5, .3, .2, .3, .6, 1.5, 3, 5, 6, 6, 5, 5, 6, 6, 5, 5, 5, 6, 8, 9,
                         8, 5], dtype=float)


@dataclass
class Catalog:
    """Global tables (products, promotions, campaigns) plus the lookups chunks need."""

    products: pa.Table
    promotions: pa.Table
    campaigns: pa.Table
    product_cat: np.ndarray  # category index per product
    product_price: np.ndarray  # list price, cents
    cat_start: np.ndarray
    cat_count: np.ndarray
    cat_popularity: list[np.ndarray]  # cumulative popularity within each category
    promo_active: np.ndarray  # (days in order window, k) promotion indexes, -1 padded
    promo_active_n: np.ndarray
    campaign_start: np.ndarray  # µs, campaigns sorted by start
    campaign_days: np.ndarray  # duration in days
    campaign_is_ads: np.ndarray
    campaign_active: np.ndarray  # (days, k) campaigns open for attribution, -1 padded
    campaign_active_n: np.ndarray
    category_text: pa.Array  # category text variants (mapped + unmapped), flattened
    category_text_start: np.ndarray
    category_text_count: np.ndarray


@dataclass
class Ctx:
    seed: int
    as_of: date
    dirty: float
    seeds: Seeds
    asof_day: int
    cap: int  # latest clean timestamp (µs): the extracts ran at 23:00 on as_of
    asof_end: int  # last µs of as_of; dirty re-deliveries land in (cap, asof_end]
    order_start_day: int
    account_start_day: int
    calendar: Calendar
    catalog: Catalog | None = None
    next_contact: int = 0
    next_order: int = 0
    next_ticket: int = 0
    next_campaign_event: int = 0
    next_web_event: int = 0
    next_visitor: int = 0

    def rng(self, chunk: int, stream: str, *sub: int) -> np.random.Generator:
        return np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(chunk, STREAMS[stream], *sub)))

    def files(self, label: str, period: str) -> tuple[list[str], np.ndarray]:
        """Delivery file stems for a table: one per period plus a re-delivery file (last).

        A period's file is delivered on the first day after it (at most as_of), so stems sort
        in delivery order; the re-delivery file is delivered on as_of and sorts last.
        """
        first = np.datetime64(iso(self.account_start_day), period)
        last = np.datetime64(iso(self.asof_day), period)
        starts = np.arange(first, last + 1).astype("datetime64[D]").astype(np.int64)
        ends = np.append(starts[1:], self.asof_day)
        stems = [f"{iso(min(int(e), self.asof_day))}_{label}" for e in ends]
        return stems + [f"{iso(self.asof_day)}_redelivery"], starts

    def period_codes(self, starts: np.ndarray, us: np.ndarray) -> np.ndarray:
        code = np.searchsorted(starts, day_of(us), side="right") - 1
        return np.clip(code, 0, len(starts) - 1).astype(np.int32)


# --------------------------------------------------------------------------------------------
# Global tables: products, promotions, campaigns.
# --------------------------------------------------------------------------------------------

def _build_catalog(ctx: Ctx) -> Catalog:
    rng = ctx.rng(10_000, "global")
    products, cat_idx, price = _products(ctx, rng)
    promotions, promo_start, promo_end, promo_evergreen = _promotions(ctx)
    campaigns, camp_start_day, camp_days, camp_ads = _campaigns(
        ctx, rng, promotions, promo_start, promo_end, promo_evergreen)
    cat_count = np.bincount(cat_idx, minlength=len(CATEGORY_CODES)).astype(np.int64)
    cat_start = group_starts(cat_count)
    popularity = [np.cumsum(w) / w.sum() for w in (
        rng.pareto(1.5, int(c)) + 0.2 for c in cat_count)]  # a few best sellers per category
    window = np.arange(ctx.order_start_day, ctx.asof_day + 1)
    promo_active, promo_n = _active_matrix(window, promo_start, promo_end)
    camp_active, camp_n = _active_matrix(window, camp_start_day, camp_start_day + camp_days + 7)
    texts = [_category_texts(ctx, code) for code in CATEGORY_CODES]
    cat_text, cat_text_start, cat_text_count = flatten(texts)
    return Catalog(
        products=products, promotions=promotions, campaigns=campaigns,
        product_cat=cat_idx, product_price=price, cat_start=cat_start, cat_count=cat_count,
        cat_popularity=popularity, promo_active=promo_active, promo_active_n=promo_n,
        campaign_start=camp_start_day * DAY, campaign_days=camp_days, campaign_is_ads=camp_ads,
        campaign_active=camp_active, campaign_active_n=camp_n, category_text=cat_text,
        category_text_start=cat_text_start, category_text_count=cat_text_count)


def _active_matrix(window: np.ndarray, start: np.ndarray,
                   end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each day of `window`, the indexes of items whose [start, end] covers it."""
    covers = (start[None, :] <= window[:, None]) & (window[:, None] <= end[None, :])
    n = covers.sum(axis=1)
    mat = np.full((len(window), max(int(n.max(initial=0)), 1)), -1, dtype=np.int64)
    rows, cols = np.nonzero(covers)
    mat[rows, rank_in_group(n)] = cols
    return mat, n


def _category_texts(ctx: Ctx, code: str) -> tuple[str, ...]:
    """The category texts products and web events of a category carry: the mapping's synonyms;
    for `other`, "其他" and categories the mapping does not list."""
    if code == "other":
        return txt.OTHER_CATEGORIES
    return ctx.seeds.category.get(code) or txt.OTHER_CATEGORIES


def _products(ctx: Ctx, rng: np.random.Generator) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    rows: list[tuple[str, str, str, float, int]] = []
    for k, (code, (count, median, sigma, subs, nouns)) in enumerate(
            txt.PRODUCT_CATEGORIES.items()):
        variants = _category_texts(ctx, code)
        for _ in range(count):
            sub = int(rng.integers(len(subs)))
            brand = txt.PRODUCT_BRANDS[int(rng.integers(len(txt.PRODUCT_BRANDS)))]
            name = f"{brand} {nouns[sub]} {chr(65 + int(rng.integers(26)))}{int(rng.integers(1, 99))}"
            text = variants[int(rng.integers(len(variants)))]
            text = (text.upper(), text.title(), text, text)[int(rng.integers(4))]
            price = float(np.exp(rng.normal(np.log(median), sigma)))
            rows.append((name, text, subs[sub], max(round(price, 0) - 0.1, 1.9), k))
    n = len(rows)
    cat_idx = np.array([r[4] for r in rows], dtype=np.int64)
    price = np.round(np.array([r[3] for r in rows]) * 100).astype(np.int64)
    new = np.zeros(n, dtype=bool)
    new[rng.choice(n, size=n // 10, replace=False)] = True  # the second catalog delivery
    category = pad(rng, pa.array([r[1] for r in rows], STR), 0.05)
    table = pa.table({
        "product_id": ids("SKU", np.arange(1, n + 1)),
        "product_name": pa.array([r[0] for r in rows], STR),
        "category": category,
        "sub_category": pa.array([r[2] for r in rows], STR),
        "list_price": dec(price),
        "is_active": pa.array(rng.random(n) < 0.92, BOOL),
        "__file": pa.array(new.astype(np.int32)),
    })
    return table, cat_idx, price


def _year_codes(ctx: Ctx, years: np.ndarray) -> pa.Array:
    """Yearly catalog deliveries, numbered from the first year of the order history."""
    first = int(iso(ctx.order_start_day)[:4])
    return pa.array(np.clip(years - first, 0, ctx.as_of.year - first).astype(np.int32))


def _promotions(ctx: Ctx) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """Yearly calendar: CNY, 38, 618, Double 11/12, monthly member days, year-long coupons."""
    first_year = (EPOCH + timedelta(days=ctx.order_start_day)).year
    rows: list[tuple[str, str, int, int, bool]] = []
    for year in range(first_year, ctx.as_of.year + 1):
        def day(md: str, y: int = year) -> int:
            return (date.fromisoformat(f"{y}-{md}") - EPOCH).days
        cny = _spring_festival(year)
        rows += [
            (f"{year}新客专享券", "coupon", day("01-01"), day("12-31"), True),
            (f"{year}企业采购折扣", "discount", day("01-01"), day("12-31"), True),
            (f"{year}年货节", "full_reduction", cny - 21, cny + 3, False),
            (f"{year}女神节", "discount", day("03-01"), day("03-08"), False),
            (f"{year} 618年中大促", "full_reduction", day("05-25"), day("06-18"), False),
            (f"{year}双11狂欢节", "full_reduction", day("10-20"), day("11-11"), False),
            (f"{year}双12", "discount", day("12-01"), day("12-12"), False),
            (f"{year}夏季清仓", "flash_sale", day("07-15"), day("07-21"), False),
            (f"{year}开学季套装", "bundle", day("08-20"), day("09-10"), False),
        ]
        rows += [(f"{year}年{m}月会员日", "coupon", day(f"{m:02d}-08"), day(f"{m:02d}-10"), False)
                 for m in range(1, 13)]
    rows = [r for r in rows if r[3] >= ctx.order_start_day and r[2] <= ctx.asof_day + 30]
    rows.sort(key=lambda r: (r[2], r[0]))
    start = np.array([r[2] for r in rows], dtype=np.int64)
    end = np.array([r[3] for r in rows], dtype=np.int64)
    years = np.array([(EPOCH + timedelta(days=int(s))).year for s in start])
    table = pa.table({
        "promotion_id": ids("PM", np.arange(1, len(rows) + 1)),
        "promotion_name": pa.array([r[0] for r in rows], STR),
        "promotion_type": pa.array([r[1] for r in rows], STR),
        "start_date": dates(start),
        "end_date": dates(end),
        "__file": _year_codes(ctx, years),
    })
    return table, start, end, np.array([r[4] for r in rows])


def _campaigns(ctx: Ctx, rng: np.random.Generator, promotions: pa.Table, promo_start: np.ndarray,
               promo_end: np.ndarray, evergreen: np.ndarray
               ) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """About four campaigns a month; during a promotion most campaigns push it."""
    themes = ("新品上市", "会员关怀", "老客召回", "行业解决方案研讨会", "限时特惠", "节日问候")
    labels = {"email": "邮件", "sms": "短信", "wechat": "微信", "ads": "广告投放"}
    n = int((ctx.asof_day - ctx.order_start_day) / 30.4 * 4)
    start = np.sort(rng.integers(ctx.order_start_day, ctx.asof_day + 1, n))
    days = rng.integers(3, 15, n)
    channel = weighted(rng, [40, 25, 20, 15], n)
    promo_names = promotions.column("promotion_name").to_pylist()
    promo_ids = promotions.column("promotion_id").to_pylist()
    names: list[str] = []
    linked: list[str | None] = []
    for i in range(n):
        live = np.flatnonzero((promo_start <= start[i]) & (start[i] <= promo_end) & ~evergreen)
        ch = labels[CAMPAIGN_CHANNELS[channel[i]]]
        if len(live) and rng.random() < 0.7:
            p = int(live[rng.integers(len(live))])
            names.append(f"{promo_names[p]} - {ch}")
            linked.append(promo_ids[p])
        else:
            names.append(f"{iso(int(start[i]))[:7]} {themes[rng.integers(len(themes))]} - {ch}")
            linked.append(None)
    years = np.array([int(iso(int(s))[:4]) for s in start], dtype=np.int64)
    table = pa.table({
        "campaign_id": ids("CMP", np.arange(1, n + 1)),
        "campaign_name": pa.array(names, STR),
        "channel": pick(CAMPAIGN_CHANNELS, channel),
        "promotion_id": pa.array(linked, STR),
        "start_date": dates(start),
        "end_date": dates(start + days),
        "__file": _year_codes(ctx, years),
    })
    return table, start, days, channel == CAMPAIGN_CHANNELS.index("ads")


# --------------------------------------------------------------------------------------------
# One chunk of customers.
# --------------------------------------------------------------------------------------------

@dataclass
class Customers:
    """Latent per-customer traits that drive every table of the chunk."""

    n: int
    number: np.ndarray  # account number (the id's digits)
    account_id: pa.Array
    b2b: np.ndarray
    vip: np.ndarray
    created: np.ndarray  # µs
    brand: np.ndarray  # company brand index (B2B names and email domains)
    tld: np.ndarray
    lam: np.ndarray  # purchases per year while active
    p_drop: np.ndarray  # chance to stop buying after each purchase
    never: np.ndarray  # leads that never buy
    first_buy_day: np.ndarray  # float day
    qty_scale: np.ndarray
    price_cut: np.ndarray  # negotiated discount off list price
    margin: np.ndarray
    promo_share: np.ndarray
    fav_cat: np.ndarray
    fav_share: np.ndarray
    channel: np.ndarray
    employees: np.ndarray
    employees_null: np.ndarray  # B2C, or not recorded
    large: np.ndarray  # B2B with > 500 employees


def _customers(ctx: Ctx, chunk: int, first: int, n: int) -> Customers:
    rng = ctx.rng(chunk, "customers")
    number = np.arange(first + 1, first + n + 1, dtype=np.int64)
    b2b = rng.random(n) < 0.30
    vip = rng.random(n) < np.where(b2b, 0.05, 0.015)
    created_day = ctx.account_start_day + rng.random(n) * (ctx.asof_day + 1 - ctx.account_start_day)
    created = np.minimum((created_day * DAY).astype(np.int64), ctx.cap - 2 * HOUR)
    # BG/NBD-like: Gamma purchase rates, Beta dropout; VIPs buy often and stay.
    lam = np.where(vip, rng.uniform(18, 45, n), rng.gamma(0.9, 8.5, n))
    p_drop = np.where(vip, 0.004, rng.beta(1.0, 12.0, n))
    first_buy = created_day + np.where(vip, rng.exponential(5, n), rng.exponential(25, n))
    qty_scale = np.where(b2b, rng.lognormal(np.log(3), 0.9, n), 1.0) * np.where(
        vip, np.where(b2b, 4.0, 2.5), 1.0)
    price_cut = np.where(b2b, rng.uniform(0, 0.12, n), 0.0)
    # Margin tiers so profit_contribution high/medium/low all occur (discounts cut into them).
    tier = weighted(rng, [35, 40, 25], n)
    margin = np.array([0.48, 0.27, 0.10])[tier] + rng.normal(0, 0.06, n)
    # Promotion appetite: share of orders that carry a promotion_id.
    appetite = weighted(rng, [22, 28, 50], n)
    promo_share = np.clip(np.array([0.92, 0.65, 0.18])[appetite] + rng.normal(0, 0.06, n), 0, 1)
    fav_cat = np.where(b2b, weighted(rng, CATEGORY_WEIGHTS_B2B, n),
                       weighted(rng, CATEGORY_WEIGHTS_B2C, n))
    fav_share = np.where(rng.random(n) < 0.65, rng.uniform(0.7, 0.95, n), rng.uniform(0.1, 0.4, n))
    channel = np.where(b2b, weighted(rng, [25, 45, 30], n), weighted(rng, [85, 15, 0.01], n))
    # Employees: long tail; reps often type round numbers, so exactly 100 and 500 occur.
    emp = np.round(rng.lognormal(np.log(80), 1.4, n)).clip(1, 200_000)
    nice = np.array([10, 20, 30, 50, 80, 100, 150, 200, 300, 500, 800, 1000, 2000, 5000, 10000])
    nearest = nice[np.abs(np.log(emp[:, None]) - np.log(nice[None, :])).argmin(axis=1)]
    emp = np.where(rng.random(n) < 0.35, nearest, emp).astype(np.int64)
    emp_null = ~b2b | (rng.random(n) < 0.05)
    return Customers(
        n=n, number=number, account_id=ids("AC", number), b2b=b2b, vip=vip, created=created,
        brand=rng.integers(0, len(txt.BRANDS), n), tld=rng.integers(0, len(txt.COMPANY_TLDS), n),
        lam=lam, p_drop=p_drop, never=rng.random(n) < 0.08, first_buy_day=first_buy,
        qty_scale=qty_scale, price_cut=price_cut, margin=margin, promo_share=promo_share,
        fav_cat=fav_cat, fav_share=fav_share, channel=channel, employees=emp,
        employees_null=emp_null, large=~emp_null & (emp > 500))


@dataclass
class Contacts:
    table: pa.Table
    account: np.ndarray  # customer index of each contact (base rows, in table order)
    email: pa.Array  # canonical lower-case email per contact (nullable)
    visitor: np.ndarray  # web visitor number per contact
    created: np.ndarray
    first: np.ndarray  # per customer: index of its first contact
    count: np.ndarray  # per customer: number of contacts
    name: pa.Array


def _person_names(rng: np.random.Generator, n: int, english_share: np.ndarray
                  ) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Full name plus the pinyin pieces used for email local parts."""
    sur_w = 1 / np.arange(1, len(txt.SURNAMES) + 1) ** 0.8
    sur = weighted(rng, sur_w, n)
    g1 = rng.integers(0, len(txt.GIVEN_CHARS), n)
    g2 = rng.integers(0, len(txt.GIVEN_CHARS), n)
    two = rng.random(n) < 0.65
    empty = pa.array([""] * n, STR)
    hz_sur, py_sur = pick([s[0] for s in txt.SURNAMES], sur), pick([s[1] for s in txt.SURNAMES], sur)
    given_hz = join(pick([g[0] for g in txt.GIVEN_CHARS], g1),
                    choose(two, empty, pick([g[0] for g in txt.GIVEN_CHARS], g2)))
    given_py = join(pick([g[1] for g in txt.GIVEN_CHARS], g1),
                    choose(two, empty, pick([g[1] for g in txt.GIVEN_CHARS], g2)))
    english = rng.random(n) < english_share
    en_first = pick(txt.ENGLISH_FIRST_NAMES, rng.integers(0, len(txt.ENGLISH_FIRST_NAMES), n))
    full = choose(english, join(hz_sur, given_hz), join(en_first, " ", pc.utf8_title(py_sur)))
    first_py = choose(english, given_py, pc.utf8_lower(en_first))
    return full, first_py, py_sur


def _phones(rng: np.random.Generator, n: int, b2b: np.ndarray) -> pa.Array:
    mobile = num_text(10_000_000_000 + rng.integers(3, 10, n) * 1_000_000_000
                      + rng.integers(0, 1_000_000_000, n))

    def part(a: int, b: int) -> pa.Array:
        return pc.utf8_slice_codeunits(mobile, a, b)
    land = join(pick(("010", "021", "020", "0571", "0755", "025", "028", "027"),
                     rng.integers(0, 8, n)), "-", num_text(rng.integers(20_000_000, 89_999_999, n)))
    fmt = np.where(b2b & (rng.random(n) < 0.25), 5, weighted(rng, [45, 20, 15, 12, 8], n))
    return choose(fmt, mobile, join("+86 ", part(0, 3), "-", part(3, 7), "-", part(7, 11)),
                  join(part(0, 3), " ", part(3, 7), " ", part(7, 11)), join("+86", mobile),
                  join("(+86)", mobile), land)


def _role_text(ctx: Ctx, rng: np.random.Generator, code: np.ndarray) -> pa.Array:
    """decision_role free text from the mapping seed, with case/space noise, nulls, unknowns."""
    role_codes = list(ctx.seeds.decision_role)
    pool, starts, counts = flatten([ctx.seeds.decision_role[c] for c in role_codes])
    text = pick(pool, in_groups(rng, code, starts, counts))
    text = pad(rng, vary_case(rng, text, upper=0.15, title=0.2), 0.08)
    unknown = pick(txt.UNMAPPED_DECISION_ROLES, rng.integers(0, len(txt.UNMAPPED_DECISION_ROLES),
                                                             len(code)))
    which = weighted(rng, [80, 6, 14], len(code))  # text, unknown text, null
    return with_nulls(choose(np.minimum(which, 1), text, unknown), which == 2)


def _contacts(ctx: Ctx, chunk: int, cust: Customers) -> Contacts:
    rng = ctx.rng(chunk, "contacts")
    count = np.where(cust.b2b, 1 + weighted(rng, [35, 30, 20, 15], cust.n), 1)
    acc = np.repeat(np.arange(cust.n), count)
    m = len(acc)
    rank = rank_in_group(count)
    serial = ctx.next_contact + 1 + np.arange(m, dtype=np.int64)
    ctx.next_contact += m
    b2b = cust.b2b[acc]
    full, first_py, py_sur = _person_names(rng, m, np.where(b2b, 0.2, 0.05))
    # Canonical email (lower-case); the CRM row shows it with typing noise.
    serial_txt = num_text(serial)
    local = choose(rng.integers(0, 3, m), join(first_py, ".", py_sur, serial_txt),
                   join(py_sur, first_py, serial_txt), join(py_sur, "_", first_py, serial_txt))
    brands = pick([b[1] for b in txt.BRANDS], cust.brand[acc])
    company = join(local, "@", brands, pick(txt.COMPANY_TLDS, cust.tld[acc]))
    personal = join(local, "@", pick(txt.PERSONAL_EMAIL_DOMAINS,
                                     rng.integers(0, len(txt.PERSONAL_EMAIL_DOMAINS), m)))
    qq = join(num_text(10_000_000 + serial * 7), "@qq.com")
    kind = np.where(b2b, np.where(rng.random(m) < 0.85, 0, 1), np.where(rng.random(m) < 0.4, 2, 1))
    email = with_nulls(choose(kind, company, personal, qq), rng.random(m) < np.where(b2b, .08, .04))
    shown_email = pad(rng, vary_case(rng, email, upper=0.03, capital=0.08, title=0.02), 0.04)
    role = np.where(b2b, weighted(rng, [22, 25, 30, 23], m),
                    np.where(rng.random(m) < 0.8, 2, 0))
    role_text = _role_text(ctx, rng, role)
    role_text = with_nulls(role_text, ~b2b & (rng.random(m) < 0.7))
    titles = [txt.JOB_TITLES[k] for k in ("decision_maker", "influencer", "user", "purchaser", "b2c")]
    title_pool, t_start, t_count = flatten(titles)
    title = pick(title_pool, in_groups(rng, np.where(b2b, role, 4), t_start, t_count),
                 null=(~b2b & (rng.random(m) < 0.6)) | (rng.random(m) < 0.03))
    female = rng.random(m) < 0.45
    gender = choose(np.where(rng.random(m) < 0.55, 0, 1) * 2 + female,
                    pa.array(["M"] * m, STR), pa.array(["F"] * m, STR),
                    pa.array(["男"] * m, STR), pa.array(["女"] * m, STR))
    gender = with_nulls(gender, rng.random(m) < 0.15)
    birth = ctx.asof_day - (rng.uniform(22, 62, m) * 365.25).astype(np.int64)
    created = np.minimum(cust.created[acc] + np.where(rank == 0, 0, rng.integers(0, 90 * DAY, m)),
                         ctx.cap - 2 * HOUR)
    updated = created + (rng.random(m) * np.minimum(30 * DAY, ctx.cap - 2 * HOUR - created)
                         ).astype(np.int64)
    table = pa.table({
        "contact_id": ids("CT", serial),
        "account_id": pc.take(cust.account_id, pa.array(acc)),
        "full_name": full,
        "email": shown_email,
        "phone": with_nulls(_phones(rng, m, b2b), rng.random(m) < 0.08),
        "job_title": title,
        "decision_role": role_text,
        "gender": gender,
        "birth_date": dates(birth, null=rng.random(m) < np.where(b2b, 0.45, 0.3)),
        "is_primary": pa.array(rank == 0, BOOL),
        "updated_at": ts(updated),
    })
    visitor = serial  # one web visitor cookie per contact
    return Contacts(table=table, account=acc, email=email, visitor=visitor, created=created,
                    first=group_starts(count), count=count, name=full)


def _redeliver(rng: np.random.Generator, table: pa.Table, ts_col: str, share: float, cap: int,
               change: Callable[[pa.Table, np.ndarray, np.random.Generator], pa.Table]
               ) -> tuple[pa.Table, np.ndarray]:
    """Re-deliver `share` of the rows with a later timestamp (<= cap) and changed values."""
    t0 = table.column(ts_col).to_numpy().astype("datetime64[us]").astype(np.int64)
    eligible = np.flatnonzero(t0 < cap - 2 * HOUR)
    chosen = np.sort(rng.choice(eligible, size=int(len(eligible) * share), replace=False))
    again = change(table.take(chosen), chosen, rng)
    later = t0[chosen] + HOUR + (rng.random(len(chosen)) * (cap - HOUR - t0[chosen])).astype(np.int64)
    return _replace(again, ts_col, ts(later)), chosen


def _accounts(ctx: Ctx, chunk: int, cust: Customers, contacts: Contacts) -> tuple[pa.Table, np.ndarray]:
    rng = ctx.rng(chunk, "accounts")
    n, seeds = cust.n, ctx.seeds
    # Province: official or short name, a few outside the mainland list, a few null/padded.
    prov_w = [txt.PROVINCE_WEIGHTS.get(short, 1.0) for _, short in seeds.provinces]
    prov = weighted(rng, prov_w, n)
    full_names = pa.array([p[0] for p in seeds.provinces], STR)
    short_names = pa.array([p[1] for p in seeds.provinces], STR)
    outside = rng.random(n) < 0.006
    unknown_prov = rng.integers(0, len(txt.UNKNOWN_PROVINCES), n)
    province = choose(np.where(outside, 2, rng.random(n) < 0.45), pick(full_names, prov),
                      pick(short_names, prov), pick(txt.UNKNOWN_PROVINCES, unknown_prov))
    province = with_nulls(pad(rng, province, 0.02), rng.random(n) < 0.01)
    city_pool, c_start, c_count = flatten([txt.CITIES.get(s, (s,)) for _, s in seeds.provinces]
                                          + [txt.UNKNOWN_PROVINCE_CITIES])
    city_group = np.where(outside, len(seeds.provinces), prov)
    city = pick(city_pool, in_groups(rng, city_group, c_start, c_count),
                null=rng.random(n) < 0.04)
    # Industry: a controlled code, typed as one of its seed variants with noise.
    codes = list(seeds.industry) + ["other"]
    code = weighted(rng, [INDUSTRY_WEIGHTS.get(c, 8) for c in codes], n)
    ind_pool, i_start, i_count = flatten([seeds.industry[c] for c in codes[:-1]]
                                         + [txt.UNMAPPED_INDUSTRY])
    industry = pick(ind_pool, in_groups(rng, code, i_start, i_count))
    industry = pad(rng, vary_case(rng, industry, upper=0.12, title=0.25), 0.08)
    industry = with_nulls(industry, np.where(cust.b2b, rng.random(n) < 0.06, rng.random(n) < 0.92))
    # Company names carry the industry word of the same code.
    words = [txt.COMPANY_WORDS.get(c) or (("贸易", "Trading"),) for c in codes]
    word_pool, w_start, w_count = flatten([[w[0] for w in ws] for ws in words])
    word_en_pool = pa.array([w[1] for ws in words for w in ws], STR)
    word_idx = in_groups(rng, code, w_start, w_count)
    brand_zh = pick([b[0] for b in txt.BRANDS], cust.brand)
    prefix = choose(rng.random(n) < 0.4, pa.array([""] * n, STR), pick(short_names, prov))
    zh_name = join(prefix, brand_zh, pick(word_pool, word_idx),
                   pick(txt.COMPANY_SUFFIXES_ZH, weighted(rng, [60, 20, 10, 10], n)))
    en_name = join(pc.utf8_title(pick([b[1] for b in txt.BRANDS], cust.brand)), " ",
                   pick(word_en_pool, word_idx), " ",
                   pick(txt.COMPANY_SUFFIXES_EN, rng.integers(0, len(txt.COMPANY_SUFFIXES_EN), n)))
    person = pc.take(contacts.name, pa.array(contacts.first))
    name = choose(np.where(cust.b2b, np.where(rng.random(n) < 0.12, 1, 0), 2),
                  zh_name, en_name, person)
    emp, emp_null = cust.employees, cust.employees_null
    revenue = np.round(emp * rng.lognormal(np.log(4e5), 0.8, n) / 1e4) * 1e4 * 100
    test_account = rng.random(n) < 0.003  # created by mistake, deleted at once
    name = choose(test_account, name, join("测试客户", num_text(cust.number)))
    updated = cust.created + (rng.random(n) * np.minimum(30 * DAY, ctx.cap - 2 * HOUR - cust.created)
                              ).astype(np.int64)
    ctype = pad(rng, vary_case(rng, pick(("B2C", "B2B"), cust.b2b), lower=0.1), 0.06)
    table = pa.table({
        "account_id": cust.account_id,
        "account_name": name,
        "customer_type": ctype,
        "industry": industry,
        "employee_count": ints(emp, null=emp_null),
        "annual_revenue": dec(revenue.astype(np.int64), null=~cust.b2b | (rng.random(n) < 0.25)),
        "province": province,
        "city": city,
        "created_at": ts(cust.created),
        "updated_at": ts(updated),
        "is_deleted": pa.array(test_account, BOOL),
    })

    def change(t: pa.Table, rows: np.ndarray, r: np.random.Generator) -> pa.Table:
        """The company grew, a rep re-typed the industry, or the account was deleted."""
        k = len(t)
        what = r.random(k)
        grown = np.round(emp[rows] * r.uniform(1.05, 1.6, k))
        grown = np.where(what < 0.5, grown, emp[rows])
        t = _replace(t, "employee_count", ints(grown, null=emp_null[rows]))
        retyped = pick(ind_pool, in_groups(r, code[rows], i_start, i_count))
        retyped = pad(r, vary_case(r, retyped, title=0.3, upper=0.1), 0.05)
        t = _replace(t, "industry", pc.if_else(pa.array((what >= 0.5) & (what < 0.8)), retyped,
                                               t["industry"]))
        deleted = r.random(k) < 0.06  # about 0.6% of all accounts get deleted later
        return _replace(t, "is_deleted", pc.or_(t["is_deleted"], pa.array(deleted)))

    again, chosen = _redeliver(rng, table, "updated_at", 0.10, ctx.cap, change)
    return pa.concat_tables([table, again]), chosen


def _contact_redeliveries(ctx: Ctx, chunk: int, contacts: Contacts) -> tuple[pa.Table, np.ndarray]:
    rng = ctx.rng(chunk, "contacts", 1)

    def change(t: pa.Table, rows: np.ndarray, r: np.random.Generator) -> pa.Table:
        """New role and phone; the same email address, typed again."""
        k = len(t)
        codes = r.integers(0, len(ctx.seeds.decision_role), k)
        t = _replace(t, "decision_role", _role_text(ctx, r, codes))
        t = _replace(t, "phone", _phones(r, k, np.zeros(k, dtype=bool)))
        canonical = pc.take(contacts.email, pa.array(rows))
        return _replace(t, "email", pad(r, vary_case(r, canonical, capital=0.2), 0.05))

    return _redeliver(rng, contacts.table, "updated_at", 0.08, ctx.cap, change)


@dataclass
class Orders:
    table: pa.Table  # initial rows + clean re-deliveries
    single: np.ndarray  # rows whose order_id has one version
    cust: np.ndarray  # customer index per order (initial rows)
    order_ts: np.ndarray
    has_promo: np.ndarray
    order_id: pa.Array
    net: np.ndarray  # order net sales, cents
    gross: np.ndarray


def _order_times(ctx: Ctx, rng: np.random.Generator, cust: Customers
                 ) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD on the seasonal clock: first purchase, Poisson repeats, dropout after each."""
    cal = ctx.calendar
    end = ctx.asof_day + (ctx.cap % DAY) / DAY
    buyer = ~cust.never & (cust.first_buy_day < end)
    tau0 = cal.to_op(np.minimum(cust.first_buy_day, end))
    span = np.where(buyer, cal.to_op(np.array([end]))[0] - tau0, 0.0)
    repeats = rng.poisson(cust.lam / 365.0 * span)
    owner = np.repeat(np.arange(cust.n), repeats)
    tau = tau0[owner] + rng.random(len(owner)) * span[owner]
    order = np.lexsort((tau, owner))
    owner, tau = owner[order], tau[order]
    keep = rank_in_group(repeats) < (rng.geometric(cust.p_drop) - 1)[owner]
    first = np.flatnonzero(buyer)
    owner = np.concatenate([first, owner[keep]])
    day_f = np.concatenate([cust.first_buy_day[first], cal.from_op(tau[keep])])
    day = np.floor(day_f).astype(np.int64)
    hour = weighted(rng, HOUR_WEIGHTS, len(day))
    us = day * DAY + hour * HOUR + rng.integers(0, HOUR, len(day))
    us = np.clip(us, cust.created[owner] + MINUTE, ctx.cap)
    inside = us >= ctx.order_start_day * DAY  # the order system keeps three years
    owner, us = owner[inside], us[inside]
    order = np.lexsort((us, owner))
    return owner[order], us[order]


def _orders(ctx: Ctx, chunk: int, cust: Customers) -> tuple[Orders, pa.Table, np.ndarray]:
    rng = ctx.rng(chunk, "orders")
    cat = ctx.catalog
    assert cat is not None
    owner, order_ts = _order_times(ctx, rng, cust)
    n = len(owner)
    serial = ctx.next_order + 1 + np.arange(n, dtype=np.int64)
    ctx.next_order += n
    order_id = ids("SO", serial)
    # Final status by age: young orders are still paid/shipped; old ones completed or reversed.
    age = ctx.asof_day - day_of(order_ts)
    u = rng.random(n)
    status = np.select(
        [age <= 2, age <= 14],
        [np.searchsorted(np.cumsum([.55, .30, 0, .15, 0]), u, side="right"),
         np.searchsorted(np.cumsum([.05, .40, .43, .07, .05]), u, side="right")],
        np.searchsorted(np.cumsum([.005, .01, .85, .07, .065]), u, side="right"))
    status = np.minimum(status, 4)
    has_promo = rng.random(n) < cust.promo_share[owner]
    day_idx = day_of(order_ts) - ctx.order_start_day
    k = (rng.random(n) * cat.promo_active_n[day_idx]).astype(np.int64)
    promo = cat.promo_active[day_idx, k]
    has_promo &= promo >= 0
    promo_id = pick(cat.promotions["promotion_id"].combine_chunks(), np.maximum(promo, 0),
                    null=~has_promo)
    channel = np.where(rng.random(n) < 0.8, cust.channel[owner], rng.integers(0, 3, n))
    ingested = np.minimum(order_ts + rng.integers(10 * MINUTE, 26 * HOUR, n), ctx.cap)
    # Re-delivery: the first export had an earlier status, a later one the final status.
    previous = np.array([-1, 0, 1, 0, 2])[status]  # completed<-shipped, refunded<-completed ...
    redeliver = (previous >= 0) & (ingested < ctx.cap - 2 * DAY) & (
        rng.random(n) < np.array([0, .15, .05, .5, .6])[status])
    first_status = np.where(redeliver, previous, status)
    later = np.minimum(ingested + rng.integers(DAY, 20 * DAY, n), ctx.cap)
    statuses = pa.array(ORDER_STATUSES, STR)
    base = pa.table({
        "order_id": order_id,
        "account_id": pc.take(cust.account_id, pa.array(owner)),
        "order_ts": ts(order_ts),
        "status": pick(statuses, first_status),
        "promotion_id": promo_id,
        "sales_channel": pick(SALES_CHANNELS, channel),
        "_ingested_at": ts(ingested),
    })
    again = base.filter(pa.array(redeliver))
    again = _replace(again, "status", pick(statuses, status[redeliver]))
    again = _replace(again, "_ingested_at", ts(later[redeliver]))
    table = pa.concat_tables([base, again])
    single = np.concatenate([~redeliver, np.zeros(int(redeliver.sum()), dtype=bool)])
    items, item_single, net, gross = _order_items(ctx, chunk, cust, owner, order_id, has_promo)
    orders = Orders(table=table, single=single, cust=owner, order_ts=order_ts, has_promo=has_promo,
                    order_id=order_id, net=net, gross=gross)
    return orders, items, item_single


def _order_items(ctx: Ctx, chunk: int, cust: Customers, owner: np.ndarray, order_id: pa.Array,
                 has_promo: np.ndarray) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    rng = ctx.rng(chunk, "items")
    cat = ctx.catalog
    assert cat is not None
    lines = 1 + rng.poisson(np.where(cust.b2b[owner], 1.7, 1.3))
    order = np.repeat(np.arange(len(owner)), lines)
    c = owner[order]
    m = len(order)
    line_no = rank_in_group(lines) + 1
    # Category: the customer's favourite with its share, else the B2B/B2C mix.
    mix = np.where(cust.b2b[c], weighted(rng, CATEGORY_WEIGHTS_B2B, m),
                   weighted(rng, CATEGORY_WEIGHTS_B2C, m))
    category = np.where(rng.random(m) < cust.fav_share[c], cust.fav_cat[c], mix)
    product = np.empty(m, dtype=np.int64)
    u = rng.random(m)
    for k in range(len(CATEGORY_CODES)):
        sel = category == k
        pos = np.searchsorted(cat.cat_popularity[k], u[sel], side="right")
        product[sel] = cat.cat_start[k] + np.minimum(pos, cat.cat_count[k] - 1)
    qty = np.maximum(1, np.round(cust.qty_scale[c] * CATEGORY_QTY_FACTOR[category]
                                 * rng.lognormal(0, 0.5, m))).astype(np.int64)
    price = np.maximum(1, np.round(cat.product_price[product] * (1 - cust.price_cut[c])))
    price = price.astype(np.int64)
    gross = qty * price
    promo_cut = rng.uniform(0.05, 0.3, len(owner))[order]
    small_cut = np.where(rng.random(m) < 0.1, rng.uniform(0.01, 0.08, m), 0.0)
    discount = np.round(gross * np.where(has_promo[order], promo_cut, small_cut)).astype(np.int64)
    margin = np.clip(cust.margin[c] + CATEGORY_MARGIN_SHIFT[category] + rng.normal(0, 0.05, m),
                     -0.2, 0.85)
    cost = np.maximum(1, np.round(price * (1 - margin))).astype(np.int64)
    base = pa.table({
        "order_id": pc.take(order_id, pa.array(order)),
        "line_no": ints(line_no),
        "product_id": pc.take(cat.products["product_id"].combine_chunks(), pa.array(product)),
        "quantity": ints(qty),
        "unit_price": dec(price),
        "discount_amount": dec(discount),
        "unit_cost": dec(cost),
    })
    # A few lines are corrected later (quantity changed): re-delivered with the new values.
    fix = rng.random(m) < 0.005
    new_qty = np.where(qty > 1, qty + rng.choice([-1, 1], m), qty + 1)
    again = base.filter(pa.array(fix)).set_column(3, "quantity", ints(new_qty[fix]))
    net = np.bincount(order, weights=np.where(fix, new_qty, qty) * price - discount,
                      minlength=len(owner))
    order_gross = np.bincount(order, weights=gross, minlength=len(owner))
    single = np.concatenate([~fix, np.zeros(int(fix.sum()), dtype=bool)])
    codes = np.concatenate([order, order[fix]])  # the orders' row index, mapped to files later
    table = pa.concat_tables([base, again]).append_column("__order", pa.array(codes))
    return table, single, net, order_gross


def _tickets(ctx: Ctx, chunk: int, cust: Customers, contacts: Contacts
             ) -> tuple[pa.Table, np.ndarray]:
    rng = ctx.rng(chunk, "tickets")
    n = cust.n
    profile = weighted(rng, [50, 35, 12, 3], n)  # rare, occasional, frequent, complaint-prone
    rate = np.array([0.15, 0.8, 2.5, 6.0])[profile]
    start = np.maximum(cust.created, ctx.order_start_day * DAY)
    years = (ctx.cap - start) / (365 * DAY)
    count = rng.poisson(rate * years)
    c = np.repeat(np.arange(n), count)
    m = len(c)
    opened = start[c] + (rng.random(m) * (ctx.cap - start[c])).astype(np.int64)
    # Service channel: a preferred group per customer, account managers for large accounts.
    pref = np.where(cust.large, weighted(rng, [20, 30, 50], n),
                    np.where(cust.b2b, weighted(rng, [35, 55, 10], n),
                             weighted(rng, [35, 65, 0.01], n)))
    group = np.where(rng.random(m) < 0.75, pref[c], rng.integers(0, 3, m))
    online = np.array([1, 2, 3])[rng.integers(0, 3, m)]  # online_chat, email, wechat
    channel = np.choose(group, [np.zeros(m, np.int64), online, np.full(m, 4)])
    complainer = profile[c] == 3
    ttype = np.where(complainer, weighted(rng, [20, 60, 10, 10], m),
                     weighted(rng, [45, 15, 25, 15], m))
    mood = np.array([4.4, 3.4, 2.2])[weighted(rng, [60, 25, 15], n)]
    score = np.clip(np.round(rng.normal(mood[c] - 0.8 * (ttype == 1), 0.9)), 1, 5)
    resolved = opened + rng.lognormal(np.log(8 * HOUR), 1.2, m).astype(np.int64)
    unresolved = (resolved > ctx.cap) | (rng.random(m) < 0.03)
    # Linked to the account by an agent, or only the requester's email (a contact's).
    contact = in_groups(rng, c, contacts.first, contacts.count)
    email = pc.take(contacts.email, pa.array(contact))
    no_email = pc.is_null(email).to_numpy(zero_copy_only=False)
    linked = (channel == 4) | (rng.random(m) < 0.4) | no_email
    email_shown = pad(rng, vary_case(rng, email, capital=0.1, upper=0.03), 0.03)
    email_shown = with_nulls(email_shown, linked & (rng.random(m) < 0.4))
    serial = ctx.next_ticket + 1 + np.arange(m, dtype=np.int64)
    ctx.next_ticket += m
    table = pa.table({
        "ticket_id": ids("TK", serial),
        "account_id": with_nulls(pc.take(cust.account_id, pa.array(c)), ~linked),
        "requester_email": email_shown,
        "channel": pick(TICKET_CHANNELS, channel),
        "ticket_type": pick(TICKET_TYPES, ttype),
        "opened_at": ts(opened),
        "resolved_at": ts(resolved, null=unresolved),
        "satisfaction_score": ints(score, null=rng.random(m) < 0.35),
    })
    return table, profile == 3


def _campaign_events(ctx: Ctx, chunk: int, contacts: Contacts) -> pa.Table:
    rng = ctx.rng(chunk, "campaign_events")
    cat = ctx.catalog
    assert cat is not None
    m = len(contacts.account)
    has_email = pc.is_valid(contacts.email).to_numpy(zero_copy_only=False)
    subscribed = has_email & (rng.random(m) < 0.7)
    rate = rng.gamma(1.2, 3.5, m)  # sends per year, long-tailed
    open_p = rng.beta(2, 3, m)
    clicks_per_open = np.array([0.05, 0.4, 1.6])[weighted(rng, [55, 30, 15], m)]
    start = np.maximum(contacts.created, ctx.order_start_day * DAY)
    sends = np.where(subscribed, rng.poisson(rate * (ctx.cap - start) / (365 * DAY)), 0)
    who = np.repeat(np.arange(m), sends)
    when = start[who] + (rng.random(len(who)) * (ctx.cap - start[who])).astype(np.int64)
    nonads = np.flatnonzero(~cat.campaign_is_ads)
    k = np.searchsorted(cat.campaign_start[nonads], when, side="right") - 1
    ok = k >= 0
    who, k = who[ok], nonads[k[ok]]
    ok = cat.campaign_start[k] >= start[who]
    who, camp = who[ok], k[ok]
    s = len(who)
    sent = (cat.campaign_start[camp] + 9 * HOUR + rng.integers(0, 10 * HOUR, s)
            + rng.integers(0, 1 + cat.campaign_days[camp] // 3) * DAY)
    delivered = rng.random(s) < 0.95
    t_delivered = sent + rng.integers(1_000_000, 5 * MINUTE, s)
    opened = delivered & (rng.random(s) < open_p[who])
    t_opened = t_delivered + rng.exponential(4 * HOUR, s).astype(np.int64)
    clicks = np.where(opened, rng.poisson(clicks_per_open[who]), 0)
    click_of = np.repeat(np.arange(s), clicks)
    t_click = t_opened[click_of] + rng.exponential(30 * MINUTE, len(click_of)).astype(np.int64)
    unsub = delivered & (rng.random(s) < 0.004)
    t_unsub = t_delivered + rng.exponential(DAY, s).astype(np.int64)
    send_idx = np.concatenate([np.arange(s), np.flatnonzero(delivered), np.flatnonzero(opened),
                               click_of, np.flatnonzero(unsub)])
    etype = np.concatenate([np.zeros(s), np.full(delivered.sum(), 1), np.full(opened.sum(), 2),
                            np.full(len(click_of), 3), np.full(unsub.sum(), 4)]).astype(np.int64)
    when = np.concatenate([sent, t_delivered[delivered], t_opened[opened], t_click,
                           t_unsub[unsub]])
    keep = when <= ctx.cap
    send_idx, etype, when = send_idx[keep], etype[keep], when[keep]
    order = np.lexsort((etype, when))
    send_idx, etype, when = send_idx[order], etype[order], when[order]
    e = len(when)
    serial = ctx.next_campaign_event + 1 + np.arange(e, dtype=np.int64)
    ctx.next_campaign_event += e
    email = pc.take(contacts.email, pa.array(who[send_idx]))
    return pa.table({
        "event_id": ids("CE", serial),
        "campaign_id": pc.take(cat.campaigns["campaign_id"].combine_chunks(),
                               pa.array(camp[send_idx])),
        "recipient_email": vary_case(rng, email, upper=0.02, capital=0.05),
        "event_type": pick(CAMPAIGN_EVENT_TYPES, etype),
        "event_ts": ts(when),
    })


def _web_events(ctx: Ctx, chunk: int, cust: Customers, contacts: Contacts) -> pa.Table:
    rng = ctx.rng(chunk, "web_events")
    cat = ctx.catalog
    assert cat is not None
    n = cust.n
    active = rng.random(n) < np.where(cust.never, 0.7, np.where(cust.b2b, 0.35, 0.5))
    rate = rng.gamma(0.8, 30.0, n)  # events per year, long-tailed
    start = np.maximum(cust.created, (ctx.asof_day - WEB_HISTORY_DAYS + 1) * DAY)
    count = np.where(active, rng.poisson(rate * (ctx.cap - start) / (365 * DAY)), 0)
    c = np.repeat(np.arange(n), count)
    # Anonymous visitors who are not customers (no email ever).
    anon_n = int(active.sum() * 0.3)
    anon_events = rng.poisson(6, anon_n)
    anon = np.repeat(np.arange(anon_n), anon_events)
    m, a = len(c), len(anon)
    fav = np.where(rng.random(n) < 0.6, cust.fav_cat, weighted(rng, CATEGORY_WEIGHTS_B2C, n))
    category = np.concatenate([
        np.where(rng.random(m) < 0.6, fav[c], weighted(rng, CATEGORY_WEIGHTS_B2C, m)),
        weighted(rng, CATEGORY_WEIGHTS_B2C, a)])
    etype = weighted(rng, [78, 10, 12], m + a)
    cat_text = pick(cat.category_text, in_groups(rng, category, cat.category_text_start,
                                                 cat.category_text_count))
    cat_text = vary_case(rng, cat_text, upper=0.05, title=0.1)
    no_cat = rng.random(m + a) < np.where(etype == 2, 0.4, 0.08)
    when = np.concatenate([
        start[c] + (rng.random(m) * (ctx.cap - start[c])).astype(np.int64),
        (ctx.asof_day - WEB_HISTORY_DAYS + 1) * DAY
        + (rng.random(a) * WEB_HISTORY_DAYS * DAY).astype(np.int64)])
    when = np.minimum(when, ctx.cap)
    # The primary contact browses; logged in for some events, anonymous (same cookie) otherwise.
    primary = contacts.first[c]
    logged_in = rng.random(m) < np.where(cust.b2b[c], 0.5, 0.7)
    email = with_nulls(pc.take(contacts.email, pa.array(primary)), ~logged_in)
    anon_visitor = ctx.next_visitor + 1 + anon
    ctx.next_visitor += anon_n
    visitor = np.concatenate([contacts.visitor[primary], 5_000_000_000 + anon_visitor])
    # Scramble visitor numbers (a bijection mod 10^10) so cookies do not look sequential.
    visitor = (visitor * 7_654_321 + 12_345) % 10_000_000_000
    order = np.argsort(when, kind="stable")  # ids ascend with time
    serial = ctx.next_web_event + 1 + np.arange(m + a, dtype=np.int64)
    ctx.next_web_event += m + a
    table = pa.table({
        "event_id": pa.nulls(m + a, STR),
        "visitor_id": ids("V", visitor),
        "user_email": pa.concat_arrays([email.cast(STR), pa.nulls(a, STR)]),
        "event_type": pick(WEB_EVENT_TYPES, etype),
        "product_category": with_nulls(cat_text, no_cat),
        "event_ts": ts(when),
    })
    table = table.take(pa.array(order))
    return table.set_column(0, "event_id", ids("WE", serial))


def _attributed(ctx: Ctx, chunk: int, cust: Customers, orders: Orders) -> pa.Table:
    """The marketing platform's conversions: overlapping, double counted, stale amounts."""
    rng = ctx.rng(chunk, "attributed")
    cat = ctx.catalog
    assert cat is not None
    n = len(orders.cust)
    day_idx = day_of(orders.order_ts) - ctx.order_start_day
    live = cat.campaign_active_n[day_idx]
    chosen = np.flatnonzero((live > 0) & (rng.random(n) < np.where(orders.has_promo, 0.45, 0.15)))
    double = rng.random(len(chosen)) < 0.12
    rows = np.concatenate([chosen, chosen[double]])
    r = len(rows)
    k = (rng.random(r) * live[rows]).astype(np.int64)
    campaign = cat.campaign_active[day_idx[rows], k]
    kind = weighted(rng, [60, 25, 15], r)  # exact, pre-discount gross, stale amount
    revenue = np.select([kind == 0, kind == 1],
                        [orders.net[rows], orders.gross[rows]],
                        orders.net[rows] * rng.uniform(0.7, 1.3, r))
    conversion = np.minimum(orders.order_ts[rows] + rng.integers(0, 30 * MINUTE, r), ctx.cap)
    return pa.table({
        "order_id": pc.take(orders.order_id, pa.array(rows)),
        "campaign_id": pc.take(cat.campaigns["campaign_id"].combine_chunks(), pa.array(campaign)),
        "account_id": pc.take(cust.account_id, pa.array(orders.cust[rows])),
        "attributed_revenue": dec(np.round(revenue).astype(np.int64)),
        "conversion_ts": ts(conversion),
    })


def _manual_tags(ctx: Ctx, chunk: int, cust: Customers, complainers: np.ndarray) -> pa.Table:
    rng = ctx.rng(chunk, "manual_tags")
    n = cust.n
    codes = ctx.seeds.manual_tags
    key = codes.index("key_account") if "key_account" in codes else 0
    black = codes.index("blacklist") if "blacklist" in codes else 0
    partner = codes.index("strategic_partner") if "strategic_partner" in codes else 0
    p = 0.02 + 0.4 * cust.vip + 0.15 * cust.large + 0.25 * complainers
    tagged = np.flatnonzero(rng.random(n) < p)
    first_tag = np.select([complainers[tagged], cust.vip[tagged], cust.large[tagged]],
                          [black, key, partner], rng.integers(0, len(codes), len(tagged)))
    # Some accounts carry a second, different manual tag.
    has_second = (rng.random(len(tagged)) < 0.15) & (len(codes) > 1)
    second = tagged[has_second]
    second_tag = (first_tag[has_second] + rng.integers(1, max(len(codes), 2), len(second))
                  ) % len(codes)
    acc = np.concatenate([tagged, second])
    tag = np.concatenate([first_tag, second_tag])
    # Each (account, tag) gets 1-3 actions: add, then remove, then add again.
    actions = 1 + weighted(rng, [65, 25, 10], len(acc))
    a = np.repeat(np.arange(len(acc)), actions)
    start = cust.created[acc[a]]
    when = start + (rng.random(len(a)) * (ctx.cap - start)).astype(np.int64)
    order = np.lexsort((when, a))
    a, when = a[order], when[order]
    action = rank_in_group(actions) % 2
    return pa.table({
        "account_id": pc.take(cust.account_id, pa.array(acc[a])),
        "tag_code": pick(codes, tag[a]),
        "action": pick(("add", "remove"), action),
        "operator": pick(txt.MANUAL_TAG_OPERATORS,
                         rng.integers(0, len(txt.MANUAL_TAG_OPERATORS), len(a))),
        "operated_at": ts(when),
    })


# --------------------------------------------------------------------------------------------
# Dirt (--dirty RATE).
# --------------------------------------------------------------------------------------------

Modifier = Callable[[pa.Table, np.ndarray, np.random.Generator], tuple[pa.Table, int]]
Appender = Callable[[pa.Table, np.random.Generator], pa.Table]


def _replace(t: pa.Table, col: str, arr: pa.Array) -> pa.Table:
    i = t.schema.get_field_index(col)
    return t.set_column(i, col, arr.cast(t.schema.field(i).type))


def _set(t: pa.Table, col: str, idx: np.ndarray, values: pa.Array) -> pa.Table:
    """t[col][idx] = values (idx ascending)."""
    mask = np.zeros(len(t), dtype=bool)
    mask[idx] = True
    i = t.schema.get_field_index(col)
    arr = t.column(i).combine_chunks()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return t.set_column(i, col, pc.replace_with_mask(arr, pa.array(mask), values.cast(arr.type)))


def _halves(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return idx[: (len(idx) + 1) // 2], idx[(len(idx) + 1) // 2:]


def _gibberish(rng: np.random.Generator, real: Sequence[str], n: int) -> pa.Array:
    pool = list(txt.GIBBERISH) + [txt.mojibake(s) for s in real if not s.isascii()]
    return pick(pool, rng.integers(0, len(pool), n))


def _unknown(rng: np.random.Generator, column: str, n: int) -> pa.Array:
    pool = txt.UNKNOWN_ENUMS[column]
    return pick(pool, rng.integers(0, len(pool), n))


def _set_null(col: str) -> Modifier:
    def apply(t: pa.Table, idx: np.ndarray, rng: np.random.Generator) -> tuple[pa.Table, int]:
        return _set(t, col, idx, pa.nulls(len(idx), STR)), len(idx)
    return apply


def _set_split(col: str, make: Callable[[np.random.Generator, int], pa.Array],
               col2: str | None = None,
               make2: Callable[[np.random.Generator, int], pa.Array] | None = None) -> Modifier:
    """Dirty values from `make` in `col`; with a second column, half of the rows get theirs
    from `make2` in `col2` instead."""
    def apply(t: pa.Table, idx: np.ndarray, rng: np.random.Generator) -> tuple[pa.Table, int]:
        a, b = _halves(idx) if col2 else (idx, idx[:0])
        t = _set(t, col, a, make(rng, len(a)))
        if col2 and make2 and len(b):
            t = _set(t, col2, b, make2(rng, len(b)))
        return t, len(idx)
    return apply


def _set_unknown_id(col: str, prefix: str, col2: str | None = None,
                    prefix2: str | None = None) -> Modifier:
    """Unknown foreign keys; with a second column, half of the rows get it there instead."""
    return _set_split(col, lambda rng, n: unknown_ids(rng, prefix, n),
                      col2, (lambda rng, n: unknown_ids(rng, prefix2, n)) if prefix2 else None)


def _set_unknown_enum(col: str, pool: str, col2: str | None = None,
                      pool2: str | None = None) -> Modifier:
    """Values outside the enum; with a second column, half of the rows get it there instead."""
    return _set_split(col, lambda rng, n: _unknown(rng, pool, n),
                      col2, (lambda rng, n: _unknown(rng, pool2, n)) if pool2 else None)


def _set_future(ctx: Ctx, col: str, clear: str | None = None) -> Modifier:
    """Dated 1-60 days after as_of (a typo'd year, a clock in the wrong zone ...)."""
    def apply(t: pa.Table, idx: np.ndarray, rng: np.random.Generator) -> tuple[pa.Table, int]:
        later = ctx.asof_end + rng.integers(DAY, 60 * DAY, len(idx))
        t = _set(t, col, idx, ts(later))
        if clear:
            t = _set(t, clear, idx, pa.nulls(len(idx), TS))
        return t, len(idx)
    return apply


def _set_gibberish(col: str, real: Sequence[str], col2: str | None = None,
                   real2: Sequence[str] = ()) -> Modifier:
    def apply(t: pa.Table, idx: np.ndarray, rng: np.random.Generator) -> tuple[pa.Table, int]:
        a, b = _halves(idx) if col2 else (idx, idx[:0])
        t = _set(t, col, a, _gibberish(rng, real, len(a)))
        if col2 and len(b):
            t = _set(t, col2, b, _gibberish(rng, real2, len(b)))
        return t, len(idx)
    return apply


def _negative(t: pa.Table, idx: np.ndarray, rng: np.random.Generator) -> tuple[pa.Table, int]:
    a, b = _halves(idx)
    t = _set(t, "quantity", a, pc.negate(pc.take(t["quantity"], pa.array(a))))
    t = _set(t, "unit_price", b, pc.negate(pc.take(t["unit_price"], pa.array(b))))
    return t, len(idx)


def _ambiguous_email(t: pa.Table, idx: np.ndarray, rng: np.random.Generator
                     ) -> tuple[pa.Table, int]:
    """Half of the rows take the email of the other half (contacts of other accounts)."""
    target, source = _halves(idx)
    target = target[: len(source)]
    src_email = pc.take(t["email"], pa.array(source))
    ok = (pc.is_valid(src_email).to_numpy(zero_copy_only=False)
          & pc.not_equal(pc.take(t["account_id"], pa.array(source)),
                         pc.take(t["account_id"], pa.array(target))).to_numpy(zero_copy_only=False))
    order = np.argsort(target[ok], kind="stable")
    emails = vary_case(rng, pc.take(src_email, pa.array(np.flatnonzero(ok)[order])), capital=0.5)
    return _set(t, "email", target[ok][order], emails), int(ok.sum())


def _null_key(col: str, col2: str | None = None) -> Appender:
    def apply(t: pa.Table, rng: np.random.Generator) -> pa.Table:
        if not col2:
            return _replace(t, col, pa.nulls(len(t), STR))
        which = rng.random(len(t)) < 0.5
        t = _replace(t, col, with_nulls(t[col].combine_chunks(), which))
        return _replace(t, col2, with_nulls(t[col2].combine_chunks(), ~which))
    return apply


def _newer(ctx: Ctx, col: str, change: Appender) -> Appender:
    """Re-delivered with new values and a timestamp newer than every clean version."""
    def apply(t: pa.Table, rng: np.random.Generator) -> pa.Table:
        t = change(t, rng)
        later = ctx.cap + 1 + (rng.random(len(t)) * (ctx.asof_end - ctx.cap - 1)).astype(np.int64)
        return _replace(t, col, ts(later))
    return apply


def _new_status(t: pa.Table, rng: np.random.Generator) -> pa.Table:
    old = pc.index_in(t["status"], pa.array(ORDER_STATUSES)).to_numpy(zero_copy_only=False)
    new = (np.nan_to_num(old, nan=0).astype(np.int64) + rng.integers(1, 5, len(t))) % 5
    return _replace(t, "status", pick(ORDER_STATUSES, new))


def _new_quantity(t: pa.Table, rng: np.random.Generator) -> pa.Table:
    return _replace(t, "quantity", pc.add(t["quantity"], pa.scalar(1, INT)))


def _new_employees(t: pa.Table, rng: np.random.Generator) -> pa.Table:
    emp = t["employee_count"].to_numpy(zero_copy_only=False).astype(float)
    grown = np.round(np.nan_to_num(emp, nan=10) * rng.uniform(1.1, 2.0, len(t))) + 1
    return _replace(t, "employee_count", ints(grown))


def _new_role(ctx: Ctx) -> Appender:
    def apply(t: pa.Table, rng: np.random.Generator) -> pa.Table:
        codes = rng.integers(0, len(ctx.seeds.decision_role), len(t))
        role = _role_text(ctx, rng, codes)
        return _replace(t, "decision_role", pc.coalesce(role, pa.scalar("decision maker")))
    return apply


@dataclass
class DirtSpec:
    modify: dict[str, Modifier]
    null_key: Appender | None = None
    redeliver: Appender | None = None


def _dirt_specs(ctx: Ctx) -> dict[str, DirtSpec]:
    seeds = ctx.seeds
    industry_text = [t for texts in seeds.industry.values() for t in texts[:1]]
    province_text = [p[0] for p in seeds.provinces[:5]]
    role_text = [t for texts in seeds.decision_role.values() for t in texts[-1:]]
    category_text = [t for texts in seeds.category.values() for t in texts[-1:]]
    return {
        "crm/accounts": DirtSpec(
            {"unparseable_text": _set_gibberish("industry", industry_text + ["火星"],
                                                "province", province_text + ["火星省"]),
             "unknown_enum": _set_unknown_enum("customer_type", "customer_type")},
            _null_key("account_id"), _newer(ctx, "updated_at", _new_employees)),
        "crm/contacts": DirtSpec(
            {"null_fk": _set_null("account_id"), "unknown_fk": _set_unknown_id("account_id", "AC"),
             "unparseable_text": _set_gibberish("decision_role", role_text),
             "ambiguous_email": _ambiguous_email},
            _null_key("contact_id"), _newer(ctx, "updated_at", _new_role(ctx))),
        "crm/manual_tags": DirtSpec(
            {"unknown_fk": _set_unknown_id("account_id", "AC"),
             "future_date": _set_future(ctx, "operated_at"),
             "unknown_enum": _set_unknown_enum("action", "manual_action",
                                               "tag_code", "manual_tag_code")},
            _null_key("account_id")),
        "orders/orders": DirtSpec(
            {"null_fk": _set_null("account_id"),
             "unknown_fk": _set_unknown_id("account_id", "AC", "promotion_id", "PM"),
             "future_date": _set_future(ctx, "order_ts"),
             "unknown_enum": _set_unknown_enum("status", "status", "sales_channel",
                                               "sales_channel")},
            _null_key("order_id"), _newer(ctx, "_ingested_at", _new_status)),
        "orders/order_items": DirtSpec(
            {"null_fk": _set_null("product_id"),
             "unknown_fk": _set_unknown_id("order_id", "SO", "product_id", "SKU"),
             "negative_value": _negative},
            _null_key("order_id", "line_no"), _new_quantity),
        "orders/products": DirtSpec(
            {"unparseable_text": _set_gibberish("category", category_text)},
            _null_key("product_id")),
        "orders/promotions": DirtSpec({}, _null_key("promotion_id")),
        "support/tickets": DirtSpec(
            {"null_fk": lambda t, idx, rng: (
                _set(_set(t, "account_id", idx, pa.nulls(len(idx), STR)),
                     "requester_email", idx, pa.nulls(len(idx), STR)), len(idx)),
             "unknown_fk": _set_unknown_id("account_id", "AC"),
             "future_date": _set_future(ctx, "opened_at", clear="resolved_at"),
             "unknown_enum": _set_unknown_enum("channel", "ticket_channel",
                                               "ticket_type", "ticket_type")},
            _null_key("ticket_id")),
        "campaigns/campaigns": DirtSpec(
            {"unknown_enum": _set_unknown_enum("channel", "campaign_channel")},
            _null_key("campaign_id")),
        "campaigns/campaign_events": DirtSpec(
            {"null_fk": _set_null("campaign_id"),
             "unknown_fk": _set_unknown_id("campaign_id", "CMP"),
             "future_date": _set_future(ctx, "event_ts"),
             "unknown_enum": _set_unknown_enum("event_type", "campaign_event_type")},
            _null_key("event_id")),
        "campaigns/web_events": DirtSpec(
            {"future_date": _set_future(ctx, "event_ts"),
             "unknown_enum": _set_unknown_enum("event_type", "web_event_type"),
             "unparseable_text": _set_gibberish("product_category", category_text)},
            _null_key("event_id")),
        "campaigns/attributed_orders": DirtSpec(
            {"unknown_fk": _set_unknown_id("order_id", "SO", "campaign_id", "CMP"),
             "future_date": _set_future(ctx, "conversion_ts")},
            _null_key("order_id")),
    }


def _inject_dirt(ctx: Ctx, rng: np.random.Generator, name: str, t: pa.Table,
                 single: np.ndarray | None, redelivery_file: int,
                 counts: dict[str, dict[str, int]]) -> pa.Table:
    """Damage about `dirty` of the rows per kind, on disjoint rows whose key has one version.

    In-place kinds change existing rows; duplicate_row, null_key and redelivered append copies
    of other (clean) rows. Counts per kind are added to `counts[kind][name]`.
    """
    spec = _dirt_specs(ctx)[name]
    n = len(t)
    if ctx.dirty <= 0 or n == 0:
        return t
    appended = ["duplicate_row"] + ["null_key"] * bool(spec.null_key) + [
        "redelivered"] * bool(spec.redeliver)
    kinds = list(spec.modify) + appended
    eligible = np.flatnonzero(single) if single is not None else np.arange(n)
    per_kind = max(1, round(ctx.dirty * n))
    per_kind = min(per_kind, len(eligible) // len(kinds))
    pool = rng.permutation(eligible)
    blocks = {k: np.sort(pool[i * per_kind:(i + 1) * per_kind]) for i, k in enumerate(kinds)}
    for kind, modify in spec.modify.items():
        t, done = modify(t, blocks[kind], rng)
        counts[kind][name] = counts[kind].get(name, 0) + done
    extra = []
    files = t["__file"].to_numpy()
    for kind in appended:
        rows = t.take(pa.array(blocks[kind]))
        if kind == "duplicate_row":  # half resent in the same delivery, half in a later one
            moved = rng.random(len(rows)) < 0.5
            rows = _replace(rows, "__file", pa.array(
                np.where(moved, redelivery_file, files[blocks[kind]]).astype(np.int32)))
        elif kind == "null_key":
            rows = spec.null_key(rows, rng)
        else:
            rows = spec.redeliver(rows, rng)
            rows = _replace(rows, "__file", pa.array(np.full(len(rows), redelivery_file, np.int32)))
        extra.append(rows)
        counts[kind][name] = counts[kind].get(name, 0) + len(rows)
    return pa.concat_tables([t, *extra])


# --------------------------------------------------------------------------------------------
# Orchestration and writing.
# --------------------------------------------------------------------------------------------

@dataclass
class Delivery:
    """One table of one chunk: rows with a `__file` code into `stems`."""

    table: pa.Table
    stems: list[str]
    single: np.ndarray | None = None  # rows whose key has one version (None: all)
    redelivered: int = 0


def _with_files(t: pa.Table, codes: np.ndarray) -> pa.Table:
    return t.append_column("__file", pa.array(np.asarray(codes, dtype=np.int32)))


def _by_period(ctx: Ctx, t: pa.Table, label: str, period: str, col: str, again: int = 0,
               single: np.ndarray | None = None) -> Delivery:
    """Files per period ("M", "Y") of `col`; the last `again` rows go to the re-delivery file."""
    stems, starts = ctx.files(label, period)
    us = t[col].to_numpy().astype("datetime64[us]").astype(np.int64)
    codes = ctx.period_codes(starts, us)
    codes[len(t) - again:] = len(stems) - 1
    return Delivery(_with_files(t, codes), stems, single, again)


def _chunk(ctx: Ctx, chunk: int, first: int, n: int) -> dict[str, Delivery]:
    cust = _customers(ctx, chunk, first, n)
    contacts = _contacts(ctx, chunk, cust)
    accounts, acc_again = _accounts(ctx, chunk, cust, contacts)
    contact_again, contact_chosen = _contact_redeliveries(ctx, chunk, contacts)
    orders, items, item_single = _orders(ctx, chunk, cust)
    tickets, complainers = _tickets(ctx, chunk, cust, contacts)
    out: dict[str, Delivery] = {}

    # `single`: rows whose key has one version, the only rows --dirty may damage.
    single = np.arange(len(accounts)) < n
    single[acc_again] = False
    out["crm/accounts"] = _by_period(ctx, accounts, "accounts", "Y", "updated_at",
                                     len(accounts) - n, single)
    all_contacts = pa.concat_tables([contacts.table, contact_again])
    single = np.arange(len(all_contacts)) < len(contacts.table)
    single[contact_chosen] = False
    out["crm/contacts"] = _by_period(ctx, all_contacts, "contacts", "Y", "updated_at",
                                     len(contact_again), single)
    d = out["orders/orders"] = _by_period(ctx, orders.table, "orders", "M", "_ingested_at",
                                          len(orders.table) - len(orders.cust), orders.single)
    item_again = int((~item_single).sum()) // 2  # each fixed line: its old row + its new row
    order_file = d.table["__file"].to_numpy()
    codes = order_file[items["__order"].to_numpy()]
    codes[len(items) - item_again:] = len(d.stems) - 1
    out["orders/order_items"] = Delivery(
        _with_files(items.drop_columns(["__order"]), codes),
        [s.replace("_orders", "_order_items") for s in d.stems], item_single, item_again)

    out["support/tickets"] = _by_period(ctx, tickets, "tickets", "Y", "opened_at")
    out["campaigns/campaign_events"] = _by_period(
        ctx, _campaign_events(ctx, chunk, contacts), "campaign_events", "Y", "event_ts")
    out["campaigns/web_events"] = _by_period(
        ctx, _web_events(ctx, chunk, cust, contacts), "web_events", "M", "event_ts")
    out["campaigns/attributed_orders"] = _by_period(
        ctx, _attributed(ctx, chunk, cust, orders), "attributed_orders", "Y", "conversion_ts")
    out["crm/manual_tags"] = _by_period(
        ctx, _manual_tags(ctx, chunk, cust, complainers), "manual_tags", "Y", "operated_at")
    return out


def _write(out_dir: Path, name: str, d: Delivery, suffix: str) -> int:
    """One Parquet file per delivery stem, rows in generation order; returns files written.

    Stems start with the delivery date and each file's mtime is set to it (the re-delivery
    file last, at 23:30 on as_of), so name order and mtime order both follow delivery order.
    """
    codes = d.table["__file"].to_numpy()
    order = np.argsort(codes, kind="stable")
    table = d.table.drop_columns(["__file"]).take(pa.array(order))
    assert table.schema.equals(SCHEMAS[name]), name
    counts = np.bincount(codes, minlength=len(d.stems))
    start = written = 0
    for stem, count in zip(d.stems, counts, strict=True):
        if count:
            path = out_dir / name / f"{stem}{suffix}.parquet"
            pq.write_table(table.slice(start, int(count)), path, compression="zstd",
                           compression_level=3)
            delivered = date.fromisoformat(stem[:10]) - EPOCH
            offset = 23.5 * 3600 if stem.endswith("_redelivery") else 2 * 3600
            mtime = delivered.total_seconds() + offset - 8 * 3600  # stems are China time
            os.utime(path, (mtime, mtime))
            start += int(count)
            written += 1
    return written


def _context(seed: int, as_of: date, dirty: float) -> Ctx:
    asof_day = (as_of - EPOCH).days
    account_start = asof_day - ACCOUNT_HISTORY_DAYS
    return Ctx(seed=seed, as_of=as_of, dirty=dirty, seeds=load_seeds(), asof_day=asof_day,
               cap=asof_day * DAY + 23 * HOUR, asof_end=(asof_day + 1) * DAY - 1,
               order_start_day=asof_day - ORDER_HISTORY_DAYS + 1, account_start_day=account_start,
               calendar=Calendar(account_start, asof_day + 1))


def generate_landing_zone(out_dir: str | Path, customers: int, seed: int = 42,
                          as_of: date | None = None, dirty: float = 0.0) -> dict:
    """Write a landing zone for `customers` customers under `out_dir`; return what was written.

    Existing *.parquet files in the twelve table folders are removed first (nothing else is).
    Returns {table: rows written, ..., "files": {table: n}, "redelivered": {table: n},
    "dirt": {kind: {table: n}}} plus the arguments (customers, seed, as_of, dirty). Row counts
    sit at the top level under the table names ("orders/orders"); `redelivered` counts the
    clean re-deliveries (newer versions of a key), `dirt` the rows damaged or added by --dirty.
    """
    if customers < 0:
        raise ValueError("customers must be >= 0")
    if not 0.0 <= dirty <= 1.0:
        raise ValueError("dirty must be between 0 and 1")
    as_of = as_of or date.today()
    out = Path(out_dir)
    for name in TABLES:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in sorted(folder.glob("*.parquet")):
            old.unlink()
    ctx = _context(seed, as_of, dirty)
    ctx.catalog = catalog = _build_catalog(ctx)
    stats: dict = {**dict.fromkeys(TABLES, 0), "customers": customers, "seed": seed,
                   "as_of": as_of.isoformat(), "dirty": dirty,
                   "files": dict.fromkeys(TABLES, 0), "redelivered": dict.fromkeys(TABLES, 0),
                   "dirt": {kind: {} for kind in DIRT_KINDS}}

    def emit(chunk: int, name: str, d: Delivery, suffix: str) -> None:
        rng = ctx.rng(chunk, "dirt", TABLES.index(name))
        d.table = _inject_dirt(ctx, rng, name, d.table, d.single, len(d.stems) - 1, stats["dirt"])
        stats[name] += len(d.table)
        stats["files"][name] += _write(out, name, d, suffix)
        stats["redelivered"][name] += d.redelivered

    redelivery = f"{iso(ctx.asof_day)}_redelivery"
    first_year = int(iso(ctx.order_start_day)[:4])
    yearly = [f"{iso(max(ctx.order_start_day, (date(y, 1, 1) - EPOCH).days))}" for y in
              range(first_year, as_of.year + 1)]
    emit(10_000, "orders/products", Delivery(catalog.products, [
        f"{iso(ctx.order_start_day)}_products", f"{iso(ctx.asof_day - 60)}_products",
        redelivery]), "")
    emit(10_000, "orders/promotions", Delivery(
        catalog.promotions, [f"{d}_promotions" for d in yearly] + [redelivery]), "")
    emit(10_000, "campaigns/campaigns", Delivery(
        catalog.campaigns, [f"{d}_campaigns" for d in yearly] + [redelivery]), "")
    for chunk, first in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
        deliveries = _chunk(ctx, chunk, first, min(CHUNK_CUSTOMERS, customers - first))
        for name in TABLES:
            if name in deliveries:
                emit(chunk, name, deliveries.pop(name), f"_c{chunk:03d}")
    stats["dirt"] = {k: dict(sorted(v.items())) for k, v in stats["dirt"].items()}
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--out", type=Path, required=True, help="landing-zone directory")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="run date YYYY-MM-DD the data ends at (default: today)")
    parser.add_argument("--dirty", type=float, default=0.0,
                        help="rate 0..1 of each kind of dirt to inject (default 0)")


def run(args: argparse.Namespace) -> int:
    stats = generate_landing_zone(args.out, args.customers, seed=args.seed, as_of=args.as_of,
                                  dirty=args.dirty)
    print(f"wrote {stats['customers']} customers as of {stats['as_of']} to {args.out}")
    for name in TABLES:
        print(f"  {name:<28} {stats[name]:>12,} rows {stats['files'][name]:>6} files")
    for kind, per_table in stats["dirt"].items():
        if per_table:
            print(f"  dirt {kind:<22} {sum(per_table.values()):>10,} rows")
    return 0
