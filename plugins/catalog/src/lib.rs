use kirana_sdk::prelude::*;

pub struct Catalog;

impl Plugin for Catalog {
    const NAME: &'static str = "catalog";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    fn router() -> Router {
        Router::new()
    }
}

kirana_sdk::export_plugin!(Catalog);
