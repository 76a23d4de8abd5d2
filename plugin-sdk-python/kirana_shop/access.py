"""Route access values for the shop's roles (``kirana_sdk.Access.roles`` underneath)."""

from kirana_sdk import Access

from . import roles

CUSTOMER = Access.roles(roles.CUSTOMER)
ADMIN = Access.roles(roles.ADMIN)
DELIVERY_AGENT = Access.roles(roles.DELIVERY_AGENT)
CUSTOMER_OR_ADMIN = Access.roles(roles.CUSTOMER, roles.ADMIN)
ANY_ROLE = Access.roles(*roles.ALL)
