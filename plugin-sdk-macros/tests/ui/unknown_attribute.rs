use kirana_sdk_macros::FromRow;

// Every bad attribute is reported at once, not one per build.
#[derive(FromRow)]
struct Payment {
    id: String,
    #[row(skip)]
    refunds: Vec<String>,
    #[row(column = "captured_at")]
    captured: Option<String>,
}

fn main() {}
