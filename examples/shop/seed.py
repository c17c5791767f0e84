"""Seed data the shop generates itself: products, prices, stock and their images.

Deterministic (one random seed), so every run of the demo sells the same
catalog. Images are small SVG files written to the image folder; the asset
manifest gives each a fingerprinted URL that the edge may cache for ever.
"""

from __future__ import annotations

import random
from pathlib import Path

from commercekit.cdn import AssetManifest
from commercekit.money import Money
from shop.root import Shop

__all__ = ["CATEGORIES", "seed"]

CATEGORIES = {
    "tees": ("Tee", ["Classic", "Organic", "Striped", "Pocket", "Heavy", "Raglan"]),
    "mugs": ("Mug", ["Enamel", "Stoneware", "Travel", "Espresso", "Tall", "Glazed"]),
    "caps": ("Cap", ["Trucker", "Dad", "Snapback", "Bucket", "Beanie", "Visor"]),
    "bags": ("Bag", ["Tote", "Sling", "Daypack", "Duffel", "Messenger", "Pouch"]),
}
COLOURS = [
    ("Red", "#c0392b"),
    ("Blue", "#2e86c1"),
    ("Green", "#239b56"),
    ("Amber", "#d68910"),
    ("Slate", "#566573"),
    ("Plum", "#7d3c98"),
    ("Teal", "#148f77"),
    ("Coral", "#e74c3c"),
]


def _svg(title: str, colour: str, shape: str) -> str:
    art = {
        "tees": '<path d="M60 40 L100 25 L140 40 L170 70 L150 85 L140 75 L140 170 L60 170 '
        'L60 75 L50 85 L30 70 Z"/>',
        "mugs": '<rect x="55" y="50" width="80" height="110" rx="8"/>'
        '<path d="M135 75 h15 a20 20 0 0 1 0 50 h-15" fill="none" stroke-width="10" '
        'stroke="currentColor"/>',
        "caps": '<path d="M40 120 A60 60 0 0 1 160 120 Z"/><rect x="100" y="115" width="75" '
        'height="12" rx="6"/>',
        "bags": '<rect x="45" y="70" width="110" height="100" rx="6"/><path d="M75 70 a25 25 0 '
        '0 1 50 0" fill="none" stroke-width="8" stroke="currentColor"/>',
    }[shape]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">'
        f'<rect width="200" height="200" fill="#f4f6f7"/><g fill="{colour}" color="{colour}">'
        f'{art}</g><text x="100" y="192" font-family="sans-serif" font-size="13" '
        f'text-anchor="middle" fill="#333">{title}</text></svg>'
    )


def seed(shop: Shop, *, products: int | None = None, stock: int = 40) -> int:
    """Create the catalog if it is empty; returns how many products it added."""
    image_dir: Path = shop.settings.image_dir
    manifest_path = shop.settings.data_dir / "manifest.json"
    # The primary's position now, as a consistency token: the read below then runs
    # on a replica that has replayed the tables just created (or on the primary).
    token = shop.db.run(lambda uow: None).token
    if shop.commerce.catalog.list_products(limit=1, token=token).products:
        return 0
    rng = random.Random(15)
    count = products or shop.settings.seed_products
    cur = shop.settings.currency
    image_dir.mkdir(parents=True, exist_ok=True)
    plan = []
    for i in range(count):
        category = list(CATEGORIES)[i % len(CATEGORIES)]
        noun, styles = CATEGORIES[category]
        colour, hex_ = COLOURS[(i // len(CATEGORIES)) % len(COLOURS)]
        style = styles[(i // (len(CATEGORIES) * len(COLOURS))) % len(styles)]
        pid = f"p{i + 1:03d}"
        name = f"{colour} {style} {noun}"
        image = f"products/{pid}.svg"
        (image_dir / image).parent.mkdir(parents=True, exist_ok=True)
        (image_dir / image).write_text(_svg(name, hex_, category))
        plan.append((pid, name, category, image))
    manifest = AssetManifest.build(image_dir)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(manifest_path)
    shop.reload_manifest()
    for pid, name, category, image in plan:
        sizes = ["S", "M", "L"] if category == "tees" else ["ONE"]
        skus = [(f"{pid.upper()}-{s}", {"size": s}) for s in sizes]
        shop.commerce.catalog.add_product(
            name,
            skus,
            product_id=pid,
            attributes={"category": category},
            images=[image],
        )
        price = Money.of(f"{rng.randrange(8, 60)}.{rng.choice(['00', '50', '90', '99'])}", cur)
        for sku, _ in skus:
            shop.commerce.catalog.set_price(sku, price)
            shop.commerce.inventory.set_stock(sku, stock if rng.random() > 0.1 else 0)
    return len(plan)
