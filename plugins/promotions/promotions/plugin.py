"""The plugin: its name, routes, capabilities and subscriptions."""

from typing import Optional

from kirana_sdk import Capabilities, Event, Plugin

from . import coupons, redemptions, schema  # noqa: F401 - the route modules register on `router`
from .api import router

VERSION = "0.1.0"


class Promotions(Plugin):
    name = "promotions"
    version = VERSION
    router = router
    capabilities = Capabilities(sql=True, publish=(redemptions.EXPIRED,), call=("orders",))
    subscriptions = tuple(topic for topic, _ in redemptions.SUBSCRIPTIONS)

    def migrate(self, from_version: Optional[str]) -> None:
        schema.migrate()

    def on_event(self, event: Event) -> None:
        redemptions.on_event(event)
