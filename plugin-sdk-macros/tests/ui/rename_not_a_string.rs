use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Notification {
    #[row(rename = is_read)]
    read: bool,
}

fn main() {}
