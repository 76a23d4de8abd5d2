"""The component's entry point: componentize-py builds ``app`` and takes its
``WitWorld`` as the exports of ``kirana:platform/plugin``."""

from kirana_sdk import export
from promotions.plugin import Promotions

WitWorld = export(Promotions)
