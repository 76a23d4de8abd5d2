use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
enum Status {
    Pending,
    Paid,
}

fn main() {}
