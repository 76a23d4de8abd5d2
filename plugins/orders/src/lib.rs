//! Orders: checkout from the cart, the order state machine, cancellation.

use kirana_sdk::prelude::*;

pub struct Orders;

impl Plugin for Orders {
    const NAME: &'static str = "orders";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
    }
}

kirana_sdk::export_plugin!(Orders);
