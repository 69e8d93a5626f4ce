"""Segment e-commerce (spec v2) events -> Drip Shopper Activity order bodies.

Drip's order fields: DripEmail/api-docs `source/includes/shopper_activity/_order_activity.md`.
Amounts stay in decimal currency units, as Segment sends them.
"""

from __future__ import annotations

import math
from typing import Any

from app.mapping.fields import normalise_key
from app.mapping.types import Problem
from app.mapping.values import (
    Coerce,
    Invalid,
    as_amount,
    as_decimal,
    as_id,
    as_text,
    first_usable,
)

# Segment event name (compared case-insensitively) -> Drip order `action`.
ORDER_ACTIONS: dict[str, str] = {
    "order completed": "paid",
    "checkout started": "placed",
    "order updated": "updated",
    "order refunded": "refunded",
    "order cancelled": "canceled",
}
DEFAULT_PROVIDER = "segment"

# Drip order key <- Segment property, coercion.
ORDER_FIELDS: tuple[tuple[str, str, Coerce], ...] = (
    ("grand_total", "total", as_amount),
    ("total_discounts", "discount", as_amount),
    ("total_taxes", "tax", as_amount),
    ("total_shipping", "shipping", as_amount),
    ("currency", "currency", as_text),
    ("order_url", "order_url", as_text),
)
# Drip item key <- Segment product properties (first usable), coercion.
ITEM_FIELDS: tuple[tuple[str, tuple[str, ...], Coerce], ...] = (
    ("product_id", ("product_id", "id"), as_id),
    ("sku", ("sku",), as_id),
    ("name", ("name",), as_text),
    ("brand", ("brand",), as_text),
    ("price", ("price",), as_amount),
    ("quantity", ("quantity",), as_amount),
    ("product_url", ("url", "product_url"), as_text),
    ("image_url", ("image_url",), as_text),
)


def order_action(event: str) -> str | None:
    return ORDER_ACTIONS.get(event.strip().casefold())


def order_record(
    properties: dict[str, Any],
    head: dict[str, Any],
    problems: list[Problem],
) -> dict[str, Any] | None:
    """The Shopper Activity body, or None when `order_id` is missing (reported).

    `head` holds `email`, `action` and `occurred_at` (when known).
    """
    order_id = pick(properties, "properties", ("order_id",), as_id, problems)
    if order_id is None:
        reason = "Drip's order API requires an order id; sent as a plain event"
        problems.append(Problem("properties.order_id", reason))
        return None
    record = {"provider": provider(properties.get("provider"), problems), **head}
    record["order_id"] = order_id
    fields = ORDER_FIELDS
    if head["action"] == "refunded":
        fields += (("refund_amount", "refund_amount", as_amount),)
    for target, source, coerce in fields:
        value = pick(properties, "properties", (source,), coerce, problems)
        if value is not None:
            record[target] = value
    items = order_items(properties.get("products"), problems)
    if items:
        record["items"] = items
    return record


def provider(raw: Any, problems: list[Problem]) -> str:
    """Drip wants the provider "in lower snake cased form"."""
    if raw is None:
        return DEFAULT_PROVIDER
    if not isinstance(raw, str):
        problems.append(
            Problem("properties.provider", f"expected a string; '{DEFAULT_PROVIDER}' used")
        )
        return DEFAULT_PROVIDER
    return normalise_key(raw) or DEFAULT_PROVIDER


def order_items(products: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    if products is None:
        return []
    if not isinstance(products, list):
        problems.append(Problem("properties.products", "expected an array; no items sent"))
        return []
    items = []
    for index, product in enumerate(products):
        path = f"properties.products[{index}]"
        if not isinstance(product, dict):
            problems.append(Problem(path, "expected an object; item dropped"))
            continue
        item = order_item(product, path, problems)
        if item is not None:
            items.append(item)
    return items


def order_item(
    product: dict[str, Any], path: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """One Drip item; `name` falls back to sku, then product_id, as Drip requires one."""
    item: dict[str, Any] = {}
    for target, sources, coerce in ITEM_FIELDS:
        value = pick(product, path, sources, coerce, problems)
        if value is not None:
            item[target] = value
    name = item.get("name") or item.get("sku") or item.get("product_id")
    if name is None:
        problems.append(Problem(f"{path}.name", "Drip requires an item name; item dropped"))
        return None
    item["name"] = name
    if "price" in item and "quantity" in item:
        total = line_total(item["price"], item["quantity"])
        if total is not None:
            item["total"] = total
    categories = item_categories(product, path, problems)
    if categories:
        item["categories"] = categories
    return item


def line_total(price: int | float, quantity: int | float) -> int | float | None:
    """price x quantity without float noise (19.99 x 3 = 59.97); None if not finite."""
    total = as_decimal(price) * as_decimal(quantity)
    if isinstance(price, int) and isinstance(quantity, int):
        return int(total)
    return float(total) if math.isfinite(float(total)) else None


def item_categories(product: dict[str, Any], path: str, problems: list[Problem]) -> list[str]:
    """Drip's `categories` array from Segment's `category` (or a `categories` array)."""
    raw = product.get("categories", product.get("category"))
    values = raw if isinstance(raw, list) else [raw]
    categories = []
    for value in values:
        try:
            text = as_text(value) if value is not None else None
        except Invalid:
            problems.append(Problem(f"{path}.category", "expected a string; dropped"))
            continue
        if text and text not in categories:
            categories.append(text)
    return categories


def pick(
    data: dict[str, Any],
    prefix: str,
    sources: tuple[str, ...],
    coerce: Coerce,
    problems: list[Problem],
) -> Any:
    """The first usable value among `sources`; unusable ones are reported."""
    return first_usable(data, sources, coerce, problems, f"{prefix}.")
