use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Total(i64, String);

fn main() {}
