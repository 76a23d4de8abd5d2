//! Route access by shop role, for [`kirana_sdk::Router`]: `.get(path, access::ADMIN,
//! handler)`. The SDK's [`Access`] keeps the mechanism (`Public`, `Authenticated`,
//! `Roles`, `Internal`); the role names are the shop's ([`crate::roles`]).

use kirana_sdk::Access;

use crate::roles;

/// Customers only.
pub const CUSTOMER: Access = Access::Roles(&[roles::CUSTOMER]);
/// Admins only.
pub const ADMIN: Access = Access::Roles(&[roles::ADMIN]);
/// Delivery agents only.
pub const DELIVERY_AGENT: Access = Access::Roles(&[roles::DELIVERY_AGENT]);
/// A customer (their own things) or an admin (anyone's).
pub const CUSTOMER_OR_ADMIN: Access = Access::Roles(&[roles::CUSTOMER, roles::ADMIN]);
/// Any shop role; the handler decides what each may see.
pub const ANY_ROLE: Access = Access::Roles(roles::ALL);
