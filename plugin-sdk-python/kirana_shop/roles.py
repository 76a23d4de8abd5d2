"""The shop's roles, as the auth plugin issues them in tokens."""

CUSTOMER = "customer"
ADMIN = "admin"
DELIVERY_AGENT = "delivery_agent"
ALL = (CUSTOMER, ADMIN, DELIVERY_AGENT)
