use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
#[row(rename = "notifications")]
struct Notification {
    read: bool,
}

fn main() {}
