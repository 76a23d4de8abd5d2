//! Coupons through the shop: a cart's coupon, checkout redeeming it with the order,
//! the total limit under concurrent checkouts, and a cancellation giving it back once.
