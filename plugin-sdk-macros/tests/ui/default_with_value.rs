use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Order {
    id: String,
    #[row(default = true)]
    lines: Vec<String>,
}

fn main() {}
