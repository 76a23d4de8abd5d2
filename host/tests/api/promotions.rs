//! Promotions, the plugin written in Python: coupons an admin manages and the internal
//! quote/redemption routes the cart and checkout use.
