use kirana_sdk::prelude::*;

pub struct Cart;

impl Plugin for Cart {
    const NAME: &'static str = "cart";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    fn router() -> Router {
        Router::new()
    }
}

kirana_sdk::export_plugin!(Cart);
