use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Order {
    id: String,
    #[row(rename = "order_lines", default)]
    lines: Vec<String>,
}

fn main() {}
