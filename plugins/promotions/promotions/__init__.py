"""The promotions plugin: coupons (admin routes) and their quote and redemption for the
cart and checkout (internal routes, events). Contract: docs/plugins/promotions.md."""
