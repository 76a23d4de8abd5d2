use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Notification {
    #[row(rename = "")]
    read: bool,
}

fn main() {}
