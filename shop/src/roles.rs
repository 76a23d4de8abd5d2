//! The shop's roles, as the auth plugin issues them in tokens. The host checks a
//! token's role against a route's list and knows no role by name.

/// Someone who shops: carts, orders, payments, addresses. Self-registration gives it.
pub const CUSTOMER: &str = "customer";
/// Someone who runs the shop: catalog, orders, agents, analytics, the console's views.
pub const ADMIN: &str = "admin";
/// Someone who carries orders; an admin creates the account.
pub const DELIVERY_AGENT: &str = "delivery_agent";

/// Every role auth may issue.
pub const ALL: &[&str] = &[CUSTOMER, ADMIN, DELIVERY_AGENT];
