use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Nothing;

fn main() {}
