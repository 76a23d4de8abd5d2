"""The plugin's one router; the route modules register on it when imported."""

from kirana_sdk import Router

router = Router()
