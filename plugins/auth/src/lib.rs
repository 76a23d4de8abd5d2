use kirana_sdk::prelude::*;

pub struct Auth;

impl Plugin for Auth {
    const NAME: &'static str = "auth";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    fn router() -> Router {
        Router::new()
    }
}

kirana_sdk::export_plugin!(Auth);
